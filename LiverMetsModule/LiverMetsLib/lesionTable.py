"""The lesion table (``vtkMRMLTableNode``) and the RECIST line markups: one row per lesion segment.

Columns: lesion number, segment name and ID, RECIST 1.1 long / short axis (mm, in the acquisition
slice plane closest to axial), volume (ml), confidence, review status, main Couinaud segment, the
Couinaud fractions ("7: 82 %, 4: 18 %"), the maximum 3D diameter (mm), vessel contact (< 1 mm), and one
"nearest distance" column per structure (``Distance to portal / hepatic / ivc / capsule (mm)``, plus any
distances given by the caller), shown only while the lesion still has the voxels they were measured on.
The full measurements are the core's (``livermets.measure.lesions.measure_lesions``), run only on the
lesions whose voxels (or whose liver / vessels / Couinaud context) changed; they are cached in the
segment's ``TAG_MEASUREMENTS`` tag keyed by the content hash.  :func:`updateRecistMarkups` draws the
long and short axes as ``vtkMRMLMarkupsLineNode`` pairs from the core's endpoints (RAS mm), shown in
the slice views once :func:`setRecistMarkupsVisible` asks for them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Optional

import numpy as np
from livermets.geometry import Geometry
from livermets.labels import RESULT_HEPATIC, RESULT_PORTAL
from livermets.measure.lesion_size import recist_axes, volume_ml

from LiverMetsLib import segmentations as seg

BASE_COLUMNS = [("Lesion", "int"), ("Segment", "string"), ("Segment ID", "string"), ("Long axis (mm)", "double"),
                ("Short axis (mm)", "double"), ("Volume (ml)", "double"), ("Confidence", "double"),
                ("Likely cyst", "string"), ("Status", "string"), ("Couinaud", "string"), ("Couinaud fractions", "string"),
                ("Max 3D diameter (mm)", "double"), ("Vessel contact", "string")]
ATTRIBUTE_SEGMENTATION = "LiverMets.SegmentationNodeID"
ATTRIBUTE_RECIST_SEGMENT = "LiverMets.RecistSegmentID"
ATTRIBUTE_RECIST_AXIS = "LiverMets.RecistAxis"
ATTRIBUTE_RECIST_VISIBLE = "LiverMets.RecistLinesVisible"  # on the segmentation node: "1" shows the lines
RECIST_AXES = ("long", "short")
RECIST_COLORS_RGB = {"long": (1.0, 0.5, 0.0), "short": (0.0, 0.8, 1.0)}
CONTEXT_KINDS = ("liver", "portal_vein", "hepatic_veins", "ivc", seg.KIND_COUINAUD)


def measureCrop(crop: np.ndarray, offsetKji, geometry: Geometry) -> dict:
    """Volume (ml), RECIST long / short axes (mm) and centre (RAS mm) of one lesion given as a tight
    crop whose ``[0, 0, 0]`` voxel is grid index ``offsetKji``."""
    if not crop.any():
        return {"volume_ml": 0.0, "long_axis_mm": 0.0, "short_axis_mm": 0.0, "center_ras_mm": None}
    axes = recist_axes(crop, geometry, offset_kji=offsetKji)
    centerKji = np.argwhere(crop).mean(axis=0) + np.asarray(offsetKji)
    return {"volume_ml": volume_ml(crop, geometry), "long_axis_mm": float(axes.long.length_mm),
            "short_axis_mm": float(axes.short.length_mm),
            "center_ras_mm": [float(v) for v in geometry.kji_to_ras(centerKji)]}


def lesionMeasurements(segmentationNode, segmentId: str, geometry: Optional[Geometry] = None, *,
                       couinaudLabels: Optional[np.ndarray] = None) -> dict:
    """Measurements of one lesion segment, recomputed only when its voxels changed.

    ``couinaudLabels`` (``[k, j, i]``, values 1..8) gives the Couinaud segment directly; without it
    the Couinaud segments of the segmentation are read.
    """
    segment = seg.getSegment(segmentationNode, segmentId)
    geometry = geometry or seg.segmentationGeometry(segmentationNode)
    cached = json.loads(seg.getTag(segment, seg.TAG_MEASUREMENTS, "{}"))
    crop, offset = seg.segmentMaskCropped(segmentationNode, segmentId)
    currentHash = seg.hashOfCrop(crop, offset)
    if cached.get("hash") == currentHash and "volume_ml" in cached:
        return cached
    measured = measureCrop(crop, offset, geometry)
    points = np.argwhere(crop) + offset
    if len(points) == 0:
        measured["couinaud"] = None
    elif couinaudLabels is not None:
        values = np.bincount(couinaudLabels[points[:, 0], points[:, 1], points[:, 2]].astype(int).ravel(), minlength=9)
        values[0] = 0
        measured["couinaud"] = int(np.argmax(values)) if values.any() else None
    else:
        measured["couinaud"] = seg.couinaudOfVoxels(segmentationNode, points)
    if cached.get("coreHash") == currentHash:
        measured.update({key: cached[key] for key in ("core", "coreHash", "coreContext") if key in cached})
    measured["hash"] = currentHash
    segment.SetTag(seg.TAG_MEASUREMENTS, json.dumps(measured))
    return measured


def studyContextKey(segmentationNode) -> str:
    """Key of what the lesion distances and Couinaud fractions depend on besides the lesion itself:
    the content hashes LiverMets recorded on the liver, vessel and Couinaud segments (and their
    user-edited flags)."""
    parts = []
    for kind in CONTEXT_KINDS:
        for segmentId in seg.segmentIds(segmentationNode, kind):
            segment = seg.getSegment(segmentationNode, segmentId)
            written, edited = seg.getTag(segment, seg.TAG_CONTENT_HASH), seg.getTag(segment, seg.TAG_USER_EDITED)
            parts.append(f"{segmentId}:{written}:{edited}")
    return "|".join(parts)


# Distance maps of the vessels and the capsule per segmentation node, reused while the structures
# they come from are unchanged (adding or editing one lesion then costs no new maps). A few studies at most.
_distanceCache: dict = {}
_DISTANCE_CACHE_STUDIES = 4


def _studyDistances(segmentationNode, arrays: dict, geometry: Geometry) -> dict:
    """The core's ``structure_distances`` of this study, from the cache when the liver, vessel and
    IVC voxels are the same as when they were computed."""
    from livermets.measure.lesions import BOX_PAD_VOXELS, structure_distances
    from livermets.measure.surface import crop_box

    labels, liver = arrays["labels"], arrays["liver"]
    digest = hashlib.sha1()
    for mask in (labels == RESULT_PORTAL, labels == RESULT_HEPATIC, liver,
                 arrays["ivc"] if arrays["ivc"] is not None else np.zeros(0, bool)):
        digest.update(np.packbits(mask).tobytes())
    key = (digest.hexdigest(), geometry)
    cached = _distanceCache.get(segmentationNode.GetID())
    if cached is None or cached[0] != key:
        box = crop_box(liver | (arrays["lesions"] > 0), pad=BOX_PAD_VOXELS)
        cached = (key, structure_distances(labels, geometry, liver, ivc=arrays["ivc"], box=box))
        _distanceCache.pop(segmentationNode.GetID(), None)
        _distanceCache[segmentationNode.GetID()] = cached
        while len(_distanceCache) > _DISTANCE_CACHE_STUDIES:
            _distanceCache.pop(next(iter(_distanceCache)))
    return cached[1]


def measureChangedLesions(segmentationNode, geometry: Optional[Geometry] = None) -> list[str]:
    """Run the core's ``measure_lesions`` on the lesion segments whose cached measurement is stale
    (voxels or study context changed) and cache the rows; returns the segment IDs measured.

    Rejected lesions are measured too (their row stays in the table). Distances are mm, points RAS mm.
    """
    from livermets.measure.lesions import measure_lesions

    geometry = geometry or seg.segmentationGeometry(segmentationNode)
    context = studyContextKey(segmentationNode)
    stale = []
    for segmentId in seg.lesionIds(segmentationNode):
        measured = lesionMeasurements(segmentationNode, segmentId, geometry)
        if measured.get("coreHash") != measured["hash"] or measured.get("coreContext") != context:
            stale.append((segmentId, measured))
    if not stale:
        return []
    arrays = seg.studyArrays(segmentationNode, includeRejected=True)
    instances = np.zeros(geometry.shape, dtype=np.uint16)
    measuredIds = []
    for segmentId, measured in stale:
        crop, offset = seg.segmentMaskCropped(segmentationNode, segmentId)
        if crop.any():
            measuredIds.append(segmentId)
            region = tuple(slice(o, o + n) for o, n in zip(offset, crop.shape))
            instances[region][crop] = len(measuredIds)
    rows = []
    if measuredIds:
        distances = _studyDistances(segmentationNode, arrays, geometry)
        try:
            rows = measure_lesions(instances, arrays["labels"], geometry, couinaud=arrays["couinaud"],
                                   liver=arrays["liver"], ivc=arrays["ivc"], distances=distances)
        except ValueError:  # a lesion outside the cached maps' box: measure with fresh maps
            _distanceCache.pop(segmentationNode.GetID(), None)
            rows = measure_lesions(instances, arrays["labels"], geometry, couinaud=arrays["couinaud"],
                                   liver=arrays["liver"], ivc=arrays["ivc"])
    coreById = {segmentId: row for segmentId, row in zip(measuredIds, rows)}
    for segmentId, measured in stale:
        measured.update({"core": coreById.get(segmentId), "coreHash": measured["hash"],
                         "coreContext": context})
        seg.getSegment(segmentationNode, segmentId).SetTag(seg.TAG_MEASUREMENTS, json.dumps(measured))
    return [segmentId for segmentId, _ in stale]


def _distanceColumn(key: str) -> str:
    """``distance_to_portal_vein_mm`` -> "Distance to portal vein (mm)"."""
    label = key.removesuffix("_mm")
    for prefix in ("distance_to_", "distance_"):
        label = label.removeprefix(prefix)
    return f"Distance to {label.replace('_', ' ')} (mm)"


def couinaudFractionsText(fractions: dict) -> str:
    """``{"7": 0.82, "4": 0.18}`` -> "7: 82 %, 4: 18 %" (largest first, as the core orders them)."""
    return ", ".join(f"{segment}: {100.0 * fraction:.0f} %"
                     for segment, fraction in (fractions or {}).items())


def lesionDistances(measured: dict) -> dict:
    """Nearest distances (mm) of a cached core measurement (``<structure>_mm``), when it is valid for
    the lesion's current voxels."""
    distances = {}
    core = measured.get("core") if measured.get("coreHash") == measured["hash"] else None
    if core:
        distances.update({f"{name}_mm": value for name, value in core["nearest"].items()
                          if value is not None})
    return distances


def updateLesionTable(segmentationNode, tableNode, geometry: Optional[Geometry] = None, *,
                      couinaudLabels: Optional[np.ndarray] = None) -> None:
    """Measure the changed lesions (:func:`measureChangedLesions`) and rewrite ``tableNode`` from the
    lesion segments (sorted by lesion number)."""
    geometry = geometry or seg.segmentationGeometry(segmentationNode)
    measureChangedLesions(segmentationNode, geometry)
    rows = []
    for segmentId in seg.lesionIds(segmentationNode):
        segment = seg.getSegment(segmentationNode, segmentId)
        measured = lesionMeasurements(segmentationNode, segmentId, geometry, couinaudLabels=couinaudLabels)
        rows.append((int(seg.getTag(segment, seg.TAG_LESION_NUMBER, "0")), segment, segmentId, measured,
                     lesionDistances(measured)))
    rows.sort(key=lambda row: row[0])
    distanceKeys = sorted({key for row in rows for key in row[4]})
    columns = BASE_COLUMNS + [(_distanceColumn(key), "double") for key in distanceKeys]
    wasModifying = tableNode.StartModify()
    tableNode.RemoveAllColumns()
    for name, valueType in columns:
        column = tableNode.AddColumn()
        column.SetName(name)
        tableNode.SetColumnType(name, {"int": 6, "double": 11, "string": 13}[valueType])
    for rowIndex, (number, segment, segmentId, measured, distances) in enumerate(rows):
        tableNode.AddEmptyRow()
        confidence = seg.getTag(segment, seg.TAG_CONFIDENCE)
        couinaud = measured.get("couinaud")
        core = measured.get("core") or {}
        values = [str(number), segment.GetName(), segmentId, f"{measured['long_axis_mm']:.2f}",
                  f"{measured['short_axis_mm']:.2f}", f"{measured['volume_ml']:.4f}", confidence or "nan",
                  seg.getTag(segment, seg.TAG_LIKELY_CYST, ""),
                  seg.getTag(segment, seg.TAG_STATUS, "candidate"), "" if couinaud is None else str(couinaud),
                  couinaudFractionsText(core.get("couinaud")),
                  f"{core['max_diameter_3d_mm']:.2f}" if core else "nan",
                  ", ".join(core.get("vessel_contact", [])) or ("none" if core else "")]
        values += [f"{distances[key]:.2f}" if key in distances else "nan" for key in distanceKeys]
        for columnIndex, value in enumerate(values):
            tableNode.SetCellText(rowIndex, columnIndex, value)
    tableNode.SetAttribute(ATTRIBUTE_SEGMENTATION, segmentationNode.GetID())
    tableNode.EndModify(wasModifying)


def recistMarkupNodes(segmentationNode) -> dict[tuple[str, str], object]:
    """The RECIST line markups of a segmentation: ``{(segmentId, "long" | "short"): line node}``."""
    scene = segmentationNode.GetScene()
    found = {}
    lines = scene.GetNodesByClass("vtkMRMLMarkupsLineNode")
    for index in range(lines.GetNumberOfItems()):
        node = lines.GetItemAsObject(index)
        segmentId = node.GetAttribute(ATTRIBUTE_RECIST_SEGMENT)
        if segmentId and node.GetAttribute(ATTRIBUTE_SEGMENTATION) == segmentationNode.GetID():
            found[(segmentId, node.GetAttribute(ATTRIBUTE_RECIST_AXIS))] = node
    return found


def updateRecistMarkups(segmentationNode,
                        geometry: Optional[Geometry] = None) -> dict[tuple[str, str], object]:
    """Draw each lesion's RECIST long and short axes as line markups ("Lesion 3 RECIST long"), endpoints
    from the core's measurement (RAS mm); lines of deleted, emptied or rejected lesions are removed.
    Measures changed lesions first; returns the current ``{(segmentId, axis): line node}``."""
    geometry = geometry or seg.segmentationGeometry(segmentationNode)
    measureChangedLesions(segmentationNode, geometry)
    scene = segmentationNode.GetScene()
    existing = recistMarkupNodes(segmentationNode)
    wanted = {}
    for segmentId in seg.lesionIds(segmentationNode):
        segment = seg.getSegment(segmentationNode, segmentId)
        measured = lesionMeasurements(segmentationNode, segmentId, geometry)
        core = measured.get("core")
        if not core or seg.getTag(segment, seg.TAG_STATUS) == "rejected":
            continue
        for axis in RECIST_AXES:
            line = core["recist"][axis]
            node = existing.pop((segmentId, axis), None)
            node = node or _newRecistLine(scene, segmentationNode, segmentId, axis)
            _setLine(node, f"{segment.GetName()} RECIST {axis}", line["start_ras_mm"], line["end_ras_mm"])
            wanted[(segmentId, axis)] = node
    for node in existing.values():
        scene.RemoveNode(node)
    return wanted


def setRecistMarkupsVisible(segmentationNode, visible: bool) -> int:
    """Show or hide the RECIST lines of a study in the slice views (hidden until asked for, so key
    images stay clean); lines made later follow the setting.  Returns the number of lines touched."""
    segmentationNode.SetAttribute(ATTRIBUTE_RECIST_VISIBLE, "1" if visible else "0")
    lines = recistMarkupNodes(segmentationNode).values()
    for node in lines:
        node.GetDisplayNode().SetVisibility(bool(visible))
    return len(lines)


def _newRecistLine(scene, segmentationNode, segmentId: str, axis: str):
    node = scene.AddNewNodeByClass("vtkMRMLMarkupsLineNode")
    node.SetAttribute(ATTRIBUTE_SEGMENTATION, segmentationNode.GetID())
    node.SetAttribute(ATTRIBUTE_RECIST_SEGMENT, segmentId)
    node.SetAttribute(ATTRIBUTE_RECIST_AXIS, axis)
    node.CreateDefaultDisplayNodes()
    display = node.GetDisplayNode()
    display.SetSelectedColor(*RECIST_COLORS_RGB[axis])
    display.SetColor(*RECIST_COLORS_RGB[axis])
    display.SetVisibility3D(False)  # a slice-view measurement; in 3D the labels would cover the liver
    display.SetVisibility(segmentationNode.GetAttribute(ATTRIBUTE_RECIST_VISIBLE) == "1")
    node.SetLocked(True)  # measured, not drawn by hand: editing the lesion moves it
    return node


def _setLine(node, name: str, startRas: Sequence[float], endRas: Sequence[float]) -> None:
    current = [[0.0] * 3, [0.0] * 3]
    if node.GetNumberOfControlPoints() == 2:
        node.GetNthControlPointPositionWorld(0, current[0])
        node.GetNthControlPointPositionWorld(1, current[1])
        if np.allclose(current, [startRas, endRas], atol=1e-6) and node.GetName() == name:
            return
    wasModifying = node.StartModify()
    node.SetName(name)
    node.RemoveAllControlPoints()
    node.AddControlPointWorld(*[float(v) for v in startRas])
    node.AddControlPointWorld(*[float(v) for v in endRas])
    node.EndModify(wasModifying)


def tableRows(tableNode) -> list[dict]:
    """The table as a list of ``{column name: cell text}`` (for tests and reports)."""
    table = tableNode.GetTable()
    names = [table.GetColumn(index).GetName() for index in range(table.GetNumberOfColumns())]
    return [{name: tableNode.GetCellText(row, column) for column, name in enumerate(names)}
            for row in range(tableNode.GetNumberOfRows())]
