"""How a LiverMets segmentation looks in Slicer's views: colours, opacities, surfaces, camera presets.

Display only: nothing here changes segment data (colours are display-node overrides).
Which structure a segment shows is read from its LiverMets kind tag (``segmentations.TAG_KIND``), else
from its terminology type code (SNOMED CT, the dispatch key in ``livermets.labels``), else from its name
("Lesion 3" is a lesion), so segmentations made outside LiverMets display too. Couinaud segments keep
their own colours and start hidden; rejected lesions are drawn grey and faint. Frames: RAS millimetres.
"""

from __future__ import annotations

import math
import re
from typing import Optional, Sequence

from livermets.labels import STRUCTURES

from LiverMetsLib.segmentations import KIND_COUINAUD, TAG_KIND, TAG_STATUS, getTag

DEFAULT_LIVER_OPACITY = 0.3
DEFAULT_SMOOTHING_FACTOR = 0.5
VESSEL_STRUCTURES = ("portal_vein", "hepatic_veins", "ivc")  # toggled together as "vessels"
LESION_RGB = (1.0, 1.0, 0.0)  # highlighted lesions: pure yellow, opaque
REJECTED_LESION_RGB = (0.6, 0.6, 0.6)
REJECTED_LESION_OPACITY = 0.4
COUINAUD_OPACITY = 0.5
# Structure keys a caller may toggle: the registry's, Couinaud segments, and "other" (unrecognised).
DISPLAY_KEYS = tuple(STRUCTURES) + (KIND_COUINAUD, "other")

CAMERA_PRESETS = ("anterior", "posterior", "right", "superior")
# preset -> (unit vector from focal point to camera, view-up vector), both RAS.
# "right" is the patient's right side, where the surgeon stands at open liver surgery.
_CAMERA_DIRECTIONS = {
    "anterior": ((0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
    "posterior": ((0.0, -1.0, 0.0), (0.0, 0.0, 1.0)),
    "right": ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
    "superior": ((0.0, 0.0, 1.0), (0.0, 1.0, 0.0)),
}

_CODE_TO_STRUCTURE = {structure.type.value: key for key, structure in STRUCTURES.items()}
_NAME_TO_STRUCTURE = {structure.name.lower(): key for key, structure in STRUCTURES.items()}
_NAME_TO_STRUCTURE.update({key.replace("_", " "): key for key in STRUCTURES})
_NAME_TO_STRUCTURE.update(
    {
        "portal venous system": "portal_vein",
        "metastasis": "lesion",
        "tumor": "lesion",
        "tumour": "lesion",
        "hepatic vein": "hepatic_veins",
    }
)


def structureKeyOfSegment(segment) -> Optional[str]:
    """Structure a ``vtkSegment`` shows: a ``livermets.labels.STRUCTURES`` key, "couinaud", or None."""
    kind = getTag(segment, TAG_KIND)
    if kind in STRUCTURES or kind == KIND_COUINAUD:
        return kind
    typeCode = _terminologyTypeCode(segment.GetTerminology() or "")
    if typeCode in _CODE_TO_STRUCTURE:
        return _CODE_TO_STRUCTURE[typeCode]
    name = re.sub(r"[\s_]*\d+$", "", (segment.GetName() or "").strip().lower()).replace("_", " ").strip()
    return _NAME_TO_STRUCTURE.get(name)


def _terminologyTypeCode(terminology: str) -> str:
    """SNOMED code value of the type field of a serialized Slicer terminology entry, or ""."""
    # Format: context~category~type~typeModifier~anatomicContext~region~regionModifier;
    # each code is scheme^value^meaning.
    fields = terminology.split("~")
    if len(fields) < 3:
        return ""
    parts = fields[2].split("^")
    return parts[1] if len(parts) >= 2 else ""


def segmentIdsByStructure(segmentationNode) -> dict[str, list[str]]:
    """Segment IDs grouped by structure key; segments of unknown structure are under ``"other"``."""
    segmentation = segmentationNode.GetSegmentation()
    groups: dict[str, list[str]] = {}
    for index in range(segmentation.GetNumberOfSegments()):
        segmentId = segmentation.GetNthSegmentID(index)
        key = structureKeyOfSegment(segmentation.GetSegment(segmentId)) or "other"
        groups.setdefault(key, []).append(segmentId)
    return groups


def structureDisplayRgb(structureKey: str) -> tuple[float, float, float]:
    """Display colour (0..1) of a structure: lesions highlighted yellow, others the registry colour."""
    if structureKey == "lesion":
        return LESION_RGB
    if structureKey in STRUCTURES:
        return tuple(channel / 255.0 for channel in STRUCTURES[structureKey].color_rgb)
    return (0.7, 0.7, 0.7)


def structureOpacity3D(structureKey: str, liverOpacity: float = DEFAULT_LIVER_OPACITY) -> float:
    """3D opacity: the liver see-through, everything else opaque."""
    return liverOpacity if structureKey == "liver" else 1.0


def applyStructureDisplay(
    segmentationNode,
    *,
    liverOpacity: float = DEFAULT_LIVER_OPACITY,
    smoothingFactor: float = DEFAULT_SMOOTHING_FACTOR,
    showIn2D: str = "outline",
) -> dict:
    """Set up the display of a LiverMets segmentation and build its smooth closed surfaces.

    Liver semi-transparent (``liverOpacity``), vessels opaque in their registry colours, lesions opaque
    yellow. ``smoothingFactor`` (0 none .. 1 strong) is the closed-surface conversion parameter; surfaces
    are rebuilt when it changes. ``showIn2D`` is ``"outline"``, ``"fill"`` or ``"both"`` (slice views).
    Returns the structure key of each segment ID.
    """
    if not 0.0 <= liverOpacity <= 1.0:
        raise ValueError(f"liverOpacity must be within 0..1, got {liverOpacity}")
    if not 0.0 <= smoothingFactor <= 1.0:
        raise ValueError(f"smoothingFactor must be within 0..1, got {smoothingFactor}")
    if showIn2D not in ("outline", "fill", "both"):
        raise ValueError(f"showIn2D must be 'outline', 'fill' or 'both', got {showIn2D!r}")
    segmentationNode.CreateDefaultDisplayNodes()
    displayNode = segmentationNode.GetDisplayNode()
    setSurfaceSmoothing(segmentationNode, smoothingFactor)
    structureOfSegment = {}
    with _displayModifying(displayNode):
        displayNode.SetVisibility(True)
        displayNode.SetVisibility3D(True)
        displayNode.SetVisibility2DOutline(showIn2D in ("outline", "both"))
        displayNode.SetVisibility2DFill(showIn2D in ("fill", "both"))
        displayNode.SetPreferredDisplayRepresentationName3D(_closedSurfaceName())
        segmentation = segmentationNode.GetSegmentation()
        for key, segmentIds in segmentIdsByStructure(segmentationNode).items():
            for segmentId in segmentIds:
                structureOfSegment[segmentId] = key
                opacity3D = structureOpacity3D(key, liverOpacity)
                if key == KIND_COUINAUD:
                    # Own colours; hidden at first since they cover the liver (toggle to show).
                    displayNode.UnsetSegmentOverrideColor(segmentId)
                    displayNode.SetSegmentVisibility(segmentId, False)
                    opacity3D = COUINAUD_OPACITY
                elif key == "lesion" and getTag(segmentation.GetSegment(segmentId), TAG_STATUS) == "rejected":
                    displayNode.SetSegmentOverrideColor(segmentId, *REJECTED_LESION_RGB)
                    opacity3D = REJECTED_LESION_OPACITY
                else:
                    displayNode.SetSegmentOverrideColor(segmentId, *structureDisplayRgb(key))
                displayNode.SetSegmentOpacity3D(segmentId, opacity3D)
                # Times the node's overall 2D fill opacity (Slicer's default 0.5).
                displayNode.SetSegmentOpacity2DFill(
                    segmentId, 0.4 if key in ("liver", KIND_COUINAUD) else 1.0
                )
                displayNode.SetSegmentOpacity2DOutline(segmentId, 1.0)
    return structureOfSegment


def setLiverOpacity(segmentationNode, opacity: float) -> list[str]:
    """Set the 3D opacity (0..1) of the liver segment(s); returns the segment IDs touched."""
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"liver opacity must be within 0..1, got {opacity}")
    segmentationNode.CreateDefaultDisplayNodes()
    displayNode = segmentationNode.GetDisplayNode()
    segmentIds = segmentIdsByStructure(segmentationNode).get("liver", [])
    with _displayModifying(displayNode):
        for segmentId in segmentIds:
            displayNode.SetSegmentOpacity3D(segmentId, float(opacity))
    return segmentIds


def setSurfaceSmoothing(segmentationNode, smoothingFactor: float) -> None:
    """Build (or rebuild when the factor changed) the closed surfaces with ``smoothingFactor`` (0..1)."""
    segmentation = segmentationNode.GetSegmentation()
    parameterName = "Smoothing factor"
    value = f"{smoothingFactor:g}"
    surfaceName = _closedSurfaceName()
    if segmentation.GetConversionParameter(parameterName) != value and segmentation.ContainsRepresentation(
        surfaceName
    ):
        segmentationNode.RemoveClosedSurfaceRepresentation()
    segmentation.SetConversionParameter(parameterName, value)
    if segmentation.GetNumberOfSegments() and not segmentationNode.CreateClosedSurfaceRepresentation():
        raise ValueError(f"could not build closed surfaces of segmentation '{segmentationNode.GetName()}'")


def setStructureVisibility(
    segmentationNode, structureKey: str, visible: bool, *, in3D: bool = True, in2D: bool = True
) -> list[str]:
    """Show or hide every segment of one structure (e.g. all lesions); returns the segment IDs touched.

    Showing lesions leaves rejected ones hidden (review hides them; restoring a lesion shows it).
    """
    if structureKey not in DISPLAY_KEYS:
        raise ValueError(f"unknown structure '{structureKey}'; known: {', '.join(DISPLAY_KEYS)}")
    segmentationNode.CreateDefaultDisplayNodes()
    displayNode = segmentationNode.GetDisplayNode()
    segmentIds = segmentIdsByStructure(segmentationNode).get(structureKey, [])
    if visible and structureKey == "lesion":
        segmentation = segmentationNode.GetSegmentation()
        segmentIds = [
            segmentId
            for segmentId in segmentIds
            if getTag(segmentation.GetSegment(segmentId), TAG_STATUS) != "rejected"
        ]
    with _displayModifying(displayNode):
        for segmentId in segmentIds:
            if in3D:
                displayNode.SetSegmentVisibility3D(segmentId, bool(visible))
            if in2D:
                displayNode.SetSegmentVisibility2DFill(segmentId, bool(visible))
                displayNode.SetSegmentVisibility2DOutline(segmentId, bool(visible))
            if visible:
                displayNode.SetSegmentVisibility(segmentId, True)
    return segmentIds


def structureVisibility3D(segmentationNode) -> dict[str, bool]:
    """For each structure present: True when at least one of its segments is visible in 3D."""
    displayNode = segmentationNode.GetDisplayNode()
    result = {}
    for key, segmentIds in segmentIdsByStructure(segmentationNode).items():
        result[key] = bool(displayNode) and any(
            displayNode.GetSegmentVisibility(segmentId) and displayNode.GetSegmentVisibility3D(segmentId)
            for segmentId in segmentIds
        )
    return result


def structureBoundsRas(segmentationNode, structureKey: Optional[str] = "liver") -> list[float]:
    """RAS bounds ``[xmin, xmax, ymin, ymax, zmin, zmax]`` (mm) of one structure's surfaces.

    Falls back to the whole segmentation when the structure is absent or ``structureKey`` is None.
    """
    import vtk

    segmentation = segmentationNode.GetSegmentation()
    segmentIds = segmentIdsByStructure(segmentationNode).get(structureKey, []) if structureKey else []
    if not segmentIds:
        segmentIds = [segmentation.GetNthSegmentID(i) for i in range(segmentation.GetNumberOfSegments())]
    if not segmentIds:
        raise ValueError(f"segmentation '{segmentationNode.GetName()}' has no segments to frame")
    if not segmentation.ContainsRepresentation(_closedSurfaceName()):
        segmentationNode.CreateClosedSurfaceRepresentation()
    box = vtk.vtkBoundingBox()
    for segmentId in segmentIds:
        polyData = vtk.vtkPolyData()
        segmentationNode.GetClosedSurfaceRepresentation(segmentId, polyData)
        if polyData.GetNumberOfPoints():
            box.AddBounds(polyData.GetBounds())
    if not box.IsValid():
        raise ValueError(f"segmentation '{segmentationNode.GetName()}' has only empty segments")
    bounds = [0.0] * 6
    box.GetBounds(bounds)
    return bounds


def cameraParametersForPreset(
    preset: str, boundsRas: Sequence[float], *, viewAngleDegrees: float = 30.0, marginFactor: float = 1.1
) -> dict:
    """Camera position, focal point and view-up (RAS mm) that frame ``boundsRas`` from ``preset``.

    The focal point is the box centre; the distance makes the box's bounding sphere (times
    ``marginFactor``) fill the view angle.
    """
    if preset not in _CAMERA_DIRECTIONS:
        raise ValueError(f"unknown camera preset '{preset}'; choose one of {', '.join(CAMERA_PRESETS)}")
    if len(boundsRas) != 6:
        raise ValueError("boundsRas must be [xmin, xmax, ymin, ymax, zmin, zmax] in mm")
    center = [(boundsRas[2 * axis] + boundsRas[2 * axis + 1]) / 2.0 for axis in range(3)]
    radius = 0.5 * math.sqrt(sum((boundsRas[2 * axis + 1] - boundsRas[2 * axis]) ** 2 for axis in range(3)))
    distance = max(radius, 1.0) * marginFactor / math.sin(math.radians(viewAngleDegrees) / 2.0)
    direction, viewUp = _CAMERA_DIRECTIONS[preset]
    position = [center[axis] + distance * direction[axis] for axis in range(3)]
    return {"position": position, "focalPoint": center, "viewUp": list(viewUp), "viewAngle": viewAngleDegrees}


def cameraNodeForView(viewNode):
    """The camera node of a 3D view node (matched by layout name, as Slicer's Cameras module does)."""
    scene = viewNode.GetScene()
    if scene is None:
        raise ValueError("the view node is not in a scene")
    cameras = scene.GetNodesByClass("vtkMRMLCameraNode")
    for index in range(cameras.GetNumberOfItems()):
        camera = cameras.GetItemAsObject(index)
        if camera.GetLayoutName() == viewNode.GetLayoutName():
            return camera
    return None


def setCameraPreset(cameraNode, preset: str, boundsRas: Sequence[float]) -> dict:
    """Point a camera node at ``boundsRas`` from ``preset`` (anterior, posterior, right, superior).

    Returns the parameters applied (see ``cameraParametersForPreset``).
    """
    if cameraNode is None:
        raise ValueError("no camera node: open a 3D view first")
    parameters = cameraParametersForPreset(preset, boundsRas, viewAngleDegrees=cameraNode.GetViewAngle())
    wasModifying = cameraNode.StartModify()
    cameraNode.SetFocalPoint(parameters["focalPoint"])
    cameraNode.SetPosition(parameters["position"])
    cameraNode.SetViewUp(parameters["viewUp"])
    cameraNode.EndModify(wasModifying)
    cameraNode.ResetClippingRange()
    return parameters


def _closedSurfaceName() -> str:
    import slicer

    return slicer.vtkSegmentationConverter.GetSegmentationClosedSurfaceRepresentationName()


class _displayModifying:
    """Batch display-node changes into one Modified event."""

    def __init__(self, node):
        self.node = node

    def __enter__(self):
        self.wasModifying = self.node.StartModify()
        return self.node

    def __exit__(self, *exc):
        self.node.EndModify(self.wasModifying)
        return False
