"""Segmentation pipeline: sequence guessing, phase alignment, result files and their contract,
engines, and the `livermets segment` command."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from abdomen import SIGNAL, make_abdomen  # noqa: E402
from livermets.cli import main  # noqa: E402
from livermets.errors import InputError, NoLiverFoundError  # noqa: E402
from livermets.geometry import Geometry, Volume  # noqa: E402
from livermets.imageio import read_image, write_image  # noqa: E402
from livermets.labels import RESULT_LABELS  # noqa: E402
from livermets.segmentation import registration, sequence_guess  # noqa: E402
from livermets.segmentation.engines import EngineOutput, add_vessels_and_lesions, get_engine  # noqa: E402
from livermets.segmentation.pipeline import segment, write_result  # noqa: E402
from livermets.sequences import MRI_SEQUENCES, lesion_polarity  # noqa: E402
from synthetic_liver import bulging_lesion_case  # noqa: E402

OBLIQUE = tuple(
    np.array([[np.cos(0.3), 0.0, np.sin(0.3)], [0.0, 1.0, 0.0], [-np.sin(0.3), 0.0, np.cos(0.3)]]).ravel()
)


@pytest.fixture(scope="module")
def oblique_case():
    return make_abdomen(shape_kji=(32, 72, 90), spacing_ijk_mm=(3.3, 3.3, 5.5), direction_lps=OBLIQUE)


@pytest.fixture(scope="module")
def oblique_result(oblique_case):
    return segment([Volume(oblique_case.image, oblique_case.geometry)], ["t2"])


# --- sequences ---------------------------------------------------------------------------------------
def test_ct_is_recognised_from_hounsfield_units():
    rng = np.random.default_rng(0)
    ct = np.full((20, 60, 60), -1000.0, np.float32)  # air
    ct[:, 10:50, 10:50] = -100.0  # fat
    ct[:, 20:40, 20:40] = 60.0  # soft tissue
    ct += rng.normal(0, 10, ct.shape).astype(np.float32)
    guess = sequence_guess.resolve(ct)
    assert (guess.sequence, guess.source) == ("ct", "image") and guess.confidence >= 0.9


def test_mri_is_not_ct_and_t2_is_recognised_inside_the_liver():
    case = make_abdomen()
    first = sequence_guess.resolve(case.image)
    assert first.sequence != "ct" and first.confidence < 0.5  # contrast not judged yet
    refined = sequence_guess.mri_contrast(case.image, case.geometry, case.liver)
    assert refined.sequence == "t2" and "spinal canal bright" in refined.reason


def test_the_spinal_canal_decides_whether_lesions_are_looked_for_brighter_or_darker():
    # the same abdomen, spleen and kidneys twice as bright as the liver, with CSF bright (T2) or
    # dark (every T1 phase): only the canal tells the two apart
    bright, dark = make_abdomen(csf=3.0), make_abdomen(csf=0.1)
    bright_facts = sequence_guess.contrast_facts(bright.image, bright.geometry, bright.liver, bright.image > 0.1 * SIGNAL)
    dark_facts = sequence_guess.contrast_facts(dark.image, dark.geometry, dark.liver, dark.image > 0.1 * SIGNAL)
    assert bright_facts.fluid > 1.0 and bright_facts.fluid_share == 1.0  # CSF 3 liver medians, bone 0.25
    assert dark_facts.fluid < sequence_guess.FLUID_BRIGHT
    assert lesion_polarity(sequence_guess.mri_contrast(bright.image, bright.geometry, bright.liver).sequence) == "bright"
    assert lesion_polarity(sequence_guess.mri_contrast(dark.image, dark.geometry, dark.liver).sequence) == "dark"


def test_fine_pixels_are_judged_on_every_other_one_alike():
    # 0.9 mm pixels: judged on every second one (1.8 mm), as fast as a 2 mm image and with the same result
    coarse, fine = make_abdomen(), make_abdomen(shape_kji=(36, 266, 333), spacing_ijk_mm=(0.9, 0.9, 5.0))
    guesses = [sequence_guess.mri_contrast(case.image, case.geometry, case.liver) for case in (coarse, fine)]
    assert [guess.sequence for guess in guesses] == ["t2", "t2"]
    assert "in-plane 1.8 mm" in guesses[1].reason and "in-plane 3.0 mm" in guesses[0].reason


def test_the_contrast_is_judged_alike_whatever_the_storage_scale_and_offset():
    case = make_abdomen()
    stored = [case.image, case.image / SIGNAL, case.image * 10.0 - 1000.0]  # as read, 0-1 floats, shifted
    reasons = {sequence_guess.mri_contrast(image, case.geometry, case.liver).reason for image in stored}
    assert len(reasons) == 1 and "spinal canal bright" in reasons.pop()


def test_a_sagittal_grid_has_no_canal_measure_and_is_still_judged():
    case = make_abdomen()
    sagittal = Geometry(case.geometry.shape, case.geometry.spacing_ijk_mm, case.geometry.origin_lps_mm,
                        (0, 0, 1, 1, 0, 0, 0, 1, 0))  # k runs left-right: no axial slices
    facts = sequence_guess.contrast_facts(case.image, sagittal, case.liver, case.image > 0.1 * SIGNAL)
    assert facts.fluid is None and "spinal canal" not in facts.describe()
    assert sequence_guess.mri_contrast(case.image, sagittal, case.liver).sequence in MRI_SEQUENCES


@pytest.fixture(scope="module")
def phantom_contrasts():
    """Seed 2 of the phantom (the rules were drawn up on seeds 0 and 1) in five MRI contrasts."""
    from livermets.phantom import make_phantom

    contrasts = ("hbp", "portal_venous", "arterial", "t2", "dwi")
    return {variant: make_phantom(2, variant=variant, sequences=contrasts) for variant in ("small", "thick")}


@pytest.mark.parametrize("sequence", ["hbp", "portal_venous", "arterial", "t2", "dwi"])
def test_each_phantom_contrast_is_named_from_its_intensities(phantom_contrasts, sequence):
    small, thick = phantom_contrasts["small"], phantom_contrasts["thick"]
    assert sequence_guess.mri_contrast(small.images[sequence], small.geometry, small.liver > 0).sequence == sequence
    # on 7.5 mm slices thin veins fade (portal-venous taken for hepatobiliary), but lesions are
    # looked for the right way
    named = sequence_guess.mri_contrast(thick.images[sequence], thick.geometry, thick.liver > 0).sequence
    assert lesion_polarity(named) == lesion_polarity(sequence)


def test_real_t2_spir_images_are_called_t2(shared_data):
    # fat-suppressed T2 with bright veins: the former rules called 7 of these 10 portal-venous
    names = sorted(path.name[:7] for path in (shared_data / "chaos_t2").glob("chaos*_t2spir.nii.gz"))
    called = {}
    for name in names:
        image = read_image(shared_data / "chaos_t2" / f"{name}_t2spir.nii.gz")
        liver = read_image(shared_data / "chaos_t2" / f"{name}_labels.nii.gz").array == 1
        called[name] = sequence_guess.mri_contrast(np.asarray(image.array, np.float32), image.geometry, liver).sequence
    assert len(called) == 10 and set(called.values()) == {"t2"}, called


def test_a_real_mri_without_fat_suppression_is_not_called_t2(shared_data):
    # the TotalSegmentator example MRI: fat bright, CSF, spleen and kidneys darker than the liver
    image = read_image(shared_data / "totalseg_mr" / "example_mr_sm.nii.gz")
    liver = read_image(shared_data / "totalseg_mr" / "example_seg_mr.nii.gz").array == 5
    guess = sequence_guess.mri_contrast(np.asarray(image.array, np.float32), image.geometry, liver)
    assert guess.sequence == "t1" and "fat not suppressed" in guess.reason


def test_contrast_judged_in_the_liver_is_the_one_used_for_lesions():
    # no sequence given: the T2-like abdomen is judged "t2" inside the found liver, and a lesion
    # brighter than the liver (as on T2) is found; it was missed when the judged name was only
    # reported and the lesions were looked for with the first, blind guess (t1: lesions dark)
    case = make_abdomen()
    spacing = np.asarray(case.geometry.spacing_mm)
    points = np.stack(np.meshgrid(*[np.arange(n) for n in case.geometry.shape], indexing="ij"), axis=-1) * spacing
    ball = np.linalg.norm(points - np.argwhere(case.liver).mean(axis=0) * spacing, axis=-1) <= 9.0
    image = np.where(ball & case.liver, 1.8 * case.image, case.image).astype(np.float32)
    result = segment([Volume(image, case.geometry)])
    assert (result.sequences[0]["sequence"], result.sequences[0]["source"]) == ("t2", "image")
    assert len(result.lesion_table) == 1 and (result.lesions[ball] > 0).mean() > 0.8
    assert not any("on t1" in warning for warning in result.warnings)
    # the user is told the contrast was guessed, what it decided, and how to name it
    guessed = [w for w in result.warnings if "contrast was guessed" in w]
    assert len(guessed) == 1 and "as t2" in guessed[0] and "brighter than the liver" in guessed[0]
    assert "--sequence" in guessed[0]


def test_a_named_contrast_is_not_called_a_guess(oblique_result):
    assert oblique_result.sequences[0]["source"] == "argument"
    assert not any("guessed" in warning for warning in oblique_result.warnings)


def test_argument_and_hint_beat_the_image():
    case = make_abdomen()
    assert sequence_guess.resolve(case.image, given="HBP").as_dict()["source"] == "argument"
    hinted = sequence_guess.resolve(case.image, hint="portal_venous")
    assert (hinted.sequence, hinted.source) == ("portal_venous", "dicom")
    with pytest.raises(ValueError, match="unknown sequence"):
        sequence_guess.resolve(case.image, given="flair")


# --- alignment -----------------------------------------------------------------------------------------
def _blobs(offset_mm, shape=(24, 64, 64), spacing=(3.0, 3.0, 4.0), seed=0):
    k, j, i = np.mgrid[: shape[0], : shape[1], : shape[2]].astype(np.float32)
    x, y, z = i * spacing[0] + offset_mm[0], j * spacing[1] + offset_mm[1], k * spacing[2] + offset_mm[2]
    image = np.zeros(shape, np.float32)
    for (cx, cy, cz), radius, value in [
        ((96, 96, 48), 60, 100),
        ((70, 80, 40), 15, 220),
        ((125, 110, 60), 12, 40),
        ((90, 135, 35), 10, 170),
    ]:
        image[(x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2 < radius**2] = value
    image += np.random.default_rng(seed).normal(0, 3, shape).astype(np.float32)
    return Volume(image, Geometry(shape, spacing, (0.0, 0.0, 0.0)))


def test_alignment_recovers_a_known_shift():
    # moving shows at world point p what fixed shows at p + (5, -3, 4) mm (LPS): the alignment must
    # move fixed points by -(5, -3, 4) LPS = (5, -3, -4) RAS mm, 7.07 mm in length.
    fixed, moving = _blobs((0, 0, 0)), _blobs((5.0, -3.0, 4.0), seed=1)
    array, found = registration.align(fixed, moving, deformable=False)
    assert np.allclose(found.translation_mm, (5.0, -3.0, -4.0), atol=0.6) and found.method == "rigid"
    assert abs(found.mean_displacement_mm - np.sqrt(50.0)) < 0.6
    assert found.mutual_information_after > found.mutual_information_before
    assert array.shape == fixed.geometry.shape
    assert found.edge_correlation_after > 0.9


def test_an_alignment_below_half_a_voxel_is_not_applied():
    # the scene moved by 0.8 mm on 3-4 mm voxels, other noise and another contrast: the registration
    # sees a move, but below half a voxel resampling by it would blur more than it corrects
    fixed = _blobs((0.0, 0.0, 0.0))
    moving = Volume(np.sqrt(np.clip(_blobs((0.8, 0.0, 0.0), seed=1).array, 0, None)) * 10.0, fixed.geometry)
    array, found = registration.align(fixed, moving)
    assert 0.0 < found.rigid_estimate_max_mm < 0.5 * min(fixed.geometry.spacing_mm)
    assert found.method == "scanner position" and found.max_displacement_mm == 0.0
    assert np.array_equal(array, moving.array)  # exactly the phase as scanned


# --- pipeline and files --------------------------------------------------------------------------------
def test_result_contract_on_an_oblique_grid(oblique_case, oblique_result, tmp_path):
    result = oblique_result
    assert result.geometry == oblique_case.geometry
    assert result.liver.dtype == np.uint8 and set(np.unique(result.liver)) <= {0, 1}
    assert result.labels.dtype == np.uint8 and set(np.unique(result.labels)) <= set(RESULT_LABELS) | {0}
    assert result.lesions.dtype == np.uint16
    assert np.array_equal(result.labels > 0, (result.liver > 0) | (result.labels > 1))
    dice = (
        2
        * np.count_nonzero(result.liver.astype(bool) & oblique_case.liver)
        / (np.count_nonzero(result.liver) + np.count_nonzero(oblique_case.liver))
    )
    assert dice > 0.95
    assert result.sequences[0]["source"] == "argument" and set(result.timings_s) >= {"liver", "alignment"}

    paths = write_result(result, tmp_path / "out")
    assert sorted(p.name for p in paths.values()) == sorted(
        ["liver.nii.gz", "labels.nii.gz", "lesions.nii.gz", "lesions.json"]
    )
    for name, dtype in (
        ("liver.nii.gz", np.uint8),
        ("labels.nii.gz", np.uint8),
        ("lesions.nii.gz", np.uint16),
    ):
        written = read_image(paths[name])
        assert written.array.dtype == dtype
        assert written.geometry.same_grid(oblique_case.geometry, 1e-3)
        assert np.allclose(written.geometry.direction_lps, OBLIQUE, atol=1e-5)
    assert np.array_equal(read_image(paths["liver.nii.gz"]).array, result.liver)
    summary = json.loads(paths["lesions.json"].read_text(encoding="utf-8"))
    assert {"lesions", "sequences", "timings_s", "alignment", "warnings", "engine", "version"} <= set(summary)
    assert summary["liver_volume_ml"] == pytest.approx(result.liver_volume_ml, rel=1e-3)
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temporary left


def test_why_no_vessels_were_drawn_reaches_the_result(oblique_result, tmp_path):
    # the synthetic abdomen has no veins: the vessel step says so instead of leaving empty trees unexplained
    assert not np.isin(oblique_result.labels, [3, 4]).any()
    reasons = [w for w in oblique_result.warnings if w.startswith("vessels not segmented")]
    assert len(reasons) == 1 and "do not stand out" in reasons[0]
    summary = json.loads(write_result(oblique_result, tmp_path / "out")["lesions.json"].read_text(encoding="utf-8"))
    assert reasons[0] in summary["warnings"]


def test_bad_pipeline_inputs(oblique_case, tmp_path):
    volume = Volume(oblique_case.image, oblique_case.geometry)
    with pytest.raises(InputError, match="no images"):
        segment([])
    with pytest.raises(InputError, match="one per"):
        segment([volume], ["t2", "hbp"])
    with pytest.raises(InputError, match="unknown engine"):
        segment([volume], engine="magic")
    geometry = Geometry((30, 64, 64), (3.0, 3.0, 3.0), (0.0, 0.0, 0.0))
    noise = np.random.default_rng(2).normal(100, 100, geometry.shape).astype(np.float32)
    with pytest.raises(NoLiverFoundError):
        segment([Volume(noise, geometry)])


def test_a_ct_not_in_hounsfield_units_is_refused(oblique_case):
    """Stored CT values without the scanner's rescale (about HU + 1024), or an MRI taken as CT, are
    refused before anything is segmented; the same CT in Hounsfield units passes the check."""
    from livermets.phantom import make_phantom

    phantom = make_phantom(0, variant="small", sequences=("ct",))
    sequence_guess.check_hounsfield(phantom.images["ct"], "image 1")
    with pytest.raises(InputError, match="image 1 is taken as CT.*not Hounsfield units"):
        segment([Volume(phantom.images["ct"] + 1024.0, phantom.geometry)], ["ct"])
    with pytest.raises(InputError, match="not Hounsfield units"):
        segment([Volume(np.clip(oblique_case.image, 0.0, None), oblique_case.geometry)], ["ct"])  # an MRI


def test_totalsegmentator_engine_explains_itself():
    from livermets.segmentation.engines import TotalSegmentatorEngine

    ok, reason = TotalSegmentatorEngine().available()
    if ok:
        pytest.skip("totalsegmentator is installed here")
    assert "pip install" in reason
    with pytest.raises(InputError, match="not available"):
        get_engine("totalsegmentator")
    assert get_engine("classical").available() == (True, "")


def test_builtin_engine_takes_other_liver_network_weights(oblique_case, oblique_result, tmp_path):
    from livermets.segmentation.liver_net import WEIGHTS

    with pytest.raises(InputError, match="no liver network weights"):
        get_engine(f"builtin:{tmp_path / 'missing.npz'}")
    # the shipped weights with a head that says "not liver" everywhere
    with np.load(WEIGHTS) as shipped:
        arrays = {name: np.full_like(shipped[name], -60.0) if name.endswith("head.bias") else shipped[name]
                  for name in shipped.files}
    blind = tmp_path / "blind.npz"
    np.savez(blind, **arrays)
    volume = Volume(oblique_case.image, oblique_case.geometry)
    result = segment([volume], engine=f"builtin:{blind}")
    assert result.engine == f"builtin:{blind}"
    assert any(w.startswith("the network found no liver") for w in result.warnings)
    assert not any(w.startswith("the network found no liver") for w in oblique_result.warnings)


def test_an_mri_stored_in_other_units_gives_the_same_result(oblique_case, oblique_result):
    """Every stage (liver, vessels, lesions) sees an MRI through its own contrast: the image
    stored as floats between 0 and 1 gives the same labels and lesions."""
    scaled = segment([Volume(oblique_case.image / oblique_case.image.max(), oblique_case.geometry)], ["t2"])
    assert np.array_equal(scaled.labels, oblique_result.labels)
    assert np.array_equal(scaled.lesions, oblique_result.lesions)
    assert scaled.warnings == oblique_result.warnings


# --- command line --------------------------------------------------------------------------------------
def test_segment_command_two_phases(oblique_case, tmp_path, capsys):
    # a second phase of the same synthetic patient (other noise): aligned to the first, reported
    second = make_abdomen(
        shape_kji=(32, 72, 90), spacing_ijk_mm=(3.3, 3.3, 5.5), direction_lps=OBLIQUE, seed=3
    )
    first_path = write_image(Volume(oblique_case.image, oblique_case.geometry), tmp_path / "a.nii.gz")
    second_path = write_image(Volume(second.image, second.geometry), tmp_path / "b.nii.gz")
    assert (
        main(
            [
                "--quiet",
                "segment",
                str(first_path),
                str(second_path),
                "--out",
                str(tmp_path / "res"),
                "--sequence",
                "t2",
                "hbp",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "liver volume:" in printed and "lesions found:" in printed and "t2 (argument" in printed
    summary = json.loads((tmp_path / "res" / "lesions.json").read_text(encoding="utf-8"))
    assert [s["sequence"] for s in summary["sequences"]] == ["t2", "hbp"]
    # each input image is named relative to the result folder, so `livermets report` finds it
    assert [(tmp_path / "res" / s["file"]).resolve() for s in summary["sequences"]] == \
        [first_path.resolve(), second_path.resolve()]
    assert len(summary["alignment"]) == 1 and summary["alignment"][0]["mean_displacement_mm"] < 2.0
    with pytest.raises(SystemExit):
        main(["segment", str(first_path)])  # --out is required: argparse usage error


def test_segment_command_no_liver_is_a_clear_error_and_writes_nothing(tmp_path, capsys):
    geometry = Geometry((30, 64, 64), (3.0, 3.0, 3.0), (0.0, 0.0, 0.0))
    noise = np.random.default_rng(4).normal(100, 100, geometry.shape).astype(np.float32)
    image_path = write_image(Volume(noise, geometry), tmp_path / "noise.nii.gz")
    assert main(["--quiet", "segment", str(image_path), "--out", str(tmp_path / "res")]) == 2
    assert "no liver" in capsys.readouterr().err.lower()
    assert not (tmp_path / "res").exists() or not any((tmp_path / "res").iterdir())


def test_the_liver_takes_in_a_lesion_bulging_out_of_it():
    """An engine's liver that leaves out the bulge of a lesion through the capsule: the lesion is
    found whole and the liver then holds it (labels: no lesion voxel outside the liver)."""
    case = bulging_lesion_case("t2")
    output = EngineOutput(liver=case.liver.astype(np.uint8), lesions=np.zeros(case.liver.shape, dtype=np.uint16))
    add_vessels_and_lesions(output, case.images, case.geometry)
    lesion = case.lesions == 1
    found = output.lesions == np.bincount(output.lesions[lesion]).argmax()
    assert 2 * np.count_nonzero(found & lesion) / (found.sum() + lesion.sum()) > 0.85
    assert not (output.lesions[output.liver == 0] > 0).any()
    assert np.array_equal(output.liver > 0, case.liver | (output.lesions > 0))


def test_the_detectors_run_with_blas_on_one_thread(oblique_case, blas_threads):
    # the detectors' own threads share the cores; BLAS threads spinning beside them cost a
    # 40-slice segmentation 6 % of its time and 11 % of its processor time (README)
    from threadpoolctl import threadpool_limits

    threads = {}

    def progress(fraction: float, message: str) -> None:
        threads.setdefault(message.split(":")[0].split()[0], set()).update(blas_threads())

    with threadpool_limits(limits=2, user_api="blas"):
        segment([Volume(oblique_case.image, oblique_case.geometry)], ["t2"], progress=progress)
        after = blas_threads()
    assert threads["liver"] == threads["vessels"] == threads["lesions"] == {1}
    assert threads["identifying"] == after
