"""Reviewing lesion candidates: list, jump to, accept / reject / mark uncertain / restore,
merge, split and delete.  Functions take the study segmentation node and segment IDs; the
caller (``LiverMetsLogic``) takes undo snapshots and refreshes the table.

A rejected lesion keeps its voxels (hidden, status "rejected") so it can be restored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from livermets.geometry import Geometry

from LiverMetsLib import segmentations as seg
from LiverMetsLib.lesionTable import lesionMeasurements

STATUS_CANDIDATE = "candidate"
STATUS_ACCEPTED = "accepted"
STATUS_REJECTED = "rejected"
STATUS_UNCERTAIN = "uncertain"
STATUSES = (STATUS_CANDIDATE, STATUS_ACCEPTED, STATUS_REJECTED, STATUS_UNCERTAIN)
MINIMUM_FIELD_OF_VIEW_MM = 50.0
FIELD_OF_VIEW_PER_LESION_SIZE = 3.0


@dataclass(frozen=True)
class LesionEntry:
    """One row of the review list."""

    segmentId: str
    name: str
    number: int
    status: str
    confidence: Optional[float]
    volume_ml: float
    longAxis_mm: float
    userEdited: bool
    likelyCyst: Optional[bool] = None  # the detector's cyst flag; None for a lesion it did not judge (drawn by hand)


@dataclass(frozen=True)
class JumpTarget:
    """Where the slice views go for one lesion.

    ``center_ras_mm`` is a point inside the lesion (its centroid, or the lesion voxel nearest to it
    when the centroid falls outside); ``fieldOfView_mm`` is the square field of view to show;
    ``sliceOffsets_mm`` are the offsets of Slicer's standard views along their slice normals (Red
    axial: +S; Yellow sagittal: the normal points left, so -R; Green coronal: +A).
    """

    segmentId: str
    center_ras_mm: tuple[float, float, float]
    fieldOfView_mm: float
    sliceOffsets_mm: dict


def _statusCheck(status: str) -> str:
    if status not in STATUSES:
        raise ValueError(f"unknown lesion status '{status}': use one of {', '.join(STATUSES)}")
    return status


def _lesionSegment(segmentationNode, segmentId: str):
    segment = seg.getSegment(segmentationNode, segmentId)
    if seg.getTag(segment, seg.TAG_KIND) != seg.KIND_LESION:
        raise ValueError(f"segment '{segment.GetName()}' is not a lesion")
    return segment


def listLesions(segmentationNode, *, includeRejected: bool = True) -> list[LesionEntry]:
    """The lesion segments in lesion-number order, with status and size."""
    entries = []
    for segmentId in seg.lesionIds(segmentationNode):
        segment = seg.getSegment(segmentationNode, segmentId)
        status = seg.getTag(segment, seg.TAG_STATUS, STATUS_CANDIDATE)
        if status == STATUS_REJECTED and not includeRejected:
            continue
        measured = lesionMeasurements(segmentationNode, segmentId)
        confidence = seg.getTag(segment, seg.TAG_CONFIDENCE)
        # detected lesions carry a confidence; the cyst tag is set only on those judged cysts
        likelyCyst = True if seg.getTag(segment, seg.TAG_LIKELY_CYST) == "yes" else (False if confidence else None)
        entries.append(LesionEntry(segmentId, segment.GetName(), int(seg.getTag(segment, seg.TAG_LESION_NUMBER, "0")),
                                   status, float(confidence) if confidence else None, measured["volume_ml"],
                                   measured["long_axis_mm"], seg.isUserEdited(segmentationNode, segmentId), likelyCyst))
    return sorted(entries, key=lambda entry: entry.number)


def setStatus(segmentationNode, segmentId: str, status: str) -> None:
    """Accept, reject, mark uncertain or restore (``STATUS_CANDIDATE``) a lesion; rejected ones are hidden."""
    segment = _lesionSegment(segmentationNode, segmentId)
    segment.SetTag(seg.TAG_STATUS, _statusCheck(status))
    displayNode = segmentationNode.GetDisplayNode()
    if displayNode is not None:
        displayNode.SetSegmentVisibility(segmentId, status != STATUS_REJECTED)


def jumpTarget(segmentationNode, segmentId: str, geometry: Optional[Geometry] = None) -> JumpTarget:
    """Centre and field of view for showing one lesion in the slice views."""
    geometry = geometry or seg.segmentationGeometry(segmentationNode)
    mask = seg.segmentMask(segmentationNode, segmentId, geometry)
    points = np.argwhere(mask)
    if len(points) == 0:
        raise ValueError(f"segment '{seg.getSegment(segmentationNode, segmentId).GetName()}' is empty: nothing to show")
    pointsRas = geometry.kji_to_ras(points.astype(float))
    center = pointsRas.mean(axis=0)
    centerKji = np.rint(geometry.ras_to_kji(center)).astype(int)
    if not (np.all(centerKji >= 0) and np.all(centerKji < geometry.shape) and mask[tuple(centerKji)]):
        center = pointsRas[np.argmin(np.linalg.norm(pointsRas - center, axis=1))]
    sizeRas = pointsRas.max(axis=0) - pointsRas.min(axis=0) + np.abs(geometry.axis_vectors_ras()).max(axis=0)
    fieldOfView = max(MINIMUM_FIELD_OF_VIEW_MM, FIELD_OF_VIEW_PER_LESION_SIZE * float(sizeRas.max()))
    x, y, z = (float(v) for v in center)
    return JumpTarget(segmentId, (x, y, z), fieldOfView, {"Red": z, "Yellow": -x, "Green": y})


def applyJumpToSliceNodes(target: JumpTarget, sliceNodes) -> None:
    """Centre each ``vtkMRMLSliceNode`` on the target and set its field of view (aspect kept)."""
    for sliceNode in sliceNodes:
        sliceNode.JumpSliceByCentering(*target.center_ras_mm)
        width, height, depth = sliceNode.GetFieldOfView()
        aspect = height / width if width > 0 else 1.0
        sliceNode.SetFieldOfView(target.fieldOfView_mm, target.fieldOfView_mm * aspect, depth)


def mergeLesions(segmentationNode, keepId: str, otherId: str, geometry: Optional[Geometry] = None) -> str:
    """Put the voxels of ``otherId`` into ``keepId`` and delete ``otherId``; returns ``keepId``."""
    if keepId == otherId:
        raise ValueError("choose two different lesions to merge")
    _lesionSegment(segmentationNode, keepId)
    _lesionSegment(segmentationNode, otherId)
    geometry = geometry or seg.segmentationGeometry(segmentationNode)
    merged = seg.segmentMask(segmentationNode, keepId, geometry) | seg.segmentMask(segmentationNode, otherId, geometry)
    seg.setSegmentMask(segmentationNode, keepId, merged, geometry)
    segment = seg.getSegment(segmentationNode, keepId)
    segment.SetTag(seg.TAG_ORIGIN, "merged")
    segment.SetTag(seg.TAG_USER_EDITED, "1")
    segmentationNode.GetSegmentation().RemoveSegment(otherId)
    return keepId


def kMeansLabels(pointsRas: np.ndarray, count: int, *, iterations: int = 30) -> np.ndarray:
    """Deterministic k-means of points (RAS mm): farthest-point initialisation from the point
    farthest from the centroid, then Lloyd iterations.  Returns a cluster index per point."""
    centers = [pointsRas[np.argmax(np.linalg.norm(pointsRas - pointsRas.mean(axis=0), axis=1))]]
    for _ in range(1, count):
        distance = np.min([np.linalg.norm(pointsRas - c, axis=1) for c in centers], axis=0)
        centers.append(pointsRas[np.argmax(distance)])
    centers = np.array(centers)
    labels = np.zeros(len(pointsRas), dtype=int)
    for iteration in range(iterations):
        distances = np.linalg.norm(pointsRas[:, None, :] - centers[None, :, :], axis=2)
        newLabels = distances.argmin(axis=1)
        if iteration > 0 and np.array_equal(newLabels, labels):
            break
        labels = newLabels
        centers = np.array([pointsRas[labels == c].mean(axis=0) if np.any(labels == c) else centers[c]
                            for c in range(count)])
    return labels


def splitLesion(segmentationNode, segmentId: str, count: int = 2, geometry: Optional[Geometry] = None) -> list[str]:
    """Split a lesion into ``count`` parts by k-means of its voxel positions (RAS mm, so anisotropic
    voxels are weighed by their size).  The largest part keeps the segment; the others become new
    lesions.  Returns the IDs, kept segment first."""
    if count < 2:
        raise ValueError(f"a split needs at least 2 parts, got {count}")
    segment = _lesionSegment(segmentationNode, segmentId)
    geometry = geometry or seg.segmentationGeometry(segmentationNode)
    mask = seg.segmentMask(segmentationNode, segmentId, geometry)
    points = np.argwhere(mask)
    if len(points) < count:
        raise ValueError(f"'{segment.GetName()}' has {len(points)} voxels: too few to split into {count}")
    labels = kMeansLabels(geometry.kji_to_ras(points.astype(float)), count)
    order = np.argsort([-np.count_nonzero(labels == c) for c in range(count)], kind="stable")
    parts = []
    for cluster in order:
        part = np.zeros(geometry.shape, dtype=bool)
        chosen = points[labels == cluster]
        part[chosen[:, 0], chosen[:, 1], chosen[:, 2]] = True
        parts.append(part)
    seg.setSegmentMask(segmentationNode, segmentId, parts[0], geometry)
    segment.SetTag(seg.TAG_ORIGIN, "split")
    segment.SetTag(seg.TAG_USER_EDITED, "1")
    status = seg.getTag(segment, seg.TAG_STATUS, STATUS_CANDIDATE)
    ids = [segmentId]
    for part in parts[1:]:
        ids.append(seg.addLesionSegment(segmentationNode, part, geometry, origin="split", status=status,
                                        extraTags={seg.TAG_USER_EDITED: "1"}))
    return ids


def deleteLesion(segmentationNode, segmentId: str) -> None:
    _lesionSegment(segmentationNode, segmentId)
    segmentationNode.GetSegmentation().RemoveSegment(segmentId)

