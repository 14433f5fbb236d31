"""Review operations on real MRML: status, jump-to, merge, split, delete, undo / redo."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic import ellipsoid, obliqueGeometry, study


@pytest.fixture
def studyNodes(scene):
    from LiverMetsLib.logic import LiverMetsLogic

    geometry = obliqueGeometry()
    truth = study(geometry)
    logic = LiverMetsLogic(scene)
    nodes = logic.populateScene(geometry, liver=truth["liver"], lesions=truth["lesions"], portal=truth["portal"],
                                couinaud=truth["couinaud"], confidences=[0.9, 0.4])
    return logic, nodes, geometry, truth


def _state(node, tableNode):
    """Everything undo must restore: per segment name, tags of interest and voxels; the table."""
    from LiverMetsLib import segmentations as seg
    from LiverMetsLib.lesionTable import tableRows

    segments = {}
    for segmentId in seg.segmentIds(node):
        segment = node.GetSegmentation().GetSegment(segmentId)
        tags = {tag: seg.getTag(segment, tag) for tag in (seg.TAG_STATUS, seg.TAG_LESION_NUMBER, seg.TAG_ORIGIN,
                                                           seg.TAG_USER_EDITED, seg.TAG_CONTENT_HASH)}
        segments[segmentId] = (segment.GetName(), tags, np.packbits(seg.segmentMask(node, segmentId)).tobytes())
    return seg.segmentIds(node), segments, tableRows(tableNode)


def test_accept_reject_restore_uncertain(studyNodes):
    logic, nodes, _, _ = studyNodes
    node = nodes.segmentationNode
    logic.acceptLesion(node, "lesion_1")
    logic.rejectLesion(node, "lesion_2")
    statuses = {entry.segmentId: entry.status for entry in logic.listLesions(node)}
    assert statuses == {"lesion_1": "accepted", "lesion_2": "rejected"}
    assert not node.GetDisplayNode().GetSegmentVisibility("lesion_2")
    assert [entry.segmentId for entry in logic.listLesions(node, includeRejected=False)] == ["lesion_1"]
    assert [row["Status"] for row in logic.tableRows(nodes.tableNode)] == ["accepted", "rejected"]
    logic.restoreLesion(node, "lesion_2")
    assert node.GetDisplayNode().GetSegmentVisibility("lesion_2")
    logic.markLesionUncertain(node, "lesion_2")
    assert [row["Status"] for row in logic.tableRows(nodes.tableNode)] == ["accepted", "uncertain"]
    with pytest.raises(ValueError, match="unknown lesion status"):
        logic.setLesionStatus(node, "lesion_1", "maybe")
    with pytest.raises(ValueError, match="not a lesion"):
        logic.acceptLesion(node, "liver")
    with pytest.raises(ValueError, match="no segment with ID"):
        logic.acceptLesion(node, "lesion_99")


def test_jump_target_is_inside_the_lesion_and_moves_slice_views(studyNodes, scene):
    import slicer

    logic, nodes, geometry, truth = studyNodes
    target = logic.jumpTarget(nodes.segmentationNode, "lesion_1")
    kji = np.rint(geometry.ras_to_kji(np.array(target.center_ras_mm))).astype(int)
    assert truth["lesions"][tuple(kji)] == 1
    # Centre = centroid of the lesion voxels (RAS mm), since the ball is convex.
    centroid = geometry.kji_to_ras(np.argwhere(truth["lesions"] == 1).mean(axis=0))
    np.testing.assert_allclose(target.center_ras_mm, centroid, atol=1e-6)
    assert target.fieldOfView_mm >= 3 * 12.0 - 1e-6
    sliceNodes = []
    slicer.vtkMRMLSliceNode.AddDefaultSliceOrientationPresets(scene)
    for name, orientation in (("Red", "Axial"), ("Yellow", "Sagittal"), ("Green", "Coronal")):
        sliceNode = scene.AddNewNodeByClass("vtkMRMLSliceNode", name)
        sliceNode.SetLayoutName(name)
        sliceNode.SetDimensions(400, 300, 1)
        assert sliceNode.SetOrientation(orientation)
        sliceNodes.append(sliceNode)
    logic.applyJump(target, sliceNodes)
    for sliceNode in sliceNodes:
        normal = [sliceNode.GetSliceToRAS().GetElement(row, 2) for row in range(3)]
        assert sliceNode.GetSliceOffset() == pytest.approx(float(np.dot(normal, target.center_ras_mm)), abs=1e-6)
        assert sliceNode.GetSliceOffset() == pytest.approx(target.sliceOffsets_mm[sliceNode.GetName()], abs=1e-6)
        assert sliceNode.GetFieldOfView()[0] == pytest.approx(target.fieldOfView_mm)


def test_merge_then_undo_redo_exactly(studyNodes):
    logic, nodes, geometry, truth = studyNodes
    from LiverMetsLib import segmentations as seg

    node = nodes.segmentationNode
    before = _state(node, nodes.tableNode)
    logic.mergeLesions(node, "lesion_1", "lesion_2")
    assert seg.lesionIds(node) == ["lesion_1"]
    np.testing.assert_array_equal(seg.segmentMask(node, "lesion_1"), truth["lesions"] > 0)
    rows = logic.tableRows(nodes.tableNode)
    assert float(rows[0]["Volume (ml)"]) == pytest.approx((truth["lesions"] > 0).sum() * geometry.voxel_volume_ml, rel=1e-4)
    merged = _state(node, nodes.tableNode)
    assert logic.undo() == "Merge lesions"
    assert _state(node, nodes.tableNode) == before
    logic.redo()
    assert _state(node, nodes.tableNode) == merged


def test_split_two_touching_balls_recovers_each(studyNodes, scene):
    from LiverMetsLib import segmentations as seg

    logic, nodes, geometry, _ = studyNodes
    node = nodes.segmentationNode
    a = ellipsoid(geometry, (15, 24, 16), 5.0)
    b = ellipsoid(geometry, (15, 24, 24), 5.0)  # 8 voxels x 2 mm = 16 mm apart: the balls touch
    segmentId = seg.addLesionSegment(node, a | b, geometry, origin="automatic")
    before = _state(node, nodes.tableNode)
    kept, new = logic.splitLesion(node, segmentId)
    parts = [seg.segmentMask(node, kept), seg.segmentMask(node, new)]
    assert not (parts[0] & parts[1]).any()
    np.testing.assert_array_equal(parts[0] | parts[1], a | b)
    for truthBall in (a, b):
        dice = max(2 * (p & truthBall).sum() / (p.sum() + truthBall.sum()) for p in parts)
        assert dice >= 0.95
    assert node.GetSegmentation().GetSegment(new).GetName() == "Lesion 4"
    logic.undo()
    assert _state(node, nodes.tableNode) == before
    with pytest.raises(ValueError, match="at least 2"):
        logic.splitLesion(node, segmentId, 1)


def test_delete_and_undo(studyNodes):
    from LiverMetsLib import segmentations as seg

    logic, nodes, _, _ = studyNodes
    node = nodes.segmentationNode
    before = _state(node, nodes.tableNode)
    logic.deleteLesion(node, "lesion_1")
    assert seg.lesionIds(node) == ["lesion_2"]
    assert [row["Segment"] for row in logic.tableRows(nodes.tableNode)] == ["Lesion 2"]
    logic.undo()
    assert _state(node, nodes.tableNode) == before
    assert not logic.canUndo()
    with pytest.raises(ValueError, match="nothing to undo"):
        logic.undo()


def test_failed_operation_leaves_everything_as_it_was(studyNodes):
    logic, nodes, _, _ = studyNodes
    node = nodes.segmentationNode
    before = _state(node, nodes.tableNode)
    with pytest.raises(ValueError, match="would remove the whole segment"):
        logic.growLesion(node, "lesion_2", -20.0)
    assert _state(node, nodes.tableNode) == before
    assert not logic.canUndo()
