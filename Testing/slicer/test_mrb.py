"""A LiverMets scene saved as .mrb and read back keeps every segment, tag, table row and markup."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic import obliqueGeometry, study


def test_scene_bundle_round_trip(scene, tmp_path):
    from headless import createHeadlessSlicer, readSceneBundle
    from LiverMetsLib import segmentations as seg
    from LiverMetsLib.lesionTable import tableRows
    from LiverMetsLib.logic import LiverMetsLogic
    from LiverMetsLib.volumes import arrayFromVolumeNode, geometryFromVolumeNode

    geometry = obliqueGeometry()
    truth = study(geometry)
    image = np.random.default_rng(3).normal(100, 10, geometry.shape).astype(np.float32)
    logic = LiverMetsLogic(scene)
    nodes = logic.populateScene(geometry, liver=truth["liver"], lesions=truth["lesions"], portal=truth["portal"],
                                hepatic=truth["hepatic"], ivc=truth["ivc"], couinaud=truth["couinaud"],
                                image=image, sequence="hbp", confidences=[0.8, 0.3])
    logic.rejectLesion(nodes.segmentationNode, "lesion_2")
    logic.growLesion(nodes.segmentationNode, "lesion_1", 1.5)
    markups = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "clicks")
    markups.AddControlPoint(12.5, -3.25, 41.0)
    markups.AddControlPoint(-7.0, 8.0, 30.5)

    path = tmp_path / "study.mrb"
    logic.writeSceneBundle(str(path))
    assert path.exists() and not (tmp_path / "study.mrb.partial.mrb").exists()

    fresh = createHeadlessSlicer(str(tmp_path / "home"), publishGlobals=False)
    messages = readSceneBundle(str(path), fresh, str(tmp_path / "cache"))
    assert not any("rror" in message for message in messages), messages
    loaded = fresh.scene
    node = loaded.GetFirstNodeByClass("vtkMRMLSegmentationNode")
    original = nodes.segmentationNode
    assert seg.segmentIds(node) == seg.segmentIds(original)
    assert seg.segmentationGeometry(node).same_grid(geometry)
    for segmentId in seg.segmentIds(original):
        before, after = original.GetSegmentation().GetSegment(segmentId), node.GetSegmentation().GetSegment(segmentId)
        assert after.GetName() == before.GetName()
        assert after.GetTerminology() == before.GetTerminology()
        np.testing.assert_allclose(after.GetColor(), before.GetColor(), atol=1e-6)
        for tag in (seg.TAG_KIND, seg.TAG_STATUS, seg.TAG_LESION_NUMBER, seg.TAG_CONTENT_HASH, seg.TAG_USER_EDITED,
                    seg.TAG_CONFIDENCE):
            assert seg.getTag(after, tag) == seg.getTag(before, tag)
        np.testing.assert_array_equal(seg.segmentMask(node, segmentId), seg.segmentMask(original, segmentId))
    # The user's edit is still recognised as such, and nothing else looks edited.
    from LiverMetsLib.editing import editedSegmentIds

    assert editedSegmentIds(node) == ["lesion_1"]
    assert not node.GetDisplayNode().GetSegmentVisibility("lesion_2")

    table = LiverMetsLogic.lesionTableNode(node)
    assert table is not None
    assert tableRows(table) == tableRows(nodes.tableNode)
    volume = LiverMetsLogic.sourceVolumeNode(node)
    np.testing.assert_array_equal(arrayFromVolumeNode(volume), image)
    np.testing.assert_allclose(geometryFromVolumeNode(volume).ijk_to_ras(), geometry.ijk_to_ras(), atol=1e-6)
    assert node.GetAttribute("LiverMets.Sequence") == "hbp"

    loadedMarkups = loaded.GetFirstNodeByName("clicks")
    assert loadedMarkups.GetNumberOfControlPoints() == 2
    for index, expected in enumerate([(12.5, -3.25, 41.0), (-7.0, 8.0, 30.5)]):
        np.testing.assert_allclose(loadedMarkups.GetNthControlPointPosition(index), expected, atol=1e-6)


def test_bundle_path_must_end_in_mrb(scene, tmp_path):
    from LiverMetsLib.logic import LiverMetsLogic

    with pytest.raises(ValueError, match=r"\.mrb"):
        LiverMetsLogic(scene).writeSceneBundle(str(tmp_path / "study.zip"))
