"""One ``vtkMRMLSegmentationNode`` per study: segments, terminology, colours and LiverMets tags.

Segments: "Liver", "Lesion 1".."Lesion N", "Portal vein", "Hepatic veins", "IVC" and, when given,
Couinaud "Segment I".."Segment VIII".  Each carries a Slicer terminology entry built from the SNOMED CT
codes of ``livermets.labels.STRUCTURES`` (context ``TERMINOLOGY_CONTEXT``, loadable into Slicer's
Terminologies logic with :func:`loadTerminology`) and the structure's colour.

LiverMets keeps its per-segment state in segment tags (saved with the scene): ``TAG_KIND`` (structure
key), ``TAG_LESION_NUMBER``, ``TAG_STATUS``, ``TAG_ORIGIN``, ``TAG_CONFIDENCE``, ``TAG_CONTENT_HASH``
(hash of the mask as LiverMets last wrote it: a different hash now means someone else edited it),
``TAG_USER_EDITED``, ``TAG_MEASUREMENTS`` (cached measurements, JSON), ``TAG_COUINAUD`` (1..8 on
Couinaud segments) and ``TAG_POINTS`` (seed / include / exclude points of a clicked lesion).  Masks are ``[k, j, i]`` arrays on the study grid,
stored as the segmentation node attribute ``ATTRIBUTE_GEOMETRY`` (shape and IJKToRAS, RAS mm).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from typing import Optional, Union

import numpy as np
import vtk
from livermets.geometry import Geometry
from livermets.labels import COUINAUD_NAMES, STRUCTURES, Structure
from vtk.util import numpy_support

from LiverMetsLib.volumes import maskBoundingBox, maskFromOrientedImage, orientedImageFromMask, referenceImage

TAG_KIND = "LiverMets.Kind"
TAG_LESION_NUMBER = "LiverMets.LesionNumber"
TAG_STATUS = "LiverMets.Status"
TAG_ORIGIN = "LiverMets.Origin"
TAG_CONFIDENCE = "LiverMets.Confidence"
TAG_LIKELY_CYST = "LiverMets.LikelyCyst"  # "yes" when the detector judged the lesion a likely cyst
TAG_CONTENT_HASH = "LiverMets.ContentHash"
TAG_USER_EDITED = "LiverMets.UserEdited"
TAG_MEASUREMENTS = "LiverMets.Measurements"
TAG_COUINAUD = "LiverMets.Couinaud"
TAG_POINTS = "LiverMets.PointsRas"
ATTRIBUTE_ROLE = "LiverMets.Role"
ATTRIBUTE_GEOMETRY = "LiverMets.Geometry"
ROLE_STUDY = "study"

KIND_LESION = "lesion"
KIND_COUINAUD = "couinaud"
SEGMENT_NAMES = {"liver": "Liver", "portal_vein": "Portal vein", "hepatic_veins": "Hepatic veins", "ivc": "IVC"}

TERMINOLOGY_CONTEXT = "Segmentation category and type - LiverMets"
# Couinaud segments have no SNOMED CT type in Slicer's lists: typed "Liver", the number is in TAG_COUINAUD.
COUINAUD_COLORS_RGB = {1: (255, 179, 71), 2: (166, 206, 227), 3: (31, 120, 180), 4: (178, 223, 138),
                       5: (51, 160, 44), 6: (251, 154, 153), 7: (227, 26, 28), 8: (202, 178, 214)}

LesionsInput = Union[np.ndarray, Sequence[np.ndarray], Sequence[tuple]]


# --- terminology ---------------------------------------------------------------------------------
def terminologyEntry(structure: Structure) -> str:
    """Slicer's serialized terminology entry (``vtkSlicerTerminologiesModuleLogic`` format:
    ``context~category~type~modifier~regionContext~region~regionModifier``, codes as
    ``scheme^value^meaning``) for a LiverMets structure."""
    def code(item) -> str:
        return f"{item.scheme}^{item.value}^{item.meaning}" if item is not None else "^^"

    return "~".join([TERMINOLOGY_CONTEXT, code(structure.category), code(structure.type),
                     code(structure.modifier), "", "^^", "^^"])


def terminologyDictionary() -> dict:
    """The LiverMets terminology context in Slicer's ``.term.json`` schema, built from
    ``livermets.labels.STRUCTURES`` (one category per distinct category code)."""
    categories: dict[str, dict] = {}
    for structure in STRUCTURES.values():
        category = categories.setdefault(structure.category.value, {
            "CodingSchemeDesignator": structure.category.scheme, "CodeValue": structure.category.value,
            "CodeMeaning": structure.category.meaning, "showAnatomy": False, "Type": []})
        entry = {"CodingSchemeDesignator": structure.type.scheme, "CodeValue": structure.type.value,
                 "CodeMeaning": structure.type.meaning, "recommendedDisplayRGBValue": list(structure.color_rgb)}
        if all(existing["CodeValue"] != entry["CodeValue"] for existing in category["Type"]):
            category["Type"].append(entry)
    return {"SegmentationCategoryTypeContextName": TERMINOLOGY_CONTEXT,
            "@schema": "https://raw.githubusercontent.com/qiicr/dcmqi/master/doc/segment-context-schema.json#",
            "SegmentationCodes": {"Category": list(categories.values())}}


def loadTerminology(terminologiesLogic) -> str:
    """Load the LiverMets context into a ``vtkSlicerTerminologiesModuleLogic``; returns its name."""
    handle, path = tempfile.mkstemp(suffix=".term.json", prefix="LiverMets-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(terminologyDictionary(), stream)
        if not terminologiesLogic.LoadTerminologyFromFile(path):
            raise RuntimeError("Slicer could not read the LiverMets terminology")
    finally:
        os.remove(path)
    return TERMINOLOGY_CONTEXT


# --- tags ----------------------------------------------------------------------------------------
def getTag(segment, tag: str, default: str = "") -> str:
    value = vtk.reference("")
    return str(value) if segment.GetTag(tag, value) else default


def segmentIds(segmentationNode, kind: Optional[str] = None) -> list[str]:
    """Segment IDs in display order, optionally only those whose ``TAG_KIND`` is ``kind``."""
    segmentation = segmentationNode.GetSegmentation()
    ids = [segmentation.GetNthSegmentID(index) for index in range(segmentation.GetNumberOfSegments())]
    if kind is None:
        return ids
    return [segmentId for segmentId in ids if getTag(segmentation.GetSegment(segmentId), TAG_KIND) == kind]


def getSegment(segmentationNode, segmentId: str):
    segment = segmentationNode.GetSegmentation().GetSegment(segmentId) if segmentId else None
    if segment is None:
        raise ValueError(f"segmentation '{segmentationNode.GetName()}' has no segment with ID '{segmentId}'")
    return segment


def lesionIds(segmentationNode) -> list[str]:
    return segmentIds(segmentationNode, KIND_LESION)


# --- geometry ------------------------------------------------------------------------------------
def setSegmentationGeometry(segmentationNode, geometry: Geometry) -> None:
    """Record the study grid on the node and make it the segmentation's reference geometry
    (the grid the Segment Editor paints on)."""
    import slicer

    segmentationNode.SetAttribute(ATTRIBUTE_GEOMETRY, json.dumps(
        {"shape_kji": list(geometry.shape), "ijk_to_ras": geometry.ijk_to_ras().round(9).tolist()}))
    geometryString = slicer.vtkSegmentationConverter.SerializeImageGeometry(referenceImage(geometry))
    segmentationNode.GetSegmentation().SetConversionParameter(
        slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName(), geometryString)


def segmentationGeometry(segmentationNode) -> Geometry:
    """The study grid stored by :func:`setSegmentationGeometry`."""
    text = segmentationNode.GetAttribute(ATTRIBUTE_GEOMETRY) if segmentationNode is not None else None
    if not text:
        raise ValueError("this segmentation was not made by LiverMets (no grid stored): run LiverMets on the study first")
    stored = json.loads(text)
    return Geometry.from_ijk_to_ras(tuple(stored["shape_kji"]), np.array(stored["ijk_to_ras"]))


# --- masks ---------------------------------------------------------------------------------------
def hashOfCrop(crop: np.ndarray, offsetKji: Sequence[int] = (0, 0, 0)) -> str:
    """Content hash of a binary mask given as a crop placed at ``offsetKji`` on the study grid:
    the tight bounding box (grid indices) and the packed voxels.  Empty masks hash alike."""
    crop = np.asarray(crop, dtype=bool)
    box = maskBoundingBox(crop)
    digest = hashlib.sha1()
    if box is not None:
        corners = [b.start + o for b, o in zip(box, offsetKji)] + [b.stop + o for b, o in zip(box, offsetKji)]
        digest.update(np.array(corners, dtype=np.int64).tobytes())
        digest.update(np.packbits(crop[box]).tobytes())
    return digest.hexdigest()[:20]


def maskHash(mask: np.ndarray) -> str:
    """:func:`hashOfCrop` of a full-grid mask."""
    return hashOfCrop(mask)


def _imageToWorld(image) -> np.ndarray:
    from LiverMetsLib.volumes import arrayFromVtkMatrix

    matrix = vtk.vtkMatrix4x4()
    image.GetImageToWorldMatrix(matrix)
    return arrayFromVtkMatrix(matrix)


def segmentMaskCropped(segmentationNode, segmentId: str) -> tuple[np.ndarray, np.ndarray]:
    """A segment as ``(crop, offsetKji)``: the tight boolean crop of its voxels on the study grid and
    the grid index of ``crop[0, 0, 0]`` (an empty segment gives a 0-size crop).  Fast: no full-grid copy
    when the segment's labelmap already lies on the study grid."""
    import slicer

    getSegment(segmentationNode, segmentId)
    geometry = segmentationGeometry(segmentationNode)
    image = slicer.vtkOrientedImageData()
    if not segmentationNode.GetBinaryLabelmapRepresentation(segmentId, image):
        raise ValueError(f"segment '{segmentId}' has no binary labelmap")
    extent = image.GetExtent()
    empty = (np.zeros((0, 0, 0), dtype=bool), np.zeros(3, dtype=int))
    if image.GetPointData().GetScalars() is None or extent[1] < extent[0] or extent[3] < extent[2] \
            or extent[5] < extent[4]:
        return empty
    onGrid = np.allclose(_imageToWorld(image), geometry.ijk_to_ras(), atol=1e-6) and min(extent[0::2]) >= 0 \
        and all(extent[2 * axis + 1] < geometry.shape[2 - axis] for axis in range(3))
    if onGrid:
        size = (extent[5] - extent[4] + 1, extent[3] - extent[2] + 1, extent[1] - extent[0] + 1)
        voxels = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(size) != 0
        offset = np.array([extent[4], extent[2], extent[0]])
    else:
        voxels, offset = maskFromOrientedImage(image, geometry), np.zeros(3, dtype=int)
    box = maskBoundingBox(voxels)
    if box is None:
        return empty
    return voxels[box], offset + np.array([b.start for b in box])


def segmentMask(segmentationNode, segmentId: str, geometry: Optional[Geometry] = None) -> np.ndarray:
    """Boolean ``[k, j, i]`` mask of one segment on ``geometry`` (default: the study grid)."""
    import slicer

    studyGeometry = segmentationGeometry(segmentationNode)
    if geometry is None or geometry.same_grid(studyGeometry, tolerance_mm=1e-6):
        crop, offset = segmentMaskCropped(segmentationNode, segmentId)
        mask = np.zeros(studyGeometry.shape, dtype=bool)
        mask[tuple(slice(o, o + n) for o, n in zip(offset, crop.shape))] = crop
        return mask
    getSegment(segmentationNode, segmentId)
    image = slicer.vtkOrientedImageData()
    if not segmentationNode.GetBinaryLabelmapRepresentation(segmentId, image):
        raise ValueError(f"segment '{segmentId}' has no binary labelmap")
    return maskFromOrientedImage(image, geometry)


def currentContentHash(segmentationNode, segmentId: str) -> str:
    """:func:`maskHash` of the segment's voxels as they are now (whoever wrote them)."""
    return hashOfCrop(*segmentMaskCropped(segmentationNode, segmentId))


def isUserEdited(segmentationNode, segmentId: str) -> bool:
    """True when someone other than LiverMets changed the segment's voxels (now or before)."""
    segment = getSegment(segmentationNode, segmentId)
    if getTag(segment, TAG_USER_EDITED) == "1":
        return True
    if currentContentHash(segmentationNode, segmentId) != getTag(segment, TAG_CONTENT_HASH):
        segment.SetTag(TAG_USER_EDITED, "1")
        return True
    return False


def setSegmentMask(segmentationNode, segmentId: str, mask, geometry: Optional[Geometry] = None) -> None:
    """Replace a segment's voxels by ``mask`` (a full-grid array or a ``(crop, offsetKji)`` pair) and
    record its content hash (a LiverMets write)."""
    import slicer

    segment = getSegment(segmentationNode, segmentId)
    geometry = geometry or segmentationGeometry(segmentationNode)
    if isinstance(mask, tuple):
        crop, offset = mask
    else:
        if tuple(np.shape(mask)) != geometry.shape:
            raise ValueError(f"mask shape {np.shape(mask)} does not match the grid {geometry.shape}")
        crop, offset = cropOfMask(np.asarray(mask))
    logic = slicer.vtkSlicerSegmentationsModuleLogic
    if not crop.any():
        logic.ClearSegment(segmentationNode, segmentId)
        segment.SetTag(TAG_CONTENT_HASH, hashOfCrop(crop))
        return
    image = orientedImageFromMask(crop, geometry, offsetKji=offset)
    if not logic.SetBinaryLabelmapToSegment(image, segmentationNode, segmentId, logic.MODE_REPLACE, image.GetExtent()):
        raise RuntimeError(f"Slicer could not write the voxels of segment '{segmentId}'")
    segment.SetTag(TAG_CONTENT_HASH, hashOfCrop(crop, offset))


def addSegment(segmentationNode, segmentId: str, name: str, kind: str, mask,
               geometry: Optional[Geometry] = None, *, structureKey: Optional[str] = None,
               colorRgb: Optional[tuple[int, int, int]] = None, tags: Optional[dict] = None) -> str:
    """Add a segment with terminology, colour and tags; returns its ID (made unique if taken).
    ``mask``: full-grid array or ``(crop, offsetKji)``."""
    structure = STRUCTURES[structureKey or kind]
    segmentation = segmentationNode.GetSegmentation()
    if segmentation.GetSegment(segmentId) is not None:
        segmentId = segmentation.GenerateUniqueSegmentID(segmentId)
    rgb = np.asarray(colorRgb or structure.color_rgb, dtype=float) / 255.0
    segmentation.AddEmptySegment(segmentId, name, rgb.tolist())
    segment = segmentation.GetSegment(segmentId)
    segment.SetTerminology(terminologyEntry(structure))
    segment.SetTag(TAG_KIND, kind)
    for key, value in (tags or {}).items():
        segment.SetTag(key, str(value))
    setSegmentMask(segmentationNode, segmentId, mask, geometry)
    return segmentId


# --- lesions -------------------------------------------------------------------------------------
def lesionMasks(lesions: LesionsInput, shape: tuple[int, int, int]) -> list[np.ndarray]:
    """Lesion masks from an instance label array (1..N, 0 background) or a list of masks."""
    if isinstance(lesions, np.ndarray) and lesions.ndim == 3:
        if tuple(lesions.shape) != tuple(shape):
            raise ValueError(f"lesion label array shape {lesions.shape} does not match the grid {shape}")
        if lesions.dtype == bool:
            return [lesions.copy()] if lesions.any() else []
        return [lesions == value for value in np.unique(lesions) if value > 0]
    masks = [np.asarray(mask).astype(bool) for mask in lesions]
    for index, mask in enumerate(masks):
        if tuple(mask.shape) != tuple(shape):
            raise ValueError(f"lesion {index + 1} mask shape {mask.shape} does not match the grid {shape}")
    return masks


def cropOfMask(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(crop, offsetKji)``: the tight boolean crop of a full-grid mask and its grid offset."""
    box = maskBoundingBox(mask)
    if box is None:
        return np.zeros((0, 0, 0), dtype=bool), np.zeros(3, dtype=int)
    return np.asarray(mask[box]) != 0, np.array([b.start for b in box])


def labelCrops(labels: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """``{value: (crop, offsetKji)}`` for every positive value of an integer label array, using one
    pass of ITK's label statistics for the bounding boxes (much faster than one comparison per label)."""
    import SimpleITK as sitk

    labels = np.asarray(labels)
    if labels.dtype == bool:
        return {1: cropOfMask(labels)} if labels.any() else {}
    if labels.min() < 0:
        raise ValueError("label arrays must not hold negative values")
    statistics = sitk.LabelShapeStatisticsImageFilter()
    statistics.Execute(sitk.GetImageFromArray(labels.astype(np.uint32 if labels.max() > 65535 else np.uint16)))
    crops = {}
    for value in sorted(statistics.GetLabels()):
        i, j, k, ni, nj, nk = statistics.GetBoundingBox(value)
        box = (slice(k, k + nk), slice(j, j + nj), slice(i, i + ni))
        crops[int(value)] = (labels[box] == value, np.array([k, j, i]))
    return crops


def lesionCrops(lesions, shape: tuple[int, int, int]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Lesions as ``(crop, offsetKji)`` from an instance label array (1..N), a list of full-grid masks
    or a list of ``(crop, offsetKji)`` pairs."""
    if isinstance(lesions, np.ndarray) and lesions.ndim == 3:
        if tuple(lesions.shape) != tuple(shape):
            raise ValueError(f"lesion label array shape {lesions.shape} does not match the grid {shape}")
        return list(labelCrops(lesions).values())
    crops = []
    for index, item in enumerate(lesions):
        if isinstance(item, tuple):
            crops.append((np.asarray(item[0]).astype(bool), np.asarray(item[1], dtype=int)))
            continue
        if tuple(np.shape(item)) != tuple(shape):
            raise ValueError(f"lesion {index + 1} mask shape {np.shape(item)} does not match the grid {shape}")
        crops.append(cropOfMask(np.asarray(item)))
    return crops


def nextLesionNumber(segmentationNode) -> int:
    numbers = [int(getTag(getSegment(segmentationNode, segmentId), TAG_LESION_NUMBER, "0"))
               for segmentId in lesionIds(segmentationNode)]
    return max(numbers, default=0) + 1


def addLesionSegment(segmentationNode, mask, geometry: Optional[Geometry] = None, *,
                     origin: str, status: str = "candidate", confidence: Optional[float] = None,
                     number: Optional[int] = None, extraTags: Optional[dict] = None) -> str:
    """Add "Lesion n" (n = next free number unless given); returns the segment ID."""
    number = number or nextLesionNumber(segmentationNode)
    tags = {TAG_LESION_NUMBER: number, TAG_STATUS: status, TAG_ORIGIN: origin}
    if confidence is not None:
        tags[TAG_CONFIDENCE] = f"{float(confidence):.3f}"
    tags.update(extraTags or {})
    return addSegment(segmentationNode, f"lesion_{number}", f"Lesion {number}", KIND_LESION, mask, geometry,
                      tags=tags)


def _checkMask(mask: Optional[np.ndarray], geometry: Geometry, what: str) -> Optional[np.ndarray]:
    if mask is None:
        return None
    mask = np.asarray(mask)
    if tuple(mask.shape) != geometry.shape:
        raise ValueError(f"the {what} mask has shape {mask.shape} but the grid is {geometry.shape}")
    return mask


def fillStudySegments(segmentationNode, geometry: Geometry, *, liver: Optional[np.ndarray], lesions: LesionsInput = (),
                      portal: Optional[np.ndarray] = None, hepatic: Optional[np.ndarray] = None,
                      ivc: Optional[np.ndarray] = None, couinaud: Optional[np.ndarray] = None,
                      confidences: Optional[Sequence[float]] = None, likelyCysts: Optional[Sequence[bool]] = None,
                      skipLesions: Iterable[int] = (), skipKinds: Iterable[str] = ()) -> list[str]:
    """Add the automatic segments to ``segmentationNode``; returns the new segment IDs.

    ``confidences`` and ``likelyCysts`` (one per lesion, optional) become the lesion segments' tags.

    ``skipLesions`` are 0-based indices of ``lesions`` and ``skipKinds`` structure keys not to add
    (used when a re-run keeps the user's version).
    """
    structures = {"liver": _checkMask(liver, geometry, "liver"), "portal_vein": _checkMask(portal, geometry, "portal vein"),
                  "hepatic_veins": _checkMask(hepatic, geometry, "hepatic veins"), "ivc": _checkMask(ivc, geometry, "IVC")}
    added = []
    skipKinds, skipLesions = set(skipKinds), set(skipLesions)
    if structures["liver"] is not None and "liver" not in skipKinds:
        added.append(addSegment(segmentationNode, "liver", "Liver", "liver", cropOfMask(structures["liver"]), geometry,
                                tags={TAG_ORIGIN: "automatic"}))
    masks = lesionCrops(lesions, geometry.shape)
    for what, values in (("confidences", confidences), ("likely-cyst flags", likelyCysts)):
        if values is not None and len(values) != len(masks):
            raise ValueError(f"{len(values)} lesion {what} given for {len(masks)} lesions")
    for index, mask in enumerate(masks):
        if index in skipLesions:
            continue
        cyst = likelyCysts is not None and bool(likelyCysts[index])
        added.append(addLesionSegment(segmentationNode, mask, geometry, origin="automatic",
                                      confidence=None if confidences is None else confidences[index],
                                      extraTags={TAG_LIKELY_CYST: "yes"} if cyst else None))
    for key in ("portal_vein", "hepatic_veins", "ivc"):
        if structures[key] is not None and key not in skipKinds:
            added.append(addSegment(segmentationNode, key, SEGMENT_NAMES[key], key, cropOfMask(structures[key]), geometry,
                                    tags={TAG_ORIGIN: "automatic"}))
    couinaud = _checkMask(couinaud, geometry, "Couinaud")
    if couinaud is not None and KIND_COUINAUD not in skipKinds:
        crops = labelCrops(couinaud)
        empty = (np.zeros((0, 0, 0), dtype=bool), np.zeros(3, dtype=int))
        for value, name in COUINAUD_NAMES.items():
            added.append(addSegment(segmentationNode, f"couinaud_{value}", name, KIND_COUINAUD, crops.get(value, empty),
                                    geometry, structureKey="liver", colorRgb=COUINAUD_COLORS_RGB[value],
                                    tags={TAG_COUINAUD: value, TAG_ORIGIN: "automatic"}))
    return added


def createStudySegmentation(scene, geometry: Geometry, name: str):
    """A new, empty segmentation node on the study grid with display nodes."""
    segmentationNode = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    segmentationNode.SetAttribute(ATTRIBUTE_ROLE, ROLE_STUDY)
    segmentationNode.CreateDefaultDisplayNodes()
    setSegmentationGeometry(segmentationNode, geometry)
    return segmentationNode


def couinaudOfVoxels(segmentationNode, pointsKji: np.ndarray) -> Optional[int]:
    """Couinaud segment (1..8) holding most of the given ``[k, j, i]`` voxels (study grid), or None
    when there are no Couinaud segments or none of them holds any of the voxels."""
    points = np.asarray(pointsKji, dtype=int).reshape(-1, 3)
    counts = {}
    for segmentId in segmentIds(segmentationNode, KIND_COUINAUD):
        crop, offset = segmentMaskCropped(segmentationNode, segmentId)
        local = points - offset
        inside = np.all((local >= 0) & (local < np.array(crop.shape)), axis=1)
        value = int(getTag(getSegment(segmentationNode, segmentId), TAG_COUINAUD, "0"))
        counts[value] = int(crop[local[inside, 0], local[inside, 1], local[inside, 2]].sum()) if inside.any() else 0
    if not counts or max(counts.values()) == 0:
        return None
    return max(counts, key=counts.get)


def studyArrays(segmentationNode, *, includeRejected: bool = False) -> dict:
    """The study as core arrays on its grid (``[k, j, i]``): ``liver`` (bool), ``lesions`` (lesion
    number per voxel; rejected lesions left out unless ``includeRejected``), ``labels``
    (``RESULT_LABELS`` values: 1 liver parenchyma, 2 lesion, 3 portal vein, 4 hepatic veins + IVC),
    ``ivc`` (bool or None), ``couinaud`` (1..8, or None) and ``geometry``."""
    from livermets.labels import RESULT_HEPATIC, RESULT_LESION, RESULT_LIVER, RESULT_PORTAL

    geometry = segmentationGeometry(segmentationNode)
    liver = np.zeros(geometry.shape, dtype=bool)
    for segmentId in segmentIds(segmentationNode, "liver"):
        liver |= segmentMask(segmentationNode, segmentId)
    lesions = np.zeros(geometry.shape, dtype=np.uint16)
    for segmentId in lesionIds(segmentationNode):
        segment = getSegment(segmentationNode, segmentId)
        if getTag(segment, TAG_STATUS, "candidate") == "rejected" and not includeRejected:
            continue
        crop, offset = segmentMaskCropped(segmentationNode, segmentId)
        region = tuple(slice(o, o + n) for o, n in zip(offset, crop.shape))
        lesions[region][crop] = int(getTag(segment, TAG_LESION_NUMBER, "0"))
    labels = np.where(liver, RESULT_LIVER, 0).astype(np.uint8)
    masks = {kind: [segmentMask(segmentationNode, i) for i in segmentIds(segmentationNode, kind)]
             for kind in ("portal_vein", "hepatic_veins", "ivc")}
    for kind, value in (("portal_vein", RESULT_PORTAL), ("hepatic_veins", RESULT_HEPATIC), ("ivc", RESULT_HEPATIC)):
        for mask in masks[kind]:
            labels[mask] = value
    labels[lesions > 0] = RESULT_LESION
    couinaudIds = segmentIds(segmentationNode, KIND_COUINAUD)
    couinaud = None
    if couinaudIds:
        couinaud = np.zeros(geometry.shape, dtype=np.uint8)
        for segmentId in couinaudIds:
            couinaud[segmentMask(segmentationNode, segmentId)] = int(getTag(getSegment(segmentationNode, segmentId),
                                                                            TAG_COUINAUD, "0"))
    ivc = np.any(masks["ivc"], axis=0) if masks["ivc"] else None
    return {"geometry": geometry, "liver": liver | (lesions > 0), "lesions": lesions, "labels": labels, "ivc": ivc,
            "couinaud": couinaud}
