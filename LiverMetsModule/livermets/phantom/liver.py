"""The liver's outer surface: blended ellipsoids with a hilum notch, a kidney impression and a gentle wobble.

World frame: RAS millimetres, ``x`` toward the patient's right, ``y`` anterior, ``z`` superior;
the origin is the middle of the phantom's field of view.
"""

from __future__ import annotations

import numpy as np

from livermets.phantom.shapes import Ellipsoid, TaperedEllipsoid, smooth_max, smooth_min

RIGHT_LOBE = Ellipsoid((68.0, -8.0, 2.0), (62.0, 74.0, 64.0))
LEFT_LOBE = TaperedEllipsoid((-8.0, 26.0, 12.0), (86.0, 46.0, 36.0), tip_scale=0.35)
CAUDATE = Ellipsoid((6.0, -20.0, 10.0), (20.0, 18.0, 30.0))
HILUM_NOTCH = Ellipsoid((26.0, 14.0, -46.0), (30.0, 34.0, 28.0))
KIDNEY_IMPRESSION = Ellipsoid((78.0, -66.0, -72.0), (36.0, 32.0, 60.0))
DIAPHRAGM_Z_MM = 64.0
# inner boundary of the abdominal wall muscle (elliptic cylinder along S-I); the liver stays 3 mm inside it
VISCERAL_CENTER_XY = (0.0, 2.0)
VISCERAL_RADII_XY = (142.0, 103.0)


class LiverSurface:
    """Implicit liver: ``field`` < 0 inside, 1-Lipschitz (so ``-field`` is a lower bound of the depth, mm)."""

    def __init__(self, rng: np.random.Generator) -> None:
        # a few long-wavelength ripples (amplitude 1.5 mm, wavelengths 70-140 mm) for a less ideal surface
        self.waves = rng.normal(size=(3, 3))
        self.waves /= np.linalg.norm(self.waves, axis=1, keepdims=True)
        self.waves *= (2 * np.pi / rng.uniform(70.0, 140.0, size=3))[:, None]
        self.phases = rng.uniform(0, 2 * np.pi, size=3)
        self.amplitude_mm = 1.5
        lipschitz = 1.1 + self.amplitude_mm * float(np.linalg.norm(self.waves, axis=1).sum())
        self._scale = 1.0 / lipschitz
        low = np.minimum.reduce([RIGHT_LOBE.bbox_ras[0], LEFT_LOBE.bbox_ras[0], CAUDATE.bbox_ras[0]]) - 4.0
        high = np.maximum.reduce([RIGHT_LOBE.bbox_ras[1], LEFT_LOBE.bbox_ras[1], CAUDATE.bbox_ras[1]]) + 4.0
        high[2] = min(high[2], DIAPHRAGM_Z_MM + 4.0)
        self.bbox_ras = (low, high)

    def field(self, x, y, z) -> np.ndarray:
        f = smooth_min(RIGHT_LOBE.field(x, y, z), LEFT_LOBE.field(x, y, z), 18.0)
        f = smooth_min(f, CAUDATE.field(x, y, z), 8.0)
        f = smooth_max(f, -HILUM_NOTCH.field(x, y, z), 8.0)
        f = smooth_max(f, -(KIDNEY_IMPRESSION.field(x, y, z)), 10.0)
        dome = z - DIAPHRAGM_Z_MM + 12.0 * ((x - 60.0) / 90.0) ** 2   # highest at x = 60
        f = smooth_max(f, dome, 14.0)
        cavity = np.sqrt(((x - VISCERAL_CENTER_XY[0]) / VISCERAL_RADII_XY[0]) ** 2
                         + ((y - VISCERAL_CENTER_XY[1]) / VISCERAL_RADII_XY[1]) ** 2)
        f = smooth_max(f, (cavity - 1.0) * VISCERAL_RADII_XY[1] + 3.0, 6.0)
        for wave, phase in zip(self.waves, self.phases):
            f = f + self.amplitude_mm * np.sin(wave[0] * x + wave[1] * y + wave[2] * z + phase)
        return f * self._scale

    def inside(self, x, y, z) -> np.ndarray:
        return self.field(x, y, z) < 0.0

    def depth_mm(self, x, y, z, step_mm: float = 0.5) -> np.ndarray:
        """Distance (mm) to the surface, positive inside, estimated as ``-field / |grad field|``
        (central differences); accurate near the surface, where it is used."""
        points = np.stack(np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (x, y, z))), axis=-1)
        offsets = np.vstack([np.zeros(3), np.eye(3) * step_mm, -np.eye(3) * step_mm])
        probe = points[None] + offsets.reshape((7,) + (1,) * (points.ndim - 1) + (3,))
        f = self.field(probe[..., 0], probe[..., 1], probe[..., 2])
        gradient = (f[1:4] - f[4:7]) / (2 * step_mm)
        return -f[0] / np.maximum(np.sqrt((gradient ** 2).sum(0)), 0.2)
