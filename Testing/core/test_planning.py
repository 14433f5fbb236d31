"""Virtual resection and FLR against analytic truth.

Truth: spherical cap volume V = pi h^2 (3R - h) / 3 for a plane cutting a sphere; box volumes
for segment resections; Vauthey's formula (Liver Transpl 2002) with Mosteller's BSA.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from livermets.cli import main
from livermets.errors import InputError
from livermets.imageio import write_label
from livermets.planning import (PlaneResection, ResectionModel, bsa_mosteller_m2, estimated_total_liver_volume_ml,
                                flr_summary, name_resection)
from livermets.planning.plan import make_plan
from shapes import box, centres_ras, grid, sphere

RADIUS_MM = 40.0


def _cap_ml(height_mm: float) -> float:
    return np.pi * height_mm ** 2 * (3 * RADIUS_MM - height_mm) / 3.0 / 1000.0


def _sphere_liver(spacing=(1.0, 1.0, 1.0), tilt_deg=0.0):
    """Sphere liver R = 40 mm; lesion 1 (r 6) at x = +20, lesion 2 (r 5) at x = -22;
    a portal tube of radius 3 mm along x at y = 15, z = 0."""
    geometry = grid(96.0, spacing, tilt_deg)
    liver = sphere(geometry, (0, 0, 0), RADIUS_MM)
    points = centres_ras(geometry)
    labels = np.where(liver, 1, 0).astype(np.int16)
    portal = (np.hypot(points[..., 1] - 15.0, points[..., 2]) <= 3.0) & liver
    labels[portal] = 3
    lesions = np.zeros(geometry.shape, dtype=np.int32)
    lesions[sphere(geometry, (20.0, -5.0, 0.0), 6.0)] = 1
    lesions[sphere(geometry, (-22.0, -5.0, 0.0), 5.0)] = 2
    labels[lesions > 0] = 2
    return geometry, liver, labels, lesions


@pytest.mark.parametrize("spacing, tilt_deg", [((1.0, 1.0, 1.0), 0.0), ((0.8, 0.8, 2.5), 0.0),
                                               ((1.5, 1.5, 3.0), 30.0)])
def test_plane_cut_matches_sphere_cap(spacing, tilt_deg):
    geometry, liver, labels, lesions = _sphere_liver(spacing, tilt_deg)
    model = ResectionModel(liver, lesions, labels, geometry)
    planner = PlaneResection(model)
    plan = planner.update((10.0, 0.0, 0.0), (1.0, 0.0, 0.0))  # resect x > 10: cap of height 30
    lesion_1_ml = np.count_nonzero(lesions == 1) * geometry.voxel_volume_ml
    assert plan["resected_volume_ml"] == pytest.approx(_cap_ml(30.0) - lesion_1_ml, rel=0.02)
    functional_ml = 4 / 3 * np.pi * RADIUS_MM ** 3 / 1000 - np.count_nonzero(lesions) * geometry.voxel_volume_ml
    expected_flr = 100 * (functional_ml - (_cap_ml(30.0) - lesion_1_ml)) / functional_ml
    flr = flr_summary(plan["remnant_volume_ml"], plan["total_functional_volume_ml"])["flr_pct"]
    assert abs(flr - expected_flr) <= 1.0
    margins = {m["id"]: m for m in plan["lesions"]}
    # lesion 1 spans x 14..26: resected, 4 mm from the plane; lesion 2 spans x -27..-17: left, 27 mm away
    assert margins[1]["status"] == "resected" and abs(margins[1]["margin_mm"] - 4.0) <= max(spacing)
    assert margins[2]["status"] == "remnant" and abs(margins[2]["margin_mm"] - 27.0) <= max(spacing)
    assert not margins[1]["r1"]
    # the plane crosses the portal tube (radius 3 mm) once, at x = 10
    assert len(plan["vessels_cut"]) == 1
    cut = plan["vessels_cut"][0]
    assert cut["vessel"] == "portal" and abs(cut["diameter_mm"] - 6.0) <= max(spacing)
    assert abs(cut["center_ras_mm"][0] - 10.0) <= max(spacing)


def test_plane_through_lesion_is_r1_and_update_is_fast():
    geometry, liver, labels, lesions = _sphere_liver((0.8, 0.8, 2.5))
    planner = PlaneResection(ResectionModel(liver, lesions, labels, geometry))
    started = time.monotonic()
    plan = planner.update((20.0, 0.0, 0.0), (1.0, 0.2, 0.1))
    elapsed = time.monotonic() - started
    print(f"plan_update_s={elapsed:.3f}")
    assert elapsed <= 0.5
    margin = next(m for m in plan["lesions"] if m["id"] == 1)
    assert margin["status"] == "transected" and margin["margin_mm"] == 0.0 and margin["r1"]


def test_segment_resection_of_box_liver_and_margins():
    """Box liver x -50..50: 'segments' 5-8 = x > 0 (right), 2-4 = x < 0; lesion at x 5..17 in segment 5."""
    geometry = grid(120.0, (1.0, 1.0, 1.0))
    liver = box(geometry, (-50, -30, -30), (50, 30, 30))
    points = centres_ras(geometry)
    couinaud = np.where(liver, np.where(points[..., 0] > 0, 5, 3), 0).astype(np.uint8)
    lesions = np.zeros(geometry.shape, dtype=np.int32)
    lesions[sphere(geometry, (11.0, 0.0, 0.0), 6.0)] = 1
    labels = np.where(liver, 1, 0).astype(np.int16)
    labels[lesions > 0] = 2
    model = ResectionModel(liver, lesions, labels, geometry, couinaud=couinaud)
    plan, resected = make_plan(model, segments=[5, 6, 7, 8], height_cm=175, weight_kg=70,
                               liver_condition="chemotherapy")
    assert plan["name"] == "right hepatectomy"
    lesion_ml = np.count_nonzero(lesions) / 1000.0
    assert plan["resected_volume_ml"] == pytest.approx(np.count_nonzero(liver & (points[..., 0] > 0)) / 1000.0
                                                       - lesion_ml, abs=0.01)
    assert abs(plan["flr_pct"] - 50.0 * (1 + lesion_ml / (np.count_nonzero(liver) / 1000 - lesion_ml))) <= 1.0
    margin = plan["lesions"][0]
    assert margin["status"] == "resected" and abs(margin["margin_mm"] - 5.0) <= 1.0
    bsa = (175 * 70 / 3600) ** 0.5
    assert plan["bsa_m2"] == pytest.approx(bsa, abs=1e-3)
    assert plan["standardised_flr_pct"] == pytest.approx(
        100 * plan["remnant_volume_ml"] / (-794.41 + 1267.28 * bsa), abs=0.01)
    assert plan["thresholds"]["minimum_for_condition_pct"] == 30.0
    assert resected.sum() == np.count_nonzero(liver & (points[..., 0] > 0))


def test_wedge_keeps_the_requested_margin():
    geometry, liver, labels, lesions = _sphere_liver((1.0, 1.0, 1.0))
    model = ResectionModel(liver, lesions, labels, geometry)
    plan, resected = make_plan(model, wedges={2: 10.0})
    margins = {m["id"]: m for m in plan["lesions"]}
    assert margins[2]["status"] == "resected" and abs(margins[2]["margin_mm"] - 10.0) <= 1.0
    assert margins[1]["status"] == "remnant"
    # wedge volume: ball of radius 5 + 10 mm around the lesion, less the lesion
    expected_ml = 4 / 3 * np.pi * (15.0 ** 3 - 5.0 ** 3) / 1000
    assert plan["resected_volume_ml"] == pytest.approx(expected_ml, rel=0.1)


def test_flr_formulas_and_errors():
    assert bsa_mosteller_m2(180, 80) == pytest.approx(2.0)
    assert estimated_total_liver_volume_ml(2.0) == pytest.approx(1740.15)
    assert name_resection([4, 5, 6, 7, 8]) == "extended right hepatectomy"
    assert name_resection([6]) == "segmentectomy 6"
    with pytest.raises(InputError):
        flr_summary(500, 1000, height_cm=170)
    with pytest.raises(InputError):
        flr_summary(500, 1000, liver_condition="fatty")


def test_plan_command_writes_plan_and_remnant(tmp_path):
    geometry, liver, labels, lesions = _sphere_liver((1.5, 1.5, 3.0))
    for name, array in (("liver.nii.gz", liver), ("labels.nii.gz", labels), ("lesions.nii.gz", lesions)):
        write_label(array, geometry, tmp_path / name)
    code = main(["--quiet", "plan", str(tmp_path), "--plane", "10,0,0,1,0,0", "--height-cm", "170",
                 "--weight-kg", "65", "--liver-condition", "normal"])
    assert code == 0
    plan = json.loads((tmp_path / "plan.json").read_text(encoding="utf-8"))
    assert plan["kind"] == "plane" and 0 < plan["flr_pct"] < 100
    from livermets.imageio import read_image
    remnant = read_image(tmp_path / "remnant.nii.gz").array > 0
    assert remnant.sum() * geometry.voxel_volume_ml == pytest.approx(
        np.count_nonzero(liver) * geometry.voxel_volume_ml - _cap_ml(30.0), rel=0.03)
    assert main(["--quiet", "plan", str(tmp_path), "--segments", "5,6"]) == 2  # no couinaud.nii.gz yet
