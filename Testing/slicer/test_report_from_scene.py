"""The module's Report step: the reviewed study leaves the scene as a result folder and a report."""

from __future__ import annotations

import json

import numpy as np
import pytest


def test_report_of_a_reviewed_phantom_study(scene, logic, tmp_path):
    from livermets.imageio import read_image
    from livermets.phantom import make_phantom
    from LiverMetsLib import segmentations as seg

    ph = make_phantom(0, variant="small", sequences=["hbp"])
    nodes = logic.populateScene(ph.geometry, liver=ph.liver > 0, lesions=ph.lesions,
                                portal=ph.labels == 3, hepatic=ph.anatomy == 4, ivc=ph.anatomy == 5,
                                couinaud=ph.couinaud, image=ph.images["hbp"], sequence="hbp")
    lesionIds = seg.lesionIds(nodes.segmentationNode)
    logic.rejectLesion(nodes.segmentationNode, lesionIds[-1])

    html = logic.writeReport(nodes.segmentationNode, str(tmp_path / "case"))

    folder = tmp_path / "case"
    kept = set(range(1, len(lesionIds)))  # the rejected lesion is the last number
    written = read_image(folder / "lesions.nii.gz").array
    assert set(np.unique(written)) - {0} == kept
    # Exported voxels are the scene's voxels (phantom truth), on the same grid.
    assert np.array_equal(written, np.where(ph.lesions == len(lesionIds), 0, ph.lesions))
    assert read_image(folder / "image.nii.gz").geometry.same_grid(ph.geometry)
    # The Couinaud segments of the scene are used as they are (not recomputed).
    measurements = json.loads((folder / "measurements.json").read_text(encoding="utf-8"))
    assert measurements["couinaud_method"] == "from the existing couinaud.nii.gz"
    assert {lesion["id"] for lesion in measurements["lesions"]} == kept
    results = json.loads((folder / "report" / "results.json").read_text(encoding="utf-8"))
    assert {lesion["id"] for lesion in results["lesions"]} == kept
    page = (folder / "report" / "report.html").read_text(encoding="utf-8")
    assert html == str(folder / "report" / "report.html")
    assert f"{measurements['liver_volume_ml']:.1f} ml" in page


def test_report_needs_a_study(logic, tmp_path):
    with pytest.raises(ValueError, match="segmentation"):
        logic.writeReport(None, str(tmp_path))


def test_the_detectors_cyst_flags_reach_the_report(scene, logic, tmp_path):
    from livermets.phantom import make_phantom

    ph = make_phantom(0, variant="small", sequences=["hbp"])
    count = int(ph.lesions.max())
    rows = [{"score": 0.9, "likely_cyst": number == 1} for number in range(1, count + 1)]
    nodes = logic.populateScene(ph.geometry, liver=ph.liver > 0, lesions=ph.lesions, image=ph.images["hbp"],
                                sequence="hbp", lesionTable=rows)

    logic.writeReport(nodes.segmentationNode, str(tmp_path / "case"))

    results = json.loads((tmp_path / "case" / "report" / "results.json").read_text(encoding="utf-8"))
    assert {lesion["id"]: lesion["likely_cyst"] for lesion in results["lesions"]} == {
        number: number == 1 for number in range(1, count + 1)}
    assert results["liver"]["lesion_count"] == count and results["liver"]["likely_cyst_count"] == 1
    page = (tmp_path / "case" / "report" / "report.html").read_text(encoding="utf-8")
    assert f"{count} (1 likely cyst)" in page


def test_a_lesion_drawn_by_hand_is_not_judged_a_cyst_or_not(scene, logic):
    from livermets.phantom import make_phantom
    from LiverMetsLib import review

    ph = make_phantom(0, variant="small", sequences=["hbp"])
    nodes = logic.populateScene(ph.geometry, liver=ph.liver > 0, lesions=ph.lesions, image=ph.images["hbp"],
                                sequence="hbp")
    assert [entry.likelyCyst for entry in review.listLesions(nodes.segmentationNode)] == [None] * int(ph.lesions.max())
