"""Lesion detection on synthetic livers with known spheres and vessel tubes.

Truth comes from the analytic shapes rendered by ``Testing/synthetic_liver.py``: lesion
voxels are the voxel centres inside each ball, vessels the centres inside each tube.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lesion_metrics import dice, match_lesions
from livermets.errors import InputError
from livermets.geometry import Geometry
from livermets.segmentation.filters import morphology_mm, robust_center_spread, split_by_distance
from livermets.segmentation.lesions import _plane_check, detect_lesions, working_spacing_kji_mm
from synthetic_liver import Ball, Tube, bulging_lesion_case, make_case, two_tree_vessels

# grid mm (k, j, i) on the default 40 x 96 x 96 grid at 3 x 1.5 x 1.5 mm; the first ball
# touches the portal vein, the last reaches the liver capsule
BALLS = [Ball((60, 60, 45), 10.0), Ball((75, 45, 90), 7.0, irregularity=0.2, shape_seed=1),
         Ball((30, 55, 40), 5.0), Ball((80, 80, 55), 4.0), Ball((45, 40, 70), 3.5), Ball((62, 95, 100), 6.0)]
CAPSULE_BALL = Ball((58.5, 71.25, 124.0), 6.0)  # centre 2 mm inside the ellipsoid's i-surface


@pytest.fixture(scope="module", params=["hbp", "t2", "portal_venous"])
def detected(request):
    case = make_case(balls=BALLS + [CAPSULE_BALL], tubes=two_tree_vessels(), sequences=(request.param,), seed=3)
    return case, detect_lesions(case.images, case.liver, case.geometry)


def test_every_sphere_found_and_tubes_not_reported(detected):
    case, result = detected
    match = match_lesions(case.lesions, result.instances, case.geometry)
    assert all(match.detected), f"missed lesions of diameter {match.truth_diameters_mm} -> {match.detected}"
    assert match.false_positives == 0
    vessel = case.portal | case.hepatic
    for label in range(1, result.count + 1):
        assert vessel[result.instances == label].mean() < 0.3, "a vessel segment was reported as a lesion"


def test_instances_inside_liver_with_good_overlap(detected):
    case, result = detected
    assert not (result.instances[~case.liver] > 0).any()
    match = match_lesions(case.lesions, result.instances, case.geometry)
    assert match.lesion_dice >= 0.8
    assert result.instances.dtype == np.uint16
    assert len(result.scores) == len(result.likely_cyst) == len(result.table) == result.instances.max()
    assert all(0.5 <= s <= 1.0 for s in result.scores)
    assert result.scores == sorted(result.scores, reverse=True)  # lesion 1 is the most confident


def test_table_measures_in_mm(detected):
    case, result = detected
    big = case.lesions == 1  # the 20 mm ball
    label = np.bincount(result.instances[big]).argmax()
    row = result.table[label - 1]
    assert row["id"] == label
    truth_ml = big.sum() * case.geometry.voxel_volume_ml
    assert row["volume_ml"] == pytest.approx(truth_ml, rel=0.25)
    assert row["longest_axial_diameter_mm"] == pytest.approx(20.0, abs=3.0)
    center_kji = np.asarray(BALLS[0].center_mm) / np.asarray(case.geometry.spacing_mm)
    assert np.allclose(row["center_ras_mm"], case.geometry.kji_to_ras(center_kji), atol=1.5)


def test_touching_spheres_are_split():
    balls = [Ball((60, 70, 60), 8.0), Ball((60, 70, 74), 8.0)]  # 14 mm apart: they overlap
    case = make_case(balls=balls, sequences=("t2",), seed=1)
    result = detect_lesions(case.images, case.liver, case.geometry)
    assert result.count == 2
    for label in (1, 2):
        overlap = np.bincount(result.instances[case.lesions == label], minlength=3)[1:]
        assert overlap.max() >= 0.7 * (case.lesions == label).sum()
    assert len({np.bincount(result.instances[case.lesions == n]).argmax() for n in (1, 2)}) == 2


def test_a_mask_filling_its_whole_array_is_labelled():
    # split_by_distance numbers its pieces 1..N also when no background voxel is left in the array
    # (it used to number them from the first sorted key, so such a mask came back as label 0)
    labels = split_by_distance(np.ones((12, 12, 12), dtype=bool), (1.0, 1.0, 1.0), depth_mm=1.0)
    assert labels.min() >= 1 and labels.max() == len(np.unique(labels))


def test_polarity_follows_the_sequence():
    case = make_case(balls=[Ball((60, 70, 70), 8.0)], sequences=("t2",), seed=2)
    assert detect_lesions(case.images, case.liver, case.geometry).count == 1  # bright on t2
    as_if_hbp = {"hbp": case.images["t2"]}  # lesions must be dark on hbp: a bright ball is not one
    assert detect_lesions(as_if_hbp, case.liver, case.geometry).count == 0
    dark = make_case(balls=[Ball((60, 70, 70), 8.0)], sequences=("hbp",), seed=2)
    assert detect_lesions(dark.images, dark.liver, dark.geometry).count == 1


def test_fat_inside_the_liver_mask_is_not_a_lesion_on_ct():
    # a fissure's or the hilum's fat held by the liver mask is as dark against the liver as a
    # metastasis on portal-venous CT, and round enough; its density (HU) tells it apart
    case = make_case(balls=[Ball((60, 60, 50), 8.0), Ball((60, 85, 95), 8.0)], sequences=("hbp",), seed=4)
    rng = np.random.default_rng(4)
    ct = np.where(case.liver, 110.0, -100.0) + rng.normal(0.0, 10.0, case.geometry.shape)
    ct[case.lesions == 1] = 50.0 + rng.normal(0.0, 10.0, int((case.lesions == 1).sum()))  # metastasis
    ct[case.lesions == 2] = -90.0 + rng.normal(0.0, 10.0, int((case.lesions == 2).sum()))  # fat
    result = detect_lesions({"ct": ct.astype(np.float32)}, case.liver, case.geometry)
    assert result.count == 1 and (result.instances[case.lesions == 1] > 0).mean() > 0.8
    assert not result.instances[case.lesions == 2].any()
    as_mri = detect_lesions({"portal_venous": ct.astype(np.float32)}, case.liver, case.geometry)
    assert as_mri.count == 2  # no absolute scale on MRI: both dark balls stay lesions


def test_water_density_throughout_is_a_likely_cyst_on_ct():
    # on portal-venous CT: a 5 HU ball is a likely cyst; a 50 HU metastasis is not, nor a necrotic
    # one whose 10 HU centre has an enhancing 80 HU rim
    balls = [Ball((60, 50, 45), 8.0), Ball((60, 50, 95), 8.0), Ball((60, 95, 70), 9.0)]
    case = make_case(balls=balls, sequences=("hbp",), seed=5)
    rng = np.random.default_rng(5)
    ct = np.where(case.liver, 110.0, -100.0)
    ct[case.lesions == 1], ct[case.lesions == 2] = 5.0, 50.0
    points = np.argwhere(case.lesions == 3)
    centre = points.mean(axis=0)
    depth_mm = np.linalg.norm((points - centre) * np.asarray(case.geometry.spacing_mm), axis=1)
    ct[tuple(points.T)] = np.where(depth_mm < 5.0, 10.0, 80.0)
    ct += rng.normal(0.0, 10.0, case.geometry.shape)
    result = detect_lesions({"ct": ct.astype(np.float32)}, case.liver, case.geometry)
    assert result.count == 3
    flags = {n: result.likely_cyst[int(np.bincount(result.instances[case.lesions == n]).argmax()) - 1]
             for n in (1, 2, 3)}
    assert flags == {1: True, 2: False, 3: False}


def test_sequences_combine_and_cyst_is_flagged():
    balls = [Ball((60, 60, 50), 8.0), Ball((60, 85, 95), 8.0, cyst=True)]
    case = make_case(balls=balls, sequences=("t2", "dwi", "hbp"), seed=4)
    result = detect_lesions(case.images, case.liver, case.geometry)
    assert result.count == 2
    flags = {int(np.bincount(result.instances[case.lesions == n]).argmax()): n for n in (1, 2)}
    solid, cyst = [label for label, n in sorted(flags.items(), key=lambda item: item[1])]
    assert result.likely_cyst[cyst - 1] and not result.likely_cyst[solid - 1]
    assert result.table[cyst - 1]["likely_cyst"] is True
    t2_only = detect_lesions({"hbp": case.images["hbp"]}, case.liver, case.geometry)
    assert not any(t2_only.likely_cyst)  # hbp alone cannot tell a cyst


def test_oblique_grid_gives_same_mm_results():
    balls = [Ball((60, 60, 60), 7.0), Ball((50, 90, 90), 5.0)]
    straight = make_case(balls=balls, sequences=("t2",), seed=5)
    angle = np.deg2rad(25.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    oblique = Geometry(straight.geometry.shape, straight.geometry.spacing_ijk_mm, (10.0, -20.0, 5.0),
                       tuple(rotation.ravel()))
    a = detect_lesions(straight.images, straight.liver, straight.geometry)
    b = detect_lesions(straight.images, straight.liver, oblique)
    assert np.array_equal(a.instances, b.instances)
    assert [r["volume_ml"] for r in a.table] == [r["volume_ml"] for r in b.table]
    for row_a, row_b in zip(a.table, b.table):
        kji = straight.geometry.ras_to_kji(np.asarray(row_a["center_ras_mm"]))
        assert np.allclose(oblique.kji_to_ras(kji), row_b["center_ras_mm"], atol=0.05)


def test_bad_input_is_explained():
    case = make_case(balls=[], sequences=("t2",))
    with pytest.raises(InputError, match="liver mask is empty"):
        detect_lesions(case.images, np.zeros_like(case.liver), case.geometry)
    with pytest.raises(InputError, match="resample"):
        detect_lesions({"t2": case.images["t2"][:-1]}, case.liver, case.geometry)
    with pytest.raises(ValueError, match="unknown sequence"):
        detect_lesions({"flair": case.images["t2"]}, case.liver, case.geometry)


def vessel_tree_scene(seed: int, sequence: str):
    """A random tree of 14 tapered tubes (radius 2-4 mm) branching through a liver cut in 7.5 mm
    slices (1.25 mm pixels), and a 14 mm ball touching the tree's first branch (overlapping it by 1 mm)."""
    rng = np.random.default_rng(seed)
    tubes, ends = [], [np.array([67.5, 60.0, 60.0])]
    for _ in range(14):
        start = ends[rng.integers(len(ends))]
        direction = rng.normal(size=3)
        end = start + direction / np.linalg.norm(direction) * rng.uniform(20, 45)
        end = np.clip(end, [10, 15, 15], [125, 105, 105])
        tubes.append(Tube(tuple(start), tuple(end), rng.uniform(2.5, 4.0), rng.uniform(2.0, 3.0), "portal"))
        ends.append(end)
    start, end = np.asarray(tubes[0].start_mm), np.asarray(tubes[0].end_mm)
    across = np.cross(end - start, [1.0, 0.0, 0.0])
    branch_radius = 0.5 * (tubes[0].radius_start_mm + tubes[0].radius_end_mm)
    center = 0.5 * (start + end) + (7.0 + branch_radius - 1.0) * across / np.linalg.norm(across)
    return make_case(shape=(18, 96, 96), spacing_kji_mm=(7.5, 1.25, 1.25), balls=[Ball(tuple(center), 7.0)],
                     tubes=tubes, sequences=(sequence,), seed=seed, liver_radii_mm=(60, 55, 55))


def test_vessels_cut_by_thick_slices_are_not_reported():
    # on hbp the veins are dark like the lesions and darker than them (on T2-SPIR both are bright):
    # cut by 7.5 mm slices, branch points and oblique branches look round in 3D shape measures
    false_positives, found = 0, 0
    for seed in range(1, 7):
        case = vessel_tree_scene(seed, "hbp")
        match = match_lesions(case.lesions, detect_lesions(case.images, case.liver, case.geometry).instances,
                              case.geometry)
        false_positives += match.false_positives
        found += match.detected[0]
    # a lesion merged with a darker vein across two thick slices is the detector's known weak
    # spot: with each slice rendered over its whole thickness, 2 of the 6 are found. No vein piece
    # is reported: the one that was (one slice, 10 mm across, the vein going on through both
    # neighbouring slices) escaped the continuation check when only pieces narrower than half a
    # slice were checked
    assert false_positives == 0, f"{false_positives} vessel pieces reported in 6 vessel trees"
    assert found >= 2, f"only {found} of 6 lesions touching a vein of their own polarity found"


def test_a_junction_of_vessels_within_one_thick_slice_is_not_a_lesion():
    # three 5 mm veins of the lesions' polarity meeting in an 8 mm confluence, all in the plane of
    # one 7.5 mm slice (the commonest false positive on real T2 livers, where veins are bright):
    # round, one slice thick, thicker than its branches, but with veins as dark as it is on every
    # side. A 9 mm lesion in the same slice, with only liver around it, is kept
    for seed in (1, 2, 3):
        hub = np.array([67.5, 50.0, 50.0])
        tubes = [Tube(tuple(hub), tuple(hub + [0.0, 22 * np.cos(angle), 22 * np.sin(angle)]), 2.8, 2.5, "portal")
                 for angle in np.deg2rad([10, 130, 250])]
        tubes.append(Tube(tuple(hub - [0.0, 0.0, 0.5]), tuple(hub + [0.0, 0.0, 0.5]), 4.0, 4.0, "portal"))
        case = make_case(shape=(18, 96, 96), spacing_kji_mm=(7.5, 1.25, 1.25), balls=[Ball((67.5, 70.0, 85.0), 4.5)],
                         tubes=tubes, sequences=("hbp",), seed=seed, liver_radii_mm=(60, 55, 55))
        match = match_lesions(case.lesions, detect_lesions(case.images, case.liver, case.geometry).instances,
                              case.geometry)
        assert match.detected == [True], f"seed {seed}: the lesion was lost"
        assert match.false_positives == 0, f"seed {seed}: the junction was reported"


def test_cross_section_shape_is_judged_on_thick_slices_only():
    # a 13 mm lesion on a 3 mm grid whose widest cross-section came out 3 x 5 pixels (principal-axis
    # ratio 1.67): on thin slices its roundness is the 3D tests' to judge, not that of a few pixels
    # (pipeline phantom small/seed1 lost such a lesion); cut by 7.5 mm slices the same outline is
    # what a vessel cut across looks like
    voxels = np.zeros((7, 7, 5), dtype=bool)
    voxels[1:6, 1:6, 1:4] = True
    liver = np.ones(voxels.shape, dtype=bool)
    assert _plane_check(voxels, liver, (3.0, 3.0, 3.0), 5.0) > 0.99
    assert _plane_check(voxels, liver, (7.5, 3.0, 3.0), 5.0) < 0.05


def test_lesion_fed_by_a_thin_vessel_from_a_thick_one_is_found():
    # a 14 mm lesion in one 7.5 mm slice, joined by a 3 mm vein of its polarity to a 10 mm vein
    # four slices up: the thick vein is reached only through the thin one, so it is not the
    # lesion's continuation (the check that counted it dropped such lesions on real T2 livers)
    for seed in (1, 2):
        tubes = [Tube((67.5, 60.0, 60.0), (97.5, 60.0, 60.0), 1.5, 1.5, "portal"),
                 Tube((97.5, 60.0, 25.0), (97.5, 60.0, 95.0), 5.0, 5.0, "portal")]
        case = make_case(shape=(18, 96, 96), spacing_kji_mm=(7.5, 1.25, 1.25), balls=[Ball((67.5, 60.0, 60.0), 7.0)],
                         tubes=tubes, sequences=("hbp",), seed=seed, liver_radii_mm=(60, 55, 55))
        match = match_lesions(case.lesions, detect_lesions(case.images, case.liver, case.geometry).instances,
                              case.geometry)
        assert match.detected == [True] and match.false_positives == 0, f"seed {seed}"
        assert match.lesion_dice >= 0.85


@pytest.mark.parametrize("sequence", ["t2", "portal_venous"])
def test_lesion_touching_a_vessel_is_found(sequence):
    # veins of the other polarity (dark on t2, bright on portal-venous): every lesion, no vein;
    # at most one false positive in the six livers (where a 7.5 mm slice cuts the capsule
    # obliquely, partial volume with the dark outside can pass for a small subcapsular lesion)
    false_positives = 0
    for seed in range(1, 7):
        case = vessel_tree_scene(seed, sequence)
        result = detect_lesions(case.images, case.liver, case.geometry)
        match = match_lesions(case.lesions, result.instances, case.geometry)
        assert match.detected == [True], f"seed {seed}"
        assert match.lesion_dice >= 0.75
        vessel = case.portal | case.hepatic
        assert all(vessel[result.instances == label].mean() < 0.3 for label in range(1, result.count + 1))
        false_positives += match.false_positives
    assert false_positives <= 1


def test_large_lesion_merged_at_a_low_level_is_found_confidently_at_a_higher_one():
    # the phantom's 37 mm lesion on 7.5 mm slices, five phases: at low evidence levels it is one
    # piece with its surroundings whose shape only just passes; a search that accepted that
    # first piece reported the largest lesion with a score of 0.59
    from livermets.phantom import make_phantom
    from livermets.segmentation.lesions import CONFIDENT_SCORE

    phantom = make_phantom(0, variant="thick", sequences=("hbp", "portal_venous", "arterial", "t2", "dwi"))
    truth = np.asarray(phantom.lesions) == 1
    assert (6.0 * truth.sum() * phantom.geometry.voxel_volume_ml * 1000.0 / np.pi) ** (1 / 3) > 35.0
    result = detect_lesions(phantom.images, np.asarray(phantom.liver) > 0, phantom.geometry)
    hits = [label for label in np.unique(result.instances[truth]) if label > 0]
    assert len(hits) == 1
    assert result.scores[hits[0] - 1] >= CONFIDENT_SCORE
    assert (result.instances[truth] == hits[0]).mean() >= 0.7  # the last slice is faint partial volume


def test_spread_from_the_quieter_side_ignores_one_sided_structures():
    rng = np.random.default_rng(0)
    tissue = rng.normal(100.0, 10.0, 20000)
    vessels = rng.normal(180.0, 20.0, 5000)  # a fifth of the voxels, all on the bright side
    values = np.concatenate([tissue, vessels])
    _, plain = robust_center_spread(values)
    _, quiet = robust_center_spread(values, quieter_side=True)
    assert plain > 12.0
    assert quiet == pytest.approx(10.0, rel=0.1)
    _, quiet_dark = robust_center_spread(200.0 - values, quieter_side=True)  # same with dark structures
    assert quiet_dark == pytest.approx(quiet)


def test_fine_grid_is_searched_coarser_and_drawn_back_on_the_input_grid():
    assert working_spacing_kji_mm((1.0, 0.6, 0.6), 5.0) == (1.25, 1.25, 1.25)
    assert working_spacing_kji_mm((7.5, 1.25, 1.25), 5.0) == (7.5, 1.25, 1.25)  # coarse enough already
    balls = [Ball((30.0, 30.0, 30.0), 5.0), Ball((30.0, 60.0, 60.0), 7.0, irregularity=0.2, shape_seed=2)]
    case = make_case(shape=(60, 160, 160), spacing_kji_mm=(1.0, 0.6, 0.6), balls=balls,
                     sequences=("portal_venous",), seed=4, liver_radii_mm=(28, 45, 45))
    result = detect_lesions(case.images, case.liver, case.geometry)
    assert result.instances.shape == case.geometry.shape
    assert result.count == 2
    for label in (1, 2):
        truth = case.lesions == label
        found = result.instances == np.bincount(result.instances[truth]).argmax()
        # the boundary is drawn on the fine grid (interpolated evidence), not as 1.25 mm blocks
        assert dice(truth, found) >= 0.85
        assert found.sum() == pytest.approx(truth.sum(), rel=0.15)
    again = detect_lesions(case.images, case.liver, case.geometry)
    assert np.array_equal(result.instances, again.instances)


def organ_under_the_liver_scene(seed: int, sequence: str):
    """A liver on slices 2-11 of 7.5 mm (1.25 mm pixels), an organ of lesion polarity under its
    last slice (bright on t2, dark on hbp) that shows on that slice as partial volume (45 % of
    its contrast), and two 12 mm lesions in one slice each: one inside, one on the last slice
    where what lies beyond is exactly as dark or bright as the lesion."""
    shape, spacing = (14, 96, 96), np.array([7.5, 1.25, 1.25])
    k, j, i = np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing)], indexing="ij")
    liver = (((j - 60) / 55) ** 2 + ((i - 60) / 55) ** 2 <= 1) & (k >= 2 * 7.5) & (k <= 11 * 7.5)
    liver_value, outside_value, organ_value = (100.0, 40.0, 300.0) if sequence == "t2" else (100.0, 40.0, 10.0)
    lesion_value = 190.0 if sequence == "t2" else 40.0
    image = np.where(liver, liver_value, outside_value).astype(np.float32)
    footprint = (j - 60) ** 2 + (i - 40) ** 2 <= 8.0 ** 2
    image[footprint & (k >= 12 * 7.5)] = organ_value
    spot = footprint & (k == 11 * 7.5)
    image[spot] = liver_value + 0.45 * (organ_value - liver_value)
    lesions = np.zeros(shape, dtype=np.int32)
    for label, center in enumerate([(6 * 7.5, 60.0, 80.0), (11 * 7.5, 40.0, 85.0)], start=1):
        ball = liver & ((k - center[0]) ** 2 + (j - center[1]) ** 2 + (i - center[2]) ** 2 <= 6.0 ** 2)
        image[ball] = lesion_value
        lesions[ball] = label
    image += np.random.default_rng(seed).normal(0.0, 5.0, shape).astype(np.float32)
    geometry = Geometry(shape, tuple(float(s) for s in spacing[::-1]), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    return {sequence: image}, liver, geometry, lesions, spot


@pytest.mark.parametrize("sequence", ["t2", "hbp"])
def test_partial_volume_of_an_organ_beyond_the_liver_is_not_a_lesion(sequence):
    # the spot on the liver's last slice is a round, one-slice object of lesion contrast: without
    # the partial-volume check it is reported in every one of these scenes
    for seed in (1, 2, 3):
        images, liver, geometry, lesions, spot = organ_under_the_liver_scene(seed, sequence)
        result = detect_lesions(images, liver, geometry)
        match = match_lesions(lesions, result.instances, geometry)
        assert match.detected == [True, True], f"seed {seed}: a lesion was lost"
        assert match.false_positives == 0, f"seed {seed}: the organ's partial volume was reported"
        assert not (result.instances[spot] > 0).any()


def vessel_leaving_the_liver_scene(seed: int):
    """T2, a liver on slices 2-11 of 7.5 mm (1.25 mm pixels), veins as bright as lesions: one runs
    under the liver's last slice, outside it, and turns up into that slice, where its cross-section
    is a round 8 mm spot as bright as the vein itself (not brighter beyond, as an organ's partial
    volume would be); one 12 mm lesion inside the liver."""
    shape, spacing = (14, 96, 96), np.array([7.5, 1.25, 1.25])
    k, j, i = np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing)], indexing="ij")
    liver = (((j - 60) / 55) ** 2 + ((i - 60) / 55) ** 2 <= 1) & (k >= 2 * 7.5) & (k <= 11 * 7.5)
    image = np.where(liver, 100.0, 40.0).astype(np.float32)
    vein_value = 190.0
    spot = (k == 11 * 7.5) & ((j - 60) ** 2 + (i - 40) ** 2 <= 4.0 ** 2)
    image[spot] = vein_value
    image[(k == 12 * 7.5) & (np.abs(j - 60) <= 4.0) & (i >= 36.0)] = vein_value
    lesion = liver & ((k - 6 * 7.5) ** 2 + (j - 60) ** 2 + (i - 80) ** 2 <= 6.0 ** 2)
    image[lesion] = vein_value
    image += np.random.default_rng(seed).normal(0.0, 5.0, shape).astype(np.float32)
    geometry = Geometry(shape, tuple(float(s) for s in spacing[::-1]), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    return {"t2": image}, liver, geometry, lesion.astype(np.int32), spot


def test_a_vein_leaving_through_the_liver_surface_is_not_a_lesion():
    # where the vein crosses the liver's last slice it is as round and bright as a lesion, and the
    # vein beyond is no brighter than that spot; it is told apart by standing out from what lies
    # around it beyond the liver as much as the spot stands out from the liver
    for seed in (1, 2, 3):
        images, liver, geometry, lesions, spot = vessel_leaving_the_liver_scene(seed)
        result = detect_lesions(images, liver, geometry)
        match = match_lesions(lesions, result.instances, geometry)
        assert match.detected == [True], f"seed {seed}: the lesion was lost"
        assert not (result.instances[spot] > 0).any(), f"seed {seed}: the vein's cross-section was reported"


def test_lesions_inserted_in_real_t2_livers(shared_data):
    # the ten CHAOS T2 livers (Kavur et al. 2021, 7.7 mm slices) with the lesions of
    # Testing/evaluate_lesions.py and their manual liver outline: the targets of at most one
    # false positive per case and a lesion Dice of 0.75 are met; of the lesions of 10 mm or more,
    # the six missed lie on or against bright veins or another lesion (chaos01's 20 mm one, which
    # a vein runs into, has a Hessian blob ratio of 0.36-0.43, below MIN_BLOB_RATIO), so the
    # floor of 0.8 is below the 0.9
    from evaluate_lesions import chaos_cases

    matches = [match_lesions(truth, detect_lesions(images, liver, geometry).instances, geometry, ignore=ignore)
               for _, images, liver, geometry, truth, _, ignore in chaos_cases(shared_data)]
    assert len(matches) == 10
    false_positives = [match.false_positives for match in matches]
    assert sum(false_positives) <= len(matches), f"false positives per case: {false_positives}"
    assert np.mean([match.lesion_dice for match in matches]) >= 0.75
    large = [hit for match in matches for d, hit in zip(match.truth_diameters_mm, match.detected) if d >= 10.0]
    assert np.mean(large) >= 0.8, f"{sum(large)} of {len(large)} lesions of 10 mm or more found"


# --- lesions bulging out of an automatic liver (step 8) ---------------------------------------------


def test_a_lesion_bulging_out_of_the_liver_is_found_whole_beyond_it():
    case = bulging_lesion_case("t2")
    truth = case.lesions == 1
    assert (truth & ~case.liver).sum() > 0.25 * truth.sum()  # the liver mask leaves out its bulge
    inside_only = detect_lesions(case.images, case.liver, case.geometry)
    beyond = detect_lesions(case.images, case.liver, case.geometry, beyond_capsule_mm=25.0)
    assert dice(truth, inside_only.instances > 0) < 0.8
    assert beyond.count == 1 and dice(truth, beyond.instances == 1) > 0.85
    assert (beyond.instances[~case.liver] > 0).sum() > 0.25 * truth.sum()
    assert beyond.table[0]["volume_ml"] == pytest.approx(truth.sum() * case.geometry.voxel_volume_ml, rel=0.2)


def test_a_lesion_left_out_with_liver_around_it_is_found_all_the_same():
    # an automatic liver leaving out a lesion often leaves out liver around it too: here all of the
    # lesion and, on the slices from one past its centre, the liver within 3 mm of it
    case = bulging_lesion_case("t2")
    truth = case.lesions == 1
    spacing = case.geometry.spacing_mm
    around = morphology_mm(truth, spacing, 3.0, "dilate")
    around[: int(np.argwhere(truth)[:, 0].mean()) + 1] = False
    liver = case.liver & ~truth & ~around
    shell = morphology_mm(truth, spacing, min(spacing), "dilate") & ~truth
    assert 0.2 < liver[shell].mean() < 1 / 3  # held by the liver on less than a third of its surroundings
    result = detect_lesions(case.images, liver, case.geometry, beyond_capsule_mm=25.0)
    assert result.count == 1 and dice(truth, result.instances == 1) > 0.8


def test_a_flat_structure_bulging_out_of_the_liver_is_not_a_lesion_it_left_out():
    # a 22 mm disc as bright as the lesion on two 3 mm slices, across the left surface: 16 mm
    # across by volume, but 6 mm thick; the bulging ball on the right is still found whole
    case = bulging_lesion_case("t2")
    truth = case.lesions == 1
    k, j, i = np.meshgrid(*[np.arange(n) * s for n, s in zip(truth.shape, case.geometry.spacing_mm)], indexing="ij")
    disc = (np.abs(k - 43.5) <= 3.0) & ((j - 95.25) ** 2 + (i - 47.0) ** 2 <= 11.0 ** 2)
    assert len(np.unique(np.nonzero(disc)[0])) == 2 and (~case.liver[disc]).mean() > 0.4
    image = np.where(disc, np.median(case.images["t2"][truth]), case.images["t2"]).astype(np.float32)
    result = detect_lesions({"t2": image}, case.liver, case.geometry, beyond_capsule_mm=25.0)
    outside = [n for n in range(1, result.count + 1) if (result.instances[~case.liver] == n).any()]
    assert len(outside) == 1 and dice(truth, result.instances == outside[0]) > 0.85
    assert not (result.instances[disc & ~case.liver] > 0).any()


def test_an_organ_lying_against_the_liver_or_fluid_is_not_a_bulging_lesion():
    """A bright organ reaching beyond the searched rim (here a 60 mm ball against the left
    surface) and a fluid-bright ball bulging like the lesion (a gallbladder, a renal cyst) are
    left out; the bulging lesion is still found."""
    organ = Ball((43.5, 95.25, 17.0), 30.0, value=1.8)
    fluid = Ball((43.5, 148.0, 95.25), 12.0, cyst=True)  # against the posterior (j) surface
    case = bulging_lesion_case("t2", organ, fluid)
    result = detect_lesions(case.images, case.liver, case.geometry, beyond_capsule_mm=25.0)
    found_outside = [n for n in range(1, result.count + 1) if (result.instances[~case.liver] == n).any()]
    assert len(found_outside) == 1
    assert dice(case.lesions == 1, result.instances == found_outside[0]) > 0.85


def test_nothing_is_looked_for_beyond_the_liver_where_its_surroundings_look_like_lesions():
    """On hbp the fat around the liver is as dark as a lesion: the rim is not searched (the
    result is that of the liver alone)."""
    case = bulging_lesion_case("hbp")
    inside_only = detect_lesions(case.images, case.liver, case.geometry)
    beyond = detect_lesions(case.images, case.liver, case.geometry, beyond_capsule_mm=25.0)
    assert np.array_equal(inside_only.instances, beyond.instances)
    assert not (beyond.instances[~case.liver] > 0).any()
