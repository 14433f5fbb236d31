"""Image grid geometry and the LPS / RAS conventions used throughout LiverMets.

Conventions
-----------
* Arrays are indexed ``[k, j, i]`` (slice, row, column), the order SimpleITK's
  ``GetArrayFromImage`` and Slicer's ``arrayFromVolume`` both use.
* ``spacing_mm`` is given per array axis in *array order* ``(k, j, i)``.
* Files written by ITK (NIfTI, NRRD, MetaImage) store physical points in LPS.
  ``Geometry`` keeps ITK's LPS origin and direction as read, and offers RAS
  conversions because Slicer and every LiverMets result speak RAS millimetres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


@dataclass(frozen=True)
class Geometry:
    """Where a voxel grid sits in patient space.

    Attributes
    ----------
    shape : (3,) int
        Grid size in array order ``(k, j, i)``.
    spacing_ijk_mm : (3,) float
        Voxel size along i, j, k (ITK order, mm).
    origin_lps_mm : (3,) float
        Centre of voxel ``(i, j, k) = (0, 0, 0)`` in LPS millimetres.
    direction_lps : (3, 3) float
        Column ``n`` is the LPS unit vector of index axis ``n`` (i, j, k).
    """

    shape: tuple[int, int, int]
    spacing_ijk_mm: tuple[float, float, float]
    origin_lps_mm: tuple[float, float, float]
    direction_lps: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(n) for n in self.shape))
        object.__setattr__(self, "spacing_ijk_mm", tuple(float(s) for s in self.spacing_ijk_mm))
        object.__setattr__(self, "origin_lps_mm", tuple(float(o) for o in self.origin_lps_mm))
        direction = tuple(float(d) for d in np.asarray(self.direction_lps, dtype=float).ravel())
        if len(direction) != 9:
            raise ValueError("direction_lps must hold 9 values (a 3 x 3 matrix, row-major)")
        object.__setattr__(self, "direction_lps", direction)
        if len(self.shape) != 3 or min(self.shape) < 1:
            raise ValueError(f"a 3D grid needs three positive sizes, got {self.shape}")
        if min(self.spacing_ijk_mm) <= 0:
            raise ValueError(f"voxel spacing must be positive, got {self.spacing_ijk_mm} mm")

    # --- matrices ---------------------------------------------------------
    @property
    def direction_matrix_lps(self) -> np.ndarray:
        return np.asarray(self.direction_lps, dtype=float).reshape(3, 3)

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """Voxel size in array order ``(k, j, i)``, mm."""
        si, sj, sk = self.spacing_ijk_mm
        return (sk, sj, si)

    @property
    def voxel_volume_ml(self) -> float:
        return float(np.prod(self.spacing_ijk_mm)) / 1000.0

    def ijk_to_lps(self) -> np.ndarray:
        """4 x 4 matrix taking homogeneous ``(i, j, k, 1)`` to LPS mm."""
        matrix = np.eye(4)
        matrix[:3, :3] = self.direction_matrix_lps @ np.diag(self.spacing_ijk_mm)
        matrix[:3, 3] = self.origin_lps_mm
        return matrix

    def ijk_to_ras(self) -> np.ndarray:
        """4 x 4 matrix taking homogeneous ``(i, j, k, 1)`` to RAS mm (Slicer's IJKToRAS)."""
        matrix = self.ijk_to_lps()
        matrix[:3, :] = LPS_TO_RAS @ matrix[:3, :]
        return matrix

    def ras_to_ijk(self) -> np.ndarray:
        return np.linalg.inv(self.ijk_to_ras())

    # --- point conversions ------------------------------------------------
    def kji_to_ras(self, kji: np.ndarray) -> np.ndarray:
        """Array indices ``(..., 3)`` in ``(k, j, i)`` order (may be fractional) -> RAS mm."""
        kji = np.asarray(kji, dtype=float)
        ijk = kji[..., ::-1]
        matrix = self.ijk_to_ras()
        return ijk @ matrix[:3, :3].T + matrix[:3, 3]

    def ras_to_kji(self, ras: np.ndarray) -> np.ndarray:
        """RAS mm ``(..., 3)`` -> fractional array indices in ``(k, j, i)`` order."""
        ras = np.asarray(ras, dtype=float)
        matrix = self.ras_to_ijk()
        ijk = ras @ matrix[:3, :3].T + matrix[:3, 3]
        return ijk[..., ::-1]

    def axis_vectors_ras(self) -> np.ndarray:
        """Rows: RAS step (mm) of one voxel along array axes k, j, i."""
        matrix = self.ijk_to_ras()[:3, :3]
        return np.stack([matrix[:, 2], matrix[:, 1], matrix[:, 0]])

    def axial_axis(self) -> int:
        """Array axis (0, 1 or 2) closest to the patient's superior-inferior direction."""
        return int(np.argmax(np.abs(self.axis_vectors_ras()[:, 2]) / np.asarray(self.spacing_mm)))

    def same_grid(self, other: "Geometry", tolerance_mm: float = 1e-3) -> bool:
        """True when both grids have the same size and voxel centres (within tolerance)."""
        if self.shape != other.shape:
            return False
        corners = np.array([[0, 0, 0], [s - 1 for s in self.shape]], dtype=float)
        return bool(np.abs(self.kji_to_ras(corners) - other.kji_to_ras(corners)).max() <= tolerance_mm
                    and np.allclose(self.direction_lps, other.direction_lps, atol=1e-5))

    # --- SimpleITK bridge -------------------------------------------------
    @classmethod
    def from_sitk(cls, image) -> "Geometry":
        size = image.GetSize()
        if len(size) != 3:
            raise ValueError(f"expected a 3D image, got {len(size)}D")
        return cls(shape=(size[2], size[1], size[0]), spacing_ijk_mm=image.GetSpacing(),
                   origin_lps_mm=image.GetOrigin(), direction_lps=image.GetDirection())

    def apply_to_sitk(self, image) -> None:
        image.SetSpacing(self.spacing_ijk_mm)
        image.SetOrigin(self.origin_lps_mm)
        image.SetDirection(self.direction_lps)

    @classmethod
    def from_ijk_to_ras(cls, shape: tuple[int, int, int], ijk_to_ras: np.ndarray) -> "Geometry":
        """Build from a Slicer-style 4 x 4 IJKToRAS matrix and an array shape ``(k, j, i)``."""
        ijk_to_ras = np.asarray(ijk_to_ras, dtype=float)
        to_lps = LPS_TO_RAS @ ijk_to_ras[:3, :3]
        spacing = np.linalg.norm(to_lps, axis=0)
        return cls(shape=shape, spacing_ijk_mm=tuple(spacing),
                   origin_lps_mm=tuple(LPS_TO_RAS @ ijk_to_ras[:3, 3]),
                   direction_lps=tuple((to_lps / spacing).ravel()))


@dataclass
class Volume:
    """A 3D array (``[k, j, i]``) with its geometry."""

    array: np.ndarray
    geometry: Geometry

    def __post_init__(self) -> None:
        if tuple(self.array.shape) != self.geometry.shape:
            raise ValueError(f"array shape {self.array.shape} does not match geometry {self.geometry.shape}")

    def to_sitk(self):
        import SimpleITK as sitk

        image = sitk.GetImageFromArray(np.ascontiguousarray(self.array))
        self.geometry.apply_to_sitk(image)
        return image

    @classmethod
    def from_sitk(cls, image) -> "Volume":
        import SimpleITK as sitk

        return cls(sitk.GetArrayFromImage(image), Geometry.from_sitk(image))
