"""One-click lesion segmentation from a seed point, with include / exclude refinement.

Method (works in a box of ``max_radius_mm`` around the seed, so it is fast on any volume)
---------------------------------------------------------------------------------------
1. Flip the contrast so the lesion is bright (:func:`livermets.sequences.lesion_polarity`),
   light Gaussian smoothing (1 mm).
2. Lesion level = median around the seed and include points (2 mm balls); surrounding level
   = median of the liver (or of the box) at first, then of a 1-4 mm shell around the current
   region. The boundary sits half-way between the two (partial volume), and the region is
   the part above it connected to the seed and include points (two passes).
3. Holes filled, a 1.5 mm opening cuts thin leaks, the component holding the seed is kept.
4. Exclude points inside the region: a marker watershed on the inside distance map, markers
   seed + include vs exclude points, cuts the region at the narrowest neck between them
   (Beucher & Meyer 1993); include points are always in the result, exclude points never.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

from livermets.errors import InputError
from livermets.geometry import Geometry
from livermets.segmentation import filters
from livermets.sequences import lesion_polarity

SMOOTH_MM = 1.0
SEED_BALL_MM = 2.0
SHELL_MM = (1.0, 4.0)
OPEN_MM = 1.5
PASSES = 2


def segment_lesion_from_seed(image: np.ndarray, geometry: Geometry, seed_kji: Sequence[int], *, sequence: str,
                             liver: np.ndarray | None = None, include_kji: Sequence[Sequence[int]] = (),
                             exclude_kji: Sequence[Sequence[int]] = (), max_radius_mm: float = 40.0) -> np.ndarray:
    """Mask (bool ``[k, j, i]`` on ``geometry``) of the lesion under ``seed_kji``.

    ``include_kji`` / ``exclude_kji`` are extra voxel indices ``(k, j, i)`` that must be in /
    out of the lesion; ``liver`` (optional) confines the result; ``max_radius_mm`` bounds the
    search box around the seed (mm along every axis).
    """
    image = np.asarray(image)
    if tuple(image.shape) != geometry.shape:
        raise InputError(f"the image has shape {image.shape} but the grid is {geometry.shape}")
    points = [_as_index(seed_kji, geometry, "seed")]
    includes = [_as_index(p, geometry, "include point") for p in include_kji]
    excludes = [_as_index(p, geometry, "exclude point") for p in exclude_kji]
    if any(tuple(p) == tuple(points[0]) for p in excludes):
        raise InputError("an exclude point is on the seed itself; move the exclude point off the lesion")
    spacing = geometry.spacing_mm
    box = _box(points + includes + excludes, geometry.shape, spacing, max_radius_mm)
    start = np.asarray([b.start for b in box])

    sign = 1.0 if lesion_polarity(sequence) == "bright" else -1.0
    roi = filters.gaussian_mm(sign * image[box].astype(np.float32), spacing, SMOOTH_MM)
    allowed = np.ones(roi.shape, dtype=bool) if liver is None else np.asarray(liver, dtype=bool)[box].copy()
    inside = [tuple(p - start) for p in points + includes]
    outside = [tuple(p - start) for p in excludes]
    for p in inside:
        allowed[p] = True

    lesion_level = float(np.median(roi[_balls(roi.shape, inside, spacing, SEED_BALL_MM)]))
    surround_level = float(np.median(roi[allowed]))
    region = np.zeros(roi.shape, dtype=bool)
    for _ in range(PASSES):
        threshold = 0.5 * (lesion_level + surround_level)
        if threshold >= lesion_level:  # seed is not brighter than its surroundings: keep the seed area
            region = _balls(roi.shape, inside, spacing, SEED_BALL_MM) & allowed
            break
        region = _connected(roi > threshold, allowed, inside)
        shell = (filters.morphology_mm(region, spacing, SHELL_MM[1], "dilate")
                 & ~filters.morphology_mm(region, spacing, SHELL_MM[0], "dilate") & allowed)
        if shell.any():
            surround_level = float(np.median(roi[shell]))

    region = filters.fill_holes(region) & allowed
    opened = _connected(filters.morphology_mm(region, spacing, OPEN_MM, "open"), allowed, inside)
    if opened[inside[0]]:
        region = opened
    if outside:
        region = _cut(region, inside, outside, spacing)
    for p in inside:
        region[p] = True
    for p in outside:
        region[p] = False

    mask = np.zeros(geometry.shape, dtype=bool)
    mask[box] = region
    return mask


def _as_index(point: Sequence[int], geometry: Geometry, what: str) -> np.ndarray:
    index = np.round(np.asarray(point, dtype=float)).astype(int)
    if index.shape != (3,) or (index < 0).any() or (index >= np.asarray(geometry.shape)).any():
        raise InputError(f"the {what} {tuple(point)} is outside the image {geometry.shape} (k, j, i); "
                         "click inside the volume")
    return index


def _box(points, shape, spacing, radius_mm: float) -> tuple[slice, slice, slice]:
    """Box spanning ``radius_mm`` around the seed (first point), grown to hold all points."""
    points = np.asarray(points)
    pad = np.ceil(radius_mm / np.asarray(spacing)).astype(int)
    low = np.minimum(points[0] - pad, points.min(0) - 2)
    high = np.maximum(points[0] + pad, points.max(0) + 2)
    return tuple(slice(max(int(lo), 0), min(int(hi) + 1, n)) for lo, hi, n in zip(low, high, shape))


def _balls(shape, centers, spacing, radius_mm: float) -> np.ndarray:
    """Union of balls of ``radius_mm`` (at least the centre voxel) around ``centers``."""
    mask = np.zeros(shape, dtype=bool)
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    for center in centers:
        distance2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grids, center, spacing))
        mask |= distance2 <= radius_mm ** 2
        mask[tuple(center)] = True
    return mask


def _connected(mask: np.ndarray, allowed: np.ndarray, seeds) -> np.ndarray:
    """Voxels of ``mask & allowed`` face-connected to any of ``seeds``."""
    candidate = mask & allowed
    labels, _ = filters.connected_components(candidate, full_connectivity=False)
    keep = {int(labels[p]) for p in seeds} - {0}
    return np.isin(labels, list(keep)) if keep else np.zeros(mask.shape, dtype=bool)


def _cut(region: np.ndarray, inside, outside, spacing) -> np.ndarray:
    """Split ``region`` between ``inside`` and ``outside`` markers at the narrowest neck."""
    markers = np.zeros(region.shape, dtype=np.uint32)
    for p in outside:
        markers[p] = 2
    for p in inside:
        markers[p] = 1
    distance = filters.distance_inside_mm(region, spacing)
    relief = filters.image_from_array(np.where(region, -distance, 1.0).astype(np.float32), spacing)
    marker_image = sitk.GetImageFromArray(markers)
    marker_image.CopyInformation(relief)
    flood = sitk.GetArrayFromImage(sitk.MorphologicalWatershedFromMarkers(relief, marker_image, True, False))
    kept = region & (flood == 1)
    return _connected(kept, np.ones(region.shape, dtype=bool), inside)
