"""The lesion matching and operating points used by ``Testing/evaluate_lesions.py``, on
hand-made instances whose answers follow from their construction."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lesion_metrics import match_lesions, operating_points, wilson_interval
from livermets.geometry import Geometry

GEOMETRY = Geometry((12, 12, 48), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))  # 1 mm voxels


def _case() -> tuple[np.ndarray, np.ndarray]:
    """Two true lesions of 12.4 mm (10 mm cubes) and one of 5.0 mm (a 4 mm cube); found: the
    first large one (label 1), the second (label 2), the small one (label 4), and a false
    positive (label 3) away from all of them."""
    truth = np.zeros(GEOMETRY.shape, dtype=np.int32)
    truth[1:11, 1:11, 1:11] = 1
    truth[1:11, 1:11, 13:23] = 2
    truth[4:8, 4:8, 26:30] = 3
    found = np.zeros_like(truth)
    found[2:10, 2:10, 2:10] = 1
    found[2:10, 2:10, 14:22] = 2
    found[2:6, 2:6, 40:44] = 3
    found[4:8, 4:8, 26:30] = 4
    return truth, found


def test_match_records_which_finds_matched_and_which_were_false():
    truth, found = _case()
    match = match_lesions(truth, found, GEOMETRY)
    assert match.matched_by == [(1,), (2,), (4,)]
    assert match.false_labels == [3] and match.false_positives == 1
    assert [round(d, 1) for d in match.truth_diameters_mm] == [12.4, 12.4, 5.0]


def test_operating_points_keep_only_finds_scoring_enough():
    truth, found = _case()
    match = match_lesions(truth, found, GEOMETRY)
    scores = [0.9, 0.6, 0.7, 0.95]  # labels 1..4
    low, middle, high = operating_points([(match, scores), (match, scores)], [0.5, 0.8, 0.96])
    assert low == {"min_score": 0.5, "sensitivity": 1.0, "sensitivity_large": 1.0, "false_positives_per_case": 1.0}
    # at 0.8 the second large lesion (0.6) and the false positive (0.7) are dropped
    assert middle["sensitivity"] == 2 / 3 and middle["sensitivity_large"] == 0.5
    assert middle["false_positives_per_case"] == 0.0
    assert high["sensitivity"] == 0.0 and high["false_positives_per_case"] == 0.0


def test_no_large_lesion_gives_no_large_sensitivity():
    truth, found = _case()
    truth[truth < 3] = 0
    match = match_lesions(truth, found, GEOMETRY)
    (point,) = operating_points([(match, [0.9, 0.9, 0.9, 0.9])], [0.5])
    assert point["sensitivity"] == 1.0 and point["sensitivity_large"] is None
    assert point["false_positives_per_case"] == 3.0  # labels 1-3 now match nothing


def test_wilson_interval_gives_the_published_intervals():
    # the worked examples of Newcombe 1998, "Two-sided confidence intervals for the single
    # proportion: comparison of seven methods", Stat Med 17:857-872, for the score interval
    # without continuity correction
    published = {(81, 263): (0.2553, 0.3662), (15, 148): (0.0624, 0.1605), (0, 20): (0.0, 0.1611),
                 (1, 29): (0.0061, 0.1718)}
    for (hits, total), expected in published.items():
        assert wilson_interval(hits, total) == pytest.approx(expected, abs=5e-5)
    low, high = wilson_interval(20, 20)
    assert high == 1.0 and 0.83 < low < 0.84  # all found: the interval still reaches below 1
    with pytest.raises(ValueError):
        wilson_interval(0, 0)
