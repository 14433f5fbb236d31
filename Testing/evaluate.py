"""Evaluate automatic liver segmentation (and, via hooks, lesions and vessels) on real and synthetic data.

Usage (from the repository root)::

    python Testing/evaluate.py [--data DIR] [--only chaos,phantom,totalseg,pipeline,robustness]
                               [--seeds 0 1] [--variants small thick]
                               [--liver-method combined|network|intensity] [--liver-folds DIR]

* ``chaos``: CHAOS T2-SPIR MRI with manual liver labels (Kavur et al., Med Image Anal 2021,
  doi:10.1016/j.media.2020.101950): liver Dice, volume error, voxels leaked into kidneys (2, 3)
  and spleen (4), run time. Targets: Dice median >= 0.95, none < 0.90; |volume error| median <= 4 %.
  The shipped liver network was trained on these cases: held-out figures need ``--liver-folds DIR``,
  a folder of cross-validation models (``Testing/train_liver_net.py --holdout ...``, one sub-folder
  each with ``liver_net.npz`` and ``liver_net.json``); each case is then segmented by the model
  that never saw it. Without it the lines of the cases the shipped network was trained on (its model
  card's ``training_cases``) are marked "seen in training". ``--data`` may be any folder laid out the
  same way, for example the other CHAOS MR cases laid out by ``Testing/import_chaos_t2.py``.
* ``robustness`` (not run by default): each CHAOS image as another scanner or export could give
  it -- stored as floats 0-1 or with an offset, with its rows reversed or its axes in coronal
  order (the same physical image), with 15 % noise, a +-30 % bias field, 2.5 mm pixels, or the
  liver's upper quarter outside the field of view -- liver Dice against the manual label, and
  its change from the unperturbed image (``dice_change``; the same network for both, so
  ``--liver-folds`` applies).
* ``phantom``: every sequence of the LiverMets phantom (seeds x variants), liver vs truth.
* ``totalseg``: the TotalSegmentator example MR / CT (labels made by that model, liver = 5),
  as smoke tests of agreement.
* ``pipeline``: the whole ``segment`` on the phantom (all sequences), with the lesion / vessel
  figures of ``lesion_metrics`` when that module is present (the phantom's cyst is a true
  lesion: finding it is not a false positive).

The data folder defaults to ``../shared/data`` beside the checkout (or ``LIVERMETS_DATA``).
Prints one line per case and a summary per group.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "LiverMetsModule"))
sys.path.insert(0, str(REPO / "Testing"))

from livermets.errors import LiverMetsError  # noqa: E402
from livermets.geometry import Geometry  # noqa: E402
from livermets.segmentation.liver import LIVER_METHODS  # noqa: E402


# --- metrics: each takes truth and prediction arrays [k, j, i] and the geometry ---------------------
def dice(truth: np.ndarray, prediction: np.ndarray, geometry: Optional[Geometry] = None) -> float:
    """Sørensen-Dice overlap of two masks (1 when both are empty)."""
    truth, prediction = np.asarray(truth, dtype=bool), np.asarray(prediction, dtype=bool)
    total = int(truth.sum()) + int(prediction.sum())
    return 1.0 if total == 0 else 2.0 * float(np.count_nonzero(truth & prediction)) / total


def volume_error_percent(
    truth: np.ndarray, prediction: np.ndarray, geometry: Optional[Geometry] = None
) -> float:
    """(predicted - true) / true volume, percent."""
    true_voxels = max(int(np.count_nonzero(truth)), 1)
    return 100.0 * (int(np.count_nonzero(prediction)) - true_voxels) / true_voxels


def leak_ml(prediction: np.ndarray, neighbour: np.ndarray, geometry: Geometry) -> float:
    """Volume (ml) of ``prediction`` inside a neighbouring organ's mask."""
    return (
        float(np.count_nonzero(np.asarray(prediction, bool) & np.asarray(neighbour, bool)))
        * geometry.voxel_volume_ml
    )


def lesion_vessel_metrics() -> dict[str, Callable]:
    """Hooks for the lesion / vessel figures (``Testing/lesion_metrics.py`` when present).

    Each value is ``f(truth, prediction, geometry) -> float``; ``false_positives`` also takes
    ``ignore=`` (a mask of true non-metastatic lesions such as cysts: found there is not false).
    """
    try:
        import lesion_metrics as lm
    except ImportError:
        return {}
    return {
        "lesion_sensitivity": lambda t, p, g: lm.lesion_sensitivity(t, p, g),
        "lesion_sensitivity_10mm": lambda t, p, g: lm.lesion_sensitivity(t, p, g, min_diameter_mm=10.0),
        "false_positives": lambda t, p, g, ignore=None: lm.false_positives(t, p, g, ignore=ignore),
        "lesion_dice": lambda t, p, g: lm.lesion_dice(t, p, g),
        "vessel_dice": lambda t, p, g: lm.vessel_dice(t, p, g),
    }


# --- groups -------------------------------------------------------------------------------------------
def _read(path: Path):
    from livermets.imageio import read_image

    return read_image(path)


def _row(
    group: str,
    name: str,
    truth: np.ndarray,
    mask: np.ndarray,
    geometry: Geometry,
    seconds: float,
    extra: str = "",
) -> dict:
    row = {
        "group": group,
        "case": name,
        "dice": dice(truth, mask),
        "volume_error_percent": volume_error_percent(truth, mask),
        "seconds": seconds,
    }
    print(
        f"{group:9s} {name:28s} dice {row['dice']:.3f}  volume {row['volume_error_percent']:+6.1f} %  "
        f"{seconds:5.1f} s {extra}",
        flush=True,
    )
    return row


def _failed(group: str, name: str, error: Exception) -> dict:
    print(f"{group:9s} {name:28s} FAILED: {error}", flush=True)
    return {"group": group, "case": name, "dice": 0.0, "volume_error_percent": -100.0, "seconds": 0.0}


def fold_weights(folder: Path) -> dict[str, Path]:
    """CHAOS case name -> weights (``liver_net.npz``) of the cross-validation network that held it
    out, from each ``folder/*/liver_net.json``."""
    import json

    weights = {}
    for card_path in sorted(Path(folder).glob("*/liver_net.json")):
        held_out = json.loads(card_path.read_text(encoding="utf-8"))["held_out"]
        weights.update({name: card_path.with_suffix(".npz") for name in held_out})
    if not weights:
        raise SystemExit(f"no cross-validation models (*/liver_net.json) found in {folder}")
    return weights


def fold_networks(folder: Optional[Path]) -> dict:
    """Case name -> the cross-validation network that held it out (each file loaded once)."""
    from livermets.segmentation.liver_net import LiverNet

    if folder is None:
        return {}
    weights = fold_weights(folder)
    loaded = {path: LiverNet.load(path) for path in set(weights.values())}
    return {name: loaded[path] for name, path in weights.items()}


def _chaos_cases(data: Path):
    """(case name, image, label array) of each CHAOS case in ``data``/chaos_t2."""
    for image_path in sorted((data / "chaos_t2").glob("chaos*_t2spir.nii.gz")):
        name = image_path.name.split("_")[0]
        yield name, _read(image_path), _read(image_path.with_name(f"{name}_labels.nii.gz")).array


def chaos(data: Path, method: str, folds: dict) -> list[dict]:
    from livermets.segmentation.liver import segment_liver
    from livermets.segmentation.liver_net import model_card

    trained_on = set(model_card()["training_cases"])
    rows = []
    for name, image, labels in _chaos_cases(data):
        network = folds.get(name)
        seen = method != "intensity" and network is None and name in trained_on
        started = time.monotonic()
        try:
            mask = segment_liver(image.array, image.geometry, sequence="t2", method=method, network=network).mask
        except LiverMetsError as error:
            rows.append(_failed("chaos", name, error))
            continue
        seconds = time.monotonic() - started
        leaks = {
            organ: leak_ml(mask, labels == value, image.geometry)
            for organ, value in (("kidneys", 2), ("kidneys", 3), ("spleen", 4))
        }
        leaks["kidneys"] = leak_ml(mask, (labels == 2) | (labels == 3), image.geometry)
        rows.append(
            _row(
                "chaos",
                name,
                labels == 1,
                mask,
                image.geometry,
                seconds,
                f"leak kidneys {leaks['kidneys']:.1f} ml spleen {leaks['spleen']:.1f} ml"
                + ("  (seen in training)" if seen else ""),
            )
        )
    return rows


def robustness(data: Path, method: str, folds: dict) -> list[dict]:
    from livermets.segmentation.liver import segment_liver

    rows = []
    for name, image, labels in _chaos_cases(data):
        reference = None
        for variant, array, truth, geometry in _as_other_scanners(image.array.astype(np.float32), labels == 1,
                                                                   image.geometry, np.random.default_rng(0)):
            started = time.monotonic()
            try:
                mask = segment_liver(array, geometry, sequence="t2", method=method, network=folds.get(name)).mask
            except LiverMetsError as error:
                rows.append(_failed(f"robust/{variant}", name, error))
                continue
            row = _row(f"robust/{variant}", name, truth, mask, geometry, time.monotonic() - started)
            if variant == "as-given":
                reference = row["dice"]
            if reference is not None:
                row["dice_change"] = row["dice"] - reference
            rows.append(row)
    return rows


def _as_other_scanners(image: np.ndarray, liver: np.ndarray, geometry: Geometry, rng: np.random.Generator):
    """(variant, image, liver truth, geometry): the image as given, then as other scanners or
    exports could give it (see the module docstring)."""
    import SimpleITK as sitk

    yield "as-given", image, liver, geometry
    yield "floats-0-1", image / float(image.max()), liver, geometry
    yield "offset", image + 500.0, liver, geometry
    direction = geometry.direction_matrix_lps
    last_column_lps = np.asarray(geometry.origin_lps_mm) + direction[:, 0] * geometry.spacing_ijk_mm[0] * (
        geometry.shape[2] - 1)
    flipped = direction * [-1.0, 1.0, 1.0]
    yield "rows-reversed", image[:, :, ::-1].copy(), liver[:, :, ::-1].copy(), Geometry(
        geometry.shape, geometry.spacing_ijk_mm, tuple(last_column_lps), tuple(flipped.ravel()))
    spacing = geometry.spacing_ijk_mm
    yield "coronal-order", np.ascontiguousarray(image.transpose(1, 0, 2)), np.ascontiguousarray(
        liver.transpose(1, 0, 2)), Geometry((geometry.shape[1], geometry.shape[0], geometry.shape[2]),
                                            (spacing[0], spacing[2], spacing[1]), geometry.origin_lps_mm,
                                            tuple(direction[:, [0, 2, 1]].ravel()))
    level = float(np.median(image[liver]))
    yield "noise-15%", image + rng.normal(0.0, 0.15 * level, image.shape).astype(np.float32), liver, geometry
    _, j, i = np.meshgrid(*[np.linspace(-1.0, 1.0, n, dtype=np.float32) for n in image.shape], indexing="ij")
    yield "bias-30%", image * (1.0 + 0.3 * (0.6 * i + 0.4 * j)), liver, geometry
    source = sitk.GetImageFromArray(image)
    geometry.apply_to_sitk(source)
    coarse = [2.5, 2.5, spacing[2]]
    grid = sitk.Image([round(n * s / c) for n, s, c in zip(source.GetSize(), spacing, coarse)], sitk.sitkFloat32)
    grid.SetSpacing(coarse)
    grid.SetOrigin(source.GetOrigin())
    grid.SetDirection(source.GetDirection())
    truth = sitk.GetImageFromArray(liver.astype(np.uint8))
    geometry.apply_to_sitk(truth)
    yield "pixels-2.5mm", sitk.GetArrayFromImage(sitk.Resample(source, grid, sitk.Transform(), sitk.sitkLinear)), \
        sitk.GetArrayFromImage(sitk.Resample(truth, grid, sitk.Transform(), sitk.sitkNearestNeighbor)) > 0, \
        Geometry.from_sitk(grid)
    # the liver's upper quarter beyond the field of view (slices kept from the feet up)
    slices = np.nonzero(liver.any(axis=(1, 2)))[0]
    superior = geometry.kji_to_ras(np.array([1.0, 0.0, 0.0]))[2] > geometry.kji_to_ras(np.zeros(3))[2]
    cut = len(slices) // 4
    keep = slice(0, slices.max() + 1 - cut) if superior else slice(slices.min() + cut, geometry.shape[0])
    first = keep.start
    origin_lps = np.asarray(geometry.origin_lps_mm) + direction[:, 2] * spacing[2] * first
    yield "dome-cut", image[keep], liver[keep], Geometry(image[keep].shape, spacing, tuple(origin_lps),
                                                        geometry.direction_lps)


def phantoms(seeds: list[int], variants: list[str], method: str) -> list[dict]:
    from livermets.phantom import make_phantom
    from livermets.segmentation.liver import segment_liver

    rows = []
    for variant in variants:
        for seed in seeds:
            phantom = make_phantom(seed, variant=variant)
            truth = np.asarray(phantom.liver) > 0
            for sequence, image in phantom.images.items():
                name = f"{variant}/seed{seed}/{sequence}"
                started = time.monotonic()
                try:
                    mask = segment_liver(image, phantom.geometry, sequence=sequence, method=method).mask
                except LiverMetsError as error:
                    rows.append(_failed("phantom", name, error))
                    continue
                rows.append(_row("phantom", name, truth, mask, phantom.geometry, time.monotonic() - started))
    return rows


def totalseg(data: Path, method: str) -> list[dict]:
    from livermets.segmentation.liver import segment_liver

    rows = []
    for folder, image_name, label_name, sequence in (
        ("totalseg_mr", "example_mr_sm", "example_seg_mr", None),
        ("totalseg_ct", "example_ct_sm", "example_seg", "ct"),
    ):
        image = _read(data / folder / f"{image_name}.nii.gz")
        labels = _read(data / folder / f"{label_name}.nii.gz").array
        started = time.monotonic()
        try:
            mask = segment_liver(image.array, image.geometry, sequence=sequence, method=method).mask
        except LiverMetsError as error:
            rows.append(_failed("totalseg", folder, error))
            continue
        rows.append(
            _row(
                "totalseg",
                folder,
                labels == 5,
                mask,
                image.geometry,
                time.monotonic() - started,
                "(reference is TotalSegmentator output, not manual)",
            )
        )
    return rows


def pipeline(seeds: list[int], variants: list[str]) -> list[dict]:
    from livermets.geometry import Volume
    from livermets.labels import PHANTOM_LABEL_VALUES, RESULT_HEPATIC, RESULT_PORTAL
    from livermets.phantom import make_phantom
    from livermets.segmentation.pipeline import segment

    portal_value, cyst_value = PHANTOM_LABEL_VALUES["portal_vein"], PHANTOM_LABEL_VALUES["cyst"]
    hepatic_values = [PHANTOM_LABEL_VALUES["hepatic_veins"], PHANTOM_LABEL_VALUES["ivc"]]
    hooks = lesion_vessel_metrics()
    rows = []
    for variant in variants:
        for seed in seeds:
            phantom = make_phantom(seed, variant=variant)
            volumes = {name: Volume(image, phantom.geometry) for name, image in phantom.images.items()}
            started = time.monotonic()
            result = segment(volumes)
            row = _row(
                "pipeline",
                f"{variant}/seed{seed}",
                np.asarray(phantom.liver) > 0,
                result.liver,
                phantom.geometry,
                time.monotonic() - started,
                f"stages {result.timings_s}",
            )
            figures = []
            if hooks:
                truth_lesions = np.asarray(phantom.lesions)
                cyst = np.asarray(phantom.anatomy) == cyst_value
                for key in (
                    "lesion_sensitivity",
                    "lesion_sensitivity_10mm",
                    "false_positives",
                    "lesion_dice",
                ):
                    extra = {"ignore": cyst} if key == "false_positives" else {}
                    value = hooks[key](truth_lesions, result.lesions, phantom.geometry, **extra)
                    if value is not None:
                        row[key] = float(value)
                        figures.append(f"{key} {row[key]:.3f}")
                anatomy = np.asarray(phantom.anatomy)
                for key, truth, value in (
                    ("portal_dice", anatomy == portal_value, RESULT_PORTAL),
                    ("hepatic_dice", np.isin(anatomy, hepatic_values), RESULT_HEPATIC),
                ):
                    row[key] = hooks["vessel_dice"](truth, result.labels == value, phantom.geometry)
                    figures.append(f"{key} {row[key]:.3f}")
            print(
                f"{'':9s} {'':28s} "
                + ", ".join(figures)
                + (" | " + "; ".join(result.warnings) if result.warnings else ""),
                flush=True,
            )
            rows.append(row)
    return rows


def summarise(rows: list[dict]) -> None:
    for group in sorted({row["group"] for row in rows}):
        selected = [row for row in rows if row["group"] == group]
        dices = np.array([row["dice"] for row in selected])
        errors = np.abs([row["volume_error_percent"] for row in selected])
        seconds = np.array([row["seconds"] for row in selected])
        print(
            f"SUMMARY {group:9s} n={len(selected):2d}  "
            f"dice median {np.median(dices):.3f} min {dices.min():.3f}  "
            f"|volume error| median {np.median(errors):.1f} % max {errors.max():.1f} %  "
            f"time median {np.median(seconds):.1f} s max {seconds.max():.1f} s"
        )
        extra_keys = sorted(
            {key for row in selected for key in row}
            - {"group", "case", "dice", "volume_error_percent", "seconds"}
        )
        for key in extra_keys:
            values = [row[key] for row in selected if key in row]
            print(f"SUMMARY {group:9s} {key} mean {np.mean(values):.3f} min {np.min(values):.3f}")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("LIVERMETS_DATA", REPO.parent / "shared" / "data"))
    )
    parser.add_argument("--only", default="chaos,phantom,totalseg,pipeline")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--variants", nargs="+", default=["small", "thick"])
    parser.add_argument("--liver-method", choices=list(LIVER_METHODS), default=LIVER_METHODS[0])
    parser.add_argument("--liver-folds", type=Path, help="cross-validation models for the CHAOS cases")
    args = parser.parse_args(argv)
    groups = set(args.only.split(","))
    rows: list[dict] = []
    have_data = (args.data / "README.md").exists()
    if "chaos" in groups and have_data:
        rows += chaos(args.data, args.liver_method, fold_networks(args.liver_folds))
    if "robustness" in groups and have_data:
        rows += robustness(args.data, args.liver_method, fold_networks(args.liver_folds))
    if "totalseg" in groups and have_data:
        rows += totalseg(args.data, args.liver_method)
    if not have_data and groups & {"chaos", "totalseg", "robustness"}:
        print(f"real data not found at {args.data}: chaos, totalseg and robustness skipped")
    if "phantom" in groups:
        rows += phantoms(args.seeds, args.variants, args.liver_method)
    if "pipeline" in groups:
        rows += pipeline(args.seeds, args.variants)
    summarise(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
