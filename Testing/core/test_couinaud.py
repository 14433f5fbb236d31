"""Couinaud segments against the phantom's true segments (truth: livermets.phantom's couinaud map,
built from its own vessel geometry), and the landmark scheme on hand-placed points."""

from __future__ import annotations

import numpy as np
import pytest

from livermets.errors import InputError
from livermets.measure.couinaud import CouinaudLandmarks, couinaud_map, landmarks_from_vessels, segments_from_landmarks

phantom = pytest.importorskip("livermets.phantom")


@pytest.fixture(scope="module")
def small_phantom():
    ph = phantom.make_phantom(0, variant="small")
    anatomy = np.asarray(ph.anatomy)
    labels = np.zeros(anatomy.shape, dtype=np.int16)
    for value, name in ((1, 1), (2, 2), (3, 3), (4, 4), (5, 4)):
        labels[anatomy == value] = name
    return ph, labels, np.asarray(ph.couinaud) > 0


@pytest.mark.parametrize("explicit_ivc", [True, False])
def test_automatic_couinaud_matches_phantom(small_phantom, explicit_ivc):
    ph, labels, liver = small_phantom
    truth = np.asarray(ph.couinaud)
    ivc = (np.asarray(ph.anatomy) == 5) if explicit_ivc else None
    landmarks = landmarks_from_vessels(labels, liver, ph.geometry, ivc=ivc)
    computed = couinaud_map(liver, ph.geometry, landmarks)
    accuracy = float((computed[liver] == truth[liver]).mean())
    print(f"couinaud_voxel_accuracy={accuracy:.3f} (explicit IVC: {explicit_ivc})")
    assert accuracy >= 0.9
    lesions = np.asarray(ph.lesions)
    for entry in ph.legend["lesions"]:
        inside = lesions == entry["id"]
        assert np.bincount(computed[inside], minlength=9).argmax() == entry["couinaud_segment"], entry["id"]


def _landmarks(**change):
    values = dict(ivc_point_ras=(0.0, 0.0, 0.0), right_hepatic_vein_ras=(40.0, 10.0, 20.0),
                  middle_hepatic_vein_ras=(10.0, 40.0, 20.0), left_hepatic_vein_ras=(-30.0, 30.0, 20.0),
                  portal_bifurcation_ras=(5.0, 30.0, -10.0), umbilical_fissure_ras=(-40.0, 50.0, 0.0))
    values.update(change)
    return CouinaudLandmarks(**values)


def test_landmark_scheme_on_hand_placed_points():
    points = np.array([[60.0, -10.0, 10.0],   # right, posterior of the RHV plane, above -> 7
                       [60.0, -10.0, -30.0],  # same, below -> 6
                       [40.0, 50.0, 10.0],    # between RHV and MHV, above -> 8
                       [40.0, 50.0, -30.0],   # -> 5
                       [-5.0, 60.0, -30.0],   # between MHV and LHV -> 4
                       [-60.0, 20.0, 40.0],   # left of LHV, above the oblique plane -> 2
                       [-60.0, 60.0, -30.0],  # below it -> 3
                       [-10.0, 15.0, 0.0]])   # next to the IVC, behind the bifurcation -> 1
    assert list(segments_from_landmarks(points, _landmarks())) == [7, 6, 8, 5, 4, 2, 3, 1]


def test_landmarks_out_of_order_are_refused():
    with pytest.raises(InputError, match="hepatic vein"):
        segments_from_landmarks(np.zeros((1, 3)), _landmarks(right_hepatic_vein_ras=(-40.0, 10.0, 0.0)))
