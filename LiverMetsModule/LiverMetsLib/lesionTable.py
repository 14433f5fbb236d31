"""The lesion table (``vtkMRMLTableNode``): one row per lesion segment, measured from its voxels.

Columns: lesion number, segment name and ID, RECIST 1.1 long / short axis (mm, in the acquisition
slice plane closest to axial), volume (ml), confidence, review status, Couinaud segment, and one
"nearest distance" column per distance the core measured (``<structure>_mm`` keys), shown only while
the lesion still has the voxels those distances were measured on.  Measurements are cached in the
segment's ``TAG_MEASUREMENTS`` tag keyed by the content hash, so unchanged lesions are not re-measured.
"""

from __future__ import annotations

import json
from typing import Optional

import numpy as np
from livermets.geometry import Geometry
from livermets.measure.lesion_size import recist_axes, volume_ml

from LiverMetsLib import segmentations as seg

BASE_COLUMNS = [("Lesion", "int"), ("Segment", "string"), ("Segment ID", "string"), ("Long axis (mm)", "double"),
                ("Short axis (mm)", "double"), ("Volume (ml)", "double"), ("Confidence", "double"),
                ("Status", "string"), ("Couinaud", "string")]
ATTRIBUTE_SEGMENTATION = "LiverMets.SegmentationNodeID"


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
    if cached.get("distancesHash") == currentHash:
        measured["distances_mm"] = cached.get("distances_mm", {})
        measured["distancesHash"] = currentHash
    measured["hash"] = currentHash
    segment.SetTag(seg.TAG_MEASUREMENTS, json.dumps(measured))
    return measured


def setLesionDistances(segmentationNode, segmentId: str, distancesMm: dict) -> None:
    """Attach core-measured nearest distances (mm, keyed by structure) to the lesion's current voxels."""
    segment = seg.getSegment(segmentationNode, segmentId)
    cached = json.loads(seg.getTag(segment, seg.TAG_MEASUREMENTS, "{}"))
    cached["distances_mm"] = {str(key): float(value) for key, value in distancesMm.items()}
    cached["distancesHash"] = seg.currentContentHash(segmentationNode, segmentId)
    segment.SetTag(seg.TAG_MEASUREMENTS, json.dumps(cached))


def _distanceColumn(key: str) -> str:
    """``distance_to_portal_vein_mm`` -> "Distance to portal vein (mm)"."""
    label = key.removesuffix("_mm")
    for prefix in ("distance_to_", "distance_"):
        label = label.removeprefix(prefix)
    return f"Distance to {label.replace('_', ' ')} (mm)"


def updateLesionTable(segmentationNode, tableNode, geometry: Optional[Geometry] = None, *,
                      couinaudLabels: Optional[np.ndarray] = None) -> None:
    """Rewrite ``tableNode`` from the lesion segments (sorted by lesion number)."""
    geometry = geometry or seg.segmentationGeometry(segmentationNode)
    rows = []
    for segmentId in seg.lesionIds(segmentationNode):
        segment = seg.getSegment(segmentationNode, segmentId)
        measured = lesionMeasurements(segmentationNode, segmentId, geometry, couinaudLabels=couinaudLabels)
        distances = measured.get("distances_mm", {}) if measured.get("distancesHash") == measured["hash"] else {}
        rows.append((int(seg.getTag(segment, seg.TAG_LESION_NUMBER, "0")), segment, segmentId, measured, distances))
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
        values = [str(number), segment.GetName(), segmentId, f"{measured['long_axis_mm']:.2f}",
                  f"{measured['short_axis_mm']:.2f}", f"{measured['volume_ml']:.4f}", confidence or "nan",
                  seg.getTag(segment, seg.TAG_STATUS, "candidate"), "" if couinaud is None else str(couinaud)]
        values += [f"{distances[key]:.2f}" if key in distances else "nan" for key in distanceKeys]
        for columnIndex, value in enumerate(values):
            tableNode.SetCellText(rowIndex, columnIndex, value)
    tableNode.SetAttribute(ATTRIBUTE_SEGMENTATION, segmentationNode.GetID())
    tableNode.EndModify(wasModifying)


def tableRows(tableNode) -> list[dict]:
    """The table as a list of ``{column name: cell text}`` (for tests and reports)."""
    table = tableNode.GetTable()
    names = [table.GetColumn(index).GetName() for index in range(table.GetNumberOfColumns())]
    return [{name: tableNode.GetCellText(row, column) for column, name in enumerate(names)}
            for row in range(tableNode.GetNumberOfRows())]
