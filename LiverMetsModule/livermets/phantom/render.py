"""Intensities of each material on each phantom sequence, and partial-volume rendering.

MRI values are arbitrary units (liver about 150-600 depending on the contrast), CT values are
Hounsfield units of a portal-venous phase. The numbers are plausible teaching values, not fitted
to any scanner: gadoxetic hepatobiliary phase with fat suppression (liver bright, everything
without hepatocytes dark), extracellular portal-venous and late arterial phases, fat-suppressed
T2 (fluid bright, flowing blood dark) and high-b diffusion (restricted tumour bright).
"""

from __future__ import annotations

import numpy as np

from livermets.phantom import anatomy as a
from livermets.phantom.raster import Raster

PHANTOM_SEQUENCES: tuple[str, ...] = ("hbp", "portal_venous", "arterial", "t2", "dwi", "ct")

_COLUMNS = ("hbp", "portal_venous", "arterial", "t2", "dwi", "ct")
_TABLE = {
    #                    hbp   pv    art    t2    dwi    ct
    a.AIR:             (0,    0,    0,     0,    0,   -1000),
    a.FAT:             (90,   95,   90,    110,  40,  -100),
    a.MUSCLE:          (210,  230,  200,   150,  60,   55),
    a.RIB:             (140,  160,  150,   90,   30,   650),
    a.MARROW:          (260,  320,  280,   180,  70,   420),
    a.CORTICAL_BONE:   (60,   70,   60,    40,   15,   900),
    a.CSF:             (60,   60,   60,    1100, 90,   10),
    a.LUNG:            (15,   15,   15,    10,   5,   -850),
    a.SPLEEN:          (260,  480,  600,   420,  380,  120),
    a.RIGHT_KIDNEY:    (380,  620,  760,   450,  300,  170),
    a.LEFT_KIDNEY:     (380,  620,  760,   450,  300,  170),
    a.STOMACH_WALL:    (220,  380,  360,   200,  120,  90),
    a.STOMACH_CONTENT: (70,   70,   70,    800,  80,   8),
    a.AORTA:           (200,  700,  1100,  50,   30,  160),
    a.IVC:             (160,  660,  220,   60,   30,  150),
    a.LIVER:           (600,  450,  300,   200,  150, 110),
    a.PORTAL:          (150,  760,  420,   60,   30,  180),
    a.HEPATIC:         (150,  680,  180,   60,   30,  170),
    a.CYST:            (70,   70,   70,    1200, 90,   5),
}
_LESION_CORE = (180, 240, 170, 420, 520, 60)
_LESION_RIM = (230, 400, 460, 380, 470, 92)

# noise standard deviation (same units as the image) and bias-field strength per sequence
NOISE_SIGMA = {"hbp": 14.0, "portal_venous": 14.0, "arterial": 14.0, "t2": 12.0, "dwi": 20.0, "ct": 10.0}
BIAS_AMPLITUDE = {"hbp": 0.15, "portal_venous": 0.15, "arterial": 0.15, "t2": 0.12, "dwi": 0.10, "ct": 0.0}
BLUR_SIGMA_MM = {"dwi": 1.8}


def intensity_table(sequence: str) -> np.ndarray:
    """Lookup table (256,) float32: material id -> noiseless intensity on ``sequence``."""
    column = _COLUMNS.index(sequence)
    table = np.zeros(a.N_MATERIALS, dtype=np.float32)
    table[:] = _TABLE[a.AIR][column]
    for material, values in _TABLE.items():
        table[material] = values[column]
    table[a.LESION_BASE::2] = _LESION_CORE[column]
    table[a.LESION_BASE + 1::2] = _LESION_RIM[column]
    return table


def render_partial_volume(raster: Raster, sequence: str) -> np.ndarray:
    """Noiseless image (float32 [k, j, i]): pure voxels take their material's value, mixed voxels
    the mean over their sub-voxel samples."""
    table = intensity_table(sequence)
    image = table[raster.material]
    if len(raster.mixed_index):
        image.ravel()[raster.mixed_index] = table[raster.sub_material].mean(axis=1, dtype=np.float32)
    return image
