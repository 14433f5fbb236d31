"""Editing on real MRML: click to add, grow / shrink in mm, Segment Editor edits detected, re-runs
that keep the user's work."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic import ellipsoid, obliqueGeometry, study


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.count_nonzero(a & b) / max(1, np.count_nonzero(a) + np.count_nonzero(b))


@pytest.fixture
def studyNodes(logic):
    geometry = obliqueGeometry()
    truth = study(geometry)
    nodes = logic.populateScene(geometry, liver=truth["liver"], lesions=truth["lesions"], portal=truth["portal"])
    return nodes, geometry, truth


def _equivalentRadius_mm(mask: np.ndarray, geometry) -> float:
    return float((3.0 * mask.sum() * np.prod(geometry.spacing_mm) / (4.0 * np.pi)) ** (1.0 / 3.0))


@pytest.mark.parametrize("margin_mm", [2.0, -2.0])
def test_grow_and_shrink_change_a_ball_radius_by_the_margin(logic, margin_mm):
    from LiverMetsLib import segmentations as seg

    geometry = obliqueGeometry(shape=(24, 40, 40), spacing_ijk_mm=(0.8, 1.0, 2.5))
    ball = ellipsoid(geometry, (12, 20, 20), 8.0)
    nodes = logic.populateScene(geometry, liver=None, lesions=[ball])
    logic.growLesion(nodes.segmentationNode, "lesion_1", margin_mm)
    result = seg.segmentMask(nodes.segmentationNode, "lesion_1")
    change = _equivalentRadius_mm(result, geometry) - _equivalentRadius_mm(ball, geometry)
    # Analytic truth: the margin moves the surface of a ball by margin_mm; digital balls agree within a voxel.
    assert abs(change - margin_mm) <= min(geometry.spacing_mm)
    # Exact definition, brute force: grow keeps voxels within margin of a ball voxel centre; shrink
    # keeps ball voxels farther than |margin| from every outside voxel centre.
    spacing = np.array(geometry.spacing_mm)
    near = ellipsoid(geometry, (12, 20, 20), 8.0 + abs(margin_mm) + 3.0)  # voxels farther away cannot matter
    source = (ball if margin_mm > 0 else ~ball) & near
    sourceMm = np.argwhere(source) * spacing
    candidates = np.argwhere(near)
    nearest = np.concatenate([np.min(np.linalg.norm(chunk[:, None, :] * spacing - sourceMm[None], axis=2), axis=1)
                              for chunk in np.array_split(candidates, 16)])
    within = np.zeros(geometry.shape, dtype=bool)
    chosen = candidates[nearest <= abs(margin_mm) + 1e-6]
    within[chosen[:, 0], chosen[:, 1], chosen[:, 2]] = True
    np.testing.assert_array_equal(result, within if margin_mm > 0 else ball & ~within)
    assert (result >= ball).all() if margin_mm > 0 else (result <= ball).all()
    row = logic.tableRows(nodes.tableNode)[0]
    assert float(row["Volume (ml)"]) == pytest.approx(result.sum() * geometry.voxel_volume_ml, rel=1e-4)
    assert logic.editedSegmentIds(nodes.segmentationNode) == ["lesion_1"]


def test_segment_editor_edit_is_picked_up_as_a_user_edit(logic, studyNodes, scene):
    import slicer
    from LiverMetsLib import segmentations as seg
    from LiverMetsLib.volumes import addVolumeNode, orientedImageFromMask

    nodes, geometry, truth = studyNodes
    node = nodes.segmentationNode
    assert logic.editedSegmentIds(node) == []
    edited = []
    logic.watchSegmentEdits(node, edited.append)
    logic.growLesion(node, "lesion_1", 1.0)  # a LiverMets operation is not reported as an outside edit
    assert edited == []
    before = float(logic.tableRows(nodes.tableNode)[1]["Volume (ml)"])

    volume = addVolumeNode(scene, truth["liver"].astype(np.float32), geometry, "source")
    editorNode = scene.AddNewNodeByClass("vtkMRMLSegmentEditorNode")
    editor = slicer.vtkSlicerSegmentEditorLogic()
    editor.SetMRMLScene(scene)
    editor.SetSegmentEditorNode(editorNode)
    editor.SetSegmentationNode(node)
    editor.SetSourceVolumeNode(volume)
    editor.SetCurrentSegmentID("lesion_2")
    painted = ellipsoid(geometry, (15, 24 + 7, 24 + 9), 3.0)  # a stroke next to lesion 2
    editor.ModifySegmentByLabelmap(node, "lesion_2", orientedImageFromMask(painted, geometry),
                                   slicer.vtkSlicerSegmentEditorLogic.ModificationModeAdd, False, True)
    np.testing.assert_array_equal(seg.segmentMask(node, "lesion_2"), (truth["lesions"] == 2) | painted)
    assert edited == ["lesion_2"]
    assert logic.editedSegmentIds(node) == ["lesion_1", "lesion_2"]
    # The table followed the edit at once (the watcher refreshed it).
    after = float(logic.tableRows(nodes.tableNode)[1]["Volume (ml)"])
    assert after == pytest.approx(((truth["lesions"] == 2) | painted).sum() * geometry.voxel_volume_ml, rel=1e-4)
    assert after > before


def test_segment_editor_edit_is_detected_without_a_watcher(logic, studyNodes):
    """The content hash alone finds an outside edit (e.g. made before the scene was saved)."""
    import slicer
    from LiverMetsLib.volumes import orientedImageFromMask

    nodes, geometry, truth = studyNodes
    node = nodes.segmentationNode
    assert not (truth["liver"] & ellipsoid(geometry, (3, 3, 3), 3.0)).any()  # the edit adds voxels
    slicer.vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment(
        orientedImageFromMask(ellipsoid(geometry, (3, 3, 3), 3.0), geometry), node, "liver",
        slicer.vtkSlicerSegmentationsModuleLogic.MODE_MERGE_MAX)
    assert logic.editedSegmentIds(node) == ["liver"]


def test_rerun_keeps_user_work_and_reports_conflicts(logic, studyNodes):
    from LiverMetsLib import segmentations as seg

    nodes, geometry, truth = studyNodes
    node = nodes.segmentationNode
    logic.growLesion(node, "lesion_1", 2.0)          # the user's own lesion 1
    logic.acceptLesion(node, "lesion_2")              # the user accepted lesion 2 as it is
    edited = seg.segmentMask(node, "lesion_1")
    newLesions = [ellipsoid(geometry, (15, 18, 19), 5.0),   # the new run's lesion 1: different
                  truth["lesions"] == 2,                    # same lesion 2
                  ellipsoid(geometry, (8, 36, 12), 3.0)]    # a new finding
    newLiver = truth["liver"] & ~ellipsoid(geometry, (15, 24, 24), 2.0)
    result = logic.rerunAutomatic(node, liver=newLiver, lesions=newLesions)
    assert [conflict.segmentId for conflict in result.conflicts] == ["lesion_1"]
    assert result.conflicts[0].reason == "edited by the user"
    np.testing.assert_array_equal(seg.segmentMask(node, "lesion_1"), edited)
    np.testing.assert_array_equal(seg.segmentMask(node, "lesion_2"), truth["lesions"] == 2)
    np.testing.assert_array_equal(seg.segmentMask(node, "liver"), newLiver)  # untouched by the user: replaced
    lesions = seg.lesionIds(node)
    assert len(lesions) == 3
    np.testing.assert_array_equal(seg.segmentMask(node, lesions[-1]), newLesions[2])
    assert seg.getTag(node.GetSegmentation().GetSegment("lesion_2"), seg.TAG_STATUS) == "accepted"

    logic.undo()
    np.testing.assert_array_equal(seg.segmentMask(node, "liver"), truth["liver"])
    result = logic.rerunAutomatic(node, liver=newLiver, lesions=newLesions, overwrite=True)
    assert result.conflicts == []
    masks = [seg.segmentMask(node, segmentId) for segmentId in seg.lesionIds(node)]
    assert len(masks) == 3
    for mask, expected in zip(masks, newLesions):
        np.testing.assert_array_equal(mask, expected)


def test_rerun_keeps_an_edited_liver_unless_overwrite(logic, studyNodes):
    from LiverMetsLib import segmentations as seg

    nodes, _, truth = studyNodes
    node = nodes.segmentationNode
    logic.growLesion(node, "liver", -2.0)
    userLiver = seg.segmentMask(node, "liver")
    result = logic.rerunAutomatic(node, liver=truth["liver"], lesions=truth["lesions"])
    assert [c.segmentId for c in result.conflicts] == ["liver"]
    np.testing.assert_array_equal(seg.segmentMask(node, "liver"), userLiver)
    assert seg.segmentIds(node, "liver") == ["liver"]


def _deepestPointKji(mask: np.ndarray, geometry) -> np.ndarray:
    from livermets.segmentation.morphology import distance_inside_mm

    return np.unravel_index(np.argmax(distance_inside_mm(mask, geometry)), mask.shape)


@pytest.fixture(scope="module")
def phantom():
    from livermets.phantom import make_phantom

    return make_phantom(0, variant="small", sequences=["hbp"])


@pytest.fixture(scope="module")
def obliquePhantom():
    from livermets.phantom import make_phantom

    rotation = obliqueGeometry(angle_deg=15.0).direction_matrix_lps
    return make_phantom(1, variant="small", sequences=["hbp"], direction_lps=rotation)


@pytest.mark.parametrize("which", ["phantom", "obliquePhantom"])
def test_click_to_add_from_a_markups_point(logic, scene, which, request):
    from LiverMetsLib import segmentations as seg

    ph = request.getfixturevalue(which)
    geometry = ph.geometry
    nodes = logic.populateScene(geometry, liver=ph.liver.astype(bool), lesions=[], image=ph.images["hbp"],
                                sequence="hbp")
    sizes = np.bincount(ph.lesions.ravel())[1:]
    lesionId = int(np.argmax(sizes)) + 1  # the largest lesion: clearly more than a few voxels
    truthMask = ph.lesions == lesionId
    seedRas = geometry.kji_to_ras(np.array(_deepestPointKji(truthMask, geometry), dtype=float))
    markups = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "click")
    markups.AddControlPoint(*seedRas)
    segmentId = logic.addLesionFromMarkup(nodes.segmentationNode, markups)
    mask = seg.segmentMask(nodes.segmentationNode, segmentId)
    assert _dice(mask, truthMask) >= 0.8
    assert logic.tableRows(nodes.tableNode)[0]["Segment"] == "Lesion 1"
    logic.undo()
    assert seg.lesionIds(nodes.segmentationNode) == []


def test_refine_with_include_and_exclude_points(logic, scene, phantom):
    from LiverMetsLib import segmentations as seg

    geometry = phantom.geometry
    nodes = logic.populateScene(geometry, liver=phantom.liver.astype(bool), lesions=[], image=phantom.images["hbp"],
                                sequence="hbp")
    truthMask = phantom.lesions == int(np.argmax(np.bincount(phantom.lesions.ravel())[1:])) + 1
    seedKji = np.array(_deepestPointKji(truthMask, geometry))
    segmentId = logic.addLesionFromPoint(nodes.segmentationNode, geometry.kji_to_ras(seedKji.astype(float)))
    first = seg.segmentMask(nodes.segmentationNode, segmentId)
    # Exclude a lesion voxel on the far side from the seed and include a liver voxel just outside the lesion.
    inside = np.argwhere(first)
    excludeKji = inside[np.argmax(np.linalg.norm((inside - seedKji) * geometry.spacing_mm, axis=1))]
    logic.refineLesion(nodes.segmentationNode, segmentId, excludeRas=[geometry.kji_to_ras(excludeKji.astype(float))])
    refined = seg.segmentMask(nodes.segmentationNode, segmentId)
    assert not refined[tuple(excludeKji)] and refined[tuple(seedKji)]
    # The points are kept on the segment: a second refinement still excludes the first point.
    outside = np.argwhere(phantom.liver.astype(bool) & ~first & (phantom.lesions == 0))
    includeKji = outside[np.argmin(np.linalg.norm((outside - seedKji) * geometry.spacing_mm, axis=1))]
    logic.refineLesion(nodes.segmentationNode, segmentId, includeRas=[geometry.kji_to_ras(includeKji.astype(float))])
    again = seg.segmentMask(nodes.segmentationNode, segmentId)
    assert again[tuple(includeKji)] and not again[tuple(excludeKji)]
    assert logic.undo() == "Refine lesion"
    np.testing.assert_array_equal(seg.segmentMask(nodes.segmentationNode, segmentId), refined)
    with pytest.raises(ValueError, match="not made by clicking"):
        logic.refineLesion(nodes.segmentationNode, "liver", includeRas=[(0.0, 0.0, 0.0)])


def test_click_outside_the_image_is_refused(logic, studyNodes, scene):
    from LiverMetsLib.volumes import addVolumeNode

    nodes, geometry, truth = studyNodes
    volume = addVolumeNode(scene, truth["liver"].astype(np.float32), geometry, "source")
    with pytest.raises(ValueError, match="outside the image"):
        logic.addLesionFromPoint(nodes.segmentationNode, (900.0, 0.0, 0.0), volumeNode=volume, sequence="hbp")
    with pytest.raises(ValueError, match="which sequence"):
        logic.addLesionFromPoint(nodes.segmentationNode, (0.0, 0.0, 0.0), volumeNode=volume)
