"""Results into MRML: geometry, segments, terminology, colours, lesion table (real slicer-core MRML)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from livermets.labels import COUINAUD_NAMES, STRUCTURES
from synthetic import obliqueGeometry, study


def test_volume_round_trip_keeps_oblique_geometry_and_voxels(scene):
    from LiverMetsLib.volumes import addVolumeNode, arrayFromVolumeNode, geometryFromVolumeNode

    geometry = obliqueGeometry()
    image = np.random.default_rng(0).normal(size=geometry.shape).astype(np.float32)
    node = addVolumeNode(scene, image, geometry, "oblique")
    back = geometryFromVolumeNode(node)
    assert back.shape == geometry.shape
    np.testing.assert_allclose(back.ijk_to_ras(), geometry.ijk_to_ras(), atol=1e-9)
    np.testing.assert_array_equal(arrayFromVolumeNode(node), image)
    # A voxel's RAS position as Slicer computes it equals the core's.
    import vtk

    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    slicerRas = matrix.MultiplyPoint((7, 11, 3, 1))[:3]
    np.testing.assert_allclose(slicerRas, geometry.kji_to_ras(np.array([3, 11, 7])), atol=1e-9)


def test_populate_scene_names_terminology_colours(scene, logic, headlessSlicer):
    import slicer
    from LiverMetsLib import segmentations as seg

    geometry = obliqueGeometry()
    truth = study(geometry)
    nodes = logic.populateScene(geometry, liver=truth["liver"], lesions=truth["lesions"], portal=truth["portal"],
                                hepatic=truth["hepatic"], ivc=truth["ivc"], couinaud=truth["couinaud"], name="Study A")
    node = nodes.segmentationNode
    names = [node.GetSegmentation().GetSegment(i).GetName() for i in seg.segmentIds(node)]
    assert names == ["Liver", "Lesion 1", "Lesion 2", "Portal vein", "Hepatic veins", "IVC"] + list(COUINAUD_NAMES.values())

    terminologies = headlessSlicer.logic("Terminologies")
    expected = {"Liver": "liver", "Lesion 1": "lesion", "Portal vein": "portal_vein", "Hepatic veins": "hepatic_veins",
                "IVC": "ivc", "Segment IV": "liver"}
    for segmentId in seg.segmentIds(node):
        segment = node.GetSegmentation().GetSegment(segmentId)
        if segment.GetName() not in expected:
            continue
        structure = STRUCTURES[expected[segment.GetName()]]
        entry = slicer.vtkSlicerTerminologyEntry()
        assert terminologies.DeserializeTerminologyEntry(segment.GetTerminology(), entry)
        assert entry.GetCategoryObject().GetCodeValue() == structure.category.value
        assert entry.GetTypeObject().GetCodeValue() == structure.type.value
        assert entry.GetTypeObject().GetCodingSchemeDesignator() == "SCT"
        # The loaded LiverMets context knows the type and recommends the colour the segment has.
        assert terminologies.UpdateEntryFromLoadedTerminologies(entry, [seg.TERMINOLOGY_CONTEXT], [])
        if segment.GetName().startswith("Segment"):
            continue  # Couinaud segments are typed "Liver" but coloured per segment
        recommended = entry.GetTypeObject().GetRecommendedDisplayRGBValue()
        np.testing.assert_allclose(recommended, structure.color_rgb, atol=0.5)
        np.testing.assert_allclose(np.array(segment.GetColor()) * 255, structure.color_rgb, atol=0.5)


def test_segments_hold_exactly_the_input_voxels_on_an_oblique_grid(scene, logic):
    from LiverMetsLib import segmentations as seg

    geometry = obliqueGeometry()
    truth = study(geometry)
    node = logic.populateScene(geometry, liver=truth["liver"], lesions=truth["lesions"], portal=truth["portal"],
                               couinaud=truth["couinaud"]).segmentationNode
    np.testing.assert_array_equal(seg.segmentMask(node, "liver"), truth["liver"])
    np.testing.assert_array_equal(seg.segmentMask(node, "lesion_1"), truth["lesions"] == 1)
    np.testing.assert_array_equal(seg.segmentMask(node, "lesion_2"), truth["lesions"] == 2)
    np.testing.assert_array_equal(seg.segmentMask(node, "portal_vein"), truth["portal"])
    np.testing.assert_array_equal(seg.segmentMask(node, "couinaud_7"), truth["couinaud"] == 7)
    assert not seg.segmentMask(node, "couinaud_1").any()
    from LiverMetsLib.editing import editedSegmentIds

    assert editedSegmentIds(node) == []


def test_lesion_table_matches_the_arrays(scene, logic):
    geometry = obliqueGeometry()
    truth = study(geometry)
    # Rows as the core's detector writes them (distances are measured by the table itself, see
    # test_resection_planning.py).
    rows = [{"score": 0.91, "likely_cyst": False}, {"score": 0.42, "likely_cyst": True}]
    nodes = logic.populateScene(geometry, liver=truth["liver"], lesions=truth["lesions"], couinaud=truth["couinaud"],
                                lesionTable=rows)
    table = logic.tableRows(nodes.tableNode)
    assert [row["Segment"] for row in table] == ["Lesion 1", "Lesion 2"]
    for number, (row, given, radius_mm) in enumerate(zip(table, rows, (6.0, 4.5)), start=1):
        mask = truth["lesions"] == number
        # Volume: voxel count x voxel volume, straight from the array.
        assert float(row["Volume (ml)"]) == pytest.approx(mask.sum() * geometry.voxel_volume_ml, rel=1e-4)
        # Long axis of a digital ball of radius r: 2 r within one (largest) voxel.
        assert abs(float(row["Long axis (mm)"]) - 2 * radius_mm) <= max(geometry.spacing_mm)
        assert float(row["Short axis (mm)"]) <= float(row["Long axis (mm)"])
        assert float(row["Confidence"]) == pytest.approx(given["score"])
        assert row["Likely cyst"] == ("yes" if given["likely_cyst"] else "")
        assert row["Status"] == "candidate"
        # Couinaud: the label under most of the lesion's voxels.
        values, counts = np.unique(truth["couinaud"][mask], return_counts=True)
        assert row["Couinaud"] == str(values[np.argmax(counts)])
    # No vessels in this study: no distance to them is invented.
    assert all(row.get("Distance to ivc (mm)", "nan") == "nan" for row in table)


def test_bad_input_is_refused_with_a_clear_message(scene, logic):
    geometry = obliqueGeometry()
    with pytest.raises(ValueError, match="liver array has shape"):
        logic.populateScene(geometry, liver=np.zeros((3, 3, 3), bool), lesions=())
    with pytest.raises(ValueError, match="Geometry"):
        logic.populateScene(None, liver=None)
    with pytest.raises(ValueError, match="2 rows for 1 lesions|rows for"):
        truth = study(geometry)
        logic.populateScene(geometry, liver=truth["liver"], lesions=[truth["lesions"] == 1],
                            lesionTable=[{}, {}])
    with pytest.raises(ValueError, match="lesion 2 mask shape"):
        logic.populateScene(geometry, liver=truth["liver"], lesions=[truth["lesions"] == 1, np.zeros((2, 2, 2))],
                            image=np.zeros(geometry.shape, np.float32))
    # Nothing half-written: no node was left behind by the refused calls.
    assert scene.GetNodesByClass("vtkMRMLSegmentationNode").GetNumberOfItems() == 0
    assert scene.GetNodesByClass("vtkMRMLTableNode").GetNumberOfItems() == 0
    assert scene.GetNodesByClass("vtkMRMLScalarVolumeNode").GetNumberOfItems() == 0


def test_cancel_during_populate_leaves_no_node(scene, logic):
    from livermets.progress import Cancelled

    geometry = obliqueGeometry()
    truth = study(geometry)

    def cancelAfterNodesExist(fraction: float, message: str) -> None:
        if fraction >= 0.5:
            raise Cancelled()

    with pytest.raises(Cancelled):
        logic.populateScene(geometry, liver=truth["liver"], lesions=truth["lesions"], image=truth["liver"] * 1.0,
                            progress=cancelAfterNodesExist)
    for className in ("vtkMRMLSegmentationNode", "vtkMRMLTableNode", "vtkMRMLScalarVolumeNode"):
        assert scene.GetNodesByClass(className).GetNumberOfItems() == 0


def test_plan_resection_uses_the_reviewed_lesions(scene, logic):
    geometry = obliqueGeometry()
    truth = study(geometry)
    nodes = logic.populateScene(geometry, liver=truth["liver"], lesions=truth["lesions"], portal=truth["portal"],
                                hepatic=truth["hepatic"], ivc=truth["ivc"], couinaud=truth["couinaud"])
    wholeLiver = truth["liver"] | (truth["lesions"] > 0)
    inSegment = wholeLiver & (truth["couinaud"] == 7)
    plan = logic.planResection(nodes.segmentationNode, couinaudSegments=[7])
    # Resected functional volume: voxels of segment VII that are not lesion, times the voxel volume.
    expected_ml = np.count_nonzero(inSegment & (truth["lesions"] == 0)) * geometry.voxel_volume_ml
    assert plan["resected_volume_ml"] == pytest.approx(expected_ml, abs=0.01)
    assert "FLR" in plan["summary"]
    # A rejected lesion is functional liver again.
    logic.rejectLesion(nodes.segmentationNode, "lesion_1")
    plan = logic.planResection(nodes.segmentationNode, couinaudSegments=[7])
    expected_ml = np.count_nonzero(inSegment & (truth["lesions"] != 2)) * geometry.voxel_volume_ml
    assert plan["resected_volume_ml"] == pytest.approx(expected_ml, abs=0.01)
    with pytest.raises(ValueError, match="Couinaud segments"):
        logic.planResection(nodes.segmentationNode, couinaudSegments=[9])
    # The widget passes the user's text.
    assert logic.planResection(nodes.segmentationNode, couinaudSegments=" 7 ")["resected_volume_ml"] == \
        pytest.approx(expected_ml, abs=0.01)
    for text in ("", "5,six", "0,5"):
        with pytest.raises(ValueError, match="numbers 1 to 8"):
            logic.planResection(nodes.segmentationNode, couinaudSegments=text)


def test_detect_lesions_on_phantom_volume_nodes(scene, logic):
    from livermets.phantom import make_phantom
    from LiverMetsLib import segmentations as seg
    from LiverMetsLib.logic import LiverMetsLogic
    from LiverMetsLib.volumes import addVolumeNode

    ph = make_phantom(0, variant="small", sequences=["hbp"])
    volume = addVolumeNode(scene, ph.images["hbp"], ph.geometry, "hbp")
    messages = []
    nodes = logic.detectLesions([volume], ["hbp"], progress=lambda fraction, message: messages.append(fraction))
    node = nodes.segmentationNode
    assert LiverMetsLogic.sourceVolumeNode(node) is volume
    assert messages[0] == 0.0 and messages[-1] == 1.0 and messages == sorted(messages)
    liver = seg.segmentMask(node, "liver")
    truthLiver = ph.liver.astype(bool)
    assert 2 * (liver & truthLiver).sum() / (liver.sum() + truthLiver.sum()) >= 0.85
    # The largest true lesion is found: some lesion segment overlaps it with Dice >= 0.7 (phantom truth).
    largest = ph.lesions == np.argmax(np.bincount(ph.lesions.ravel())[1:]) + 1
    dices = [2 * (m & largest).sum() / (m.sum() + largest.sum())
             for m in (seg.segmentMask(node, i) for i in seg.lesionIds(node))]
    assert max(dices) >= 0.7
    rows = logic.tableRows(nodes.tableNode)
    assert len(rows) == len(seg.lesionIds(node))
    assert all(0.0 <= float(row["Confidence"]) <= 1.0 for row in rows)
    assert volume.GetAttribute("LiverMets.Sequence") == "hbp"  # the sequence chosen is preselected next time
    assert not any("guessed" in text for text in LiverMetsLogic.studyWarnings(node))  # named, not guessed
    with pytest.raises(ValueError, match="at least one image"):
        logic.detectLesions([], [])


def test_a_guessed_contrast_is_a_warning_the_study_keeps(scene, logic):
    from livermets.phantom import make_phantom
    from LiverMetsLib.logic import ATTRIBUTE_ENGINE, ATTRIBUTE_WARNINGS, LiverMetsLogic
    from LiverMetsLib.volumes import addVolumeNode

    ph = make_phantom(0, variant="small", sequences=["hbp"])
    volume = addVolumeNode(scene, ph.images["hbp"], ph.geometry, "image")  # a name that tells nothing
    node = logic.detectLesions([volume], [None], engine="classical").segmentationNode
    assert node.GetAttribute(ATTRIBUTE_ENGINE) == "classical"
    guessed = [text for text in LiverMetsLogic.studyWarnings(node) if "contrast was guessed" in text]
    assert len(guessed) == 1 and "image 1" in guessed[0] and "sequence selector" in guessed[0]
    assert volume.GetAttribute("LiverMets.Sequence") is None  # a guess is not remembered as a choice
    assert LiverMetsLogic.studyWarnings(None) == []
    node.SetAttribute(ATTRIBUTE_WARNINGS, "vessels not separated")  # a scene saved with plain text
    assert LiverMetsLogic.studyWarnings(node) == ["vessels not separated"]


def test_an_nnunet_model_folder_chooses_the_engine(scene, logic, tmp_path):
    import importlib.util

    from livermets.phantom import make_phantom
    from LiverMetsLib.logic import LiverMetsLogic
    from LiverMetsLib.volumes import addVolumeNode

    assert LiverMetsLogic.engineName(None) == LiverMetsLogic.engineName(Path()) == "builtin"
    assert LiverMetsLogic.engineName(tmp_path) == f"nnunet:{tmp_path}"
    assert LiverMetsLogic.missingPackage("builtin") == ""
    expected = "" if importlib.util.find_spec("nnunetv2") else "nnunetv2"
    assert LiverMetsLogic.missingPackage(f"nnunet:{tmp_path}") == expected
    with pytest.raises(ValueError, match="unknown engine"):
        LiverMetsLogic.missingPackage("magic")
    ph = make_phantom(0, variant="small", sequences=["hbp"])
    volume = addVolumeNode(scene, ph.images["hbp"], ph.geometry, "hbp")
    before = scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode")
    with pytest.raises(ValueError, match="does not exist"):
        logic.detectLesions([volume], ["hbp"], engine=LiverMetsLogic.engineName(tmp_path / "missing"))
    assert scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode") == before  # nothing half-made
