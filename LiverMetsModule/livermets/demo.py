"""The teaching demo: build the sample case, run the whole pipeline on it, compare with the truth.

``run_demo`` writes, under ``out_dir``::

    phantom/            the synthetic case: <sequence>.nii.gz and truth/ (labels, lesions, legend.json)
    result/             `livermets segment` output + measurements.json, couinaud.nii.gz, plan.json,
                        remnant.nii.gz, resected.nii.gz (and landmarks.json, see below)
    report/report.html  the report (key images and 3D views embedded), results.json, images/
    models/             STL surface models (liver, vessels, one per lesion)
    demo_summary.json   what the demo found against the phantom truth, and the time of each stage

It runs the same library calls as the sub-commands ``phantom``, ``segment``, ``measure``, ``plan``,
``report`` and ``export-models``, in that order, and works the same from Slicer's Python. When the
automatic Couinaud landmarks cannot be found, the demo does what a reader would: it places them
(from the phantom's known anatomy, written to ``result/landmarks.json``) and measures again, and
says so in the summary's warnings. Volumes are ml, sizes mm, times s.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Union

import numpy as np

from livermets.errors import InputError
from livermets.progress import ProgressCallback, report, scaled

if TYPE_CHECKING:
    from livermets.measure.couinaud import CouinaudLandmarks

DEMO_SEQUENCES = ("hbp", "portal_venous", "t2", "dwi")
"""Gadoxetic hepatobiliary + portal-venous phases, T2 and diffusion: a usual liver-metastasis MRI protocol."""
DEMO_SEGMENTS = (5, 6, 7, 8)
"""The demo's plan: right hepatectomy (Couinaud segments 5-8)."""
SUMMARY_FILE = "demo_summary.json"
DEMO_PARTS = ("phantom", "result", "report", "models", SUMMARY_FILE)
MIN_OVERLAP = 0.1
"""A true lesion counts as found when a found lesion covers >= 10 % of it or lies >= 10 % inside it."""

# share of the progress bar for each stage (roughly their run times on the standard variant)
_STAGES = {"phantom": (0.0, 0.12), "segment": (0.12, 0.9), "measure": (0.9, 0.93), "plan": (0.93, 0.94),
           "report": (0.94, 0.98), "models": (0.98, 1.0)}


@dataclass
class TruthComparison:
    """The automatic result against the phantom truth (same grid).

    ``true_lesions`` holds, per true metastasis, its ``id``, ``diameter_mm`` (phantom legend) and
    whether it was ``detected``. ``cysts_found`` counts found lesions lying mostly in the phantom's
    cyst (true, but not a metastasis); ``false_positives`` those matching neither.
    """

    liver_volume_ml: float
    true_liver_volume_ml: float
    liver_dice: float
    lesions_found: int
    lesions_true: int
    lesions_detected: int
    false_positives: int
    cysts_found: int
    true_lesions: list = field(default_factory=list)


@dataclass
class DemoSummary:
    """What :func:`run_demo` did: output files, comparison with the truth, plan, timings (s) and the
    warnings of the pipeline (steps left out, doubtful inputs)."""

    out_dir: Path
    seed: int
    variant: str
    sequences: tuple
    files: dict
    comparison: TruthComparison
    plan: Optional[dict]
    plan_skipped: Optional[str]
    timings_s: dict
    warnings: list = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-able; file paths relative to ``out_dir`` (the folder can be moved)."""
        data = asdict(self)
        del data["out_dir"]
        data["files"] = {name: Path(path).relative_to(self.out_dir).as_posix() for name, path in self.files.items()}
        data["sequences"] = list(self.sequences)
        return data

    def to_text(self) -> str:
        """A short plain-text summary for the terminal (or a Slicer message box)."""
        c = self.comparison
        missed = [f"{lesion['diameter_mm']:.0f} mm" for lesion in c.true_lesions if not lesion["detected"]]
        lines = [
            (f"LiverMets demo: synthetic phantom (seed {self.seed}, {self.variant} variant; not patient data), "
             f"sequences {', '.join(self.sequences)}"),
            (f"  liver       {c.liver_volume_ml:.0f} ml found, {c.true_liver_volume_ml:.0f} ml true, "
             f"Dice {c.liver_dice:.3f}"),
            f"  lesions     {c.lesions_found} found: {c.lesions_detected} of {c.lesions_true} true metastases"
            + (f" (missed: {', '.join(missed)})" if missed else "")
            + f", {c.cysts_found} in the cyst, {c.false_positives} false positive(s)",
        ]
        if self.plan is not None:
            lines.append(f"  plan        {self.plan['name']} (segments "
                         f"{', '.join(str(s) for s in self.plan.get('segments', []))}): FLR "
                         f"{self.plan['flr_pct']:.1f} % ({self.plan['remnant_volume_ml']:.0f} ml of "
                         f"{self.plan['total_functional_volume_ml']:.0f} ml functional liver)")
        else:
            lines.append(f"  plan        not made: {self.plan_skipped}")
        total = sum(self.timings_s.values())
        lines.append("  timings     " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.timings_s.items())
                     + f"; total {total:.1f} s")
        lines += [f"  warning     {warning}" for warning in self.warnings]
        lines.append(f"Files in {self.out_dir}:")
        descriptions = {"phantom": "input images and truth/", "result": "segmentation, measurements, plan",
                        "report": "open this in a browser", "models": "STL surface models",
                        "summary": "this summary as JSON"}
        for name, description in descriptions.items():
            if name in self.files:
                lines.append(f"  {self.files[name]}  ({description})")
        return "\n".join(lines)


def prepare_out_dir(out_dir: Path) -> None:
    """Make ``out_dir`` ready: create it, or remove an earlier demo's folders (phantom, result, report,
    models) and summary from it; other files there are kept.

    A non-empty folder without an earlier ``demo_summary.json`` is refused, so the demo never removes
    a folder it did not make.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir} is a file; give --out a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not (out_dir / SUMMARY_FILE).is_file():
            raise InputError(f"{out_dir} is not empty and holds no earlier demo; give --out a new or empty folder")
        for name in DEMO_PARTS[:-1]:
            if (out_dir / name).is_dir():
                shutil.rmtree(out_dir / name)
        (out_dir / SUMMARY_FILE).unlink()  # last: an interrupted clean-up is still recognised as a demo
    out_dir.mkdir(parents=True, exist_ok=True)


def match_lesions(true_lesions: np.ndarray, found_lesions: np.ndarray, cyst: np.ndarray) -> tuple[dict, int, int]:
    """Match lesion instances (``[k, j, i]`` int arrays on one grid, 0 = background).

    Returns (true id -> detected, false positives, cysts found); see :data:`MIN_OVERLAP`. A found lesion
    matching no true one is a cyst when more than half of it lies in ``cyst``, else a false positive.
    """
    found_lesions = np.asarray(found_lesions, dtype=np.int64)
    count = int(found_lesions.max(initial=0))
    found_sizes = np.bincount(found_lesions.ravel(), minlength=count + 1)
    matched = np.zeros(count + 1, dtype=bool)
    detected = {}
    for true_id in (int(v) for v in np.unique(true_lesions) if v != 0):
        inside = true_lesions == true_id
        overlap = np.bincount(found_lesions[inside], minlength=count + 1)
        overlap[0] = 0
        hits = (overlap > 0) & ((overlap >= MIN_OVERLAP * inside.sum()) | (overlap >= MIN_OVERLAP * found_sizes))
        detected[true_id] = bool(hits.any())
        matched |= hits
    in_cyst = np.bincount(found_lesions[np.asarray(cyst, dtype=bool)], minlength=count + 1)
    unmatched = [label for label in range(1, count + 1) if found_sizes[label] and not matched[label]]
    cysts = sum(1 for label in unmatched if in_cyst[label] > 0.5 * found_sizes[label])
    return detected, len(unmatched) - cysts, cysts


def compare_with_truth(result_dir: Union[str, Path], truth_dir: Union[str, Path]) -> TruthComparison:
    """Compare ``liver.nii.gz`` / ``lesions.nii.gz`` of a result folder with a phantom's ``truth/``.

    True metastases are those of ``legend.json`` that cover at least one voxel (a lesion smaller than
    a voxel cannot be seen). Both folders must share one grid.
    """
    from livermets.imageio import read_image
    from livermets.labels import PHANTOM_LABEL_VALUES

    result_dir, truth_dir = Path(result_dir), Path(truth_dir)
    found_liver = read_image(result_dir / "liver.nii.gz")
    true_liver = read_image(truth_dir / "liver.nii.gz")
    if not found_liver.geometry.same_grid(true_liver.geometry):
        raise InputError(f"{result_dir} and {truth_dir} are on different grids: compare a result with the truth "
                         "of the phantom it was computed on")
    found_mask, true_mask = found_liver.array > 0, true_liver.array > 0
    total = int(found_mask.sum()) + int(true_mask.sum())
    dice = 2.0 * int((found_mask & true_mask).sum()) / total if total else 1.0
    voxel_ml = found_liver.geometry.voxel_volume_ml
    legend = json.loads((truth_dir / "legend.json").read_text(encoding="utf-8"))
    cyst_label = PHANTOM_LABEL_VALUES["cyst"]
    cyst = read_image(truth_dir / "anatomy.nii.gz").array == cyst_label
    found_lesions = read_image(result_dir / "lesions.nii.gz").array
    detected, false_positives, cysts = match_lesions(read_image(truth_dir / "lesions.nii.gz").array,
                                                     found_lesions, cyst)
    true_lesions = [{"id": int(lesion["id"]), "diameter_mm": float(lesion["diameter_mm"]),
                     "detected": detected.get(int(lesion["id"]), False)}
                    for lesion in legend["lesions"] if lesion["voxel_count"] > 0]
    return TruthComparison(
        liver_volume_ml=round(float(found_mask.sum()) * voxel_ml, 2),
        true_liver_volume_ml=round(float(true_mask.sum()) * voxel_ml, 2),
        liver_dice=round(dice, 4),
        lesions_found=len([v for v in np.unique(found_lesions) if v != 0]),
        lesions_true=len(true_lesions),
        lesions_detected=sum(lesion["detected"] for lesion in true_lesions),
        false_positives=false_positives, cysts_found=cysts, true_lesions=true_lesions)


def phantom_landmarks(phantom) -> CouinaudLandmarks:
    """Couinaud landmarks (RAS mm) of a phantom from its known anatomy, where a reader would click
    them: the IVC at the hepatic-vein confluence, the middle of each hepatic-vein trunk, the portal
    bifurcation and the umbilical portion of the left portal vein (``livermets.phantom.vessels``)."""
    from livermets.measure.couinaud import CouinaudLandmarks
    from livermets.phantom.vessels import (HEPATIC_CONFLUENCE_Z_MM, IVC_CENTER_XY, PORTAL_BIFURCATION,
                                           UMBILICAL_PORTAL)

    trunks = {}
    for piece in phantom.scene.hepatic.segments:  # the first piece of each named vein is its trunk
        trunks.setdefault(piece.branch, tuple(float(v) for v in (piece.p0 + piece.p1) / 2.0))
    confluence = (*IVC_CENTER_XY, HEPATIC_CONFLUENCE_Z_MM)
    return CouinaudLandmarks(
        ivc_point_ras=confluence, right_hepatic_vein_ras=trunks["right hepatic vein"],
        middle_hepatic_vein_ras=trunks["middle hepatic vein"], left_hepatic_vein_ras=trunks["left hepatic vein"],
        portal_bifurcation_ras=PORTAL_BIFURCATION, umbilical_fissure_ras=UMBILICAL_PORTAL,
        hepatic_confluence_ras=confluence)


class _Stages:
    """Times each stage (s) and gives it its share of the progress bar."""

    def __init__(self, progress: Optional[ProgressCallback]) -> None:
        self.progress = progress
        self.timings_s: dict[str, float] = {}

    def run(self, name: str, work, *args, **kwargs):
        start, stop = _STAGES[name]
        report(self.progress, start, name)
        started = time.perf_counter()
        result = work(*args, progress=scaled(self.progress, start, stop), **kwargs)
        self.timings_s[name] = round(self.timings_s.get(name, 0.0) + time.perf_counter() - started, 2)
        return result


def run_demo(out_dir: Union[str, Path], *, seed: int = 0, variant: str = "standard",
             progress: Optional[ProgressCallback] = None) -> DemoSummary:
    """Build the sample case and run segment -> measure -> plan (right hepatectomy) -> report -> models.

    Writes the layout of the module docstring into ``out_dir`` (an earlier demo there is replaced; any
    other non-empty folder is refused) and returns the summary also written to ``demo_summary.json``.
    The plan is left out, with the reason, when the Couinaud segments could not be found.
    """
    if seed < 0:
        raise InputError(f"the seed must be 0 or more, got {seed}")
    out = Path(out_dir)
    prepare_out_dir(out)

    from livermets.imageio import read_image
    from livermets.measure import measure_result_dir
    from livermets.files import write_json
    from livermets.models import export_models
    from livermets.phantom import make_phantom, write_phantom
    from livermets.planning.plan import plan_result_dir
    from livermets.report.build import build_report
    from livermets.segmentation.pipeline import segment, write_result

    phantom_dir, result_dir, report_dir, models_dir = (out / name for name in DEMO_PARTS[:4])
    stages = _Stages(progress)

    def phantom_stage(progress):
        phantom = make_phantom(seed, variant=variant, sequences=DEMO_SEQUENCES, progress=progress)
        write_phantom(phantom, phantom_dir)
        return phantom

    def segment_stage(progress):
        files = [phantom_dir / f"{sequence}.nii.gz" for sequence in DEMO_SEQUENCES]
        result = segment([read_image(path) for path in files], list(DEMO_SEQUENCES), progress=progress)
        write_result(result, result_dir, input_files=files)
        return result.warnings

    phantom = stages.run("phantom", phantom_stage)
    warnings = list(stages.run("segment", segment_stage))
    measurements = stages.run("measure", measure_result_dir, result_dir)
    if not measurements.get("couinaud_file"):  # the reader's way out: place the landmarks by hand
        warnings.append(f"automatic Couinaud segments: {measurements.get('couinaud_method')}; the demo placed "
                        "the landmarks from the phantom's anatomy instead (result/landmarks.json)")
        landmarks = phantom_landmarks(phantom)
        write_json(result_dir / "landmarks.json", landmarks.to_dict())
        measurements = stages.run("measure", measure_result_dir, result_dir, landmarks=landmarks)
    plan, plan_skipped = None, None
    if measurements.get("couinaud_file"):
        plan = stages.run("plan", plan_result_dir, result_dir, segments=DEMO_SEGMENTS)
    else:
        plan_skipped = f"no Couinaud segments ({measurements.get('couinaud_method')})"
        warnings.append(f"the plan was left out: {plan_skipped}")
    files = stages.run("report", build_report, result_dir, report_dir)
    stages.run("models", export_models, result_dir, models_dir)
    summary = DemoSummary(
        out_dir=out, seed=int(seed), variant=variant, sequences=DEMO_SEQUENCES,
        files={"phantom": phantom_dir, "truth": phantom_dir / "truth", "result": result_dir,
               "report": files.html, "models": models_dir, "summary": out / SUMMARY_FILE},
        comparison=compare_with_truth(result_dir, phantom_dir / "truth"),
        plan=None if plan is None else {key: value for key, value in plan.items() if key != "lesions"},
        plan_skipped=plan_skipped, timings_s=stages.timings_s, warnings=warnings)
    write_json(out / SUMMARY_FILE, summary.to_dict())
    report(progress, 1.0, "demo done")
    return summary
