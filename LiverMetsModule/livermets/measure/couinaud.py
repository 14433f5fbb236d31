"""Couinaud segments I-VIII from vessel landmarks (automatic from the vessel trees, or user points).

Scheme (simplified Couinaud / Bismuth; Bismuth H, World J Surg 1982;6:3-9):

* vertical half-planes through the IVC axis and the right, middle and left hepatic veins
  split the liver into posterior right (VI/VII), anterior right (V/VIII), medial left (IV)
  and lateral left (II/III) sectors, by the azimuth of each voxel about the IVC axis;
* the plane through the portal bifurcation perpendicular to the IVC axis splits the right
  sectors into superior (VII, VIII) and inferior (VI, V) segments;
* an oblique plane through the umbilical portion of the left portal vein (umbilical fissure),
  rising toward the back (normal RAS (0, -0.5, 1)), splits II (above) from III;
* the caudate lobe (I) is liver within ``CAUDATE_RADIUS_MM`` of the IVC axis, in front of and
  left of the IVC (azimuth between the middle hepatic vein and straight posterior), in the back
  55 % of the way from the IVC axis to the portal bifurcation and between the bifurcation and the hepatic-vein confluence.

The automatic method finds the landmarks on ``labels.nii.gz``: the IVC (explicit or
estimated), the three hepatic-vein trunks as the three azimuth clusters of hepatic-vein voxels
15-50 mm from the IVC axis, and the portal bifurcation as the junction (geodesic Steiner point)
of the thick portal tree between its lowest point and its right-most and left-most points
inside the liver; the left-most one is the umbilical portion.
"""

from __future__ import annotations

from dataclasses import dataclass, asdict
from typing import Optional

import numpy as np

from livermets.errors import InputError
from livermets.geometry import Geometry
from livermets.labels import RESULT_HEPATIC, RESULT_PORTAL
from livermets.measure.surface import crop_box
from livermets.measure.vessels import estimate_ivc, inscribed_radius_map_mm

LEFT_LATERAL_PLANE_NORMAL_RAS = np.array([0.0, -0.5, 1.0]) / np.sqrt(1.25)
SECTOR_START_DEG = -100.0
CAUDATE_RADIUS_MM = 32.0
CAUDATE_DEPTH_FRACTION = 0.55  # caudate front: this share of the way from the IVC axis to the bifurcation
TRUNK_WINDOW_MM = (15.0, 50.0)
THICK_PORTAL_FRACTION = 0.6


@dataclass(frozen=True)
class CouinaudLandmarks:
    """Landmarks in RAS mm. ``ivc_axis_ras`` is a unit vector pointing superior."""

    ivc_point_ras: tuple
    right_hepatic_vein_ras: tuple
    middle_hepatic_vein_ras: tuple
    left_hepatic_vein_ras: tuple
    portal_bifurcation_ras: tuple
    umbilical_fissure_ras: tuple
    ivc_axis_ras: tuple = (0.0, 0.0, 1.0)
    hepatic_confluence_ras: Optional[tuple] = None

    def to_dict(self) -> dict:
        return {key: None if value is None else [round(float(v), 2) for v in value]
                for key, value in asdict(self).items()}


class _AxisFrame:
    """Cylindrical coordinates about the IVC axis: azimuth from patient right toward anterior."""

    def __init__(self, point_ras, axis_ras) -> None:
        self.point = np.asarray(point_ras, dtype=float)
        axis = np.asarray(axis_ras, dtype=float)
        self.axis = axis / np.linalg.norm(axis) * (1.0 if axis[2] >= 0 else -1.0)
        right = np.array([1.0, 0.0, 0.0]) - self.axis[0] * self.axis
        self.right = right / np.linalg.norm(right)
        self.anterior = np.cross(self.axis, self.right)

    def cylindrical(self, ras: np.ndarray):
        """(azimuth deg in [SECTOR_START, SECTOR_START + 360), radius mm, height mm) of points."""
        relative = np.asarray(ras, dtype=float) - self.point
        x, y, h = relative @ self.right, relative @ self.anterior, relative @ self.axis
        azimuth = np.degrees(np.arctan2(y, x))
        azimuth = np.where(azimuth < SECTOR_START_DEG, azimuth + 360.0, azimuth)
        return azimuth, np.hypot(x, y), h


def segments_from_landmarks(points_ras: np.ndarray, landmarks: CouinaudLandmarks) -> np.ndarray:
    """Couinaud segment 1..8 (uint8) of RAS points ``(..., 3)`` (callers restrict to liver)."""
    frame = _AxisFrame(landmarks.ivc_point_ras, landmarks.ivc_axis_ras)
    azimuth, radius, height = frame.cylindrical(points_ras)
    vein_azimuths = [float(frame.cylindrical(np.asarray(p, dtype=float))[0]) for p in
                     (landmarks.right_hepatic_vein_ras, landmarks.middle_hepatic_vein_ras,
                      landmarks.left_hepatic_vein_ras)]
    right_deg, middle_deg, left_deg = vein_azimuths
    if not right_deg < middle_deg < left_deg:
        raise InputError("the right, middle and left hepatic vein points are not in that order around the IVC "
                         "(seen from above, right to left): check the landmarks")
    bifurcation_height = float(frame.cylindrical(np.asarray(landmarks.portal_bifurcation_ras, float))[2])
    superior = height >= bifurcation_height
    umbilical = np.asarray(landmarks.umbilical_fissure_ras, dtype=float)
    above_left_plane = (np.asarray(points_ras) - umbilical) @ LEFT_LATERAL_PLANE_NORMAL_RAS >= 0
    segment = np.where(above_left_plane, 2, 3)
    segment = np.where(azimuth < left_deg, 4, segment)
    segment = np.where(azimuth < middle_deg, np.where(superior, 8, 5), segment)
    segment = np.where(azimuth < right_deg, np.where(superior, 7, 6), segment)
    top = (float(frame.cylindrical(np.asarray(landmarks.hepatic_confluence_ras, float))[2])
           if landmarks.hepatic_confluence_ras is not None else bifurcation_height + 50.0)
    bifurcation_depth = float((np.asarray(landmarks.portal_bifurcation_ras, float) - frame.point) @ frame.anterior)
    relative = np.asarray(points_ras, dtype=float) - frame.point
    caudate = ((radius <= CAUDATE_RADIUS_MM) & (azimuth >= middle_deg) & (azimuth <= 270.0)
               & (height >= bifurcation_height) & (height <= top)
               & (relative @ frame.anterior <= CAUDATE_DEPTH_FRACTION * bifurcation_depth))
    return np.where(caudate, 1, segment).astype(np.uint8)


def couinaud_map(liver: np.ndarray, geometry: Geometry, landmarks: CouinaudLandmarks) -> np.ndarray:
    """Couinaud label map (uint8, [k, j, i]) over ``liver``: 1..8 inside, 0 outside."""
    liver = np.asarray(liver, dtype=bool)
    result = np.zeros(liver.shape, dtype=np.uint8)
    kji = np.argwhere(liver)
    result[tuple(kji.T)] = segments_from_landmarks(geometry.kji_to_ras(kji), landmarks)
    return result


# --- automatic landmarks ---------------------------------------------------------------
def _ivc_axis(ivc_ras: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    centre = ivc_ras.mean(axis=0)
    _, _, vt = np.linalg.svd(ivc_ras - centre, full_matrices=False)
    axis = vt[0] if vt[0][2] >= 0 else -vt[0]
    return centre, axis


def _three_clusters(azimuth_deg: np.ndarray) -> list[np.ndarray]:
    """Split sorted azimuths at their two widest gaps; the three groups' members."""
    order = np.argsort(azimuth_deg)
    values = azimuth_deg[order]
    gaps = np.diff(values)
    if len(gaps) < 2:
        return []
    cuts = np.sort(np.argsort(-gaps)[:2])
    return [order[: cuts[0] + 1], order[cuts[0] + 1: cuts[1] + 1], order[cuts[1] + 1:]]


def _geodesic_steps(neighbours: np.ndarray, start: int) -> np.ndarray:
    """Breadth-first step counts from ``start`` over a voxel graph (-1 where unreachable)."""
    steps = np.full(len(neighbours), -1, dtype=np.int64)
    steps[start] = 0
    frontier, level = np.array([start]), 0
    while frontier.size:
        level += 1
        candidates = neighbours[frontier].ravel()
        candidates = np.unique(candidates[candidates >= 0])
        candidates = candidates[steps[candidates] < 0]
        steps[candidates] = level
        frontier = candidates
    return steps


def _voxel_graph(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Voxel indices of ``mask`` and, per voxel, its 26 neighbours' positions in that list (-1 none)."""
    kji = np.argwhere(mask)
    index = np.full(np.asarray(mask.shape) + 2, -1, dtype=np.int64)
    index[tuple((kji + 1).T)] = np.arange(len(kji))
    offsets = [(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1) if (a, b, c) != (0, 0, 0)]
    neighbours = np.stack([index[tuple((kji + 1 + np.array(o)).T)] for o in offsets], axis=1)
    return kji, neighbours


def _portal_landmarks(portal: np.ndarray, liver: np.ndarray, geometry: Geometry, frame: _AxisFrame):
    """Portal bifurcation and umbilical portion (RAS) from the thick portal tree."""
    box = crop_box(portal, pad=2)
    if box is None:
        raise InputError("no portal veins in labels.nii.gz (label 3): the automatic Couinaud method needs them; "
                         "give landmarks instead")
    offset = np.array([s.start for s in box])
    radius = inscribed_radius_map_mm(portal[box], geometry.spacing_mm)
    inside = radius[liver[box]]
    if inside.size == 0 or inside.max() <= 0:
        raise InputError("the portal veins do not reach into the liver: give Couinaud landmarks instead")
    thick = radius >= THICK_PORTAL_FRACTION * float(inside.max())
    kji, neighbours = _voxel_graph(thick)
    ras = geometry.kji_to_ras(kji + offset)
    in_liver = liver[box][tuple(kji.T)]
    lateral = (ras - frame.point) @ frame.right
    inlet = int(np.argmin(ras @ frame.axis))
    from_inlet = _geodesic_steps(neighbours, inlet)
    reachable_in_liver = np.flatnonzero(in_liver & (from_inlet >= 0))
    if reachable_in_liver.size < 2:
        raise InputError("the portal tree inside the liver is too thin or broken to find its bifurcation; "
                         "give Couinaud landmarks instead")
    right_end = int(reachable_in_liver[np.argmax(lateral[reachable_in_liver])])
    left_end = int(reachable_in_liver[np.argmin(lateral[reachable_in_liver])])
    total = from_inlet + _geodesic_steps(neighbours, right_end) + _geodesic_steps(neighbours, left_end)
    total = np.where(from_inlet >= 0, total, np.iinfo(np.int64).max)
    bifurcation = int(np.argmin(total))
    return ras[bifurcation], ras[left_end]


def landmarks_from_vessels(labels: np.ndarray, liver: np.ndarray, geometry: Geometry, *,
                           ivc: Optional[np.ndarray] = None) -> CouinaudLandmarks:
    """Find Couinaud landmarks on ``labels.nii.gz`` values (3 portal, 4 hepatic veins + IVC).

    Raises InputError when a vessel tree is missing or does not show the expected structure.
    """
    labels = np.asarray(labels)
    hepatic_and_ivc = labels == RESULT_HEPATIC
    ivc = estimate_ivc(hepatic_and_ivc, geometry) if ivc is None else np.asarray(ivc, dtype=bool)
    if not ivc.any():
        raise InputError("no inferior vena cava found in labels.nii.gz (label 4): give Couinaud landmarks instead")
    ivc_ras = geometry.kji_to_ras(np.argwhere(ivc))
    centre, axis = _ivc_axis(ivc_ras)
    frame = _AxisFrame(centre, axis)
    veins_ras = geometry.kji_to_ras(np.argwhere(hepatic_and_ivc & ~ivc))
    azimuth, radius, height = frame.cylindrical(veins_ras)
    window = (radius >= TRUNK_WINDOW_MM[0]) & (radius <= TRUNK_WINDOW_MM[1])
    groups = _three_clusters(azimuth[window])
    if len(groups) != 3 or min(len(g) for g in groups) < 5:
        raise InputError("could not tell the right, middle and left hepatic veins apart: give Couinaud landmarks")
    trunks = [veins_ras[window][g].mean(axis=0) for g in groups]
    near_confluence = veins_ras[radius < TRUNK_WINDOW_MM[0]]
    confluence = near_confluence.mean(axis=0) if len(near_confluence) else None
    bifurcation, umbilical = _portal_landmarks(labels == RESULT_PORTAL, np.asarray(liver, dtype=bool),
                                               geometry, frame)
    return CouinaudLandmarks(tuple(centre), tuple(trunks[0]), tuple(trunks[1]), tuple(trunks[2]),
                             tuple(bifurcation), tuple(umbilical), tuple(axis),
                             None if confluence is None else tuple(confluence))
