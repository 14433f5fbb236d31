"""Headless PNG snapshots (LiverMetsLib.snapshots): colours at known pixels, determinism, clean scene.

Expected pixels come from the analytic scene of ``test_rendering.buildSyntheticLiverScene``: the lesion's
RAS centre is projected with the view's own camera (3D) or slice matrix (2D) and must show yellow; a
liver-only line of sight shows the liver colour blended with the background; a corner shows the
background colour.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_rendering import (
    LESION_CENTER_RAS,
    LESION_RADIUS_MM,
    LIVER_ONLY_RAS,
    buildSyntheticLiverScene,
    isYellow,
)


@pytest.fixture
def liverScene(scene):
    from LiverMetsLib import rendering

    built = buildSyntheticLiverScene(scene)
    rendering.applyStructureDisplay(built.segmentationNode)
    return built


def nodeIds(scene) -> list[str]:
    return sorted(scene.GetNthNode(index).GetID() for index in range(scene.GetNumberOfNodes()))


def test_3d_snapshot_colours_at_projected_points(liverScene, headlessSlicer, tmp_path):
    from LiverMetsLib import rendering, snapshots

    node = liverScene.segmentationNode
    bounds = rendering.structureBoundsRas(node, "liver")
    path = snapshots.snapshot3D(
        node,
        tmp_path / "anterior.png",
        sizePixels=(240, 200),
        cameraPreset="anterior",
        applicationLogic=headlessSlicer.applicationLogic,
    )
    pixels = snapshots.readPngPixels(path)
    assert pixels.shape == (200, 240, 3)
    # The same camera again, to project the analytic points.
    with snapshots.OffscreenThreeDView(
        node.GetScene(), sizePixels=(240, 200), applicationLogic=headlessSlicer.applicationLogic
    ) as view:
        view.setCameraPreset("anterior", bounds)
        view.render()
        lesionPixel = view.rasToPixel(LESION_CENTER_RAS)
        liverPixel = view.rasToPixel(LIVER_ONLY_RAS)
        assert np.array_equal(view.pixels(), pixels)  # what was written is what the view shows
    background = np.round(np.array(snapshots.DEFAULT_BACKGROUND_RGB) * 255)
    assert pixels[2, 2] == pytest.approx(background, abs=2)
    column, row = lesionPixel
    assert isYellow(pixels[row, column]), pixels[row, column]
    column, row = liverPixel
    red, green, blue = pixels[row, column].astype(int)
    # Liver (221, 130, 101) at opacity 0.3 over the dark background: reddish, darker than the lesion.
    assert red > green > blue and red > background[0] + 20 and red < 200


def test_3d_snapshot_is_deterministic(liverScene, headlessSlicer, tmp_path):
    from LiverMetsLib import snapshots

    first = snapshots.snapshot3D(
        liverScene.segmentationNode,
        tmp_path / "a.png",
        sizePixels=(128, 128),
        cameraPreset="right",
        applicationLogic=headlessSlicer.applicationLogic,
    )
    second = snapshots.snapshot3D(
        liverScene.segmentationNode,
        tmp_path / "b.png",
        sizePixels=(128, 128),
        cameraPreset="right",
        applicationLogic=headlessSlicer.applicationLogic,
    )
    assert np.array_equal(snapshots.readPngPixels(first), snapshots.readPngPixels(second))
    assert not np.array_equal(snapshots.readPngPixels(first)[:, ::-1], snapshots.readPngPixels(second))


@pytest.mark.parametrize("orientation", ["Axial", "Coronal"])
def test_slice_snapshot_fill_colours_the_lesion(liverScene, headlessSlicer, tmp_path, orientation):
    from LiverMetsLib import snapshots

    size = (200, 160)
    path = snapshots.snapshotSlice(
        liverScene.volumeNode,
        liverScene.segmentationNode,
        LESION_CENTER_RAS,
        tmp_path / f"{orientation}.png",
        orientation=orientation,
        overlay="fill",
        fieldOfViewMm=160.0,
        sizePixels=size,
        applicationLogic=headlessSlicer.applicationLogic,
    )
    pixels = snapshots.readPngPixels(path)
    assert pixels.shape == (160, 200, 3)
    # Centred on the lesion: the centre pixel carries the yellow fill over the grey image.
    assert isYellow(pixels[80, 100]), pixels[80, 100]
    # 30 mm outside the lesion along the slice's width (1.25 px/mm): liver tissue, grey, no yellow.
    liverPixel = pixels[80, 100 + int(30 * 200 / 160)]
    assert not isYellow(liverPixel) and max(liverPixel) - min(liverPixel) < 40


def test_slice_snapshot_outline_rings_the_lesion(liverScene, headlessSlicer, tmp_path):
    from LiverMetsLib import snapshots

    fieldOfViewMm = 120.0
    size = 240
    pixelsPerMm = size / fieldOfViewMm
    with snapshots.OffscreenSliceView(
        liverScene.volumeNode.GetScene(),
        orientation="Axial",
        sizePixels=(size, size),
        applicationLogic=headlessSlicer.applicationLogic,
    ) as view:
        view.showVolume(liverScene.volumeNode)
        view.centerOn(LESION_CENTER_RAS, fieldOfViewMm)
        center = np.array(view.rasToPixel(LESION_CENTER_RAS))
    assert center == pytest.approx([size // 2, size // 2], abs=1)
    path = snapshots.snapshotSlice(
        liverScene.volumeNode,
        liverScene.segmentationNode,
        LESION_CENTER_RAS,
        tmp_path / "outline.png",
        overlay="outline",
        fieldOfViewMm=fieldOfViewMm,
        sizePixels=(size, size),
        applicationLogic=headlessSlicer.applicationLogic,
    )
    pixels = snapshots.readPngPixels(path)
    rows, columns = np.mgrid[:size, :size]
    distanceMm = np.hypot(columns - center[0], rows - center[1]) / pixelsPerMm
    yellow = np.array([[isYellow(p) for p in row] for row in pixels])
    # Truth: the lesion's boundary is the 12 mm circle; voxels (<= 3.5 mm) blur it by a few mm.
    assert not yellow[distanceMm < 0.5 * LESION_RADIUS_MM].any()
    ring = (distanceMm > LESION_RADIUS_MM - 4) & (distanceMm < LESION_RADIUS_MM + 4)
    assert yellow[ring].sum() > 2 * np.pi * LESION_RADIUS_MM * pixelsPerMm * 0.8
    assert not yellow[distanceMm > LESION_RADIUS_MM + 6].any()


def test_snapshots_leave_the_scene_as_they_found_it(liverScene, headlessSlicer, tmp_path):
    from LiverMetsLib import snapshots

    scene = liverScene.volumeNode.GetScene()
    displayNode = liverScene.segmentationNode.GetDisplayNode()
    displayNode.SetVisibility2DFill(False)
    displayNode.SetVisibility2DOutline(True)
    # Desktop Slicer always has the subject hierarchy node; after a scene clear it comes back lazily.
    import slicer

    slicer.vtkMRMLSubjectHierarchyNode.ResolveSubjectHierarchy(scene)
    before = nodeIds(scene)
    path = snapshots.snapshotPanels(
        liverScene.volumeNode,
        liverScene.segmentationNode,
        LESION_CENTER_RAS,
        tmp_path / "panels.png",
        panelSizePixels=96,
        overlay="fill",
        applicationLogic=headlessSlicer.applicationLogic,
    )
    assert snapshots.readPngPixels(path).shape == (96, 3 * 96, 3)
    assert nodeIds(scene) == before
    assert (displayNode.GetVisibility2DFill(), displayNode.GetVisibility2DOutline()) == (False, True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["panels.png"]  # no temporary file left


def test_bad_requests_are_refused(liverScene, headlessSlicer, tmp_path):
    from LiverMetsLib import snapshots

    logic = headlessSlicer.applicationLogic
    with pytest.raises(ValueError, match="16..8192"):
        snapshots.snapshot3D(
            liverScene.segmentationNode, tmp_path / "x.png", sizePixels=(4, 4), applicationLogic=logic
        )
    with pytest.raises(ValueError, match=".png"):
        snapshots.snapshot3D(
            liverScene.segmentationNode, tmp_path / "x.jpg", sizePixels=(32, 32), applicationLogic=logic
        )
    with pytest.raises(ValueError, match="overlay"):
        snapshots.snapshotSlice(
            liverScene.volumeNode, None, (0, 0, 0), tmp_path / "x.png", overlay="glow", applicationLogic=logic
        )
    with pytest.raises(ValueError, match="orientation"):
        snapshots.snapshotSlice(
            liverScene.volumeNode,
            None,
            (0, 0, 0),
            tmp_path / "x.png",
            orientation="Oblique",
            applicationLogic=logic,
        )
    assert not list(tmp_path.iterdir())


# --- the teaching phantom ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def phantom():
    from livermets.phantom import make_phantom

    return make_phantom(0, variant="small", sequences=("hbp",))


def test_phantom_lesions_show_yellow_in_slices_and_3d(phantom, scene, headlessSlicer, tmp_path):
    """Truth: the phantom legend's metastasis centres (RAS mm); lesions >= 10 mm across are checked."""
    from LiverMetsLib import rendering, snapshots
    from LiverMetsLib.logic import LiverMetsLogic

    anatomy = phantom.anatomy
    study = LiverMetsLogic(scene).populateScene(
        phantom.geometry,
        liver=anatomy == 1,
        lesions=phantom.lesions,
        portal=anatomy == 3,
        hepatic=anatomy == 4,
        ivc=anatomy == 5,
        image=phantom.images["hbp"],
        sequence="hbp",
    )
    rendering.applyStructureDisplay(study.segmentationNode)
    centers = [
        lesion["center_ras_mm"]
        for lesion in phantom.legend["lesions"]
        if lesion["kind"] == "metastasis" and lesion["diameter_mm"] >= 10.0
    ]
    assert len(centers) >= 3
    logic = headlessSlicer.applicationLogic
    for index, center in enumerate(centers):
        for orientation in ("Axial", "Coronal"):
            path = snapshots.snapshotSlice(
                study.volumeNode,
                study.segmentationNode,
                center,
                tmp_path / f"lesion{index}-{orientation}.png",
                orientation=orientation,
                overlay="fill",
                fieldOfViewMm=120.0,
                sizePixels=(128, 128),
                applicationLogic=logic,
            )
            assert isYellow(snapshots.readPngPixels(path)[64, 64]), (index, orientation)
    with snapshots.OffscreenThreeDView(scene, sizePixels=(256, 256), applicationLogic=logic) as view:
        view.setCameraPreset("anterior", rendering.structureBoundsRas(study.segmentationNode))
        view.render()
        pixels = view.pixels()
        projected = [view.rasToPixel(center) for center in centers]
    yellowAtCenters = [isYellow(pixels[row, column]) for column, row in projected]
    # From the front a lesion may sit behind an opaque vessel; most must show through the liver.
    assert sum(yellowAtCenters) >= 0.5 * len(centers), yellowAtCenters
