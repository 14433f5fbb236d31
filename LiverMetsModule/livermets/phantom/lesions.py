"""Placing metastases and a cyst inside the phantom liver (world RAS mm).

A plan of 8-9 metastases (two >= 20 mm, three or four 10-19 mm, two 5-9 mm, one 3-4 mm; diameters
drawn from the seed) is placed largest first, each centre snapped to a voxel centre of the grid so
that even the smallest lesion owns a voxel. Each lesion's whole perturbed surface must lie at
least 2 mm inside the liver surface (checked on 400 surface points), at least 3 mm from other
lesions, and clear of the main vessel trunks and the IVC: 0.8-3 mm for lesions planned "near a
vessel", at least 3 mm otherwise (peripheral branches grow afterwards, around the lesions). Each
lesion aims at a Couinaud segment so that both lobes are involved, and its centre lies at least
6 mm (and 0.6 radius) inside its segment along each axis. The flags written to the legend are
measured after the vessels have grown.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from livermets.phantom.anatomy import MAX_LESIONS, LesionSpec
from livermets.phantom.couinaud import CouinaudPlanes
from livermets.phantom.liver import LiverSurface
from livermets.phantom.shapes import Lesion, capsule_distance_mm, fibonacci_directions
from livermets.phantom.vessels import VesselTree, ivc_segment

CAPSULE_MARGIN_MM = 2.0
LESION_GAP_MM = 3.0
VESSEL_CLEARANCE_MM = 3.0
NEAR_VESSEL_MM = (0.8, 3.0)
SUBCAPSULAR_DEPTH_MM = 6.0
NEAR_VESSEL_FLAG_MM = 3.0
SEGMENT_MARGIN_MM = 6.0
DIRECTIONS = fibonacci_directions(400)


def _plan(rng: np.random.Generator) -> list:
    """(diameter mm, rim enhancing, near vessel, subcapsular, target segment), largest first."""
    diameters = [rng.uniform(26, 38), rng.uniform(20, 26), rng.uniform(14, 19), rng.uniform(12, 17),
                 rng.uniform(10, 14), rng.uniform(10, 16), rng.uniform(6, 9), rng.uniform(5, 8),
                 rng.uniform(3, 4)]
    if rng.uniform() < 0.5:
        diameters.pop(5)
    targets = [7, 8, 4, 6, 5, 2, 3, 8, 6]
    near_vessel = {1, 4, 6}
    subcapsular = {2, 5}
    rim = {0, 3, 4}
    return [(d, i in rim, i in near_vessel, i in subcapsular, targets[i]) for i, d in enumerate(diameters)]


def _coefficients(rng: np.random.Generator, diameter_mm: float) -> np.ndarray:
    coeffs = np.concatenate([rng.normal(0.0, 0.07, 5), rng.normal(0.0, 0.04, 3)])
    if diameter_mm < 8.0:
        coeffs *= 0.5
    total = np.abs(coeffs).sum()
    return coeffs * (0.45 / total) if total > 0.45 else coeffs


class _Placer:
    def __init__(self, liver: LiverSurface, vessels, planes: CouinaudPlanes, rng: np.random.Generator,
                 snap: Callable[[np.ndarray], np.ndarray] | None) -> None:
        self.liver, self.vessels, self.planes, self.rng = liver, vessels, planes, rng
        self.snap = snap or (lambda points: points)
        self.placed: list[tuple[np.ndarray, float]] = []
        p0, p1, r0, r1 = vessels
        self.big_vessels = [(a, b, ra, rb) for a, b, ra, rb in zip(p0, p1, r0, r1) if rb >= 2.0]

    def _candidates(self, n: int, max_radius: float, near_vessel: bool) -> np.ndarray:
        if not near_vessel:
            low, high = self.liver.bbox_ras
            return self.rng.uniform(low, high, size=(n, 3))
        picks = self.rng.integers(0, len(self.big_vessels), size=n)
        t = self.rng.uniform(0.15, 0.85, size=n)
        offsets = self.rng.normal(size=(n, 3))
        out = np.empty((n, 3))
        for row, (pick, ti, offset) in enumerate(zip(picks, t, offsets)):
            a, b, ra, rb = self.big_vessels[pick]
            axis = (b - a) / np.linalg.norm(b - a)
            perpendicular = offset - (offset @ axis) * axis
            perpendicular /= np.linalg.norm(perpendicular) + 1e-12
            out[row] = a + ti * (b - a) + perpendicular * (ra + ti * (rb - ra) + max_radius + 1.5)
        return out

    def _quick_ok(self, centers: np.ndarray, min_radius: float, max_radius: float, near_vessel: bool,
                  target: int | None):
        """Necessary conditions, cheap enough to screen many candidate centres at once."""
        ok = self.liver.depth_mm(*centers.T) > min_radius + CAPSULE_MARGIN_MM
        segment = self.planes.segment(*centers.T)
        if target is not None:
            ok &= segment == target
        # the centre sits clearly inside its Couinaud segment, so that the segment is unambiguous
        reach = max(SEGMENT_MARGIN_MM, 0.6 * min_radius)
        for offset in np.vstack([np.eye(3), -np.eye(3)]) * reach:
            ok &= self.planes.segment(*(centers + offset).T) == segment
        if not near_vessel:
            ok &= capsule_distance_mm(centers, *self.vessels) > min_radius + VESSEL_CLEARANCE_MM
        for center, radius in self.placed:
            ok &= np.linalg.norm(centers - center, axis=1) > max_radius + radius + LESION_GAP_MM
        return ok

    def _full_ok(self, lesion: Lesion, near_vessel: bool, subcapsular: bool) -> bool:
        surface = lesion.surface_points(DIRECTIONS)
        depth = self.liver.depth_mm(*surface.T)
        if depth.min() < CAPSULE_MARGIN_MM or (subcapsular and depth.min() > SUBCAPSULAR_DEPTH_MM):
            return False
        inner = np.vstack([lesion.surface_points(DIRECTIONS[::4], 0.5), lesion.center[None]])
        clearance = capsule_distance_mm(np.vstack([surface, inner]), *self.vessels).min()
        if near_vessel:
            return NEAR_VESSEL_MM[0] <= clearance <= NEAR_VESSEL_MM[1]
        return clearance >= VESSEL_CLEARANCE_MM

    def place(self, diameter_mm: float, coeffs: np.ndarray, near_vessel: bool, subcapsular: bool,
              target: int | None, core_fraction: float = 1.0) -> Lesion:
        radius = diameter_mm / 2.0
        max_radius = radius * (1.0 + float(np.abs(coeffs).sum()))
        min_radius = radius * (1.0 - float(np.abs(coeffs).sum()))
        for attempt in range(60):
            goal = target if attempt < 30 else None   # relax the target segment if it has no room
            centers = self.snap(self._candidates(256, max_radius, near_vessel))
            for center in centers[self._quick_ok(centers, min_radius, max_radius, near_vessel, goal)]:
                lesion = Lesion(center, radius, coeffs, core_fraction)
                if self._full_ok(lesion, near_vessel, subcapsular):
                    self.placed.append((lesion.center, lesion.max_radius_mm))
                    return lesion
        raise RuntimeError(f"could not place a {diameter_mm:.1f} mm lesion in the phantom liver")


def _vessel_arrays(portal: VesselTree, hepatic: VesselTree):
    segments = portal.segments + hepatic.segments + [ivc_segment()]
    return (np.array([s.p0 for s in segments]), np.array([s.p1 for s in segments]),
            np.array([s.r0 for s in segments]), np.array([s.r1 for s in segments]))


def place_lesions(liver: LiverSurface, portal: VesselTree, hepatic: VesselTree, planes: CouinaudPlanes,
                  rng: np.random.Generator, *, cyst: bool, snap=None) -> tuple[list, list]:
    """Metastases (ids 1..N, largest first) and, if ``cyst``, one simple cyst; as :class:`LesionSpec`."""
    vessels = _vessel_arrays(portal, hepatic)
    placer = _Placer(liver, vessels, planes, rng, snap)
    lesions = []
    plan = _plan(rng)
    if len(plan) > MAX_LESIONS:
        raise ValueError("too many lesions for the material table")
    for number, (diameter, rim, near_vessel, subcapsular, target) in enumerate(plan, start=1):
        coeffs = _coefficients(rng, diameter)
        core_fraction = max(0.6, 1.0 - 2.0 / (diameter / 2.0)) if rim else 1.0   # rim about 2 mm
        shape = placer.place(diameter, coeffs, near_vessel, subcapsular, target, core_fraction)
        lesions.append(LesionSpec(number, "metastasis", shape, float(diameter), rim_enhancing=rim))
    cysts = []
    if cyst:
        diameter = rng.uniform(14.0, 22.0)
        shape = placer.place(diameter, np.zeros(Lesion.N_COEFFS), False, False, 5)
        cysts.append(LesionSpec(1, "cyst", shape, float(diameter)))
    return lesions, cysts


def set_flags(specs, liver: LiverSurface, portal: VesselTree, hepatic: VesselTree) -> None:
    """Measure ``subcapsular`` (surface within 6 mm of the liver capsule) and ``near_vessel``
    (within 3 mm of a portal or hepatic vein or the IVC) of each placed lesion, in place."""
    vessels = _vessel_arrays(portal, hepatic)
    for spec in specs:
        surface = spec.shape.surface_points(DIRECTIONS)
        spec.subcapsular = bool(liver.depth_mm(*surface.T).min() <= SUBCAPSULAR_DEPTH_MM)
        spec.near_vessel = bool(capsule_distance_mm(surface, *vessels).min() <= NEAR_VESSEL_FLAG_MM)
