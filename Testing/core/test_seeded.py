"""One-click lesion segmentation with include / exclude refinement (synthetic balls).

Truth: voxel centres inside the analytic balls of ``Testing/synthetic_liver.py``.
The 0.3 s time bound is a benchmark (Testing/evaluate_lesions.py), not asserted here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lesion_metrics import dice
from livermets.errors import InputError
from livermets.segmentation.seeded import segment_lesion_from_seed
from synthetic_liver import Ball, make_case


def _index(center_mm, geometry):
    return tuple(round(c / s) for c, s in zip(center_mm, geometry.spacing_mm))


@pytest.mark.parametrize("sequence", ["t2", "hbp", "portal_venous"])
def test_one_click_on_a_lobulated_ball(sequence):
    ball = Ball((60.0, 72.0, 66.0), 8.0, irregularity=0.2, shape_seed=3)
    case = make_case(balls=[ball], sequences=(sequence,), seed=11)
    mask = segment_lesion_from_seed(case.images[sequence], case.geometry, _index(ball.center_mm, case.geometry),
                                    sequence=sequence, liver=case.liver)
    assert dice(case.lesions == 1, mask) >= 0.85


def test_small_ball_and_liver_confinement():
    ball = Ball((60.0, 72.0, 66.0), 4.0)
    case = make_case(balls=[ball], sequences=("t2",), seed=12)
    mask = segment_lesion_from_seed(case.images["t2"], case.geometry, _index(ball.center_mm, case.geometry),
                                    sequence="t2", liver=case.liver)
    assert dice(case.lesions == 1, mask) >= 0.75
    assert not (mask & ~case.liver).any()


def test_exclude_point_cuts_a_leak():
    # two overlapping balls: one click on the first leaks into the second
    first, second = Ball((60.0, 72.0, 60.0), 8.0), Ball((60.0, 72.0, 75.0), 8.0)
    case = make_case(balls=[first, second], sequences=("dwi",), seed=13)
    seed = _index(first.center_mm, case.geometry)
    leaking = segment_lesion_from_seed(case.images["dwi"], case.geometry, seed, sequence="dwi", liver=case.liver)
    truth = case.lesions == 1
    before = dice(truth, leaking)
    assert (leaking & (case.lesions == 2)).sum() > 0.5 * (case.lesions == 2).sum()  # it did leak
    exclude = _index(second.center_mm, case.geometry)
    refined = segment_lesion_from_seed(case.images["dwi"], case.geometry, seed, sequence="dwi", liver=case.liver,
                                       exclude_kji=[exclude])
    assert not refined[exclude]
    assert dice(truth, refined) >= 0.85 > before


def test_include_point_is_in_and_lowers_the_threshold():
    ball = Ball((60.0, 72.0, 66.0), 9.0)
    case = make_case(balls=[ball], sequences=("t2",), seed=14)
    image = case.images["t2"].copy()
    seed = _index(ball.center_mm, case.geometry)
    # a dimmer half (partly necrotic rim) that one click alone leaves out
    _k, _j, i = np.indices(image.shape)
    dim_half = (case.lesions == 1) & (i > seed[2])
    image[dim_half] = image[dim_half] * 0.75
    plain = segment_lesion_from_seed(image, case.geometry, seed, sequence="t2", liver=case.liver)
    include = (seed[0], seed[1], seed[2] + 4)
    assert dim_half[include]
    refined = segment_lesion_from_seed(image, case.geometry, seed, sequence="t2", liver=case.liver,
                                       include_kji=[include])
    assert refined[include]
    assert dice(case.lesions == 1, refined) > dice(case.lesions == 1, plain)


def test_bad_points_are_explained():
    case = make_case(balls=[Ball((60.0, 72.0, 66.0), 6.0)], sequences=("t2",))
    with pytest.raises(InputError, match="outside the image"):
        segment_lesion_from_seed(case.images["t2"], case.geometry, (500, 0, 0), sequence="t2")
    with pytest.raises(ValueError, match="unknown sequence"):
        segment_lesion_from_seed(case.images["t2"], case.geometry, (20, 48, 44), sequence="flair")
