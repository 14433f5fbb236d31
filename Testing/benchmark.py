"""Time and peak memory of the LiverMets stages, each stage in a fresh Python process.

Usage: ``python Testing/benchmark.py [--quick] [--only NAME[,NAME]]`` (inside the test venv).

Prints one line per figure, ``figure_name: value`` (seconds ``*_s``, megabytes ``*_peak_mb``), on
standard output; notes and progress go to standard error. A stage whose module is not installed
prints ``NAME: unavailable (module X missing)``; a Slicer stage without slicer-core prints
``NAME: skipped (reason)``; a stage that raises prints ``NAME: failed (error)``.

Method
------
* Inputs (phantom images and result folders) are made once per run by separate processes in a
  temporary folder and are not timed.
* Each measured run is a new process: ``*_s`` is ``time.perf_counter`` around the work only (imports,
  reading the inputs and building a scene are outside), ``*_peak_mb`` that process's
  ``ru_maxrss`` (whole process, so it includes the interpreter, imports and the inputs read).
* A stage is run 3 times and the median time reported when its first run took under 30 s (so
  ``segment_mri``, whose target is 15 s, is a median even on a machine twice too slow); longer
  stages are run once. Peak memory is the largest of the runs. ``--quick`` runs each stage once on
  smaller inputs (a smoke run; its figures are not comparable with a full run).
* SimpleITK, OpenMP and OpenBLAS are limited to 2 threads; with ``threadpoolctl`` installed (the test
  environment has it) BLAS runs on one thread while the detectors run (the first note line says
  which). On a machine shared with other work the figures are pessimistic (wall-clock time);
  compare runs made under the same load.
* ``import_core_s`` (numpy, SimpleITK and the core modules) and ``import_slicer_s`` (slicer-core, the
  headless scene with its module logics, LiverMetsLib) are the wall time of a new interpreter doing
  only that: the start-up costs left out of the stage times.

Stages and inputs: ``phantom_*`` build the phantom (all six sequences for small / standard, CT
only on the 150 x 512 x 512 grid); ``segment_mri`` / ``segment_mri_100`` segment the hepatobiliary
phantom image on 40 / 100 slices of 256 x 256, ``segment_ct`` the 150 x 512 x 512 CT;
``seeded_lesion`` segments the largest lesion from a click at its centre on the 100-slice image;
``measure_10_lesions`` measures the standard phantom's truth with 14 mm lesions added up to 10
(Couinaud landmarks found automatically, as ``livermets measure`` does); ``plan_update`` is the
median time of moving a resection plane 5 times (``PlaneResection.update``) on that case,
``plan_setup_s`` building it once; ``report`` writes the HTML report with key images and 3D views
of that case. The Slicer stages (headless slicer-core) put the 100-slice case into a scene, add a
lesion by a click, and render the 3D view to a PNG; ``robot_clicks_median`` is the median number
of clicks per lesion of ``Testing/robot_user.py`` (its default cases).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
THREADS = 2
REPEAT_BELOW_S = 30.0
REPEATS = 3
TIMEOUT_S = 3600
LESION_COUNT = 10  # lesions of the measure / plan / report case

# input name -> (full size, quick size); sizes are shape_kji, or a phantom variant for result folders
INPUT_SIZES = {
    "mri_40": ((40, 256, 256), (20, 128, 128)),
    "mri_100": ((100, 256, 256), (40, 128, 128)),
    "ct_150": ((150, 512, 512), (40, 256, 256)),
    "result_10": ("standard", "small"),
}


# --- inputs (made in their own processes, not timed) --------------------------------------------
def prepare_phantom_image(out: Path, shape_kji, sequence: str) -> None:
    from livermets.phantom import make_phantom, write_phantom

    write_phantom(make_phantom(0, shape_kji=shape_kji, sequences=(sequence,)), out)


def _ball(geometry, center_kji, radius_mm: float):
    import numpy as np

    grids = np.meshgrid(*(np.arange(n) for n in geometry.shape), indexing="ij")
    squared = sum(((grid - c) * s) ** 2 for grid, c, s in zip(grids, center_kji, geometry.spacing_mm))
    return squared <= radius_mm ** 2


def prepare_result_10(out: Path, variant: str) -> None:
    """A result folder from the phantom truth (seed 0: 8 lesions) plus 14 mm lesions placed where the
    parenchyma is deepest, 10 lesions in all, with the hepatobiliary image and lesions.json."""
    import numpy as np
    import SimpleITK as sitk
    from livermets.demo import phantom_landmarks
    from livermets.imageio import read_image, write_label
    from livermets.phantom import make_phantom, write_phantom

    phantom_dir, result = out / "phantom", out / "result"
    phantom = make_phantom(0, variant=variant, sequences=("hbp",))
    write_phantom(phantom, phantom_dir)
    truth = phantom_dir / "truth"
    geometry = read_image(truth / "labels.nii.gz").geometry
    labels = read_image(truth / "labels.nii.gz").array.astype(np.uint8)
    lesions = read_image(truth / "lesions.nii.gz").array.astype(np.uint16)
    anatomy = read_image(truth / "anatomy.nii.gz").array.astype(np.uint8)
    liver = read_image(truth / "liver.nii.gz").array > 0
    free = (labels == 1) & liver
    for lesion_id in range(int(lesions.max()) + 1, LESION_COUNT + 1):
        image = sitk.GetImageFromArray(free.astype(np.uint8))
        image.SetSpacing(geometry.spacing_ijk_mm)
        depth = sitk.GetArrayFromImage(sitk.SignedMaurerDistanceMap(image, insideIsPositive=True,
                                                                    useImageSpacing=True))
        center = np.unravel_index(int(np.argmax(np.where(free, depth, -np.inf))), geometry.shape)
        ball = _ball(geometry, center, 7.0) & liver
        labels[ball], lesions[ball], anatomy[ball] = 2, lesion_id, 2
        free &= ~_ball(geometry, center, 30.0)
    result.mkdir(parents=True)
    for name, array in (("liver", liver.astype(np.uint8)), ("labels", labels), ("lesions", lesions),
                        ("anatomy", anatomy)):
        write_label(array, geometry, result / f"{name}.nii.gz")
    shutil.copy(phantom_dir / "hbp.nii.gz", result / "hbp.nii.gz")
    (result / "landmarks.json").write_text(json.dumps(phantom_landmarks(phantom).to_dict()))
    entries = [{"id": int(v)} for v in np.unique(lesions) if v]
    (result / "lesions.json").write_text(json.dumps({"sequences": {"hbp": "hbp.nii.gz"}, "lesions": entries}))


def prepare_result_10_measured(out: Path, source: Path) -> None:
    """``result_10`` with measurements.json and couinaud.nii.gz (``livermets measure``; with the
    phantom's landmarks when the automatic ones are not found)."""
    from livermets.commands.measure import load_landmarks
    from livermets.measure import measure_result_dir

    folder = out / "result"
    shutil.copytree(source / "result", folder)
    if not measure_result_dir(folder).get("couinaud_file"):
        measure_result_dir(folder, landmarks=load_landmarks(folder / "landmarks.json"))


# --- stages: setup (untimed) returns the work to time ---------------------------------------------
class Figures(dict):
    """Returned by a stage's work to report its own figures: ``seconds`` / ``peak_mb`` replace the
    measured ones, other keys are printed as they are."""


def _read_case(folder: Path, sequence: str):
    from livermets.imageio import read_image

    return read_image(folder / f"{sequence}.nii.gz")


def stage_phantom(variant: Optional[str], shape_kji, sequences):
    from livermets.phantom import PHANTOM_SEQUENCES, make_phantom

    chosen = sequences or PHANTOM_SEQUENCES
    return lambda: make_phantom(0, variant=variant or "standard", shape_kji=shape_kji, sequences=chosen)


def stage_segment(folder: Path, sequence: str):
    from livermets.segmentation.pipeline import segment

    volume = _read_case(folder, sequence)
    return lambda: segment({sequence: volume}, [sequence])


def _largest_lesion_center_kji(folder: Path, geometry):
    import numpy as np

    legend = json.loads((folder / "truth" / "legend.json").read_text(encoding="utf-8"))
    largest = max(legend["lesions"], key=lambda lesion: lesion["voxel_count"])
    return tuple(int(v) for v in np.rint(geometry.ras_to_kji(np.asarray(largest["centroid_ras_mm"]))))


def stage_seeded(folder: Path):
    from livermets.imageio import read_image
    from livermets.segmentation.seeded import segment_lesion_from_seed

    volume = _read_case(folder, "hbp")
    liver = read_image(folder / "truth" / "liver.nii.gz").array > 0
    seed = _largest_lesion_center_kji(folder, volume.geometry)
    return lambda: segment_lesion_from_seed(volume.array, volume.geometry, seed, sequence="hbp", liver=liver)


def _fresh_copy(folder: Path) -> Path:
    copy = Path(tempfile.mkdtemp(prefix="livermets-bench-")) / folder.name
    shutil.copytree(folder, copy)
    return copy


def stage_measure(folder: Path):
    from livermets.measure import measure_result_dir

    copy = _fresh_copy(folder / "result")
    return lambda: measure_result_dir(copy)


def stage_plan_update(folder: Path):
    import numpy as np
    from livermets.measure.io import read_result_dir
    from livermets.planning.resection import PlaneResection, ResectionModel

    arrays = read_result_dir(folder / "result", with_couinaud=True)

    def work() -> dict:
        started = time.perf_counter()
        planner = PlaneResection(ResectionModel(arrays.liver, arrays.lesions, arrays.labels, arrays.geometry,
                                                couinaud=arrays.couinaud, ivc=arrays.ivc))
        setup_s = time.perf_counter() - started
        centre = arrays.geometry.kji_to_ras(np.argwhere(arrays.liver).mean(axis=0))
        times = []
        for shift_mm in (-20.0, -10.0, 0.0, 10.0, 20.0):  # a plane dragged from left to right
            started = time.perf_counter()
            planner.update(centre + [shift_mm, 0.0, 0.0], [1.0, 0.0, 0.0])
            times.append(time.perf_counter() - started)
        return Figures(seconds=statistics.median(times), plan_setup_s=setup_s)
    return work


def stage_report(folder: Path):
    from livermets.report.build import build_report

    copy = _fresh_copy(folder / "result")
    return lambda: build_report(copy, copy / "report", pictures=True)


class _SlicerCase:
    """The 100-slice case in a headless Slicer scene (setup of the Slicer stages)."""

    def __init__(self, folder: Path, populate: bool) -> None:
        sys.path[:0] = [str(HERE / "slicer"), str(REPO / "LiverMetsModule")]
        import numpy as np
        from headless import createHeadlessSlicer
        from livermets.imageio import read_image
        from LiverMetsLib.logic import LiverMetsLogic

        self.headless = createHeadlessSlicer()
        self.logic = LiverMetsLogic(self.headless.scene)
        self.volume = _read_case(folder, "hbp")
        labels = read_image(folder / "truth" / "labels.nii.gz").array
        self.arrays = {"liver": read_image(folder / "truth" / "liver.nii.gz").array > 0,
                       "lesions": read_image(folder / "truth" / "lesions.nii.gz").array,
                       "portal": labels == 3, "hepatic": labels == 4}
        seedKji = _largest_lesion_center_kji(folder, self.volume.geometry)
        self.seedRas = self.volume.geometry.kji_to_ras(np.asarray(seedKji, dtype=float))
        self.largestLesion = int(self.arrays["lesions"][seedKji])
        self.nodes = self.populate() if populate else None

    def populate(self, missing: int = 0):
        """Put the truth into the scene; lesion number ``missing`` left out (a lesion the detector missed)."""
        lesions = self.arrays["lesions"]
        if missing:
            lesions = lesions.copy()
            lesions[lesions == missing] = 0
            lesions[lesions > missing] -= 1
        arrays = dict(self.arrays, lesions=lesions)
        return self.logic.populateScene(self.volume.geometry, image=self.volume.array, sequence="hbp", **arrays)


def stage_populate(folder: Path):
    case = _SlicerCase(folder, populate=False)
    return case.populate


def stage_click(folder: Path):
    """The missed largest lesion added with one click to a study holding all the others."""
    case = _SlicerCase(folder, populate=False)
    nodes = case.populate(missing=case.largestLesion)
    return lambda: case.logic.addLesionFromPoint(nodes.segmentationNode, case.seedRas)


def stage_snapshot(folder: Path):
    from LiverMetsLib import rendering, snapshots

    case = _SlicerCase(folder, populate=True)
    rendering.applyStructureDisplay(case.nodes.segmentationNode)
    out = Path(tempfile.mkdtemp(prefix="livermets-bench-")) / "anterior.png"
    return lambda: snapshots.snapshot3D(case.nodes.segmentationNode, out,
                                        applicationLogic=case.headless.applicationLogic)


def _fresh_interpreter(code: str) -> Figures:
    """Wall time and peak memory of a new Python process running ``code`` (start-up costs)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(HERE))
    return Figures(seconds=time.perf_counter() - started,
                   peak_mb=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0)


def stage_import_core():
    code = ("import sys; sys.path.insert(0, '../LiverMetsModule'); import numpy, SimpleITK, livermets.measure, "
            "livermets.phantom, livermets.planning, livermets.report.build, livermets.segmentation.pipeline")
    return lambda: _fresh_interpreter(code)


def stage_import_slicer():
    code = ("import sys; sys.path[:0] = ['slicer', '../LiverMetsModule']; from headless import createHeadlessSlicer; "
            "import LiverMetsLib.logic; createHeadlessSlicer()")
    return lambda: _fresh_interpreter(code)


def stage_robot(quick: bool):
    """Median clicks per lesion of ``Testing/robot_user.py`` (its defaults; quick: one phantom only)."""
    sys.path.insert(0, str(HERE))
    import robot_user

    out = Path(tempfile.mkdtemp(prefix="livermets-bench-")) / "robot.json"
    arguments = (["--phantoms", "1", "--chaos", "0"] if quick else []) + ["--json", str(out)]

    def work() -> Figures:
        if robot_user.main(arguments) != 0:
            raise RuntimeError("the robot user found no lesion to click")
        summary = json.loads(out.read_text(encoding="utf-8"))["summary"]
        return Figures(robot_clicks_median=summary["median_clicks"], robot_lesions=summary["lesions"])
    return work


@dataclass(frozen=True)
class Stage:
    name: str
    setup: Callable           # (inputs dict name -> folder, quick) -> work callable
    inputs: tuple = ()
    slicer: bool = False
    times: bool = True        # False: the stage reports a count, not a time


def _size(name: str, quick: bool):
    return INPUT_SIZES[name][1 if quick else 0]


STAGES = [
    Stage("import_core", lambda f, q: stage_import_core()),
    Stage("phantom_small", lambda f, q: stage_phantom("small", None, None)),
    Stage("phantom_standard", lambda f, q: stage_phantom("small" if q else "standard", None, None)),
    Stage("phantom_ct_512", lambda f, q: stage_phantom(None, _size("ct_150", q), ("ct",))),
    Stage("segment_mri", lambda f, q: stage_segment(f["mri_40"], "hbp"), ("mri_40",)),
    Stage("segment_mri_100", lambda f, q: stage_segment(f["mri_100"], "hbp"), ("mri_100",)),
    Stage("segment_ct", lambda f, q: stage_segment(f["ct_150"], "ct"), ("ct_150",)),
    Stage("seeded_lesion", lambda f, q: stage_seeded(f["mri_100"]), ("mri_100",)),
    Stage("measure_10_lesions", lambda f, q: stage_measure(f["result_10"]), ("result_10",)),
    Stage("plan_update", lambda f, q: stage_plan_update(f["result_10_measured"]), ("result_10_measured",)),
    Stage("report", lambda f, q: stage_report(f["result_10_measured"]), ("result_10_measured",)),
    Stage("import_slicer", lambda f, q: stage_import_slicer(), (), slicer=True),
    Stage("populate_scene", lambda f, q: stage_populate(f["mri_100"]), ("mri_100",), slicer=True),
    Stage("click_to_lesion", lambda f, q: stage_click(f["mri_100"]), ("mri_100",), slicer=True),
    Stage("snapshot_3d", lambda f, q: stage_snapshot(f["mri_100"]), ("mri_100",), slicer=True),
    Stage("robot_clicks_median", lambda f, q: stage_robot(q), (), slicer=True, times=False),
]
PREPARED = {  # input name -> (inputs it needs, maker(out, inputs, quick))
    "mri_40": ((), lambda out, f, q: prepare_phantom_image(out, _size("mri_40", q), "hbp")),
    "mri_100": ((), lambda out, f, q: prepare_phantom_image(out, _size("mri_100", q), "hbp")),
    "ct_150": ((), lambda out, f, q: prepare_phantom_image(out, _size("ct_150", q), "ct")),
    "result_10": ((), lambda out, f, q: prepare_result_10(out, _size("result_10", q))),
    "result_10_measured": (("result_10",), lambda out, f, q: prepare_result_10_measured(out, f["result_10"])),
}


# --- the child process ------------------------------------------------------------------------------
def _limit_threads() -> None:
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(THREADS)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kilobytes


def _missing(error: ModuleNotFoundError) -> dict:
    return {"unavailable": f"module {error.name} missing"}


def child_main(args: argparse.Namespace) -> int:
    """Run one stage (or make one input) and print one JSON line."""
    sys.path.insert(0, str(REPO / "LiverMetsModule"))
    _limit_threads()
    inputs = {name: Path(path) for name, path in (json.loads(args.inputs) if args.inputs else {}).items()}
    try:
        if args.prepare:
            _, maker = PREPARED[args.prepare]
            maker(Path(args.out), inputs, args.quick)
            outcome = {"done": True}
        else:
            stage = next(s for s in STAGES if s.name == args.stage)
            work = stage.setup(inputs, args.quick)
            started = time.perf_counter()
            returned = work()
            seconds = time.perf_counter() - started
            extra = dict(returned) if isinstance(returned, Figures) else {}
            outcome = {"seconds": extra.pop("seconds", seconds), "peak_mb": extra.pop("peak_mb", _peak_mb()),
                       "extra": extra}
    except ModuleNotFoundError as error:
        outcome = _missing(error)
    except Exception as error:  # reported as "failed (...)" by the parent, the run goes on
        outcome = {"failed": f"{type(error).__name__}: {error}"}
    print("BENCHMARK " + json.dumps(outcome), flush=True)
    return 0


# --- the parent -----------------------------------------------------------------------------------
def _child(arguments: list, quick: bool, inputs: dict) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(THREADS), OPENBLAS_NUM_THREADS=str(THREADS),
               MKL_NUM_THREADS=str(THREADS), ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS=str(THREADS))
    env.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkOSOpenGLRenderWindow")
    command = [sys.executable, str(Path(__file__).resolve()), "--child", *arguments,
               "--inputs", json.dumps({k: str(v) for k, v in inputs.items()})] + (["--quick"] if quick else [])
    completed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=TIMEOUT_S, check=False)
    for line in reversed(completed.stdout.splitlines()):
        if line.startswith("BENCHMARK "):
            return json.loads(line[len("BENCHMARK "):])
    tail = (completed.stderr.strip().splitlines() or ["no output"])[-1]
    return {"failed": f"process exited with code {completed.returncode}: {tail}"}


def _note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _slicer_reason() -> Optional[str]:
    code = "import slicer"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if completed.returncode == 0:
        return None
    return f"slicer-core does not import: {(completed.stderr.strip().splitlines() or ['?'])[-1]}"


def _robot_reason() -> Optional[str]:
    path = HERE / "robot_user.py"
    if not path.is_file():
        return "Testing/robot_user.py not present"
    if "median_clicks" not in path.read_text(encoding="utf-8"):
        return "Testing/robot_user.py reports no median_clicks"
    return None


class Inputs:
    """Prepared inputs in a temporary folder, made on first use (and their failures remembered)."""

    def __init__(self, root: Path, quick: bool) -> None:
        self.root, self.quick = root, quick
        self.made: dict[str, Path] = {}
        self.problems: dict[str, str] = {}

    def get(self, name: str) -> tuple[Optional[Path], Optional[dict]]:
        if name in self.made:
            return self.made[name], None
        if name in self.problems:
            return None, self.problems[name]
        needs, _ = PREPARED[name]
        inputs = {}
        for need in needs:
            path, problem = self.get(need)
            if problem:
                self.problems[name] = problem
                return None, problem
            inputs[need] = path
        _note(f"# preparing input {name}")
        out = self.root / name
        outcome = _child(["--prepare", name, "--out", str(out)], self.quick, inputs)
        if "done" not in outcome:
            self.problems[name] = {key: f"input {name}: {value}" if key == "failed" else value
                                   for key, value in outcome.items()}
            return None, self.problems[name]
        self.made[name] = out
        return out, None


def _format(value: float, unit: str) -> str:
    return f"{value:.0f}" if unit == "mb" else f"{value:.3f}"


def run_stage(stage: Stage, inputs: Inputs, quick: bool) -> list:
    """Figure lines of one stage."""
    folders = {}
    for name in stage.inputs:
        path, problem = inputs.get(name)
        if problem:
            return [f"{stage.name}: {_status(problem)}"]
        folders[name] = path
    runs = []
    while True:
        _note(f"# running {stage.name} ({len(runs) + 1})")
        outcome = _child(["--stage", stage.name], quick, folders)
        if "seconds" not in outcome:
            return [f"{stage.name}: {_status(outcome)}"]
        runs.append(outcome)
        if quick or len(runs) >= REPEATS or runs[0]["seconds"] >= REPEAT_BELOW_S or not stage.times:
            break
    lines = []
    if stage.times:
        lines.append(f"{stage.name}_s: {_format(statistics.median(r['seconds'] for r in runs), 's')}")
        lines.append(f"{stage.name}_peak_mb: {_format(max(r['peak_mb'] for r in runs), 'mb')}")
    for key in runs[0]["extra"]:
        value = statistics.median(r["extra"][key] for r in runs)
        lines.append(f"{key}: {_format(value, 's') if key.endswith('_s') else f'{value:g}'}")
    return lines


def _status(outcome: dict) -> str:
    for key in ("unavailable", "skipped", "failed"):
        if key in outcome:
            return f"{key} ({outcome[key]})"
    return f"failed ({outcome})"


def parent_main(args: argparse.Namespace) -> int:
    chosen = STAGES
    if args.only:
        names = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = sorted(set(names) - {stage.name for stage in STAGES})
        if unknown:
            print(f"benchmark: unknown stage(s) {', '.join(unknown)}; stages: "
                  f"{', '.join(stage.name for stage in STAGES)}", file=sys.stderr)
            return 2
        chosen = [stage for stage in STAGES if stage.name in names]
    slicer_reason = _slicer_reason() if any(stage.slicer for stage in chosen) else None
    blas = "one BLAS thread in the detectors" if importlib.util.find_spec("threadpoolctl") else \
        "BLAS threads not limited (threadpoolctl missing)"
    _note(f"# LiverMets benchmark{' (quick: smaller inputs, one run each)' if args.quick else ''}; "
          f"{THREADS} threads; {blas}; {os.cpu_count()} CPUs; Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="livermets-benchmark-") as root:
        os.environ["TMPDIR"] = root  # the stage processes' scratch files go where they are removed
        inputs = Inputs(Path(root), args.quick)
        for stage in chosen:
            reason = slicer_reason if stage.slicer else None
            if stage.name == "robot_clicks_median":
                reason = reason or _robot_reason()
            lines = [f"{stage.name}: skipped ({reason})"] if reason else run_stage(stage, inputs, args.quick)
            for line in lines:
                print(line, flush=True)
    return 0


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller inputs, one run per stage (smoke run)")
    parser.add_argument("--only", metavar="NAME[,NAME]", help="run only these stages")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--prepare", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--inputs", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    return child_main(args) if args.child else parent_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
