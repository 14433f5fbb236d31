"""Small synthetic studies for the LiverMetsLib tests: ellipsoids on (optionally oblique) grids.

Expected values in the tests come from these arrays directly (voxel counts, sphere radii).
"""

from __future__ import annotations

import numpy as np
from livermets.geometry import Geometry


def obliqueGeometry(shape=(30, 48, 48), spacing_ijk_mm=(1.0, 1.2, 2.0), angle_deg: float = 20.0) -> Geometry:
    """A grid rotated by ``angle_deg`` about an oblique axis (direction matrix not the identity)."""
    axis = np.array([1.0, 2.0, 3.0]) / np.sqrt(14.0)
    a = np.radians(angle_deg)
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rotation = np.eye(3) * np.cos(a) + np.sin(a) * cross + (1 - np.cos(a)) * np.outer(axis, axis)
    return Geometry(shape, spacing_ijk_mm, (-30.0, 12.5, 40.0), tuple(rotation.ravel()))


def ellipsoid(geometry: Geometry, center_kji, radius_mm: float) -> np.ndarray:
    """Voxels whose centre lies within ``radius_mm`` of the voxel centre ``center_kji`` (physical distance)."""
    nk, nj, ni = geometry.shape
    kk, jj, ii = np.meshgrid(np.arange(nk), np.arange(nj), np.arange(ni), indexing="ij")
    sk, sj, si = geometry.spacing_mm
    ck, cj, ci = center_kji
    return ((kk - ck) * sk) ** 2 + ((jj - cj) * sj) ** 2 + ((ii - ci) * si) ** 2 <= radius_mm ** 2


def study(geometry: Geometry):
    """Liver, two lesions, portal vein, hepatic veins, IVC and a 2-part Couinaud map on ``geometry``."""
    nk, nj, ni = geometry.shape
    center = (nk // 2, nj // 2, ni // 2)
    liver = ellipsoid(geometry, center, 0.45 * min(s * n for s, n in zip(geometry.spacing_mm, geometry.shape)))
    lesions = np.zeros(geometry.shape, dtype=np.int16)
    lesions[ellipsoid(geometry, (center[0], center[1] - 6, center[2] - 5), 6.0)] = 1
    lesions[ellipsoid(geometry, (center[0], center[1] + 7, center[2] + 6), 4.5)] = 2
    portal = np.zeros(geometry.shape, dtype=bool)
    portal[center[0] - 2:center[0] + 2, center[1] - 1:center[1] + 2, 3:center[2]] = True
    hepatic = np.zeros(geometry.shape, dtype=bool)
    hepatic[center[0] + 3:center[0] + 5, 3:center[1], center[2] - 1:center[2] + 1] = True
    ivc = np.zeros(geometry.shape, dtype=bool)
    ivc[:, 2:5, center[2] - 2:center[2] + 2] = True
    couinaud = np.where(liver, np.where(np.arange(ni)[None, None, :] < center[2], 7, 4), 0).astype(np.uint8)
    return {"liver": liver, "lesions": lesions, "portal": portal & liver, "hepatic": hepatic & liver, "ivc": ivc,
            "couinaud": couinaud}
