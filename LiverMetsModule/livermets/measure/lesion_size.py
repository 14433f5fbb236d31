"""Size and shape of one lesion: volume, RECIST 1.1 axes, maximum 3D diameter, sphericity.

Masks are boolean arrays indexed ``[k, j, i]`` on the grid described by a
:class:`~livermets.geometry.Geometry`; all lengths are mm, volumes ml, points RAS mm.
Diameters are measured between sub-voxel boundary points (midpoints between inside
voxels and outside neighbours), so they are within one voxel of the continuous shape.

References
----------
Eisenhauer EA et al. New response evaluation criteria in solid tumours: revised
RECIST guideline (version 1.1). Eur J Cancer 2009;45:228-247. doi:10.1016/j.ejca.2008.10.026
Wadell H. Volume, shape and roundness of quartz particles. J Geol 1935;43:250-280 (sphericity).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from livermets.geometry import Geometry
from livermets.measure.surface import boundary_midpoints_kji, farthest_pair, fibonacci_directions

_DIRECTIONS = fibonacci_directions(240)
AXIAL_TOLERANCE_DEG = 1.0


@dataclass(frozen=True)
class Diameter:
    """A measured line: length (mm) and its two endpoints (RAS mm)."""

    length_mm: float
    start_ras_mm: tuple[float, float, float]
    end_ras_mm: tuple[float, float, float]

    def to_dict(self) -> dict:
        return {"length_mm": round(self.length_mm, 2), "start_ras_mm": _rounded(self.start_ras_mm),
                "end_ras_mm": _rounded(self.end_ras_mm)}


@dataclass(frozen=True)
class RecistAxes:
    """RECIST 1.1 long axis and the perpendicular short axis on the same slice."""

    long: Diameter
    short: Diameter
    slice_index: int
    slice_axis: int
    plane: str

    def to_dict(self) -> dict:
        return {"long": self.long.to_dict(), "short": self.short.to_dict(), "slice_axis": self.slice_axis,
                "slice_index": self.slice_index, "plane": self.plane}


def _rounded(point) -> list[float]:
    return [round(float(value), 2) for value in point]


def volume_ml(mask: np.ndarray, geometry: Geometry) -> float:
    """Voxel count times voxel volume (ml)."""
    return float(np.count_nonzero(mask)) * geometry.voxel_volume_ml


def max_diameter_3d(mask: np.ndarray, geometry: Geometry, offset_kji=(0, 0, 0)) -> Diameter:
    """Largest distance between two boundary points (3D Feret diameter), mm.

    ``offset_kji`` is the index of ``mask[0, 0, 0]`` in the full grid when ``mask`` is a crop.
    """
    points_ras = geometry.kji_to_ras(boundary_midpoints_kji(mask) + np.asarray(offset_kji, dtype=float))
    if len(points_ras) == 0:
        raise ValueError("the mask is empty: no diameter to measure")
    length, a, b = farthest_pair(points_ras, _DIRECTIONS)
    return Diameter(length, tuple(points_ras[a]), tuple(points_ras[b]))


def slice_plane_description(geometry: Geometry) -> str:
    """'axial' when the slice plane is within 1 degree of patient axial, else how far it tilts."""
    axis = geometry.axial_axis()
    normal = geometry.axis_vectors_ras()[axis]
    tilt_deg = float(np.degrees(np.arccos(min(1.0, abs(normal[2]) / np.linalg.norm(normal)))))
    if tilt_deg <= AXIAL_TOLERANCE_DEG:
        return "axial"
    return f"acquisition slice plane, {tilt_deg:.1f} degrees from axial"


def recist_axes(mask: np.ndarray, geometry: Geometry, offset_kji=(0, 0, 0)) -> RecistAxes:
    """RECIST 1.1 axes: the longest in-slice diameter over all slices, and the longest chord
    perpendicular to it on that slice.

    Slices are the grid planes closest to patient axial (``geometry.axial_axis()``); on an
    oblique grid the measurement stays in the acquisition slice plane and ``plane`` says so.
    """
    axis = geometry.axial_axis()
    in_plane = tuple(a for a in range(3) if a != axis)
    offset = np.asarray(offset_kji, dtype=float)
    points_kji = boundary_midpoints_kji(mask, axes=in_plane)
    if len(points_kji) == 0:
        raise ValueError("the mask is empty: no RECIST axes to measure")
    slice_of_point = np.rint(points_kji[:, axis]).astype(int)
    points_ras = geometry.kji_to_ras(points_kji + offset)
    best = (-1.0, 0, 0, 0)
    for index in np.unique(slice_of_point):
        chosen = np.flatnonzero(slice_of_point == index)
        length, a, b = farthest_pair(points_ras[chosen])
        if length > best[0]:
            best = (length, int(chosen[a]), int(chosen[b]), int(index))
    long_mm, a, b, index = best
    start, end = points_ras[a], points_ras[b]
    short = _perpendicular_chord(points_ras[slice_of_point == index], start, end, geometry, axis)
    return RecistAxes(Diameter(long_mm, tuple(start), tuple(end)), short, index + int(offset[axis]), axis,
                      slice_plane_description(geometry))


def _perpendicular_chord(points_ras: np.ndarray, start: np.ndarray, end: np.ndarray, geometry: Geometry,
                         axis: int) -> Diameter:
    """Longest chord of an in-slice contour perpendicular to the line start-end."""
    along = end - start
    if np.linalg.norm(along) == 0:
        return Diameter(0.0, tuple(start), tuple(start))
    along = along / np.linalg.norm(along)
    normal = geometry.axis_vectors_ras()[axis]
    across = np.cross(normal / np.linalg.norm(normal), along)
    across /= np.linalg.norm(across)
    relative = points_ras - start
    t, w = relative @ along, relative @ across
    in_plane_spacing = [s for a, s in enumerate(geometry.spacing_mm) if a != axis]
    bin_mm = max(in_plane_spacing)
    bins = np.floor(t / bin_mm).astype(int)
    best_span, best_bin = -1.0, 0
    for value in np.unique(bins):
        selected = w[bins == value]
        span = float(selected.max() - selected.min())
        if span > best_span:
            best_span, best_bin = span, int(value)
    selected = bins == best_bin
    t_centre = float(t[selected].mean())
    base = start + t_centre * along
    return Diameter(best_span, tuple(base + w[selected].min() * across), tuple(base + w[selected].max() * across))


def sphericity(volume_mm3: float, surface_area_mm2: float) -> float:
    """Wadell sphericity: surface of the sphere of equal volume over the surface (1 for a sphere).

    Capped at 1: on a voxel grid the estimated surface of a small object can fall below the
    sphere's, which no real shape can do.
    """
    if surface_area_mm2 <= 0:
        return 0.0
    return min(1.0, float(np.pi ** (1.0 / 3.0) * (6.0 * volume_mm3) ** (2.0 / 3.0) / surface_area_mm2))
