"""Analytic solids rasterised on (possibly oblique, anisotropic) grids, for measurement tests.

A voxel belongs to a solid when its centre (RAS mm) lies inside it, so the solid's
known volume, diameters and distances are the truth the measurements are checked against.
"""

from __future__ import annotations

import numpy as np

from livermets.geometry import Geometry


def rotation(axis, angle_deg: float) -> np.ndarray:
    """Rotation matrix about ``axis`` (Rodrigues)."""
    axis = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    angle = np.radians(angle_deg)
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross


def grid(size_mm: float, spacing_ijk_mm, tilt_deg: float = 0.0, centre_ras=(0.0, 0.0, 0.0)) -> Geometry:
    """A cube-shaped grid of about ``size_mm`` per side centred on ``centre_ras``; ``tilt_deg``
    rotates the direction cosines about an oblique axis."""
    spacing = np.asarray(spacing_ijk_mm, dtype=float)
    counts_ijk = np.ceil(size_mm / spacing).astype(int)
    direction = rotation((1.0, 2.0, 0.5), tilt_deg) if tilt_deg else np.eye(3)
    half_extent = direction @ (spacing * (counts_ijk - 1) / 2.0)
    centre_lps = np.diag([-1.0, -1.0, 1.0]) @ np.asarray(centre_ras, dtype=float)
    return Geometry(shape=tuple(counts_ijk[::-1]), spacing_ijk_mm=tuple(spacing),
                    origin_lps_mm=tuple(centre_lps - half_extent), direction_lps=tuple(direction.ravel()))


def centres_ras(geometry: Geometry) -> np.ndarray:
    """RAS mm of every voxel centre, shape ``geometry.shape + (3,)``."""
    kji = np.stack(np.meshgrid(*[np.arange(n) for n in geometry.shape], indexing="ij"), axis=-1)
    return geometry.kji_to_ras(kji.astype(float))


def ellipsoid(geometry: Geometry, centre_ras, semi_axes_mm, rotation_matrix=None) -> np.ndarray:
    """Voxels whose centre lies in the ellipsoid; its axes are the columns of ``rotation_matrix``."""
    rotation_matrix = np.eye(3) if rotation_matrix is None else rotation_matrix
    local = (centres_ras(geometry) - np.asarray(centre_ras)) @ rotation_matrix
    return (((local / np.asarray(semi_axes_mm, dtype=float)) ** 2).sum(axis=-1)) <= 1.0


def sphere(geometry: Geometry, centre_ras, radius_mm: float) -> np.ndarray:
    return ellipsoid(geometry, centre_ras, (radius_mm,) * 3)


def box(geometry: Geometry, low_ras, high_ras) -> np.ndarray:
    points = centres_ras(geometry)
    return np.all((points >= np.asarray(low_ras)) & (points <= np.asarray(high_ras)), axis=-1)
