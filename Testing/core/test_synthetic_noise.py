"""The noise that ``Testing/synthetic_liver.make_case`` gives objects inserted into real images:
it must match the real image's own noise in strength and grain, or inserted lesions look (and
are detected) unlike real ones."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from livermets.geometry import Geometry
from synthetic_liver import Ball, correlated_noise, image_noise, make_case

SPACING_KJI_MM = (7.7, 1.25, 1.25)  # thick slices, as in CHAOS: noise correlated in-plane only


@pytest.mark.parametrize("grain_px, low, high", [(0.0, 0.0, 0.4), (0.8, 0.7, 0.9), (1.6, 1.5, 1.7)])
def test_noise_estimate_recovers_strength_and_grain(grain_px, low, high):
    """Near white noise the grain is loosely determined (a kernel under 0.4 pixels barely
    correlates neighbours), so it is only bounded there."""
    noise = 12.0 * correlated_noise((16, 96, 96), SPACING_KJI_MM, grain_px, np.random.default_rng(3))
    sd, grain = image_noise(300.0 + noise, np.ones(noise.shape, dtype=bool), SPACING_KJI_MM)
    assert sd == pytest.approx(12.0, rel=0.05)
    assert low <= grain <= high


def test_generated_noise_is_correlated_in_plane_only():
    noise = correlated_noise((40, 64, 64), SPACING_KJI_MM, 1.5, np.random.default_rng(0))
    in_plane = np.corrcoef(noise[:, :, 1:].ravel(), noise[:, :, :-1].ravel())[0, 1]
    across = np.corrcoef(noise[1:].ravel(), noise[:-1].ravel())[0, 1]
    assert in_plane > 0.7 and abs(across) < 0.05


def test_an_inserted_lesion_carries_the_background_noise_not_its_spread():
    """The background is a smooth shading (a wide intensity spread that is not noise) plus fine,
    correlated noise of sd 10: the lesion's inside gets noise of that sd and grain."""
    shape = (12, 96, 96)
    geometry = Geometry(shape, SPACING_KJI_MM[::-1], (0.0, 0.0, 0.0))
    columns = np.linspace(0.0, 1.0, shape[2], dtype=np.float32)
    shading = 300.0 + 200.0 * columns[None, None, :]  # spread of the liver's values ~ 60
    background = shading + 10.0 * correlated_noise(shape, SPACING_KJI_MM, 1.0, np.random.default_rng(1))
    liver = np.ones(shape, dtype=bool)
    ball = Ball((6 * 7.7, 48 * 1.25, 48 * 1.25), radius_mm=25.0, value=1.6)
    case = make_case(geometry=geometry, balls=[ball], sequences=("t2",), liver=liver,
                     background={"t2": background}, seed=5)
    inside = case.lesions > 0
    core = inside & (np.abs(np.arange(shape[0]) - 6) <= 1)[:, None, None]
    sd, grain = image_noise(case.images["t2"] - np.where(inside, 0.0, shading), core, SPACING_KJI_MM)
    assert sd == pytest.approx(10.0, rel=0.15)
    assert grain == pytest.approx(1.0, abs=0.25)
