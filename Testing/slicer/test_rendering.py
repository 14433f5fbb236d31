"""Display set-up and camera presets of LiverMetsLib.rendering, checked on real MRML and real pixels.

The scene is analytic (``buildSyntheticLiverScene``): an ellipsoid liver, one spherical lesion and two
straight vessels in RAS mm on an oblique grid (rotated 10 degrees about S), so every expected position
comes from the shapes' definitions, not from a previous run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
from livermets.geometry import LPS_TO_RAS, Geometry

# Analytic shapes (RAS mm).
LIVER_CENTER_RAS = np.array([0.0, 0.0, 0.0])
LIVER_RADII_MM = np.array([70.0, 55.0, 45.0])
LESION_CENTER_RAS = np.array([-30.0, 20.0, 5.0])
LESION_RADIUS_MM = 12.0
PORTAL_AXIS_XY_RAS = np.array([25.0, -10.0])  # a vertical (S-I) tube
PORTAL_RADIUS_MM = 6.0
HEPATIC_AXIS_XZ_RAS = np.array([-5.0, 25.0])  # an anterior-posterior tube
HEPATIC_RADIUS_MM = 5.0
LIVER_ONLY_RAS = np.array([45.0, 0.0, -25.0])  # seen from the front, only liver lies on this line
INTENSITY = {"background": 20, "liver": 120, "lesion": 60, "vessel": 200}
WINDOW, LEVEL = 250.0, 110.0


@dataclass
class SyntheticLiverScene:
    volumeNode: object
    segmentationNode: object
    geometry: Geometry
    lesionId: str


def syntheticGeometry(shape=(40, 64, 76), spacingIjkMm=(2.4, 2.2, 3.5), rotationDegrees=10.0) -> Geometry:
    """An oblique grid (rotated about S) whose centre voxel sits at RAS (0, 0, 0)."""
    angle = math.radians(rotationDegrees)
    directionRas = np.array(
        [[math.cos(angle), -math.sin(angle), 0.0], [math.sin(angle), math.cos(angle), 0.0], [0.0, 0.0, 1.0]]
    )
    directionLps = LPS_TO_RAS @ directionRas
    centerOffsetLps = directionLps @ (np.asarray(spacingIjkMm) * (np.array(shape[::-1]) - 1) / 2.0)
    return Geometry(
        shape=shape,
        spacing_ijk_mm=spacingIjkMm,
        origin_lps_mm=tuple(-centerOffsetLps),
        direction_lps=tuple(directionLps.ravel()),
    )


def buildSyntheticLiverScene(scene, geometry: Geometry | None = None) -> SyntheticLiverScene:
    from LiverMetsLib import segmentations, volumes

    geometry = geometry or syntheticGeometry()
    kji = np.stack(np.meshgrid(*[np.arange(n) for n in geometry.shape], indexing="ij"), axis=-1)
    ras = geometry.kji_to_ras(kji.reshape(-1, 3)).reshape(*geometry.shape, 3)
    liver = (((ras - LIVER_CENTER_RAS) / LIVER_RADII_MM) ** 2).sum(axis=-1) < 1.0
    lesion = (((ras - LESION_CENTER_RAS) ** 2).sum(axis=-1) < LESION_RADIUS_MM**2) & liver
    portal = (((ras[..., :2] - PORTAL_AXIS_XY_RAS) ** 2).sum(axis=-1) < PORTAL_RADIUS_MM**2) & (
        np.abs(ras[..., 2]) < 55
    )
    hepatic = (((ras[..., [0, 2]] - HEPATIC_AXIS_XZ_RAS) ** 2).sum(axis=-1) < HEPATIC_RADIUS_MM**2) & (
        np.abs(ras[..., 1]) < 45
    )
    image = np.full(geometry.shape, INTENSITY["background"], dtype=np.int16)
    image[liver] = INTENSITY["liver"]
    image[lesion] = INTENSITY["lesion"]
    image[portal | hepatic] = INTENSITY["vessel"]
    volumeNode = volumes.addVolumeNode(scene, image, geometry, "T1 synthetic")
    displayNode = volumeNode.GetDisplayNode()
    displayNode.SetAutoWindowLevel(False)
    displayNode.SetWindowLevel(WINDOW, LEVEL)
    segmentationNode = segmentations.createStudySegmentation(scene, geometry, "LiverMets synthetic")
    ids = segmentations.fillStudySegments(
        segmentationNode,
        geometry,
        liver=liver & ~lesion & ~portal & ~hepatic,
        lesions=[lesion],
        portal=portal,
        hepatic=hepatic,
    )
    lesionId = next(segmentId for segmentId in ids if segmentId in segmentations.lesionIds(segmentationNode))
    return SyntheticLiverScene(volumeNode, segmentationNode, geometry, lesionId)


@pytest.fixture
def liverScene(scene):
    return buildSyntheticLiverScene(scene)


def isYellow(pixel) -> bool:
    """Yellow-dominant: bright red and green, little blue (shaded or seen through the liver is still yellow).

    The liver alone (221, 130, 101), even opaque, fails on blue; blended at 0.3 it fails on green.
    """
    red, green, blue = (int(value) for value in pixel)
    return red > 100 and green > 100 and green > 0.6 * red and blue < 0.5 * min(red, green)


# --- display set-up ------------------------------------------------------------------------------
def test_display_liver_see_through_vessels_opaque_lesion_yellow(liverScene):
    from livermets.labels import STRUCTURES
    from LiverMetsLib import rendering

    structures = rendering.applyStructureDisplay(liverScene.segmentationNode, liverOpacity=0.3)
    displayNode = liverScene.segmentationNode.GetDisplayNode()
    byKey = {key: [i for i, k in structures.items() if k == key] for key in set(structures.values())}
    assert set(byKey) == {"liver", "lesion", "portal_vein", "hepatic_veins"}
    (liverId,), (portalId,), (hepaticId,) = byKey["liver"], byKey["portal_vein"], byKey["hepatic_veins"]
    assert displayNode.GetSegmentOpacity3D(liverId) == pytest.approx(0.3)
    for segmentId in (portalId, hepaticId, liverScene.lesionId):
        assert displayNode.GetSegmentOpacity3D(segmentId) == 1.0
    assert displayNode.GetSegmentOverrideColor(liverScene.lesionId) == pytest.approx((1.0, 1.0, 0.0))
    assert displayNode.GetSegmentOverrideColor(portalId) == pytest.approx(
        [c / 255 for c in STRUCTURES["portal_vein"].color_rgb]
    )
    assert liverScene.segmentationNode.GetSegmentation().ContainsRepresentation("Closed surface")


def test_smoothing_factor_rebuilds_the_surfaces(liverScene):
    import vtk
    from LiverMetsLib import rendering
    from vtk.util import numpy_support

    node = liverScene.segmentationNode

    def lesionSurfacePoints():
        polyData = vtk.vtkPolyData()
        node.GetClosedSurfaceRepresentation(liverScene.lesionId, polyData)
        return numpy_support.vtk_to_numpy(polyData.GetPoints().GetData()).copy()

    rendering.applyStructureDisplay(node, smoothingFactor=0.0)
    rough = lesionSurfacePoints()
    rendering.applyStructureDisplay(node, smoothingFactor=0.8)
    smooth = lesionSurfacePoints()
    assert node.GetSegmentation().GetConversionParameter("Smoothing factor") == "0.8"

    # A smoothed sphere's radii vary less than the voxel staircase's (truth: radius 12 mm sphere).
    def radiusSpreadMm(points):
        return float(np.std(np.linalg.norm(points - LESION_CENTER_RAS, axis=1)))

    assert radiusSpreadMm(smooth) < 0.7 * radiusSpreadMm(rough)
    assert np.median(np.linalg.norm(smooth - LESION_CENTER_RAS, axis=1)) == pytest.approx(
        LESION_RADIUS_MM, abs=2.5
    )


def test_structure_is_recognised_by_kind_code_or_name(scene):
    import slicer
    from livermets.labels import STRUCTURES
    from LiverMetsLib import rendering, segmentations

    segment = slicer.vtkSegment()
    segment.SetName("Segment_1")
    segment.SetTerminology(segmentations.terminologyEntry(STRUCTURES["hepatic_veins"]))
    assert rendering.structureKeyOfSegment(segment) == "hepatic_veins"  # SNOMED CT code, no tag
    named = slicer.vtkSegment()
    named.SetName("Lesion 7")
    assert rendering.structureKeyOfSegment(named) == "lesion"  # Slicer's default terminology is "Tissue"
    tagged = slicer.vtkSegment()
    tagged.SetName("whatever")
    tagged.SetTag(segmentations.TAG_KIND, "portal_vein")
    assert rendering.structureKeyOfSegment(tagged) == "portal_vein"
    unknown = slicer.vtkSegment()
    unknown.SetName("Spleen tip?")
    assert rendering.structureKeyOfSegment(unknown) is None


def test_rejected_lesions_grey_couinaud_hidden(scene):
    from LiverMetsLib import rendering, segmentations

    geometry = syntheticGeometry(shape=(12, 16, 16), spacingIjkMm=(3.0, 3.0, 3.0), rotationDegrees=0.0)
    node = segmentations.createStudySegmentation(scene, geometry, "review")
    liver = np.zeros(geometry.shape, bool)
    liver[2:10, 3:13, 3:13] = True
    lesion = np.zeros(geometry.shape, bool)
    lesion[5:7, 6:9, 6:9] = True
    couinaud = np.where(liver, 5, 0)
    ids = segmentations.fillStudySegments(
        node, geometry, liver=liver, lesions=[lesion, np.roll(lesion, 3, axis=2)], couinaud=couinaud
    )
    lesionIds = segmentations.lesionIds(node)
    node.GetSegmentation().GetSegment(lesionIds[1]).SetTag(segmentations.TAG_STATUS, "rejected")
    structures = rendering.applyStructureDisplay(node)
    displayNode = node.GetDisplayNode()
    assert displayNode.GetSegmentOverrideColor(lesionIds[0]) == pytest.approx((1, 1, 0))
    assert displayNode.GetSegmentOverrideColor(lesionIds[1]) == pytest.approx(rendering.REJECTED_LESION_RGB)
    assert displayNode.GetSegmentOpacity3D(lesionIds[1]) == pytest.approx(rendering.REJECTED_LESION_OPACITY)
    couinaudIds = [i for i in ids if structures[i] == "couinaud"]
    assert len(couinaudIds) == 8 and not any(displayNode.GetSegmentVisibility(i) for i in couinaudIds)
    rendering.setStructureVisibility(node, "couinaud", True)
    assert all(
        displayNode.GetSegmentVisibility(i) and displayNode.GetSegmentVisibility3D(i) for i in couinaudIds
    )
    # Review hides a rejected lesion; hiding then showing all lesions must not bring it back.
    displayNode.SetSegmentVisibility(lesionIds[1], False)
    rendering.setStructureVisibility(node, "lesion", False)
    assert rendering.setStructureVisibility(node, "lesion", True) == [lesionIds[0]]
    assert displayNode.GetSegmentVisibility(lesionIds[0]) and not displayNode.GetSegmentVisibility(
        lesionIds[1]
    )


def test_liver_opacity_changes_only_the_liver(liverScene):
    from LiverMetsLib import rendering

    node = liverScene.segmentationNode
    structures = rendering.applyStructureDisplay(node, liverOpacity=0.3)
    assert rendering.setLiverOpacity(node, 0.6) == [i for i, key in structures.items() if key == "liver"]
    displayNode = node.GetDisplayNode()
    assert {key: displayNode.GetSegmentOpacity3D(i) for i, key in structures.items()} == pytest.approx(
        {"liver": 0.6, "lesion": 1.0, "portal_vein": 1.0, "hepatic_veins": 1.0}
    )
    with pytest.raises(ValueError, match="0..1"):
        rendering.setLiverOpacity(node, -0.1)


def test_visibility_toggle_touches_one_structure(liverScene):
    from LiverMetsLib import rendering

    node = liverScene.segmentationNode
    rendering.applyStructureDisplay(node)
    touched = rendering.setStructureVisibility(node, "lesion", False, in2D=False)
    assert touched == [liverScene.lesionId]
    visibility = rendering.structureVisibility3D(node)
    assert visibility == {"liver": True, "lesion": False, "portal_vein": True, "hepatic_veins": True}
    displayNode = node.GetDisplayNode()
    assert displayNode.GetSegmentVisibility2DFill(liverScene.lesionId)  # 2D left alone
    rendering.setStructureVisibility(node, "lesion", True)
    assert rendering.structureVisibility3D(node)["lesion"]
    with pytest.raises(ValueError, match="unknown structure"):
        rendering.setStructureVisibility(node, "spline", True)


def test_hidden_lesion_is_not_drawn(liverScene, headlessSlicer):
    from LiverMetsLib import rendering, snapshots

    node = liverScene.segmentationNode
    rendering.applyStructureDisplay(node)
    bounds = rendering.structureBoundsRas(node, "liver")
    with snapshots.OffscreenThreeDView(
        node.GetScene(), sizePixels=(160, 160), applicationLogic=headlessSlicer.applicationLogic
    ) as view:
        view.setCameraPreset("anterior", bounds)
        view.render()
        column, row = view.rasToPixel(LESION_CENTER_RAS)
        assert isYellow(view.pixels()[row, column])
        rendering.setStructureVisibility(node, "lesion", False)
        view.render()
        assert not isYellow(view.pixels()[row, column])


# --- camera presets ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "preset, toCamera, viewUp",
    [
        ("anterior", (0, 1, 0), (0, 0, 1)),
        ("posterior", (0, -1, 0), (0, 0, 1)),
        ("right", (1, 0, 0), (0, 0, 1)),
        ("superior", (0, 0, 1), (0, 1, 0)),
    ],
)
def test_camera_preset_geometry(preset, toCamera, viewUp):
    from LiverMetsLib import rendering

    bounds = [-70, 70, -55, 55, -45, 45]
    parameters = rendering.cameraParametersForPreset(preset, bounds, viewAngleDegrees=30.0, marginFactor=1.0)
    direction = np.subtract(parameters["position"], parameters["focalPoint"])
    # Truth: the bounding sphere (radius = half the box diagonal) exactly fills the 30 degree view angle.
    radius = 0.5 * math.sqrt(140**2 + 110**2 + 90**2)
    assert np.linalg.norm(direction) == pytest.approx(radius / math.sin(math.radians(15)))
    assert direction / np.linalg.norm(direction) == pytest.approx(toCamera)
    assert parameters["viewUp"] == pytest.approx(viewUp)
    assert parameters["focalPoint"] == pytest.approx([0, 0, 0])


@pytest.mark.parametrize(
    "preset, point, expectSide",
    [
        ("anterior", (50, 0, 0), "left"),  # patient's right on the viewer's left (facing the patient)
        ("posterior", (50, 0, 0), "right"),
        ("right", (0, 50, 0), "right"),  # from the patient's right side: anterior to the viewer's right
        ("superior", (0, 50, 0), "up"),  # from above: anterior up
    ],
)
def test_camera_preset_orientation_on_screen(liverScene, headlessSlicer, preset, point, expectSide):
    from LiverMetsLib import rendering, snapshots

    node = liverScene.segmentationNode
    rendering.applyStructureDisplay(node)
    with snapshots.OffscreenThreeDView(
        node.GetScene(), sizePixels=(128, 128), applicationLogic=headlessSlicer.applicationLogic
    ) as view:
        view.setCameraPreset(preset, rendering.structureBoundsRas(node))
        view.render()
        center = np.array(view.rasToPixel((0, 0, 0)))
        column, row = np.array(view.rasToPixel(point)) - center
    assert {"left": column < -10, "right": column > 10, "up": row < -10}[expectSide]


def test_bad_values_are_refused(liverScene):
    from LiverMetsLib import rendering

    with pytest.raises(ValueError, match="camera preset"):
        rendering.cameraParametersForPreset("lateral", [0, 1, 0, 1, 0, 1])
    with pytest.raises(ValueError, match="liverOpacity"):
        rendering.applyStructureDisplay(liverScene.segmentationNode, liverOpacity=1.5)
    with pytest.raises(ValueError, match="showIn2D"):
        rendering.applyStructureDisplay(liverScene.segmentationNode, showIn2D="glow")
    with pytest.raises(ValueError, match="no camera node"):
        rendering.setCameraPreset(None, "anterior", [0, 1, 0, 1, 0, 1])
