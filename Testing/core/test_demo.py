"""`livermets demo` end to end on the small phantom: files exist and agree with each other and the truth.

One demo run (module fixture, < 60 s) is checked by every test. Expected values come from the files
the demo wrote (lesion ids, plan volumes) and from the phantom's truth (``phantom/truth``): liver
mask and ``legend.json`` (lesion diameters).
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

from livermets.cli import main
from livermets.demo import DEMO_SEGMENTS, match_lesions, phantom_landmarks, prepare_out_dir
from livermets.imageio import read_image


def run_cli(argv: list) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    pytest.importorskip("livermets.segmentation.pipeline", reason="the segmentation pipeline is not in the tree yet")
    out = tmp_path_factory.mktemp("demo") / "demo"
    code, stdout, stderr = run_cli(["demo", "--out", str(out), "--variant", "small"])
    return {"out": out, "code": code, "stdout": stdout, "stderr": stderr,
            "summary": json.loads((out / "demo_summary.json").read_text(encoding="utf-8")) if code == 0 else None}


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_exit_code_and_printed_summary(demo):
    assert demo["code"] == 0, demo["stderr"]
    assert str(demo["out"]) in demo["stdout"]
    assert "Dice" in demo["stdout"] and "FLR" in demo["stdout"]
    assert "%]" in demo["stderr"]  # progress lines


def test_lesion_files_agree(demo):
    result = demo["out"] / "result"
    lesions = read_image(result / "lesions.nii.gz").array
    listed = load(result / "lesions.json")["lesions"]
    ids = sorted(int(entry["id"]) for entry in listed)
    assert len(listed) == int(lesions.max())
    assert ids == [int(v) for v in np.unique(lesions) if v != 0]
    measured = load(result / "measurements.json")["lesions"]
    assert sorted(int(entry["id"]) for entry in measured) == ids


def test_report_mentions_every_lesion(demo):
    html = (demo["out"] / "report" / "report.html").read_text(encoding="utf-8")
    ids = [int(entry["id"]) for entry in load(demo["out"] / "result" / "lesions.json")["lesions"]]
    assert ids, "the small phantom has metastases of 37 mm and 25 mm: the demo must find some"
    for lesion_id in ids:
        assert f'id="lesion-{lesion_id}"' in html
    assert (demo["out"] / "report" / "results.json").is_file()


def test_models_one_per_lesion(demo):
    ids = [int(entry["id"]) for entry in load(demo["out"] / "result" / "lesions.json")["lesions"]]
    models = demo["out"] / "models"
    assert (models / "liver.stl").stat().st_size > 84  # header + count + at least one triangle
    assert {path.name for path in models.glob("lesion_*.stl")} == {f"lesion_{i:03d}.stl" for i in ids}


def test_plan_is_a_right_hepatectomy_with_consistent_flr(demo):
    plan = load(demo["out"] / "result" / "plan.json")
    assert plan["segments"] == [5, 6, 7, 8] and plan["name"] == "right hepatectomy"
    assert plan["flr_pct"] == pytest.approx(100 * plan["remnant_volume_ml"] / plan["total_functional_volume_ml"],
                                            abs=0.01)
    assert demo["summary"]["plan"]["flr_pct"] == plan["flr_pct"]
    remnant = read_image(demo["out"] / "result" / "remnant.nii.gz")
    resected = read_image(demo["out"] / "result" / "resected.nii.gz").array > 0
    assert not (remnant.array.astype(bool) & resected).any()


def test_summary_against_the_truth(demo):
    comparison = demo["summary"]["comparison"]
    truth = demo["out"] / "phantom" / "truth"
    true_liver = read_image(truth / "liver.nii.gz").array > 0
    found_liver = read_image(demo["out"] / "result" / "liver.nii.gz").array > 0
    dice = 2 * (true_liver & found_liver).sum() / (true_liver.sum() + found_liver.sum())
    assert comparison["liver_dice"] == pytest.approx(dice, abs=1e-4)
    assert comparison["liver_dice"] > 0.85
    legend = load(truth / "legend.json")
    assert comparison["lesions_true"] == sum(1 for lesion in legend["lesions"] if lesion["voxel_count"] > 0)
    assert comparison["lesions_found"] == len(load(demo["out"] / "result" / "lesions.json")["lesions"])
    largest = max(legend["lesions"], key=lambda lesion: lesion["diameter_mm"])
    assert next(t for t in comparison["true_lesions"] if t["id"] == largest["id"])["detected"]
    assert comparison["lesions_detected"] == sum(t["detected"] for t in comparison["true_lesions"])
    assert f"{comparison['lesions_detected']} of {comparison['lesions_true']}" in demo["stdout"]


def test_a_foreign_folder_is_refused(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    code, _, stderr = run_cli(["demo", "--out", str(foreign), "--variant", "small"])
    assert code == 2 and "not empty" in stderr
    assert [path.name for path in foreign.iterdir()] == ["notes.txt"]


def test_an_earlier_demo_is_cleared_but_other_files_kept(tmp_path):
    earlier = tmp_path / "demo"
    (earlier / "result").mkdir(parents=True)
    (earlier / "result" / "lesions.json").write_text("{}")
    (earlier / "demo_summary.json").write_text("{}")
    (earlier / "notes.txt").write_text("keep me")
    prepare_out_dir(earlier)
    assert [path.name for path in earlier.iterdir()] == ["notes.txt"]


def test_match_lesions_rules():
    """Hand-made instances: 10 % overlap either way is a match; an unmatched find mostly in the cyst is
    a cyst, any other unmatched find a false positive."""
    truth = np.zeros((1, 1, 40), dtype=np.int32)
    truth[0, 0, 0:10] = 1
    truth[0, 0, 12:32] = 2
    cyst = np.zeros_like(truth, dtype=bool)
    cyst[0, 0, 34:40] = True
    found = np.zeros_like(truth)
    found[0, 0, 9] = 1         # 1 of lesion 1's 10 voxels: 10 % of it
    found[0, 0, 31:33] = 2     # 1 of lesion 2's 20 voxels (5 %), but half of this find
    found[0, 0, 35:39] = 3     # inside the cyst
    found[0, 0, 10:12] = 4     # touches nothing
    detected, false_positives, cysts = match_lesions(truth, found, cyst)
    assert detected == {1: True, 2: True}
    assert (false_positives, cysts) == (1, 1)
    found[found == 2] = 0
    assert match_lesions(truth, found, cyst) == ({1: True, 2: False}, 1, 1)


def test_phantom_landmarks_reproduce_the_phantom_segments():
    """Couinaud map from the landmarks the demo places vs the phantom's own ``couinaud`` truth: the same
    scheme (planes through the IVC axis, the hepatic veins and the portal bifurcation), so the right
    liver (5-8, the demo's resection) agrees exactly; segment I and the II/III plane are defined a
    little differently (caudate shape vs radius rule, plane tilt), hence 95 % overall."""
    from livermets.measure import couinaud_map
    from livermets.phantom import make_phantom

    phantom = make_phantom(0, variant="small", sequences=("hbp",))
    liver = phantom.liver > 0
    found = couinaud_map(liver, phantom.geometry, phantom_landmarks(phantom))[liver]
    truth = phantom.couinaud[liver]
    assert (found == truth).mean() > 0.95
    right_found, right_truth = np.isin(found, DEMO_SEGMENTS), np.isin(truth, DEMO_SEGMENTS)
    assert 2 * (right_found & right_truth).sum() / (right_found.sum() + right_truth.sum()) > 0.99


def test_result_folder_names_its_images_so_report_runs_on_it_alone(demo, tmp_path):
    """The result folder stands on its own: `livermets report RESULTDIR` finds the images it names."""
    result = demo["out"] / "result"
    sequences = load(result / "lesions.json")["sequences"]
    assert [entry["sequence"] for entry in sequences] == ["hbp", "portal_venous", "t2", "dwi"]
    for entry in sequences:
        assert (result / entry["file"]).resolve() == (demo["out"] / "phantom" / f"{entry['sequence']}.nii.gz").resolve()
    assert main(["--quiet", "report", str(result), "--out", str(tmp_path / "again"), "--no-pictures"]) == 0
    assert (tmp_path / "again" / "report.html").is_file()
