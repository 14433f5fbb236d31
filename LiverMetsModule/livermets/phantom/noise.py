"""Acquisition effects: smooth multiplicative bias field, blur, Rician (MRI) or Gaussian (CT) noise.

Rician magnitude noise: ``sqrt((s + n1)^2 + n2^2)`` with ``n1, n2 ~ N(0, sigma^2)``
(Gudbjartsson H, Patz S, Magn Reson Med 1995;34:910-914).
"""

from __future__ import annotations

import numpy as np

from livermets.geometry import Geometry, Volume
from livermets.phantom.raster import grid_coordinates


def bias_field(geometry: Geometry, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative field (float32 [k, j, i]) ``1 + amplitude * g`` with ``g`` a product of
    low-frequency cosines (wavelengths 350-700 mm) of the RAS coordinates, ``|g| <= 1``."""
    nk, nj, ni = geometry.shape
    wavelengths_mm = rng.uniform(350.0, 700.0, size=3)
    phases = rng.uniform(0, 2 * np.pi, size=3)
    coordinates = grid_coordinates(geometry.ijk_to_ras(), np.zeros(3),
                                   np.arange(nk), np.arange(nj), np.arange(ni))
    field = np.float32(1.0)
    for coordinate, wavelength, phase in zip(coordinates, wavelengths_mm, phases):
        field = field * np.cos(2 * np.pi * coordinate / wavelength + phase).astype(np.float32)
    return np.broadcast_to(1.0 + np.float32(amplitude) * field, geometry.shape).astype(np.float32)


def gaussian_blur(image: np.ndarray, geometry: Geometry, sigma_mm: float) -> np.ndarray:
    """Gaussian smoothing with ``sigma_mm`` in physical units (SimpleITK recursive Gaussian)."""
    import SimpleITK as sitk

    smoothed = sitk.SmoothingRecursiveGaussian(Volume(image, geometry).to_sitk(), sigma_mm)
    return sitk.GetArrayFromImage(smoothed).astype(np.float32)


def rician(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    real = image + sigma * rng.standard_normal(image.shape, dtype=np.float32)
    imaginary = sigma * rng.standard_normal(image.shape, dtype=np.float32)
    return np.sqrt(real * real + imaginary * imaginary).astype(np.float32)


def gaussian(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return (image + sigma * rng.standard_normal(image.shape, dtype=np.float32)).astype(np.float32)
