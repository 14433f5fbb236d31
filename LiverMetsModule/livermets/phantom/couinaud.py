"""Couinaud segments I-VIII of the phantom liver, built from its own vessels.

Simplified Couinaud / Bismuth scheme (Bismuth H, World J Surg 1982;6:3-9):

* vertical half-planes through the IVC axis and the trunks of the right, middle and left
  hepatic veins split the liver into posterior right (VI/VII), anterior right (V/VIII),
  medial left (IV) and lateral left (II/III) sectors;
* the horizontal plane through the portal bifurcation splits the right sectors into superior
  (VII, VIII) and inferior (VI, V) segments;
* an oblique plane through the umbilical portion of the left portal vein, rising toward the
  back, splits the lateral left sector into II (postero-superior) and III (antero-inferior);
* the caudate lobe (I) is the caudate part of the liver shape, wrapped around the IVC.

Every point gets exactly one segment; callers restrict to liver voxels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from livermets.phantom.liver import CAUDATE
from livermets.phantom.vessels import IVC_CENTER_XY, PORTAL_BIFURCATION, UMBILICAL_PORTAL, VesselTree

SECTOR_CUT_DEG = -100.0  # angle (posterior-left of the IVC) where the angular ordering starts
LEFT_PORTAL_PLANE_NORMAL = np.array([0.0, -1.0, 1.0]) / np.sqrt(2.0)


@dataclass(frozen=True)
class CouinaudPlanes:
    """Angles (degrees, from RAS +x toward +y, about the IVC axis) of the three hepatic vein planes."""

    right_deg: float
    middle_deg: float
    left_deg: float

    @classmethod
    def from_hepatic_veins(cls, hepatic: VesselTree) -> CouinaudPlanes:
        angles = {}
        for name in ("right hepatic vein", "middle hepatic vein", "left hepatic vein"):
            trunk = next(s for s in hepatic.segments if s.branch == name)
            d = trunk.p1 - trunk.p0
            angles[name] = float(np.degrees(np.arctan2(d[1], d[0])))
        return cls(angles["right hepatic vein"], angles["middle hepatic vein"], angles["left hepatic vein"])

    def segment(self, x, y, z) -> np.ndarray:
        """Couinaud segment 1..8 (uint8) of RAS points ``x, y, z`` (mm, broadcastable arrays)."""
        x, y, z = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float), np.asarray(z, float))
        angle = np.degrees(np.arctan2(y - IVC_CENTER_XY[1], x - IVC_CENTER_XY[0]))
        angle = np.where(angle < SECTOR_CUT_DEG, angle + 360.0, angle)
        superior = z >= PORTAL_BIFURCATION[2]
        u = UMBILICAL_PORTAL
        n = LEFT_PORTAL_PLANE_NORMAL
        above_left_plane = (x - u[0]) * n[0] + (y - u[1]) * n[1] + (z - u[2]) * n[2] >= 0
        segment = np.where(above_left_plane, 2, 3)
        segment = np.where(angle < self.left_deg, 4, segment)
        segment = np.where(angle < self.middle_deg, np.where(superior, 8, 5), segment)
        segment = np.where(angle < self.right_deg, np.where(superior, 7, 6), segment)
        segment = np.where(CAUDATE.inside(x, y, z), 1, segment)
        return segment.astype(np.uint8)
