"""Venous trunks followed outside the liver from a tree's trunks, and their partial-volume wall.

Method (numpy + SimpleITK, index space with spacing as in :mod:`livermets.segmentation.filters`)
-----------------------------------------------------------------------------------------------
Outside the liver a vein is told from its surroundings by looking like its own lumen, not by
its contrast to the liver (on the hepatobiliary phase the IVC, the fat and the muscles are all
darker than liver). :func:`follow_trunk` grows a region from a tree in rings of
:data:`STEP_MM`, a wave-front region growing with a threshold adapted along the vessel (as
for liver vessels in Selle et al., IEEE TMI 2002;21:1344-1357, doi:10.1109/TMI.2002.801166):

* the lumen model (:func:`lumen_model`, :class:`Lumen`) comes from the tree's trunk: its level
  and a band half-width of :data:`BAND_Z` noise spreads or :data:`BAND_FRACTION` of its
  contrast to the tissues around the tree outside the liver, whichever is larger;
* of several sequences, the one in which the lumen stands clearest of the main tissues around
  the tree, in noise spreads, is used alone when it clears them by twice :data:`BAND_Z` noise
  spreads (room for the band), all of them otherwise: each further phase narrows the band by
  its own noise and residual misalignment, and one in which the vein looks like its
  surroundings (T2, diffusion, often the hepatobiliary phase) tells it from nothing;
* a ring admits the voxels of the smoothed images in the band around the lumen level of the
  front it grows from, that lie at least :data:`CORE_MM` and one voxel of the finest spacing
  inside that band (the partial-volume sheet between two other tissues can have the lumen's
  value but is about a voxel thin) and that connect to the front;
* the level is re-measured on every new front, so a slow bias field or contrast mixing along the
  vein is followed (by at most the band's half-width); separate pieces of the front (branches,
  both ends of the IVC) go on alone;
* the band stays :data:`BAND_Z` noise spreads clear of the main tissues around the tree outside
  the liver (the medians of the darker and of the brighter values beyond the band, where they
  hold a quarter of a shell around the tree), so a vein that barely differs from its
  surroundings is not followed into them;
* a piece of front wider than :data:`RADIUS_GROWTH` times the trunk's inscribed radius, larger
  than a tube of that radius over two steps, or smaller than a :data:`CORE_MM` tube over one
  step, is not followed (an organ, a muscle sheet or the heart of the lumen's brightness, or
  noise).

:func:`partial_volume_wall` then adds the voxels around such a lumen whose value lies between
the local lumen level and the local level of the tissue just outside, closer to the lumen's (the
voxel centre lies inside the wall when more than half of the voxel is lumen); a third tissue
beyond either level is not taken. The noise spread that scales the band is measured in the
liver parenchyma (:func:`noise_spread`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from livermets.segmentation import filters
from livermets.segmentation.morphology import binary_morphology
from livermets.sequences import Polarity

STEP_MM = 6.0           # ring width of one propagation step
BAND_Z = 3.0            # lumen band half-width: at least this many noise spreads of the trunk's lumen
BAND_FRACTION = 0.25    # and at least this fraction of the lumen's contrast to the tissue around the tree
CORE_MM = 1.5           # admitted voxels lie this far (and at least one voxel) inside the lumen band
RADIUS_GROWTH = 1.5     # a front piece wider than this times the trunk's radius is not a vein
LEVEL_MM = 5.0          # Gaussian scale of the local lumen / surroundings levels at the wall
WALL_MM = 3.0           # the wall is looked for this far out of the lumen


@dataclass(frozen=True)
class Lumen:
    """A vein's lumen model, per sequence: the trunk's ``level``, the band half-width ``width``
    around a front's level, and the ``floor`` / ``ceiling`` the band keeps clear of the tissues
    around the tree (-inf / inf if none); ``radius_mm`` is the trunk's widest inscribed radius."""

    level: dict[str, float]
    width: dict[str, float]
    floor: dict[str, float]
    ceiling: dict[str, float]
    radius_mm: float

    def drift(self, name: str) -> tuple[float, float]:
        """The range a front's level may take (the trunk's level within one band width)."""
        return (max(self.level[name] - self.width[name], self.floor[name]),
                min(self.level[name] + self.width[name], self.ceiling[name]))

    def band(self, smoothed: dict[str, np.ndarray], box,
             levels: dict[str, float] | None = None) -> np.ndarray:
        """Voxels of ``box`` within the band around ``levels`` (default: anywhere a front's band
        can reach) on every sequence of the model."""
        out = None
        for name in self.level:
            image = smoothed[name]
            low, high = self.drift(name) if levels is None else (levels[name], levels[name])
            low = max(low - self.width[name], self.floor[name])
            high = min(high + self.width[name], self.ceiling[name])
            inside = (image[box] >= low) & (image[box] <= high)
            out = inside if out is None else out & inside
        return out


def lumen_model(smoothed: dict[str, np.ndarray], noise: dict[str, float], polarity: dict[str, Polarity],
                tree: np.ndarray, trunk: np.ndarray, allowed: np.ndarray,
                spacing_kji_mm: Sequence[float]) -> Lumen | None:
    """The :class:`Lumen` of the vein whose ``trunk`` (part of ``tree``, inside or at the liver)
    is given, or None if it cannot be told from the tissues around ``tree`` in ``allowed``.

    ``smoothed``: noise-smoothed images by sequence on the same grid, ``noise`` their noise
    spread (:func:`noise_spread`), ``polarity`` how the vessels look against the liver. The level
    is taken over the trunk's central half (inside distance at least half its largest) as the
    quartile on the vessels' side (partial volume with the parenchyma shifts trunk voxels toward
    the liver's value). The model holds the one sequence in which the lumen stands clearest of the
    tissues around, or all of them when none clears them by twice :data:`BAND_Z` noise spreads.
    """
    spacing = np.asarray(spacing_kji_mm, dtype=float)
    tree = np.asarray(tree, dtype=bool)
    trunk = np.asarray(trunk, dtype=bool) & tree
    if not trunk.any():
        return None
    box = _box(np.argwhere(trunk), np.ones(3, dtype=int), tree.shape)
    depth = filters.distance_inside_mm(trunk[box], spacing)
    core = depth >= 0.5 * float(depth.max())
    surround = _shell(tree, allowed, spacing)
    found, clearance = {}, {}
    for name, image in smoothed.items():
        level = float(np.percentile(image[box][core], 25 if polarity[name] == "dark" else 75))
        margin = BAND_Z * noise[name]
        # the tissues around: the darker and the brighter parts beyond the lumen band (if they hold
        # a quarter of the shell); lumen voxels stay that margin away from their medians
        around = image[surround] - level
        darker, brighter = around[around < -margin], around[around > margin]
        main = 0.25 * around.size
        low = level + float(np.median(darker)) + margin if 0 < darker.size >= main else -np.inf
        high = level + float(np.median(brighter)) - margin if 0 < brighter.size >= main else np.inf
        contrast = min(level - low + margin, high - level + margin)
        width = max(margin, BAND_FRACTION * contrast) if np.isfinite(contrast) else margin
        found[name] = (level, width, low, high)
        clearance[name] = _clearance(level, low, high) / max(margin, 1e-12)  # in margins (noise-free: any gap)
    best = max(clearance, key=clearance.__getitem__)  # ties: the first given
    model = Lumen({}, {}, {}, {}, float(depth.max()))
    for name in [best] if clearance[best] >= 1.0 else found:
        model.level[name], model.width[name], model.floor[name], model.ceiling[name] = found[name]
        drift = model.drift(name)
        if drift[0] >= drift[1]:
            return None  # the lumen cannot be told from what lies around the tree
    return model


def _clearance(level: float, low: float, high: float) -> float:
    """How far the band's bounds (``low`` / ``high``, infinite where no main tissue bounds it)
    lie from the lumen ``level``; 0 when neither side is bounded (the tissues around look like
    the lumen)."""
    sides = [gap for gap in (level - low, high - level) if np.isfinite(gap)]
    return min(sides) if sides else 0.0


def follow_trunk(smoothed: dict[str, np.ndarray], lumen: Lumen, tree: np.ndarray, allowed: np.ndarray,
                 spacing_kji_mm: Sequence[float]) -> np.ndarray:
    """Lumen voxels reached from ``tree`` (bool ``[k, j, i]``) through ``allowed`` voxels, with
    the lumen model ``lumen`` (:func:`lumen_model`) on the ``smoothed`` images. Returns the new
    voxels only (bool, same grid)."""
    spacing = np.asarray(spacing_kji_mm, dtype=float)
    tree = np.asarray(tree, dtype=bool)
    reached = np.zeros(tree.shape, dtype=bool)
    max_radius_mm = RADIUS_GROWTH * lumen.radius_mm
    step = np.maximum(np.round(STEP_MM / spacing), 1).astype(int)
    pad = step + np.ceil(max_radius_mm / spacing).astype(int) + 2
    voxel_mm3 = float(np.prod(spacing))
    min_voxels = np.pi * CORE_MM ** 2 * float(np.max(step * spacing)) / voxel_mm3
    max_voxels = np.pi * max_radius_mm ** 2 * 2 * float(np.max(step * spacing)) / voxel_mm3
    core_radius = filters.ball_radius_voxels(spacing, max(CORE_MM, float(spacing.min())))
    visited = tree.copy()
    fronts = deque([(np.argwhere(tree), dict(lumen.level))])
    while fronts:
        front, levels = fronts.popleft()
        box = _box(front, pad, tree.shape)
        low = np.asarray([b.start for b in box])
        start = np.zeros([b.stop - b.start for b in box], dtype=bool)
        start[tuple((front - low).T)] = True
        band = lumen.band(smoothed, box, levels)
        core = binary_morphology(band, core_radius, "erode", outside_is_foreground=True)
        ring = binary_morphology(start, step[::-1], "dilate") & core & allowed[box] & ~visited[box]
        labels, _ = filters.connected_components(ring | start)
        grown = ring & np.isin(labels, np.unique(labels[start]))
        if not grown.any():
            continue
        visited[box] |= grown
        inner = band.copy()  # beyond the box is unknown: its border counts as outside the band
        for axis in range(3):
            inner[(slice(None),) * axis + (0,)] = inner[(slice(None),) * axis + (-1,)] = False
        width = filters.distance_inside_mm(inner, spacing)
        pieces, count = filters.connected_components(grown)
        widest = np.zeros(count + 1)
        np.maximum.at(widest, pieces[grown], width[grown])
        sizes = np.bincount(pieces[grown], minlength=count + 1)
        kept = np.zeros(count + 1, dtype=bool)
        kept[1:] = (widest[1:] <= max_radius_mm) & (sizes[1:] >= min_voxels) & (sizes[1:] <= max_voxels)
        if not kept.any():
            continue
        # the lumen is the band opened: the eroded core grown back by as much inside the band
        reached[box] |= binary_morphology(kept[pieces], core_radius, "dilate") & band & allowed[box]
        for label in np.flatnonzero(kept):
            piece = pieces == label
            central = piece & (width >= np.median(width[piece]))
            fronts.append((np.argwhere(piece) + low,
                           {name: float(np.clip(np.median(smoothed[name][box][central]), *lumen.drift(name)))
                            for name in lumen.level}))
    return reached


def noise_spread(smoothed: np.ndarray, region: np.ndarray, spacing_kji_mm: Sequence[float]) -> float:
    """Robust spread of ``smoothed`` around its local level (Gaussian-weighted mean at
    :data:`LEVEL_MM`) over the voxels of ``region`` (e.g. the liver parenchyma) at least
    :data:`LEVEL_MM` from its border: the noise, without the slow shading nor the edges of what
    ``region`` leaves out."""
    region = np.asarray(region, dtype=bool)
    box = _box(np.argwhere(region), np.zeros(3, dtype=int), region.shape)
    deep = filters.distance_inside_mm(region[box], spacing_kji_mm) >= LEVEL_MM
    if not deep.any():
        deep = region[box]
    values = smoothed[box]
    level = filters.masked_mean_mm(values, deep, spacing_kji_mm, LEVEL_MM)
    return filters.robust_center_spread((values - level)[deep])[1]


def partial_volume_wall(smoothed: dict[str, np.ndarray], noise: dict[str, float], lumen: np.ndarray,
                        allowed: np.ndarray, spacing_kji_mm: Sequence[float]) -> np.ndarray:
    """``lumen`` plus the ``allowed`` voxels within :data:`WALL_MM` of it that, on every sequence,
    are lumen (within :data:`BAND_Z` noise spreads of the local lumen level) or a partial-volume
    mix of lumen and the tissue just outside that is more than half lumen (the value lies between
    the two levels and closer to the lumen's). Levels: Gaussian-weighted means over the lumen at
    :data:`LEVEL_MM` and over a shell :data:`WALL_MM` to 2 x :data:`WALL_MM` out at :data:`WALL_MM`."""
    spacing = np.asarray(spacing_kji_mm, dtype=float)
    lumen = np.asarray(lumen, dtype=bool)
    if not lumen.any():
        return lumen.copy()
    pad = np.ceil((2 * WALL_MM + 3 * LEVEL_MM) / spacing).astype(int)
    box = _box(np.argwhere(lumen), pad, lumen.shape)
    inside = lumen[box]
    near = binary_morphology(inside, filters.ball_radius_voxels(spacing, WALL_MM), "dilate")
    shell = binary_morphology(inside, filters.ball_radius_voxels(spacing, 2 * WALL_MM), "dilate") & ~near
    wall = near & allowed[box]
    for name, image in smoothed.items():
        values = image[box]
        level = filters.masked_mean_mm(values, inside, spacing, LEVEL_MM)
        outside = filters.masked_mean_mm(values, shell, spacing, WALL_MM)
        to_lumen, to_outside = values - level, values - outside
        mixed = (to_lumen * to_outside <= 0) & (np.abs(to_lumen) < np.abs(to_outside))
        wall &= mixed | (np.abs(to_lumen) <= BAND_Z * noise[name])
    out = lumen.copy()
    out[box] |= wall
    return out


def _shell(mask: np.ndarray, allowed: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """``allowed`` voxels :data:`WALL_MM` to 2 x :data:`WALL_MM` outside ``mask`` and at least
    :data:`WALL_MM` from any voxel not allowed (clear of the partial volume at the liver)."""
    box = _box(np.argwhere(mask), np.ceil(2 * WALL_MM / spacing).astype(int) + 1, mask.shape)
    radius = filters.ball_radius_voxels(spacing, WALL_MM)
    near = binary_morphology(mask[box], radius, "dilate")
    far = binary_morphology(mask[box], filters.ball_radius_voxels(spacing, 2 * WALL_MM), "dilate")
    clear = binary_morphology(allowed[box], radius, "erode", outside_is_foreground=True)
    shell = np.zeros(mask.shape, dtype=bool)
    shell[box] = far & ~near & clear
    return shell


def _box(points: np.ndarray, pad: np.ndarray, shape) -> tuple[slice, slice, slice]:
    low = np.maximum(points.min(0) - pad, 0)
    high = np.minimum(points.max(0) + pad + 1, shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(low, high))
