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
from livermets.geometry import Geometry
from livermets.segmentation import filters, trunks
from livermets.segmentation.vessels import (MAX_OUTSIDE_RADIUS_MM, WORK_SPACING_MM, _implausible_outside,
                                            segment_vessels, work_geometry)
from synthetic_liver import Ball, Tube, grid_mm, make_case, tube_distance, two_tree_vessels


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
        assert vessel_dice(case.portal, result.portal, case.geometry) >= 0.9
        assert vessel_dice(case.hepatic, result.hepatic, case.geometry) >= 0.9
        assert vessel_dice(case.ivc, result.ivc, case.geometry) >= 0.9
    else:  # the IVC (0.35) barely differs from the tissue around the liver (0.25; noise 0.05)
        assert vessel_dice(case.ivc, result.ivc, case.geometry) >= 0.6
        outside = ~case.liver & result.hepatic
        off_mm = filters.distance_inside_mm(~case.hepatic, case.geometry.spacing_mm)
        assert (outside & (off_mm > 4.5)).sum() <= 0.01 * outside.sum()  # followed, not leaked into
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


def test_veins_that_do_not_stand_out_give_no_trees_and_say_why():
    # dark veins (hbp) handed in as a portal-venous phase, where veins should be bright
    case = make_case(tubes=two_tree_vessels(), sequences=("hbp",), seed=9)
    result = segment_vessels({"portal_venous": case.images["hbp"]}, case.liver, case.geometry)
    assert not (result.portal.any() or result.hepatic.any() or result.ivc.any())
    assert result.warnings and "do not stand out" in result.warnings[0]
    assert "bright on portal_venous" in result.warnings[0]
    # ... and that they stand out the other way, so the phase may be misnamed
    assert "the other way (dark on portal_venous)" in result.warnings[0]
    assert "may be another phase" in result.warnings[0]


def test_bright_veins_on_t2_are_named_as_such():
    # veins are expected dark on T2 (flow void); slow flow makes them bright, most often with fat
    # suppression: the reason given for drawing no trees says so
    case = make_case(tubes=two_tree_vessels(), sequences=("portal_venous",), seed=9)
    result = segment_vessels({"t2": case.images["portal_venous"]}, case.liver, case.geometry)
    assert not (result.portal.any() or result.hepatic.any() or result.ivc.any())
    assert "the other way (bright on t2)" in result.warnings[0] and "slow flow" in result.warnings[0]
    # veins that stand out neither way get the plain reason
    flat = np.where(case.liver, 100.0, 20.0).astype(np.float32)
    flat += np.random.default_rng(0).normal(0.0, 5.0, flat.shape).astype(np.float32)
    result = segment_vessels({"t2": flat}, case.liver, case.geometry)
    assert "do not stand out" in result.warnings[0] and "other way" not in result.warnings[0]


def test_bright_t2_veins_of_real_mri_are_named(shared_data):
    # CHAOS T2-SPIR (fat-suppressed): the veins inside the liver are brighter than it
    from livermets.imageio import read_image

    image = read_image(shared_data / "chaos_t2" / "chaos01_t2spir.nii.gz")
    liver = read_image(shared_data / "chaos_t2" / "chaos01_labels.nii.gz").array == 1
    result = segment_vessels({"t2": image.array.astype(np.float32)}, liver, image.geometry)
    assert not (result.portal.any() or result.hepatic.any())
    assert "the other way (bright on t2)" in result.warnings[0]


def test_ct_without_contrast_gives_no_trees(shared_data):
    # the TotalSegmentator example CT: by its labels (5 liver, 63 IVC, 64 portal and splenic vein,
    # 52 aorta) the veins are no brighter than the liver; its vertebrae and costal cartilage, which
    # are, were once taken for the IVC and the portal vein
    from livermets.imageio import read_image

    image = read_image(shared_data / "totalseg_ct" / "example_ct_sm.nii.gz")
    labels = read_image(shared_data / "totalseg_ct" / "example_seg.nii.gz").array
    liver = labels == 5
    for vessel in (63, 64, 52):
        assert np.median(image.array[labels == vessel]) < np.median(image.array[liver])
    result = segment_vessels({"ct": image.array.astype(np.float32)}, liver, image.geometry)
    assert not (result.portal.any() or result.hepatic.any())
    assert result.warnings and "contrast" in result.warnings[0]


def test_ivc_followed_beyond_the_liver():
    """A 180 mm tall grid: the IVC runs 30 mm and more beyond the liver and its search margin;
    it is followed as a tube of its own intensity, not stopped at the margin."""
    shift = np.array([30.0, 0.0, 0.0])
    tubes = [Tube((0.0, 112.0, 88.0), (177.0, 112.0, 88.0), 8.0, 8.0, "ivc")]
    tubes += [Tube(tuple(np.asarray(t.start_mm) + shift), tuple(np.asarray(t.end_mm) + shift),
                   t.radius_start_mm, t.radius_end_mm, t.tree) for t in two_tree_vessels() if t.tree != "ivc"]
    case = make_case(shape=(60, 96, 96), tubes=tubes, sequences=("portal_venous",), seed=3,
                     liver_center_mm=(88.5, 71.25, 71.25))
    result = segment_vessels(case.images, case.liver, case.geometry)
    beyond = ~filters.morphology_mm(case.liver, case.geometry.spacing_mm, 20.0, "dilate")
    found = result.ivc & beyond
    assert (found & case.ivc).sum() >= 0.85 * (case.ivc & beyond).sum()
    assert (found & case.ivc).sum() >= 0.95 * found.sum()
    low, high = np.asarray(result.ivc_axis_ras_mm)
    assert high[2] - low[2] >= 0.7 * 177.0


def _tube_scene(organ_value: float, background: float, noise: float, seed: int = 0):
    """A vertical tube (value 300, radius 6 mm) on a 1.5 mm grid; its upper part (k < 20 mm) is
    the 'tree' the tracking starts from; from k = 35 mm on a ball of radius 25 mm valued
    ``organ_value`` runs into its side."""
    shape, spacing = (80, 80, 80), (1.5, 1.5, 1.5)
    points = grid_mm(shape, spacing)
    tube = tube_distance(points, Tube((0.0, 60.0, 60.0), (118.0, 60.0, 60.0), 6.0, 6.0, "ivc"))
    ball = np.linalg.norm(points - np.array([60.0, 60.0, 83.0], dtype=np.float32), axis=-1) - 25.0
    fraction = lambda d: np.clip(0.5 - d / 1.5, 0.0, 1.0)  # noqa: E731 - partial volume over a voxel
    image = background + (300.0 - background) * fraction(tube)
    image = image + (organ_value - image) * fraction(ball) * (tube > 0)
    image = image + np.random.default_rng(seed).normal(0.0, noise, shape)
    smoothed = filters.gaussian_mm(image.astype(np.float32), spacing, 1.0)
    tree = (tube < 0) & (points[..., 0] < 20.0)
    return smoothed, tube < 0, ball < 0, tree, spacing


def test_follow_trunk_stops_at_a_wide_organ_of_the_same_brightness():
    smoothed, tube, ball, tree, spacing = _tube_scene(organ_value=300.0, background=100.0, noise=5.0)
    images = {"portal_venous": smoothed}
    noise = {"portal_venous": trunks.noise_spread(smoothed, np.ones(tube.shape, bool), spacing)}
    lumen = trunks.lumen_model(images, noise, {"portal_venous": "bright"}, tree, tree, ~tree, spacing)
    reached = trunks.follow_trunk(images, lumen, tree, ~tree, spacing)
    k = np.arange(tube.shape[0])[:, None, None] * spacing[0]
    above = tube & ~tree & (k < 32.0)  # the tube between the tree and the organ
    assert (reached & above).sum() >= 0.8 * above.sum()
    assert (reached & ball & ~tube).sum() <= 0.02 * (ball & ~tube).sum()
    assert not (reached & ~tube & ~ball).sum() > 0.05 * reached.sum()


def test_follow_trunk_keeps_clear_of_surroundings_like_the_lumen():
    """Background about 3 noise spreads (of the smoothed image) from the lumen: a band of 3
    spreads around the lumen would take half of it; the band keeps 3 spreads clear of it."""
    smoothed, tube, _, tree, spacing = _tube_scene(organ_value=120.0, background=280.0, noise=15.0)
    images = {"hbp": smoothed}
    noise = {"hbp": trunks.noise_spread(smoothed, np.ones(tube.shape, bool), spacing)}
    lumen = trunks.lumen_model(images, noise, {"hbp": "dark"}, tree, tree, ~tree, spacing)
    assert lumen is not None and lumen.floor["hbp"] > 280.0  # the band keeps clear of the background
    reached = trunks.follow_trunk(images, lumen, tree, ~tree, spacing)
    assert (reached & ~tube).sum() <= 0.05 * max(int(reached.sum()), 1)


def test_follow_trunk_uses_the_phase_that_shows_the_vein():
    """Two aligned phases: on one the tube lies about 100 noise spreads (of the smoothed image)
    above its surroundings, on the other 4 (2 x 3 would leave room for the band). The trunk is
    followed on the first alone, as far as with it alone (with both, the band of the second
    stopped it at the tree). A phase that shows nothing clearly is still used on its own."""
    clear, tube, _, tree, spacing = _tube_scene(organ_value=100.0, background=100.0, noise=5.0)
    alike = _tube_scene(organ_value=280.0, background=280.0, noise=15.0, seed=1)[0]
    images = {"t2": alike, "portal_venous": clear}
    everywhere = np.ones(tube.shape, bool)
    noise = {name: trunks.noise_spread(image, everywhere, spacing) for name, image in images.items()}
    polarity = {"t2": "bright", "portal_venous": "bright"}
    lumen = trunks.lumen_model(images, noise, polarity, tree, tree, ~tree, spacing)
    assert lumen is not None and set(lumen.level) == {"portal_venous"}
    reached = trunks.follow_trunk(images, lumen, tree, ~tree, spacing)
    alone = trunks.follow_trunk({"portal_venous": clear}, trunks.lumen_model(
        {"portal_venous": clear}, noise, polarity, tree, tree, ~tree, spacing), tree, ~tree, spacing)
    beyond = tube & ~tree
    assert (reached & beyond).sum() >= 0.75 * beyond.sum()  # the lumen's core; its wall is added later
    assert (reached & beyond).sum() >= 0.98 * (alone & beyond).sum()
    assert (reached & ~tube).sum() <= 0.05 * reached.sum()
    only_alike = trunks.lumen_model({"t2": alike}, noise, polarity, tree, tree, ~tree, spacing)
    assert only_alike is None or set(only_alike.level) == {"t2"}


def test_noise_spread_ignores_shading_and_edges():
    rng = np.random.default_rng(4)
    shape, spacing = (40, 60, 60), (3.0, 1.5, 1.5)
    k = np.arange(shape[0])[:, None, None]
    noise = filters.gaussian_mm(rng.normal(0.0, 10.0, shape).astype(np.float32), spacing, 1.0)
    image = np.full(shape, 500.0, dtype=np.float32) + 4.0 * k  # 160 units of shading
    region = np.ones(shape, dtype=bool)
    region[:, 20:26, :] = False  # a left-out stripe (a vessel) whose blurred edges must not count
    image[~region] = 100.0
    image = filters.gaussian_mm(image, spacing, 1.0) + noise
    spread = trunks.noise_spread(image, region, spacing)
    truth = float(np.std(noise))
    assert 0.85 * truth <= spread <= 1.15 * truth
    assert filters.robust_center_spread(image[region])[1] > 5 * truth


def test_partial_volume_wall_recovers_the_tube_from_its_core():
    shape, spacing = (20, 60, 60), (3.0, 1.0, 1.0)
    points = grid_mm(shape, spacing)
    distance = tube_distance(points, Tube((0.0, 25.0, 25.0), (57.0, 25.0, 25.0), 6.0, 6.0, "ivc"))
    liver = points[..., 2] > 33.5  # a bright organ 2.5 mm from one side of the tube, fat around
    background = np.where(liver, 600.0, 90.0)
    image = background + (160.0 - background) * np.clip(0.5 - distance / 1.0, 0.0, 1.0)
    image = image + np.random.default_rng(5).normal(0.0, 5.0, shape)
    smoothed = {"hbp": filters.gaussian_mm(image.astype(np.float32), spacing, 1.0)}
    truth = distance < 0
    core = distance < -2.5
    wall = trunks.partial_volume_wall(smoothed, {"hbp": 3.0}, core, ~liver, spacing)
    assert vessel_dice(truth, wall, None) >= 0.9 > vessel_dice(truth, core, None) + 0.1
    # the fat between the tube and the organ is not half lumen, though nearer the lumen's level
    # than the mean of its fat-and-organ surroundings
    assert (wall & ~truth).sum() <= 0.02 * wall.sum()


def test_work_geometry_coarsens_only_fine_axes():
    fine = Geometry((150, 512, 512), (0.78125, 0.625, 1.6), (-200.0, -160.0, -119.0),
                    (0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, -1.0))
    work = work_geometry(fine)
    assert work.spacing_ijk_mm == (WORK_SPACING_MM, WORK_SPACING_MM, 1.6)
    assert work.shape[0] == 150 and work.direction_lps == fine.direction_lps
    first, last = np.zeros((1, 3)), np.asarray(work.shape)[None] - 1.0
    assert np.abs(work.kji_to_ras(first) - fine.kji_to_ras(first)).max() < 1e-6
    far = fine.kji_to_ras(np.array([[149, 511, 511]]))
    assert np.abs(work.kji_to_ras(last) - far).max() <= WORK_SPACING_MM
    coarse = Geometry((40, 96, 96), (1.5, 1.5, 3.0), (0.0, 0.0, 0.0))
    assert work_geometry(coarse) is coarse


def test_fine_grid_is_segmented_on_the_work_grid_and_returned_on_its_own():
    """The two-tree case on 0.75 mm pixels: worked on at 1.5 mm, returned on the 0.75 mm grid
    with the accuracy of the native 1.5 mm case."""
    case = make_case(shape=(40, 192, 192), spacing_kji_mm=(3.0, 0.75, 0.75), tubes=two_tree_vessels(),
                     sequences=("portal_venous",), seed=7)
    result = segment_vessels(case.images, case.liver, case.geometry)
    assert result.portal.shape == case.geometry.shape and not result.warnings
    assert vessel_dice(case.portal, result.portal, case.geometry, region=case.liver) >= 0.8
    assert vessel_dice(case.hepatic, result.hepatic, case.geometry, region=case.liver) >= 0.8
    assert not (result.portal & result.hepatic).any() and not (result.ivc & ~result.hepatic).any()
    for line in result.centerlines:  # points in RAS of the input grid, inside the field of view
        kji = case.geometry.ras_to_kji(np.asarray(line["points_ras_mm"]))
        assert (kji > -1).all() and (kji < np.asarray(case.geometry.shape)).all()


def test_a_tree_spreading_far_outside_the_liver_is_implausible():
    geometry = Geometry((60, 100, 100), (2.0, 2.0, 4.0), (0.0, 0.0, 0.0))  # 236 mm superior-inferior
    points = grid_mm(geometry.shape, geometry.spacing_mm)
    liver = np.zeros(geometry.shape, dtype=bool)
    liver[:, 20:80, 10:60] = True
    trees = np.zeros(geometry.shape, dtype=np.uint8)
    ivc = Tube((0.0, 100.0, 160.0), (236.0, 100.0, 160.0), 12.0, 12.0, "ivc")
    trees[tube_distance(points, ivc) < 0] = 2
    assert _implausible_outside(trees, liver, geometry) == ""  # an IVC the whole length of the scan
    radius_mm = MAX_OUTSIDE_RADIUS_MM + 3.0
    wide = Tube((0.0, 100.0, 160.0), (236.0, 100.0, 160.0), radius_mm, radius_mm, "ivc")
    trees[tube_distance(points, wide) < 0] = 1
    assert _implausible_outside(trees, liver, geometry) == "portal venous system"


def test_real_t2_never_gives_a_vein_larger_than_anatomy(shared_data):
    # CHAOS T2-SPIR (Kavur et al. 2021): fat-suppressed, the fat around the liver is as dark as the
    # veins are expected to be on t2, and its veins are mostly bright. Whatever is returned must
    # stay within a vein's volume outside the liver, or be nothing with a reason.
    from livermets.imageio import read_image

    image = read_image(shared_data / "chaos_t2" / "chaos01_t2spir.nii.gz")
    liver = read_image(shared_data / "chaos_t2" / "chaos01_labels.nii.gz").array == 1
    result = segment_vessels({"t2": image.array}, liver, image.geometry)
    trees = np.where(result.portal, 1, np.where(result.hepatic, 2, 0)).astype(np.uint8)
    assert _implausible_outside(trees, liver, image.geometry) == ""
    if not (result.portal.any() and result.hepatic.any()):
        assert result.warnings and "vessels not" in result.warnings[0]



def test_a_hepatic_vein_joined_to_the_ivc_is_not_taken_for_the_portal_root():
    """Thick-slice hbp phantom (seed 1): the extrahepatic portal trunk is too faint to be a trunk,
    and a hepatic-vein trunk inside the liver, joined to the IVC, used to be taken for the portal root
    (in-liver hepatic Dice 0.000, portal 0.551)."""
    from livermets.labels import PHANTOM_LABEL_VALUES
    from livermets.phantom import make_phantom

    phantom = make_phantom(1, variant="thick", sequences=("hbp",))
    result = segment_vessels(phantom.images, phantom.liver > 0, phantom.geometry)
    value = PHANTOM_LABEL_VALUES
    portal = phantom.anatomy == value["portal_vein"]
    hepatic = np.isin(phantom.anatomy, [value["hepatic_veins"], value["ivc"]])
    liver = phantom.liver > 0
    assert vessel_dice(portal, result.portal, phantom.geometry, region=liver) >= 0.8
    assert vessel_dice(hepatic, result.hepatic, phantom.geometry, region=liver) >= 0.6


def test_closed_form_eigenvalues_match_lapack():
    rng = np.random.default_rng(7)
    upper = rng.normal(size=(5000, 6))
    upper[:10] = 0.0                                     # A = 0
    upper[10:20, [1, 2, 4]] = 0.0                        # diagonal with a repeated value
    upper[10:20, 3] = upper[10:20, 0]
    upper[20:30] = [2.0, 0.0, 0.0, 2.0, 0.0, 2.0]        # a multiple of the identity
    upper[30:40] *= 1e4                                  # large and small scales
    upper[40:50] *= 1e-4
    matrices = upper[:, [0, 1, 2, 1, 3, 4, 2, 4, 5]].reshape(-1, 3, 3)
    expected = np.linalg.eigvalsh(matrices)
    found = filters.symmetric_eigenvalues_3x3(upper)
    # repeated eigenvalues cost the closed form about half of float64's digits (the arccos near
    # +-1); still far below float32's precision, in which the Hessians come
    scale = np.abs(expected).max(axis=1, keepdims=True)
    assert np.all(np.abs(found - expected) <= 1e-7 * scale + 1e-30)


def test_hessian_at_one_voxel_matches_the_analytic_and_the_filtered_one():
    # a Gaussian ball of sd 3 mm smoothed at sigma 2 mm is a Gaussian of variance 9 + 4: at its
    # centre every second derivative is -A (9 / 13) ** 1.5 / 13, times sigma^2 once normalised
    spacing = (1.0, 1.0, 1.0)
    kji = np.stack(np.meshgrid(*[np.arange(n, dtype=float) for n in (25, 27, 29)], indexing="ij"), axis=-1)
    ball = 100.0 * np.exp(-((kji - [12, 13, 14]) ** 2).sum(-1) / (2 * 3.0 ** 2))
    expected = -100.0 * (9 / 13) ** 1.5 / 13 * 2.0 ** 2
    assert np.allclose(filters.hessian_eigenvalues_at(ball, spacing, 2.0, (12, 13, 14)), expected, rtol=0.01)
    # elsewhere, near a face and at a corner (edge values repeated beyond the image, as the
    # recursive filters treat the border), it agrees with the filtered grid
    image = ball + filters.gaussian_mm(np.random.default_rng(3).normal(size=ball.shape), spacing, 2.0) * 20.0
    for index in [(9, 15, 16), (1, 13, 20), (0, 26, 28)]:
        where = np.zeros(image.shape, dtype=bool)
        where[index] = True
        reference = filters.hessian_eigenvalues(image, spacing, 2.5, where)[0]
        found = filters.hessian_eigenvalues_at(image, spacing, 2.5, index)
        assert np.allclose(found, reference, atol=0.03 * np.abs(reference).max()), index
