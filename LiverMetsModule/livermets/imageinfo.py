"""What an image file or one DICOM series holds, without loading it for processing.

:class:`ImageInfo` is returned by :func:`livermets.imageio.describe_path` and
:func:`livermets.dicom.list_series` and printed by ``livermets info``.
Geometry follows :mod:`livermets.geometry`: spacing and origin in ITK's LPS millimetres,
sizes listed in array order ``(k, j, i)`` in ``shape_kji``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np

from livermets.geometry import LPS_TO_RAS, Geometry

# An index axis more than this many degrees away from every patient axis makes the grid oblique.
OBLIQUE_TOLERANCE_DEG = 0.5


def obliquity_deg(direction_lps) -> float:
    """Largest angle (degrees) between an index axis and its nearest patient axis (L, P or S)."""
    matrix = np.asarray(direction_lps, dtype=float).reshape(3, 3)
    largest_cosine = np.abs(matrix).max(axis=0).clip(0.0, 1.0)
    return float(np.degrees(np.arccos(largest_cosine)).max())


@dataclass
class ImageInfo:
    """Description of one image file or one DICOM series.

    Attributes
    ----------
    path : str
        The file, or the DICOM folder the series lives in.
    series_uid, series_number, description, modality
        DICOM SeriesInstanceUID, SeriesNumber, SeriesDescription and Modality
        (``None`` / ``""`` when the file has no such information, e.g. NIfTI).
    sequence_hint, hint_reason
        Canonical name from :mod:`livermets.sequences` (or ``None``) and the words or tags it came from.
    shape_kji : tuple of int
        Size in array order; three values for a usable image, two for a 2D image, four for 4D.
    spacing_ijk_mm, origin_lps_mm : tuple of float
        Voxel size (ITK order i, j, k ...) and the centre of the first voxel in LPS, mm.
    direction_lps : tuple of float
        Row-major direction matrix (9 values for 3D); column n is index axis n in LPS.
    pixel_type : str
        SimpleITK's name of the pixel type, e.g. ``"16-bit signed integer"``.
    n_files : int
        Files making up the image (slices of a DICOM series; 1 for a single file).
    oblique : bool
        True when an index axis is more than ``OBLIQUE_TOLERANCE_DEG`` from every patient axis.
    problem : str or None
        Why LiverMets cannot use this image (2D, 4D, one slice, several components), else ``None``.
    """

    path: str
    series_uid: Optional[str]
    series_number: Optional[int]
    description: str
    modality: Optional[str]
    sequence_hint: Optional[str]
    hint_reason: str
    shape_kji: tuple[int, ...]
    spacing_ijk_mm: tuple[float, ...]
    origin_lps_mm: tuple[float, ...]
    direction_lps: tuple[float, ...]
    pixel_type: str
    n_files: int
    oblique: bool
    problem: Optional[str] = None

    @property
    def usable(self) -> bool:
        return self.problem is None

    def geometry(self) -> Geometry:
        """The 3D grid; raises ``ValueError`` when the image is not usable as 3D."""
        if self.problem is not None:
            raise ValueError(self.problem)
        return Geometry(self.shape_kji, self.spacing_ijk_mm, self.origin_lps_mm, self.direction_lps)

    def to_dict(self) -> dict:
        """Plain JSON-ready values, with the first voxel centre also given in RAS."""
        data = asdict(self)
        for key in ("shape_kji", "spacing_ijk_mm", "origin_lps_mm", "direction_lps"):
            data[key] = list(data[key])
        data["usable"] = self.usable
        if len(self.origin_lps_mm) == 3:
            data["origin_ras_mm"] = list(LPS_TO_RAS @ np.asarray(self.origin_lps_mm))
        return data

    def to_text(self) -> str:
        """A few human-readable lines, as printed by ``livermets info``."""
        if self.series_uid is not None:
            number = "?" if self.series_number is None else str(self.series_number)
            title = f"series {number} \"{self.description}\" {self.modality or '?'} (UID {self.series_uid})"
        else:
            title = self.path
        size = " x ".join(str(n) for n in reversed(self.shape_kji))
        axes = "i x j x k" if len(self.shape_kji) == 3 else f"{len(self.shape_kji)}D"
        spacing = " x ".join(f"{s:.4g}" for s in self.spacing_ijk_mm)
        origin = ", ".join(f"{o:.2f}" for o in self.origin_lps_mm)
        lines = [title]
        if self.sequence_hint is not None:
            lines.append(f"  sequence: {self.sequence_hint} ({self.hint_reason})")
        else:
            lines.append(f"  sequence: unknown ({self.hint_reason})")
        lines.append(f"  size: {size} voxels ({axes}), spacing {spacing} mm")
        lines.append(f"  first voxel (LPS): ({origin}) mm")
        if len(self.direction_lps) == 9:
            angle = obliquity_deg(self.direction_lps)
            lines.append(f"  oblique: yes, {angle:.1f} degrees from the patient axes" if self.oblique
                         else "  oblique: no")
        files = "1 file" if self.n_files == 1 else f"{self.n_files} files"
        lines.append(f"  pixel type: {self.pixel_type}; {files}")
        lines.append(f"  NOT USABLE: {self.problem}" if self.problem else "  usable: yes")
        return "\n".join(lines)


def problem_with_size(size_ijk: tuple[int, ...], components: int = 1) -> Optional[str]:
    """Why an image of this ITK size (i, j, k, ...) cannot be used as one 3D volume, or ``None``."""
    text = " x ".join(str(n) for n in size_ijk)
    if len(size_ijk) == 2:
        return f"it is a 2D image ({text}); LiverMets needs a 3D volume"
    if len(size_ijk) == 4:
        return (f"it is a 4D image ({text}); LiverMets needs one 3D volume, "
                "so save the phase or time point you want as its own file")
    if len(size_ijk) != 3:
        return f"it has {len(size_ijk)} dimensions ({text}); LiverMets needs a 3D volume"
    if min(size_ijk) < 2:
        return f"it holds a single slice ({text}); LiverMets needs a 3D volume with several slices"
    if components != 1:
        return (f"it has {components} values per voxel (colour or vector image); "
                "LiverMets needs a grey-level 3D volume")
    return None
