"""A small synthetic abdomen with an analytic liver, for liver-segmentation and pipeline tests.

Shapes are defined in RAS mm around the grid centre (so they stay anatomically placed for
any direction matrix): body ellipse with a fat ring, liver ellipsoid on the patient's right
(RAS +x) and upper abdomen, brighter spleen and kidneys, dark spine around the spinal canal, a
stomach of intermediate intensity. T2-like relative intensities (liver 1, spleen 1.8, kidneys 2,
CSF 3 unless ``csf`` says otherwise, muscle/bowel 0.55, suppressed fat 0.3, air 0.02), a smooth
multiplicative bias and Gaussian noise. The truth liver is the set of voxel centres inside the
liver ellipsoid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from livermets.geometry import Geometry

SIGNAL = 400.0


@dataclass
class Abdomen:
    image: np.ndarray  # float32 [k, j, i]
    liver: np.ndarray  # bool truth
    geometry: Geometry


def _inside(points: np.ndarray, centre: Sequence[float], radii: Sequence[float]) -> np.ndarray:
    return (((points - np.asarray(centre)) / np.asarray(radii)) ** 2).sum(axis=-1) <= 1.0


def centred_geometry(
    shape_kji: Sequence[int],
    spacing_ijk_mm: Sequence[float],
    direction_lps: Sequence[float] = (1, 0, 0, 0, 1, 0, 0, 0, 1),
) -> Geometry:
    """A grid whose centre voxel sits at RAS (0, 0, 0)."""
    probe = Geometry(tuple(shape_kji), tuple(spacing_ijk_mm), (0.0, 0.0, 0.0), tuple(direction_lps))
    centre_ras = probe.kji_to_ras((np.asarray(shape_kji, dtype=float) - 1) / 2)
    origin_lps = -np.diag([-1.0, -1.0, 1.0]) @ centre_ras
    return Geometry(tuple(shape_kji), tuple(spacing_ijk_mm), tuple(origin_lps), tuple(direction_lps))


def make_abdomen(
    *,
    shape_kji: Sequence[int] = (36, 80, 100),
    spacing_ijk_mm: Sequence[float] = (3.0, 3.0, 5.0),
    direction_lps: Sequence[float] = (1, 0, 0, 0, 1, 0, 0, 0, 1),
    noise: float = 0.04,
    seed: int = 0,
    csf: float = 3.0,
) -> Abdomen:
    geometry = centred_geometry(shape_kji, spacing_ijk_mm, direction_lps)
    kji = np.stack(
        np.meshgrid(*[np.arange(n, dtype=np.float32) for n in geometry.shape], indexing="ij"), axis=-1
    )
    ras = geometry.kji_to_ras(kji).astype(np.float32)
    x, y = ras[..., 0], ras[..., 1]
    body = (x / 140.0) ** 2 + (y / 100.0) ** 2 <= 1.0
    inner = (x / 125.0) ** 2 + (y / 85.0) ** 2 <= 1.0
    image = np.full(geometry.shape, 0.02, dtype=np.float32)
    image[body] = 0.3
    image[inner] = 0.55
    image[_inside(ras, (-45, 25, 25), (35, 30, 35))] = 0.7  # stomach
    image[_inside(ras, (-85, -25, 30), (28, 38, 45))] = 1.8  # spleen
    image[_inside(ras, (55, -50, -45), (22, 22, 40))] = 2.0  # right kidney
    image[_inside(ras, (-55, -50, -45), (22, 22, 40))] = 2.0  # left kidney
    image[(x / 18.0) ** 2 + ((y + 62) / 18.0) ** 2 <= 1.0] = 0.25  # spine
    image[(x / 6.0) ** 2 + ((y + 72) / 6.0) ** 2 <= 1.0] = csf  # spinal canal
    liver = _inside(ras, (55, 5, 30), (62, 62, 55))
    image[liver] = 1.0
    vessel = ((x - 40) / 5.0) ** 2 + ((y - 5) / 5.0) ** 2 <= 1.0
    image[liver & vessel] = 0.3  # a dark (flow-void) vessel inside
    bias = 1.0 + 0.15 * x / 140.0
    rng = np.random.default_rng(seed)
    image = SIGNAL * image * bias + rng.normal(0.0, noise * SIGNAL, geometry.shape).astype(np.float32)
    return Abdomen(image.astype(np.float32), liver, geometry)
