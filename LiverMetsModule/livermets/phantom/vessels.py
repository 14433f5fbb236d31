"""Portal and hepatic venous trees as chains of tapered tubes (swept spheres), in world RAS mm.

Main trunks are placed by hand (anatomy); peripheral branches grow recursively: each tube sends
a side branch (0.6 x its radius, 50-75 degrees) from its middle and ends in a symmetric split
(children turned 22-38 degrees, 0.75 times as long). Radii obey Murray's law r^3 = sum r_i^3
(Murray CD, PNAS 1926;12:207-214).
A branch is kept only if it stays inside the liver (clear of the capsule by its radius + 2.5 mm)
and 2.5 mm clear of the other tree, the IVC and the lesions, so trees never touch each other and
metastases push the small branches aside (they are placed before the branches grow).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from livermets.phantom.liver import LiverSurface
from livermets.phantom.shapes import capsule_distance_mm

IVC_CENTER_XY = (20.0, -30.0)
IVC_RADII_XY = (12.0, 10.0)
AORTA_CENTER_XY = (-22.0, -46.0)
AORTA_RADIUS_MM = 11.0
HEPATIC_CONFLUENCE_Z_MM = 32.0

SPLENIC_HILUM = (-92.0, -32.0, -40.0)
PORTAL_CONFLUENCE = (2.0, -4.0, -62.0)
PORTAL_BIFURCATION = (28.0, 8.0, -14.0)
RIGHT_PORTAL = (52.0, 2.0, -10.0)
RIGHT_ANTERIOR_PORTAL = (66.0, 22.0, -2.0)
RIGHT_POSTERIOR_PORTAL = (82.0, -22.0, -10.0)
LEFT_PORTAL = (2.0, 24.0, -8.0)
UMBILICAL_PORTAL = (-18.0, 32.0, 4.0)

# hepatic vein trunks from the IVC: angle (degrees from RAS +x toward +y), S-I tilt, length mm, radius mm
HEPATIC_TRUNKS = {"right hepatic vein": (22.0, -0.45, 74.0, 5.5),
                  "middle hepatic vein": (72.0, -0.5, 70.0, 5.0),
                  "left hepatic vein": (105.0, -0.25, 62.0, 4.5)}
# first generation of grown portal branches: start, direction, length mm, radius mm, name
PORTAL_SPROUTS = (
    (RIGHT_ANTERIOR_PORTAL, (0.1, 0.3, 1.0), 30.0, 3.8, "segment VIII portal branch"),
    (RIGHT_ANTERIOR_PORTAL, (0.3, 0.5, -1.0), 28.0, 3.6, "segment V portal branch"),
    (RIGHT_POSTERIOR_PORTAL, (0.2, -0.3, 1.0), 30.0, 3.8, "segment VII portal branch"),
    (RIGHT_POSTERIOR_PORTAL, (0.5, -0.1, -1.0), 28.0, 3.6, "segment VI portal branch"),
    (UMBILICAL_PORTAL, (-1.0, -0.3, 0.6), 26.0, 3.4, "segment II portal branch"),
    (UMBILICAL_PORTAL, (-1.0, 0.4, -0.4), 26.0, 3.4, "segment III portal branch"),
    (UMBILICAL_PORTAL, (1.0, 0.8, -0.1), 24.0, 3.2, "segment IV portal branch"),
)
CLEARANCE_MM = 2.5
MIN_RADIUS_MM = 1.3   # branches end here (thinner ones are never painted)
MURRAY_FACTOR = 2.0 ** (-1.0 / 3.0)          # symmetric split: r_child^3 = r^3 / 2
SIDE_FRACTION = 0.6                          # side branch radius / parent radius
SIDE_CONTINUATION = (1.0 - SIDE_FRACTION ** 3) ** (1.0 / 3.0)   # Murray: r^3 = r_side^3 + r_on^3


@dataclass
class Segment:
    p0: np.ndarray
    p1: np.ndarray
    r0: float
    r1: float
    branch: str


@dataclass
class VesselTree:
    """Tubes of one venous system; ``branch`` names the main branch each tube belongs to."""

    name: str
    segments: list = field(default_factory=list)

    def add(self, p0, p1, r0: float, r1: float, branch: str) -> None:
        self.segments.append(Segment(np.asarray(p0, float), np.asarray(p1, float), float(r0), float(r1),
                                     branch))


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


def _turn(direction: np.ndarray, angle_rad: float, axis_angle_rad: float) -> np.ndarray:
    """Rotate ``direction`` by ``angle_rad`` toward a perpendicular chosen by ``axis_angle_rad``."""
    helper = np.array([0.0, 0.0, 1.0]) if abs(direction[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    e1 = _unit(np.cross(direction, helper))
    e2 = np.cross(direction, e1)
    perpendicular = np.cos(axis_angle_rad) * e1 + np.sin(axis_angle_rad) * e2
    return _unit(np.cos(angle_rad) * direction + np.sin(angle_rad) * perpendicular)


class _Grower:
    def __init__(self, liver: LiverSurface, rng: np.random.Generator) -> None:
        self.liver = liver
        self.rng = rng
        self.avoid = [np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0), np.zeros(0)]

    def set_avoid(self, *trees: VesselTree, extra=()) -> None:
        segments = [s for t in trees for s in t.segments] + list(extra)
        self.avoid = [np.array([s.p0 for s in segments]), np.array([s.p1 for s in segments]),
                      np.array([s.r0 for s in segments]), np.array([s.r1 for s in segments])]

    def _fits(self, start: np.ndarray, end: np.ndarray, radius: float) -> bool:
        t = np.linspace(0.15, 1.0, 8)[:, None]
        samples = start + t * (end - start)
        depth_ok = np.all(self.liver.depth_mm(*samples.T) > radius + CLEARANCE_MM)
        if not depth_ok:
            return False
        clearance = capsule_distance_mm(samples, *self.avoid) - radius
        return bool(np.all(clearance > CLEARANCE_MM))

    def grow(self, tree: VesselTree, start, direction, length_mm: float, radius_mm: float,
             depth: int, branch: str) -> None:
        """Grow a tube from ``start``; if it fits, sprout a side branch from its middle and split its end."""
        if radius_mm < MIN_RADIUS_MM:
            return
        start = np.asarray(start, dtype=float)
        direction = _unit(direction)
        # draw every random number up front so that the sequence does not depend on which tries fail
        tries = [(self.rng.uniform(0.15, 0.7), self.rng.uniform(0, 2 * np.pi)) for _ in range(5)]
        split_angles = self.rng.uniform(np.radians(22), np.radians(38), size=2)
        split_axis = self.rng.uniform(0, 2 * np.pi)
        side_angle = self.rng.uniform(np.radians(50), np.radians(75))
        side_axis = self.rng.uniform(0, 2 * np.pi)
        end_radius = radius_mm * SIDE_CONTINUATION
        for k, (angle, axis) in enumerate(tries):
            d = direction if k == 0 else _turn(direction, angle, axis)
            for fraction in (1.0, 0.6, 0.35):
                end = start + d * length_mm * fraction
                if not self._fits(start, end, radius_mm):
                    continue
                tree.add(start, end, radius_mm, end_radius, branch)
                if depth > 0:
                    self.grow(tree, (start + end) / 2, _turn(d, side_angle, side_axis), length_mm * 0.6,
                              radius_mm * SIDE_FRACTION, depth - 1, branch)
                    for side, turn in zip((0.0, np.pi), split_angles):
                        self.grow(tree, end, _turn(d, turn, split_axis + side), length_mm * 0.75,
                                  end_radius * MURRAY_FACTOR, depth - 1, branch)
                return


def main_trunks() -> tuple[VesselTree, VesselTree]:
    """The hand-placed trunks: splenic, main, right, left portal veins and the three hepatic veins."""
    portal = VesselTree("portal_vein")
    portal.add(SPLENIC_HILUM, PORTAL_CONFLUENCE, 4.5, 5.5, "splenic vein")
    portal.add(PORTAL_CONFLUENCE, PORTAL_BIFURCATION, 7.0, 6.5, "main portal vein")
    portal.add(PORTAL_BIFURCATION, RIGHT_PORTAL, 6.0, 5.5, "right portal vein")
    portal.add(RIGHT_PORTAL, RIGHT_ANTERIOR_PORTAL, 4.8, 4.5, "right anterior portal vein")
    portal.add(RIGHT_PORTAL, RIGHT_POSTERIOR_PORTAL, 4.8, 4.5, "right posterior portal vein")
    portal.add(PORTAL_BIFURCATION, LEFT_PORTAL, 5.0, 4.8, "left portal vein")
    portal.add(LEFT_PORTAL, UMBILICAL_PORTAL, 4.8, 4.5, "left portal vein")
    hepatic = VesselTree("hepatic_veins")
    confluence = np.array([*IVC_CENTER_XY, HEPATIC_CONFLUENCE_Z_MM])
    for name, (angle_deg, tilt, length, radius) in HEPATIC_TRUNKS.items():
        a = np.radians(angle_deg)
        end = confluence + _unit([np.cos(a), np.sin(a), tilt]) * length
        hepatic.add(confluence, end, radius, radius * 0.85, name)
    return portal, hepatic


def ivc_segment() -> Segment:
    return Segment(np.array([*IVC_CENTER_XY, -300.0]), np.array([*IVC_CENTER_XY, 300.0]),
                   max(IVC_RADII_XY), max(IVC_RADII_XY), "ivc")


def grow_branches(portal: VesselTree, hepatic: VesselTree, liver: LiverSurface, rng: np.random.Generator,
                  obstacles: Sequence[Segment] = ()) -> None:
    """Add peripheral branches to the trunks of :func:`main_trunks` (in place), avoiding the IVC,
    the other tree and ``obstacles`` (e.g. lesions as zero-length tubes of their largest radius).

    The two trees grow in turns, one first-generation branch at a time, so they share the liver.
    """
    tasks_portal = [(portal, hepatic, start, direction, length, radius, 3, name)
                    for start, direction, length, radius, name in PORTAL_SPROUTS]
    tasks_hepatic = []
    for trunk in list(hepatic.segments):
        direction = _unit(trunk.p1 - trunk.p0)
        for side in (0.0, np.pi):
            tasks_hepatic.append((hepatic, portal, trunk.p1, _turn(direction, 0.3, side), 26.0,
                                  trunk.r1 * MURRAY_FACTOR, 3, trunk.branch))
        for t, side in ((0.45, 0.5 * np.pi), (0.75, 1.5 * np.pi)):   # tributaries along the trunk
            tasks_hepatic.append((hepatic, portal, trunk.p0 + t * (trunk.p1 - trunk.p0),
                                  _turn(direction, np.radians(60), side), 24.0, trunk.r0 * 0.55, 2,
                                  trunk.branch))
    grower = _Grower(liver, rng)
    for n in range(max(len(tasks_portal), len(tasks_hepatic))):
        for tasks in (tasks_portal, tasks_hepatic):
            if n < len(tasks):
                tree, other, start, direction, length, radius, depth, name = tasks[n]
                grower.set_avoid(other, extra=[ivc_segment(), *obstacles])
                grower.grow(tree, start, direction, length, radius, depth, name)
