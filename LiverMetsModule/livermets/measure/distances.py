"""Exact Euclidean distances (mm) between masks on anisotropic, possibly oblique grids.

A :class:`StructureDistance` holds the SimpleITK signed Maurer distance map of one
structure (computed once with the voxel spacing; distances do not depend on the
direction cosines) and answers "how far is this lesion" queries with the closest
point pair in RAS. Surfaces are the faces of the voxel boxes: the distance between
two voxels is their centre distance less half a voxel extent on each side along the
line joining them (0 for face-adjacent voxels), so touching masks are 0 mm apart.

Maurer CR, Qi R, Raghavan V. A linear time algorithm for computing exact Euclidean
distance transforms of binary images in arbitrary dimensions. IEEE TPAMI 2003;25:265-270.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from livermets.geometry import Geometry
from livermets.measure.surface import boundary_voxels, half_extent_mm

MAX_CANDIDATES = 64


@dataclass(frozen=True)
class NearestPoints:
    """Closest approach of two masks: surface distance (mm) and the point on each (RAS mm)."""

    distance_mm: float
    lesion_point_ras_mm: tuple[float, float, float]
    structure_point_ras_mm: tuple[float, float, float]

    def to_dict(self) -> dict:
        return {"distance_mm": round(self.distance_mm, 2),
                "lesion_point_ras_mm": [round(float(v), 2) for v in self.lesion_point_ras_mm],
                "structure_point_ras_mm": [round(float(v), 2) for v in self.structure_point_ras_mm]}


def distance_map_mm(mask: np.ndarray, spacing_mm) -> np.ndarray:
    """Signed Euclidean distance (mm, float32) from every voxel centre to the nearest boundary
    voxel centre of ``mask``: positive outside, negative inside. ``spacing_mm`` in (k, j, i) order."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.ascontiguousarray(mask, dtype=np.uint8))
    image.SetSpacing(tuple(float(s) for s in spacing_mm[::-1]))
    distance = sitk.SignedMaurerDistanceMap(image, insideIsPositive=False, squaredDistance=False,
                                            useImageSpacing=True)
    return sitk.GetArrayFromImage(distance).astype(np.float32)


def closest_voxel_pair(first_kji: np.ndarray, second_kji: np.ndarray, spacing_mm) -> tuple[float, int, int]:
    """Smallest voxel-surface distance (mm) between two sets of voxel indices ``(n, 3)`` and the pair."""
    spacing = np.asarray(spacing_mm, dtype=np.float32)
    a_mm = (first_kji * spacing).astype(np.float32)
    b_mm = (second_kji * spacing).astype(np.float32)
    best = (np.inf, 0, 0)
    for start in range(0, len(a_mm), 32):
        delta = b_mm[None, :, :] - a_mm[start:start + 32, None, :]
        squared = np.einsum("abk,abk->ab", delta, delta)
        scaled = delta * spacing
        squared_scaled = np.einsum("abk,abk->ab", scaled, scaled)
        length = np.sqrt(squared)
        # 2 x half voxel along the joining direction: |delta * spacing| / |delta| (see half_extent_mm)
        surface = np.maximum(length - np.sqrt(squared_scaled) / np.maximum(length, 1e-9), 0.0)
        flat = int(surface.argmin())
        a, b = divmod(flat, surface.shape[1])
        if surface[a, b] < best[0]:
            best = (float(surface[a, b]), start + a, b)
    return best


class StructureDistance:
    """Distances from lesions to one structure (vessel tree, or the outside of the liver).

    Parameters
    ----------
    structure : bool array [k, j, i]
        The structure on the full grid.
    geometry : Geometry
        The grid.
    box : tuple of slices, optional
        Part of the grid to work in (every queried lesion must lie inside it); default whole grid.
    """

    def __init__(self, structure: np.ndarray, geometry: Geometry, box: Optional[tuple] = None) -> None:
        self.geometry = geometry
        self.box = box or tuple(slice(0, n) for n in geometry.shape)
        self.offset = np.array([s.start for s in self.box])
        cropped = np.asarray(structure[self.box], dtype=bool)
        self.empty = not cropped.any()
        self.spacing = np.asarray(geometry.spacing_mm, dtype=float)
        if not self.empty:
            self.distance = distance_map_mm(cropped, self.spacing)
            self.surface = boundary_voxels(cropped)

    def nearest(self, lesion_kji: np.ndarray) -> Optional[NearestPoints]:
        """Closest approach to the voxels ``lesion_kji`` ``(n, 3)`` (full-grid indices); None if no structure."""
        if self.empty or len(lesion_kji) == 0:
            return None
        local = np.asarray(lesion_kji) - self.offset
        if (local < 0).any() or (local >= self.distance.shape).any():
            raise ValueError("a lesion lies outside the region the distance map covers")
        centre_distance = self.distance[tuple(local.T)]
        order = np.argsort(centre_distance, kind="stable")
        first = order[0]
        if centre_distance[first] <= 0:
            point = tuple(self.geometry.kji_to_ras(lesion_kji[first]))
            return NearestPoints(0.0, point, point)
        limit = centre_distance[first] + self.spacing.max() - self.spacing.min() + 1e-3
        candidates = order[:MAX_CANDIDATES][centre_distance[order[:MAX_CANDIDATES]] <= limit]
        reach = np.ceil((limit + self.spacing.max()) / self.spacing).astype(int)
        low = np.maximum(local[candidates].min(axis=0) - reach, 0)
        high = np.minimum(local[candidates].max(axis=0) + reach + 1, self.distance.shape)
        window = tuple(slice(int(a), int(b)) for a, b in zip(low, high))
        structure_local = np.argwhere(self.surface[window]) + low
        distance, a, b = closest_voxel_pair(local[candidates].astype(float), structure_local.astype(float),
                                            self.spacing)
        lesion_centre, structure_centre = local[candidates[a]], structure_local[b]
        delta_mm = (structure_centre - lesion_centre) * self.spacing
        unit = delta_mm / max(np.linalg.norm(delta_mm), 1e-9)
        step_kji = half_extent_mm(unit, self.spacing) * unit / self.spacing
        lesion_point = self.geometry.kji_to_ras(lesion_centre + self.offset + step_kji)
        structure_point = self.geometry.kji_to_ras(structure_centre + self.offset - step_kji)
        return NearestPoints(distance, tuple(lesion_point), tuple(structure_point))
