"""Lesion and liver measurements against analytic solids (truth: the solids' formulas).

Solids are rasterised by voxel-centre inclusion on grids of several spacings, some with
rotated direction cosines (see shapes.py). Tolerances: volume 2 %, lengths one voxel
(the largest spacing of the grid).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from livermets.measure.distances import StructureDistance
from livermets.measure.lesion_size import max_diameter_3d, recist_axes, volume_ml
from livermets.measure.lesions import measure_lesions
from livermets.measure.liver_summary import liver_summary, lobar_distribution
from livermets.measure.surface import boundary_voxels
from livermets.measure.vessels import estimate_ivc
from shapes import box, ellipsoid, grid, rotation, sphere

GRIDS = [((1.0, 1.0, 1.0), 0.0), ((0.8, 0.8, 2.5), 0.0), ((1.5, 1.5, 3.0), 0.0), ((0.8, 0.8, 2.5), 20.0),
         ((1.5, 1.5, 3.0), 35.0)]


@pytest.mark.parametrize("spacing, tilt_deg", GRIDS)
def test_ellipsoid_volume_and_3d_diameter(spacing, tilt_deg):
    geometry = grid(76.0, spacing, tilt_deg)
    semi_axes = (17.0, 11.0, 8.0)
    mask = ellipsoid(geometry, (1.0, -2.0, 0.5), semi_axes, rotation((0.3, 0.2, 1.0), 40.0))
    expected_ml = 4.0 / 3.0 * np.pi * np.prod(semi_axes) / 1000.0
    assert volume_ml(mask, geometry) == pytest.approx(expected_ml, rel=0.02)
    feret = max_diameter_3d(mask, geometry)
    assert abs(feret.length_mm - 2 * semi_axes[0]) <= max(spacing)
    endpoints = np.array([feret.start_ras_mm, feret.end_ras_mm])
    assert np.linalg.norm(endpoints[1] - endpoints[0]) == pytest.approx(feret.length_mm)
    # the endpoints lie on the long axis of the ellipsoid, at its tips
    tips = (1.0, -2.0, 0.5) + np.outer([1, -1], rotation((0.3, 0.2, 1.0), 40.0)[:, 0] * semi_axes[0])
    assert min(np.linalg.norm(endpoints - tips, axis=1).max(),
               np.linalg.norm(endpoints[::-1] - tips, axis=1).max()) <= 2 * max(spacing)


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.8, 0.8, 2.5), (1.5, 1.5, 3.0)])
def test_recist_axes_of_upright_ellipsoid(spacing):
    """Ellipsoid with semi-axes 16 (x, turned 30 degrees in the axial plane), 9 (y), 7 (z):
    the largest axial section is the ellipse 32 x 18 mm."""
    geometry = grid(60.0, spacing)
    mask = ellipsoid(geometry, (0.4, 0.3, 0.2), (16.0, 9.0, 7.0), rotation((0, 0, 1), 30.0))
    recist = recist_axes(mask, geometry)
    assert recist.plane == "axial"
    assert abs(recist.long.length_mm - 32.0) <= max(spacing[:2])
    assert abs(recist.short.length_mm - 18.0) <= max(spacing[:2])
    long_vector = np.subtract(recist.long.end_ras_mm, recist.long.start_ras_mm)
    short_vector = np.subtract(recist.short.end_ras_mm, recist.short.start_ras_mm)
    assert abs(long_vector @ short_vector) / (np.linalg.norm(long_vector) * np.linalg.norm(short_vector)) < 1e-6
    assert abs(long_vector[2]) < 1e-6 and abs(short_vector[2]) < 1e-6  # both on one axial slice
    assert abs(abs(long_vector[0]) / np.linalg.norm(long_vector) - np.cos(np.radians(30))) < 0.05


def test_recist_on_oblique_grid_measures_in_the_slice_plane():
    geometry = grid(60.0, (0.8, 0.8, 2.5), 25.0)
    mask = sphere(geometry, (0.0, 0.0, 0.0), 12.0)
    recist = recist_axes(mask, geometry)
    assert recist.plane.startswith("acquisition slice plane")
    assert abs(recist.long.length_mm - 24.0) <= 2.5 and abs(recist.short.length_mm - 24.0) <= 2.5
    normal = geometry.axis_vectors_ras()[recist.slice_axis]
    assert abs(np.subtract(recist.long.end_ras_mm, recist.long.start_ras_mm) @ normal) < 1e-6


@pytest.mark.parametrize("spacing, tilt_deg", GRIDS)
def test_distance_between_spheres(spacing, tilt_deg):
    geometry = grid(80.0, spacing, tilt_deg)
    centre_a, centre_b = np.array([-15.0, 1.0, 2.0]), np.array([13.0, 4.0, -6.0])
    lesion = sphere(geometry, centre_a, 8.0)
    vessel = sphere(geometry, centre_b, 9.0)
    found = StructureDistance(vessel, geometry).nearest(np.argwhere(boundary_voxels(lesion)))
    expected = np.linalg.norm(centre_b - centre_a) - 17.0
    assert abs(found.distance_mm - expected) <= max(spacing)
    # the point pair lies on the line between the centres, on each surface
    unit = (centre_b - centre_a) / np.linalg.norm(centre_b - centre_a)
    assert np.linalg.norm(np.subtract(found.lesion_point_ras_mm, centre_a + 8.0 * unit)) <= 2 * max(spacing)
    assert np.linalg.norm(np.subtract(found.structure_point_ras_mm, centre_b - 9.0 * unit)) <= 2 * max(spacing)


def test_touching_masks_are_zero_apart():
    geometry = grid(30.0, (1.0, 1.0, 1.0))
    left = box(geometry, (-10, -5, -5), (-0.1, 5, 5))
    right = box(geometry, (0.1, -5, -5), (10, 5, 5))
    right &= ~left
    found = StructureDistance(right, geometry).nearest(np.argwhere(left))
    assert found.distance_mm == 0.0


def _liver_case(spacing=(1.0, 1.0, 1.0), tilt_deg=0.0):
    """A box liver 100 x 80 x 60 mm with a vertical IVC tube, one hepatic vein and lesions."""
    geometry = grid(130.0, spacing, tilt_deg)
    liver = box(geometry, (-50, -40, -30), (50, 40, 30))
    labels = np.where(liver, 1, 0).astype(np.int16)
    points = None
    from shapes import centres_ras
    points = centres_ras(geometry)
    ivc = (np.hypot(points[..., 0] - 30.0, points[..., 1] + 25.0) <= 10.0) & (np.abs(points[..., 2]) <= 60)
    vein = (np.hypot(points[..., 1] + 25.0, points[..., 2] - 10.0) <= 3.0) & (points[..., 0] > -40) & (points[..., 0] < 30)
    portal = (np.hypot(points[..., 0] + 10.0, points[..., 1] - 10.0) <= 4.0) & (np.abs(points[..., 2]) <= 25)
    labels[vein | ivc] = 4
    labels[portal] = 3
    lesions = np.zeros(geometry.shape, dtype=np.int32)
    lesions[sphere(geometry, (0.0, 10.0, 0.0), 6.0)] = 1      # portal vein at 10 mm from its centre: 0 gap
    lesions[sphere(geometry, (-30.0, -10.0, 10.0), 7.0)] = 2  # 11.5 mm below-anterior of the vein
    labels[lesions > 0] = 2
    return geometry, liver | ivc, labels, lesions, ivc


def test_measure_lesions_reports_distances_and_contacts():
    geometry, liver, labels, lesions, ivc = _liver_case()
    results = measure_lesions(lesions, labels, geometry, liver=liver)
    assert [r["id"] for r in results] == [1, 2]
    first, second = results
    assert first["volume_ml"] == pytest.approx(4 / 3 * np.pi * 6.0 ** 3 / 1000, rel=0.03)
    # lesion 1: centre 10 mm from the portal axis, radii 6 + 4 -> touching
    assert first["nearest"]["portal"] <= 1.0 and "portal" in first["vessel_contact"]
    # lesion 2 to the hepatic vein (axis y=-25, z=10; radius 3): centre offset (y 15, z 0) -> 15 - 7 - 3 = 5 mm
    assert abs(second["nearest"]["hepatic"] - 5.0) <= 1.0
    # capsule: lesion 2 is 20 mm from x = -50 -> 13 mm surface gap
    assert abs(second["nearest"]["capsule"] - 13.0) <= 1.0
    # IVC (axis x=30, y=-25, radius 10): centre distance hypot(60, 15) - 17
    assert abs(second["nearest"]["ivc"] - (np.hypot(60.0, 15.0) - 17.0)) <= 1.0
    assert second["vessel_contact"] == []
    assert second["sphericity"] == pytest.approx(1.0, abs=0.05)
    assert second["couinaud"] == {}


def test_estimate_ivc_separates_the_thick_vertical_tube():
    geometry, liver, labels, lesions, ivc = _liver_case((1.5, 1.5, 3.0), 15.0)
    estimated = estimate_ivc(labels == 4, geometry)
    overlap = np.count_nonzero(estimated & ivc) / np.count_nonzero(ivc)
    assert overlap > 0.9
    hepatic_only = (labels == 4) & ~ivc
    assert np.count_nonzero(estimated & hepatic_only) < 0.1 * np.count_nonzero(hepatic_only)


def test_liver_summary_and_lobes():
    geometry, liver, labels, lesions, ivc = _liver_case()
    results = [{"couinaud_segment": 6}, {"couinaud_segment": 3}]
    summary = liver_summary(liver, lesions, geometry, results)
    assert summary["liver_volume_ml"] == pytest.approx(np.count_nonzero(liver) / 1000.0)
    assert summary["tumour_burden_pct"] == pytest.approx(
        100.0 * np.count_nonzero(lesions) / np.count_nonzero(liver), rel=1e-3)
    assert summary["lesions_per_segment"]["6"] == 1 and summary["lobar_distribution"] == "bilobar"
    assert lobar_distribution([5, 8]) == "unilobar right"
    assert lobar_distribution([1]) == "caudate only"


def test_measure_ten_lesions_is_fast():
    geometry = grid(160.0, (0.8, 0.8, 2.5))
    liver = sphere(geometry, (0, 0, 0), 75.0)
    labels = np.where(liver, 1, 0).astype(np.int16)
    lesions = np.zeros(geometry.shape, dtype=np.int32)
    rng = np.random.default_rng(7)
    for number in range(1, 11):
        angle = 2 * np.pi * number / 10
        lesions[sphere(geometry, (40 * np.cos(angle), 40 * np.sin(angle), rng.uniform(-20, 20)),
                       rng.uniform(5, 14))] = number
    labels[lesions > 0] = 2
    started = time.monotonic()
    results = measure_lesions(lesions, labels, geometry, liver=liver)
    elapsed = time.monotonic() - started
    print(f"measure_10_lesions_s={elapsed:.2f}")
    assert len(results) == 10 and elapsed <= 2.0


def test_sphericity_never_exceeds_one_and_is_withheld_for_tiny_lesions():
    """A 2-voxel lesion's surface estimate is meaningless (reported None); a sphere's is <= 1."""
    from livermets.geometry import Geometry
    from livermets.measure.lesions import measure_lesions

    geometry = Geometry((24, 24, 24), (1.0, 1.0, 3.0), (0.0, 0.0, 0.0))
    k, j, i = np.indices(geometry.shape)
    lesions = np.zeros(geometry.shape, np.uint8)
    lesions[((k - 12) * 3.0) ** 2 + (j - 12.0) ** 2 + (i - 12.0) ** 2 <= 8.0 ** 2] = 1
    lesions[3, 3, 3:5] = 2
    labels = np.ones(geometry.shape, np.uint8)
    labels[lesions > 0] = 2
    results = {r["id"]: r for r in measure_lesions(lesions, labels, geometry)}
    assert results[2]["sphericity"] is None
    assert 0.8 < results[1]["sphericity"] <= 1.0


def test_measure_uses_an_existing_couinaud_file_and_never_overwrites_it(tmp_path):
    """A phantom's true segments (or a user's edit) in couinaud.nii.gz are inputs, not outputs."""
    import hashlib

    from livermets.measure.result_dir import measure_result_dir
    from livermets.phantom import make_phantom, write_phantom

    paths = write_phantom(make_phantom(0, variant="small", sequences=("hbp",)), tmp_path)
    truth = paths["couinaud"].parent
    before = hashlib.sha256(paths["couinaud"].read_bytes()).hexdigest()
    result = measure_result_dir(truth)
    assert hashlib.sha256(paths["couinaud"].read_bytes()).hexdigest() == before
    assert result["couinaud_method"] == "from the existing couinaud.nii.gz"
    legend = {lesion["id"]: lesion for lesion in make_phantom(0, variant="small", sequences=("hbp",)).legend["lesions"]}
    for lesion in result["lesions"]:
        main_segment = max(lesion["couinaud"], key=lesion["couinaud"].get)
        assert int(main_segment) == legend[lesion["id"]]["couinaud_segment"]
