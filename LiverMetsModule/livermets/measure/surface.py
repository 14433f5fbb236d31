"""Sub-voxel boundary points of binary masks, and voxel-box geometry helpers.

A mask's boundary is taken where the 0.5 iso-surface of the binary image crosses
the grid: the midpoint between an inside voxel centre and its 6-neighbour outside
(the vertices marching cubes would place). These points sit within half a voxel of
the true surface along one axis, which keeps diameters within one voxel of truth.
All functions take arrays indexed ``[k, j, i]``; points come back as fractional
``(k, j, i)`` indices unless a name says ``ras``.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np


def crop_box(mask: np.ndarray, pad: int = 1) -> Optional[tuple[slice, slice, slice]]:
    """Bounding box of the True voxels, grown by ``pad`` voxels and clipped to the array (None when empty)."""
    box = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        hits = np.flatnonzero(mask.any(axis=other))
        if hits.size == 0:
            return None
        box.append(slice(max(int(hits[0]) - pad, 0), min(int(hits[-1]) + pad + 1, mask.shape[axis])))
    return tuple(box)  # type: ignore[return-value]


def boundary_midpoints_kji(mask: np.ndarray, axes: Sequence[int] = (0, 1, 2)) -> np.ndarray:
    """Points ``(n, 3)`` (fractional k, j, i) halfway between inside voxels and outside 6-neighbours.

    Only neighbours along ``axes`` count (``axes=(1, 2)`` gives the in-slice contour of every
    k slice). Voxels beyond the array edge count as outside.
    """
    mask = np.asarray(mask, dtype=bool)
    padded = np.pad(mask, 1)
    points = []
    for axis in axes:
        for step in (-1, 1):
            neighbour = np.roll(padded, -step, axis=axis)
            edge = padded & ~neighbour
            kji = np.argwhere(edge).astype(float) - 1.0
            kji[:, axis] += 0.5 * step
            points.append(kji)
    return np.concatenate(points) if points else np.zeros((0, 3))


def box_half_thickness_mm(direction_kji_mm: np.ndarray, spacing_mm: Sequence[float]) -> float:
    """Half the extent of one voxel box along a unit direction (k, j, i mm axes): voxels whose centre
    lies within this distance of a plane are the ones the plane passes through."""
    return float(0.5 * np.abs(np.asarray(direction_kji_mm, dtype=float)) @ np.asarray(spacing_mm, dtype=float))


def boundary_voxels(mask: np.ndarray) -> np.ndarray:
    """Boolean mask of True voxels having at least one 6-neighbour False (or the array edge)."""
    mask = np.asarray(mask, dtype=bool)
    padded = np.pad(mask, 1)
    interior = padded.copy()
    for axis in range(3):
        interior &= np.roll(padded, 1, axis=axis) & np.roll(padded, -1, axis=axis)
    return mask & ~interior[1:-1, 1:-1, 1:-1]


def half_extent_mm(direction_kji_mm: np.ndarray, spacing_mm: Sequence[float]) -> np.ndarray:
    """Half a voxel along unit direction(s) ``(..., 3)`` (k, j, i mm axes): the radius of the
    ellipsoid inscribed in the voxel box along that direction, i.e. half the spacing along an
    axis (so face-adjacent voxels are 0 mm apart) and no corner overshoot on curved surfaces."""
    scaled = np.asarray(direction_kji_mm, dtype=float) * np.asarray(spacing_mm, dtype=float)
    return 0.5 * np.linalg.norm(scaled, axis=-1)


def fibonacci_directions(count: int) -> np.ndarray:
    """``count`` unit vectors spread evenly over a hemisphere (enough for diameters: d and -d agree)."""
    index = np.arange(count) + 0.5
    z = index / count
    theta = np.pi * (1.0 + 5.0 ** 0.5) * index
    radius = np.sqrt(1.0 - z * z)
    return np.stack([radius * np.cos(theta), radius * np.sin(theta), z], axis=1)


def farthest_pair(points: np.ndarray, directions: Optional[np.ndarray] = None) -> tuple[float, int, int]:
    """Largest distance between two of ``points`` ``(n, d)`` (mm) and the indices of that pair.

    With many points the search is limited to the extreme points along sampled
    ``directions`` (the diameter pair is extreme along its own direction), then exact.
    """
    points = np.asarray(points, dtype=float)
    if len(points) < 2:
        return 0.0, 0, 0
    candidates = np.arange(len(points))
    if directions is not None and len(points) > 400:
        projection = points @ directions.T
        candidates = np.unique(np.concatenate([projection.argmax(axis=0), projection.argmin(axis=0)]))
    chosen = points[candidates]
    best, best_a, best_b = -1.0, 0, 0
    for start in range(0, len(chosen), 512):
        block = chosen[start:start + 512]
        squared = ((block[:, None, :] - chosen[None, :, :]) ** 2).sum(axis=-1)
        flat = int(squared.argmax())
        a, b = divmod(flat, squared.shape[1])
        if squared[a, b] > best:
            best, best_a, best_b = float(squared[a, b]), start + a, b
    return best ** 0.5, int(candidates[best_a]), int(candidates[best_b])
