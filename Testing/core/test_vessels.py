"""Vessel segmentation and portal / hepatic separation on a synthetic two-tree liver.

Truth: ``synthetic_liver.two_tree_vessels()`` -- a vertical IVC posterior to the liver with
three hepatic veins draining into it superiorly, and a portal trunk entering the liver from
inferior-medial with three branches; voxel centres inside each tapered tube are its truth.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lesion_metrics import vessel_dice
from livermets.errors import InputError
from livermets.segmentation.vessels import segment_vessels
from synthetic_liver import Ball, make_case, tube_distance, two_tree_vessels


@pytest.fixture(scope="module", params=["portal_venous", "hbp"])
def separated(request):
    case = make_case(tubes=two_tree_vessels(), sequences=(request.param,), seed=7)
    return request.param, case, segment_vessels(case.images, case.liver, case.geometry)


def test_trees_separated_by_topology(separated):
    sequence, case, result = separated
    assert not result.warnings
    liver = case.liver
    # inside the liver both polarities must separate the trees well
    assert vessel_dice(case.portal, result.portal, case.geometry, region=liver) >= 0.8
    assert vessel_dice(case.hepatic, result.hepatic, case.geometry, region=liver) >= 0.6
    if sequence == "portal_venous":  # bright vessels: also the extrahepatic trunk and the IVC
        assert vessel_dice(case.portal, result.portal, case.geometry) >= 0.7
        assert vessel_dice(case.hepatic, result.hepatic, case.geometry) >= 0.7
        assert vessel_dice(case.ivc, result.ivc, case.geometry) >= 0.6
    assert not (result.portal & result.hepatic).any()
    assert not (result.ivc & ~result.hepatic).any()


def test_roots_are_anatomical(separated):
    _, case, result = separated
    low, high = np.asarray(result.ivc_axis_ras_mm)
    assert high[2] - low[2] >= 20.0  # the IVC runs superior-inferior (at least its intrahepatic part)
    assert abs(high[0] - low[0]) < 5.0 and abs(high[1] - low[1]) < 5.0
    entry = np.asarray(result.portal_entry_ras_mm)
    assert entry[1] > low[1]  # portal entry anterior to the IVC (RAS +y anterior)
    liver_z = case.geometry.kji_to_ras(np.argwhere(case.liver).mean(0))[2]
    assert entry[2] < liver_z  # and in the lower half of the liver


def test_centerline_radii_match_tubes(separated):
    _, case, result = separated
    assert {c["tree"] for c in result.centerlines} == {"portal", "hepatic"}
    spacing = np.asarray(case.geometry.spacing_mm)
    errors = []
    for line in result.centerlines:
        assert len(line["points_ras_mm"]) == len(line["radii_mm"])
        points_mm = case.geometry.ras_to_kji(np.asarray(line["points_ras_mm"])) * spacing
        for point, radius in zip(points_mm, line["radii_mm"]):
            offsets = [tube_distance(point[None].astype(np.float32), t)[0] for t in case.tubes]
            tube = case.tubes[int(np.argmin(offsets))]
            a, b = np.asarray(tube.start_mm), np.asarray(tube.end_mm)
            t = np.clip((point - a) @ (b - a) / ((b - a) @ (b - a)), 0, 1)
            if np.linalg.norm(point - (a + t * (b - a))) < 1.5:  # on the tube's axis
                errors.append(radius - (tube.radius_start_mm + t * (tube.radius_end_mm - tube.radius_start_mm)))
    assert len(errors) >= 20
    assert abs(np.median(errors)) <= spacing.min()  # within a voxel (1.5 mm)


def test_lesion_mask_is_kept_out():
    ball = Ball((45.0, 70.0, 60.0), 6.0)
    case = make_case(tubes=two_tree_vessels(), balls=[ball], sequences=("hbp",), seed=8)
    result = segment_vessels(case.images, case.liver, case.geometry, lesions=case.lesions > 0)
    assert not ((result.portal | result.hepatic) & (case.lesions > 0)).any()


def test_empty_liver_is_explained():
    case = make_case(tubes=two_tree_vessels(), sequences=("portal_venous",))
    with pytest.raises(InputError, match="liver mask"):
        segment_vessels(case.images, np.zeros_like(case.liver), case.geometry)
