"""The liver surface coloured by the distance to the nearest lesion (how much margin a cut can have).

:func:`createMarginSurface` makes a ``vtkMRMLModelNode`` from the liver segment's closed surface (RAS
mm, as the 3D view shows it) with the point-data array ``DISTANCE_ARRAY`` ("DistanceToLesion_mm"): the
distance (mm) from each surface point to the nearest lesion surface, 0 inside a lesion.  It is the exact
Euclidean distance to the nearest lesion voxel centre (SimpleITK's signed Maurer map with the voxel
spacing, Maurer et al., IEEE TPAMI 2003;25:265-270; sampled trilinearly, exact at voxel centres) less
half a voxel along the direction to that voxel (the map's gradient), as the core measures surface gaps
(``livermets.measure.surface.half_extent_mm``).  Colours:
red under 5 mm, yellow 5-10 mm, green from 10 mm (``MARGIN_BANDS_MM``).  Rejected lesions are ignored.
"""

from __future__ import annotations

import numpy as np
from livermets.geometry import Geometry
from livermets.measure.distances import distance_map_mm
from livermets.measure.surface import crop_box, half_extent_mm
from vtk.util import numpy_support

from LiverMetsLib import segmentations as seg

DISTANCE_ARRAY = "DistanceToLesion_mm"
# (upper bound mm, colour RGB 0..1, label); the last band is open-ended (clamped at its lower bound + 5 mm).
MARGIN_BANDS_MM = (
    (5.0, (0.9, 0.1, 0.1), "< 5 mm"),
    (10.0, (1.0, 0.85, 0.0), "5-10 mm"),
    (15.0, (0.1, 0.7, 0.2), ">= 10 mm"),
)
ATTRIBUTE_MARGIN_MODEL = "LiverMets.MarginSurfaceOf"
COLOR_NODE_NAME = "LiverMets margin colours"


def sampleTrilinear(volume: np.ndarray, pointsKji: np.ndarray) -> np.ndarray:
    """Trilinear interpolation of a ``[k, j, i]`` array at continuous indices ``(n, 3)`` (clamped to
    the grid)."""
    shape = np.array(volume.shape)
    points = np.clip(np.asarray(pointsKji, dtype=float), 0, shape - 1)
    low = np.minimum(np.floor(points).astype(int), np.maximum(shape - 2, 0))
    fraction = points - low
    result = np.zeros(len(points))
    for corner in np.ndindex(2, 2, 2):
        index = np.minimum(low + corner, shape - 1)
        weight = np.prod(np.where(corner, fraction, 1.0 - fraction), axis=1)
        result += weight * volume[index[:, 0], index[:, 1], index[:, 2]]
    return result


def lesionDistanceAtPoints(
    lesions: np.ndarray, geometry: Geometry, pointsRas: np.ndarray, *, region: np.ndarray | None = None
) -> np.ndarray:
    """Distance (mm, >= 0) from RAS points to the surface of the nearest voxel of the ``lesions`` mask.

    ``region`` (bool, same grid) limits the distance map to its bounding box (plus 2 voxels): pass the
    liver when the points lie on its surface.
    """
    lesions = np.asarray(lesions, dtype=bool)
    if not lesions.any():
        raise ValueError("the study has no lesions (or all are rejected): there is no margin to show")
    box = crop_box(lesions if region is None else (lesions | region), pad=2)
    offset = np.array([s.start for s in box])
    spacing = np.asarray(geometry.spacing_mm, dtype=float)
    distance = np.maximum(distance_map_mm(lesions[box], spacing), 0.0)
    pointsKji = geometry.ras_to_kji(np.asarray(pointsRas, dtype=float)) - offset
    gradient = np.stack(
        [sampleTrilinear(component, pointsKji) for component in np.gradient(distance, *spacing)], axis=1
    )
    unit = gradient / np.maximum(np.linalg.norm(gradient, axis=1, keepdims=True), 1e-9)
    return np.maximum(sampleTrilinear(distance, pointsKji) - half_extent_mm(unit, spacing), 0.0)


def marginColorNode(scene):
    """The shared red / yellow / green colour table over 0..15 mm (one colour per 5 mm band)."""
    node = scene.GetFirstNodeByName(COLOR_NODE_NAME)
    if node is not None:
        return node
    node = scene.AddNewNodeByClass("vtkMRMLColorTableNode", COLOR_NODE_NAME)
    node.SetTypeToUser()
    node.SetNumberOfColors(len(MARGIN_BANDS_MM))
    for index, (_, rgb, label) in enumerate(MARGIN_BANDS_MM):
        node.SetColor(index, label, *rgb, 1.0)
    node.SetAttribute("Category", "LiverMets")
    return node


def createMarginSurface(segmentationNode, *, name: str = "Liver margins", modelNode=None):
    """Model of the liver surface with ``DistanceToLesion_mm`` point scalars, coloured by margin band.

    Replaces the mesh of ``modelNode`` (or of the model made earlier for this segmentation) when given;
    returns the model node.  Distances use the non-rejected lesions.
    """
    import vtk

    arrays = seg.studyArrays(segmentationNode)
    liverIds = seg.segmentIds(segmentationNode, "liver")
    if not liverIds:
        raise ValueError("the study has no liver segment: segment the liver first")
    segmentationNode.CreateClosedSurfaceRepresentation()
    surface = vtk.vtkPolyData()
    appender = vtk.vtkAppendPolyData()
    for segmentId in liverIds:
        part = vtk.vtkPolyData()
        segmentationNode.GetClosedSurfaceRepresentation(segmentId, part)
        appender.AddInputData(part)
    appender.Update()
    surface.DeepCopy(appender.GetOutput())
    if surface.GetNumberOfPoints() == 0:
        raise ValueError("the liver segment is empty: there is no surface to colour")
    pointsRas = numpy_support.vtk_to_numpy(surface.GetPoints().GetData()).astype(float)
    distances = lesionDistanceAtPoints(
        arrays["lesions"] > 0, arrays["geometry"], pointsRas, region=arrays["liver"]
    )
    scalars = numpy_support.numpy_to_vtk(distances.astype(np.float32), deep=True)
    scalars.SetName(DISTANCE_ARRAY)
    surface.GetPointData().AddArray(scalars)
    surface.GetPointData().SetActiveScalars(DISTANCE_ARRAY)
    scene = segmentationNode.GetScene()
    modelNode = modelNode or _existingMarginModel(segmentationNode)
    if modelNode is None:
        modelNode = scene.AddNewNodeByClass("vtkMRMLModelNode", name)
        modelNode.SetAttribute(ATTRIBUTE_MARGIN_MODEL, segmentationNode.GetID())
    modelNode.SetAndObservePolyData(surface)
    modelNode.CreateDefaultDisplayNodes()
    display = modelNode.GetDisplayNode()
    display.SetActiveScalarName(DISTANCE_ARRAY)
    display.SetAndObserveColorNodeID(marginColorNode(scene).GetID())
    display.SetScalarRangeFlag(display.UseManualScalarRange)
    display.SetScalarRange(0.0, MARGIN_BANDS_MM[-1][0])
    display.SetScalarVisibility(True)
    display.SetVisibility(True)
    return modelNode


def _existingMarginModel(segmentationNode):
    models = segmentationNode.GetScene().GetNodesByClass("vtkMRMLModelNode")
    for index in range(models.GetNumberOfItems()):
        node = models.GetItemAsObject(index)
        if node.GetAttribute(ATTRIBUTE_MARGIN_MODEL) == segmentationNode.GetID():
            return node
    return None
