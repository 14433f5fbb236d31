"""Editing lesions: click to add / refine, grow or shrink by a margin, user-edit detection and
re-running the automatic segmentation without overwriting the user's work.

Points are RAS mm.  Click-to-add runs the core's seeded segmentation
(``livermets.segmentation.seeded.segment_lesion_from_seed``) on the source volume's grid and keeps
the seed and the include / exclude points in the segment's ``TAG_POINTS`` tag so a later click can
refine the same lesion.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import SimpleITK as sitk
from livermets.geometry import Geometry

from LiverMetsLib import segmentations as seg
from LiverMetsLib.review import STATUS_CANDIDATE
from LiverMetsLib.volumes import (
    arrayFromVolumeNode,
    geometryFromVolumeNode,
    maskBoundingBox,
    maskFromOrientedImage,
    orientedImageFromMask,
)

DEFAULT_MAX_RADIUS_MM = 40.0


def _toKji(pointRas: Sequence[float], geometry: Geometry, what: str) -> tuple[int, int, int]:
    kji = np.rint(geometry.ras_to_kji(np.asarray(pointRas, dtype=float))).astype(int)
    if np.any(kji < 0) or np.any(kji >= np.array(geometry.shape)):
        raise ValueError(f"the {what} at RAS {tuple(round(float(v), 1) for v in pointRas)} mm is outside the image: "
                         "click inside the volume")
    return tuple(int(v) for v in kji)


def _onGrid(mask: np.ndarray, source: Geometry, target: Geometry) -> np.ndarray:
    """``mask`` from grid ``source`` moved onto grid ``target`` (nearest neighbour when they differ)."""
    if source.same_grid(target, tolerance_mm=1e-4):
        return mask
    return maskFromOrientedImage(orientedImageFromMask(mask, source), target)


def seededLesionMask(volumeNode, seedRas: Sequence[float], *, sequence: str, liverMask: Optional[np.ndarray] = None,
                     includeRas: Sequence[Sequence[float]] = (), excludeRas: Sequence[Sequence[float]] = (),
                     maxRadius_mm: float = DEFAULT_MAX_RADIUS_MM) -> np.ndarray:
    """The core's seeded lesion mask on the volume grid (``[k, j, i]`` bool)."""
    from livermets.errors import LiverMetsError
    from livermets.segmentation.seeded import segment_lesion_from_seed

    geometry = geometryFromVolumeNode(volumeNode)
    try:
        return np.asarray(segment_lesion_from_seed(
            arrayFromVolumeNode(volumeNode), geometry, _toKji(seedRas, geometry, "clicked point"), sequence=sequence,
            liver=liverMask, include_kji=[_toKji(p, geometry, "include point") for p in includeRas],
            exclude_kji=[_toKji(p, geometry, "exclude point") for p in excludeRas],
            max_radius_mm=maxRadius_mm)).astype(bool)
    except LiverMetsError as error:  # the core's user-facing errors are bad input here
        raise ValueError(str(error)) from error


def _liverOnGrid(segmentationNode, geometry: Geometry) -> Optional[np.ndarray]:
    liverIds = seg.segmentIds(segmentationNode, "liver")
    return seg.segmentMask(segmentationNode, liverIds[0], geometry) if liverIds else None


def addLesionFromPoint(segmentationNode, volumeNode, seedRas: Sequence[float], *, sequence: str,
                       includeRas: Sequence[Sequence[float]] = (), excludeRas: Sequence[Sequence[float]] = (),
                       maxRadius_mm: float = DEFAULT_MAX_RADIUS_MM) -> str:
    """Segment the lesion under ``seedRas`` on ``volumeNode`` and add it as "Lesion n"; returns its ID."""
    studyGeometry = seg.segmentationGeometry(segmentationNode)
    volumeGeometry = geometryFromVolumeNode(volumeNode)
    liver = _liverOnGrid(segmentationNode, volumeGeometry)
    mask = seededLesionMask(volumeNode, seedRas, sequence=sequence, liverMask=liver, includeRas=includeRas,
                            excludeRas=excludeRas, maxRadius_mm=maxRadius_mm)
    mask = _onGrid(mask, volumeGeometry, studyGeometry)
    if not mask.any():
        raise ValueError("no lesion found at the clicked point: click inside the lesion")
    points = {"seed": [float(v) for v in seedRas], "include": [list(map(float, p)) for p in includeRas],
              "exclude": [list(map(float, p)) for p in excludeRas], "sequence": sequence,
              "maxRadius_mm": float(maxRadius_mm)}
    return seg.addLesionSegment(segmentationNode, mask, studyGeometry, origin="click", status=STATUS_CANDIDATE,
                                extraTags={seg.TAG_POINTS: json.dumps(points), seg.TAG_USER_EDITED: "1"})


def refineLesion(segmentationNode, segmentId: str, volumeNode, *, includeRas: Sequence[Sequence[float]] = (),
                 excludeRas: Sequence[Sequence[float]] = ()) -> str:
    """Add include / exclude points to a clicked lesion and segment it again; returns its ID."""
    segment = seg.getSegment(segmentationNode, segmentId)
    stored = seg.getTag(segment, seg.TAG_POINTS)
    if not stored:
        raise ValueError(f"'{segment.GetName()}' was not made by clicking: grow, shrink or edit it instead")
    points = json.loads(stored)
    points["include"] += [list(map(float, p)) for p in includeRas]
    points["exclude"] += [list(map(float, p)) for p in excludeRas]
    studyGeometry = seg.segmentationGeometry(segmentationNode)
    volumeGeometry = geometryFromVolumeNode(volumeNode)
    mask = seededLesionMask(volumeNode, points["seed"], sequence=points["sequence"],
                            liverMask=_liverOnGrid(segmentationNode, volumeGeometry), includeRas=points["include"],
                            excludeRas=points["exclude"], maxRadius_mm=points["maxRadius_mm"])
    seg.setSegmentMask(segmentationNode, segmentId, _onGrid(mask, volumeGeometry, studyGeometry), studyGeometry)
    segment.SetTag(seg.TAG_POINTS, json.dumps(points))
    segment.SetTag(seg.TAG_USER_EDITED, "1")
    return segmentId


def marginMask(mask: np.ndarray, geometry: Geometry, margin_mm: float) -> np.ndarray:
    """Grow (``margin_mm`` > 0) or shrink (< 0) a mask by a distance in mm.

    Grow keeps every voxel whose centre is within ``margin_mm`` of a mask voxel centre; shrink keeps
    mask voxels farther than ``|margin_mm|`` from every outside voxel.  Distances are Euclidean in mm
    on the anisotropic grid (Maurer distance transform, Maurer et al. IEEE TPAMI 2003;25:265-270,
    doi:10.1109/TPAMI.2003.1177156).
    """
    mask = np.asarray(mask).astype(bool)
    box = maskBoundingBox(mask)
    if box is None or margin_mm == 0:
        return mask.copy()
    pad = [int(np.ceil(abs(margin_mm) / s)) + 1 for s in geometry.spacing_mm]
    crop = tuple(slice(max(0, b.start - p), min(n, b.stop + p)) for b, p, n in zip(box, pad, geometry.shape))
    region = mask[crop]
    target = region if margin_mm > 0 else ~region
    image = sitk.GetImageFromArray(target.astype(np.uint8))
    image.SetSpacing(geometry.spacing_ijk_mm)
    distance = sitk.GetArrayFromImage(sitk.SignedMaurerDistanceMap(
        image, insideIsPositive=False, squaredDistance=False, useImageSpacing=True))
    # Outside ``target``, Maurer's value is the distance to the nearest voxel of ``target``.
    reached = target | (distance <= abs(margin_mm) + 1e-6)
    result = mask.copy()
    result[crop] = reached if margin_mm > 0 else ~reached
    return result


def growLesion(segmentationNode, segmentId: str, margin_mm: float) -> str:
    """Grow (> 0) or shrink (< 0) a segment by ``margin_mm``; returns its ID."""
    if not np.isfinite(margin_mm):
        raise ValueError("the margin must be a finite number of millimetres")
    geometry = seg.segmentationGeometry(segmentationNode)
    mask = seg.segmentMask(segmentationNode, segmentId, geometry)
    result = marginMask(mask, geometry, margin_mm)
    if not result.any():
        raise ValueError(f"shrinking by {abs(margin_mm):g} mm would remove the whole segment: use a smaller margin")
    seg.setSegmentMask(segmentationNode, segmentId, result, geometry)
    seg.getSegment(segmentationNode, segmentId).SetTag(seg.TAG_USER_EDITED, "1")
    return segmentId


def editedSegmentIds(segmentationNode) -> list[str]:
    """Segments changed by the user: through LiverMets tools or outside LiverMets (Segment Editor),
    detected by comparing each segment's voxels with the content hash LiverMets stored."""
    return [segmentId for segmentId in seg.segmentIds(segmentationNode) if seg.isUserEdited(segmentationNode, segmentId)]


@dataclass(frozen=True)
class Conflict:
    """A segment the user edited or reviewed that the new automatic result would change."""

    segmentId: str
    name: str
    reason: str


@dataclass
class RerunResult:
    conflicts: list = field(default_factory=list)
    kept: list = field(default_factory=list)
    removed: list = field(default_factory=list)
    added: list = field(default_factory=list)


def _protection(segmentationNode, segmentId: str) -> str:
    """Why a segment must not be replaced silently ('' when it may be)."""
    segment = seg.getSegment(segmentationNode, segmentId)
    if seg.isUserEdited(segmentationNode, segmentId):
        return "edited by the user"
    status = seg.getTag(segment, seg.TAG_STATUS, STATUS_CANDIDATE)
    if seg.getTag(segment, seg.TAG_KIND) == seg.KIND_LESION and status != STATUS_CANDIDATE:
        return f"reviewed ({status})"
    return ""


def rerunAutomatic(segmentationNode, *, liver: Optional[np.ndarray], lesions=(), portal=None, hepatic=None, ivc=None,
                   couinaud=None, confidences=None, overwrite: bool = False) -> RerunResult:
    """Put a new automatic result into an existing study segmentation.

    Unprotected segments are replaced.  Protected ones (edited by the user, or lesions the user
    accepted, rejected or marked uncertain) are kept with ``overwrite=False`` and listed in
    ``conflicts`` when the new result differs from them; new lesions overlapping a kept lesion are
    not added.  With ``overwrite=True`` the segmentation becomes exactly the new result.
    """
    geometry = seg.segmentationGeometry(segmentationNode)
    segmentation = segmentationNode.GetSegmentation()
    newStructures = {"liver": liver, "portal_vein": portal, "hepatic_veins": hepatic, "ivc": ivc}
    newLesions = seg.lesionMasks(lesions, geometry.shape)
    result = RerunResult()
    skipKinds, skipLesions = set(), set()

    def keep(segmentId: str, reason: str, differs: bool) -> None:
        result.kept.append(segmentId)
        if differs:
            result.conflicts.append(Conflict(segmentId, seg.getSegment(segmentationNode, segmentId).GetName(), reason))

    for kind in list(newStructures) + [seg.KIND_COUINAUD]:
        newMask = couinaud if kind == seg.KIND_COUINAUD else newStructures[kind]
        if newMask is None:
            continue
        existing = seg.segmentIds(segmentationNode, kind)
        protected = {segmentId: _protection(segmentationNode, segmentId) for segmentId in existing}
        if not overwrite and any(protected.values()):
            skipKinds.add(kind)
            for segmentId, reason in protected.items():
                if kind == seg.KIND_COUINAUD:
                    value = int(seg.getTag(seg.getSegment(segmentationNode, segmentId), seg.TAG_COUINAUD, "0"))
                    candidate = np.asarray(newMask) == value
                else:
                    candidate = np.asarray(newMask) != 0
                keep(segmentId, reason or "part of an edited set",
                     seg.maskHash(candidate) != seg.currentContentHash(segmentationNode, segmentId))
            continue
        for segmentId in existing:
            segmentation.RemoveSegment(segmentId)
            result.removed.append(segmentId)

    newHashes = [seg.maskHash(mask) for mask in newLesions]
    for segmentId in seg.lesionIds(segmentationNode):
        reason = "" if overwrite else _protection(segmentationNode, segmentId)
        if not reason:
            segmentation.RemoveSegment(segmentId)
            result.removed.append(segmentId)
            continue
        current = seg.segmentMask(segmentationNode, segmentId, geometry)
        overlapping = {index for index, mask in enumerate(newLesions) if np.any(mask & current)}
        skipLesions |= overlapping
        same = any(newHashes[index] == seg.currentContentHash(segmentationNode, segmentId) for index in overlapping)
        keep(segmentId, reason, not same)
    result.added = seg.fillStudySegments(segmentationNode, geometry, liver=liver,
                                         lesions=newLesions, portal=portal, hepatic=hepatic, ivc=ivc, couinaud=couinaud,
                                         confidences=confidences, skipLesions=skipLesions,
                                         skipKinds=skipKinds)
    return result
