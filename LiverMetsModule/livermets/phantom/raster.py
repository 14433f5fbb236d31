"""Painting the scene's layers onto a voxel grid, with supersampling where materials meet.

1. Every layer is painted at voxel centres, slab by slab, only inside the index box of its
   bounding box (any grid direction, oblique included). This centre map is the ground truth.
2. Voxels whose material differs from one of their 6 neighbours are "mixed"; for those, the
   scene is evaluated again at ``s_k * s_j * s_i`` sub-voxel points (regular sub-grid), which the
   renderer averages for partial volume. Pure voxels need no supersampling.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from livermets.geometry import Geometry
from livermets.progress import ProgressCallback, report

SLAB = 8
POINT_CHUNK = 32768


@dataclass
class Raster:
    """Materials at voxel centres (uint8 [k, j, i]), the mixed voxels (flat indices, sorted) with
    their sub-voxel materials (uint8 [n_mixed, n_sub]), and recorded layer masks."""

    material: np.ndarray
    mixed_index: np.ndarray
    sub_material: np.ndarray
    recorded: dict = field(default_factory=dict)


def supersampling(geometry: Geometry, target_mm: float = 1.6) -> tuple[int, int, int]:
    """Sub-samples per voxel along (k, j, i): at least 2, more for voxels larger than ``target_mm``."""
    return tuple(max(2, int(np.ceil(s / target_mm))) for s in geometry.spacing_mm)


def _index_box(geometry: Geometry, bbox, shift: np.ndarray) -> tuple | None:
    low, high = bbox[0] + shift, bbox[1] + shift
    corners = np.array(list(itertools.product(*zip(low, high))))
    kji = geometry.ras_to_kji(corners)
    start = np.maximum(np.floor(kji.min(0)).astype(int) - 1, 0)
    stop = np.minimum(np.ceil(kji.max(0)).astype(int) + 2, geometry.shape)
    if np.any(stop <= start):
        return None
    return tuple(start), tuple(stop)


def grid_coordinates(matrix: np.ndarray, shift: np.ndarray, kk, jj, ii) -> list:
    """RAS x, y, z of the sub-grid ``kk x jj x ii`` as broadcastable arrays (zero terms dropped)."""
    axes = ((2, kk[:, None, None]), (1, jj[None, :, None]), (0, ii[None, None, :]))
    coordinates = []
    for row in range(3):
        value = matrix[row, 3] - shift[row]
        for column, index in axes:
            if matrix[row, column] != 0.0:
                value = value + matrix[row, column] * index
        coordinates.append(np.asarray(value, dtype=float))
    return coordinates


def _paint_grid(layers: Sequence, geometry: Geometry, shifts: Sequence[np.ndarray],
                progress: ProgressCallback | None) -> tuple[np.ndarray, dict]:
    matrix = geometry.ijk_to_ras()
    material = np.zeros(geometry.shape, dtype=np.uint8)
    recorded = {layer.record: np.zeros(geometry.shape, dtype=bool) for layer in layers if layer.record}
    boxes = [_index_box(geometry, layer.shape.bbox_ras, shift) for layer, shift in zip(layers, shifts)]
    nk = geometry.shape[0]
    for k0 in range(0, nk, SLAB):
        k1 = min(nk, k0 + SLAB)
        for layer, shift, box in zip(layers, shifts, boxes):
            if box is None or box[1][0] <= k0 or box[0][0] >= k1:
                continue
            (ka, ja, ia), (kb, jb, ib) = box
            ka, kb = max(ka, k0), min(kb, k1)
            x, y, z = grid_coordinates(matrix, shift, np.arange(ka, kb), np.arange(ja, jb), np.arange(ia, ib))
            sub = material[ka:kb, ja:jb, ia:ib]
            inside = np.broadcast_to(layer.shape.inside(x, y, z), sub.shape)
            if layer.record:
                recorded[layer.record][ka:kb, ja:jb, ia:ib] = inside
            if layer.over is not None:
                inside = inside & layer.over[sub]
            sub[inside] = layer.material
        report(progress, k1 / nk, "painting anatomy")
    return material, recorded


def mixed_voxels(material: np.ndarray) -> np.ndarray:
    """Flat indices (sorted) of voxels whose material differs from a 6-neighbour's."""
    mixed = np.zeros(material.shape, dtype=bool)
    for axis in range(3):
        front = [slice(None)] * 3
        back = [slice(None)] * 3
        front[axis], back[axis] = slice(1, None), slice(None, -1)
        differs = material[tuple(front)] != material[tuple(back)]
        mixed[tuple(front)] |= differs
        mixed[tuple(back)] |= differs
    return np.flatnonzero(mixed)


def _sub_offsets(factors: Sequence[int]) -> np.ndarray:
    """Sub-voxel offsets (n_sub, 3) in (k, j, i) index units, centred on the voxel."""
    axes = [(np.arange(s) + 0.5) / s - 0.5 for s in factors]
    return np.array(list(itertools.product(*axes)))


def _paint_points(layers: Sequence, geometry: Geometry, shifts: Sequence[np.ndarray], mixed: np.ndarray,
                  factors: Sequence[int], progress: ProgressCallback | None) -> np.ndarray:
    offsets = _sub_offsets(factors)
    n_sub = len(offsets)
    out = np.zeros((len(mixed), n_sub), dtype=np.uint8)
    nj, ni = geometry.shape[1], geometry.shape[2]
    matrix = geometry.ijk_to_ras()
    boxes = [_index_box(geometry, layer.shape.bbox_ras, shift) for layer, shift in zip(layers, shifts)]
    voxels_per_chunk = max(1, POINT_CHUNK * 4 // n_sub)
    for start in range(0, len(mixed), voxels_per_chunk):
        flat = mixed[start:start + voxels_per_chunk]
        k_voxel = flat // (nj * ni)
        index = [(k_voxel[:, None] + offsets[None, :, 0]).ravel(),
                 ((flat // ni) % nj)[:, None] + offsets[None, :, 1],
                 (flat % ni)[:, None] + offsets[None, :, 2]]
        index = [np.asarray(v, dtype=float).ravel() for v in index]  # k, j, i of every sub-sample
        ras = [matrix[row, 3] + matrix[row, 2] * index[0] + matrix[row, 1] * index[1]
               + matrix[row, 0] * index[2] for row in range(3)]
        k_key = np.repeat(k_voxel, n_sub)
        values = np.zeros(len(k_key), dtype=np.uint8)
        for layer, shift, box in zip(layers, shifts, boxes):
            if box is None:
                continue
            a, b = np.searchsorted(k_key, [box[0][0], box[1][0]])
            if b <= a:
                continue
            low, high = layer.shape.bbox_ras[0] + shift, layer.shape.bbox_ras[1] + shift
            x, y, z = ras[0][a:b], ras[1][a:b], ras[2][a:b]
            candidates = np.flatnonzero((x >= low[0]) & (x <= high[0]) & (y >= low[1]) & (y <= high[1])
                                        & (z >= low[2]) & (z <= high[2]))
            if len(candidates) == 0:
                continue
            inside = layer.shape.inside(x[candidates] - shift[0], y[candidates] - shift[1],
                                        z[candidates] - shift[2])
            hit = candidates[np.broadcast_to(inside, candidates.shape)] + a
            if layer.over is not None:
                hit = hit[layer.over[values[hit]]]
            values[hit] = layer.material
        out[start:start + len(flat)] = values.reshape(len(flat), n_sub)
        report(progress, min(1.0, (start + len(flat)) / max(len(mixed), 1)), "partial volume")
    return out


def rasterize(layers: Sequence, geometry: Geometry, *, shift_ras_mm: Sequence[float] = (0.0, 0.0, 0.0),
              progress: ProgressCallback | None = None) -> Raster:
    """Paint ``layers`` (see :mod:`livermets.phantom.anatomy`) on ``geometry``; moving layers are
    translated by ``shift_ras_mm`` (RAS mm)."""
    from livermets.progress import scaled

    shift = np.asarray(shift_ras_mm, dtype=float)
    shifts = [shift if layer.moves else np.zeros(3) for layer in layers]
    material, recorded = _paint_grid(layers, geometry, shifts, scaled(progress, 0.0, 0.4))
    mixed = mixed_voxels(material)
    sub = _paint_points(layers, geometry, shifts, mixed, supersampling(geometry), scaled(progress, 0.4, 1.0))
    return Raster(material, mixed, sub, recorded)
