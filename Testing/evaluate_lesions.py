"""Measure lesion detection against known truth and print per-case and summary figures.

Cases
-----
* ``chaos``: real CHAOS T2-SPIR livers (Kavur et al. 2021, doi:10.1016/j.media.2020.101950)
  with synthetic lesions inserted (lobulated, brighter than liver on T2, one fluid-bright cyst
  per case; partial volume over each 7.7 mm slice's whole thickness, so a lesion shows faintly
  on the slices next to the one it fills, as on the scanner; inside each lesion, noise of the
  image's own strength and in-plane grain, measured on its liver by
  ``synthetic_liver.image_noise``); the manual liver label is the liver mask, so the figures
  isolate lesion detection from liver segmentation. The few focal lesions these livers already
  hold (:data:`REAL_FINDINGS_KJI`) get no inserted lesion and count neither as hits nor as false
  positives; the summary also gives the false positives counting them.
* ``chaos-pipeline``: the same cases through the whole ``segment`` pipeline (the liver segmented
  from the image, not the manual label, as a user gets it); the liver's Dice against the manual
  label is printed with each case, marked "seen in training" when the liver network was trained on
  it (the shipped one's model card lists its ``training_cases``): ``--liver-folds DIR`` gives each
  case the cross-validation network that held it out (``DIR/*/liver_net.json`` and ``.npz``, from
  ``Testing/train_liver_net.py --holdout``). ``--data`` may be any folder laid out as
  ``../shared/data/chaos_t2`` is, for example the other CHAOS MR cases that
  ``Testing/import_chaos_t2.py`` lays out.
* ``phantom``: LiverMets phantoms (``livermets.phantom.make_phantom``) for several seeds,
  sequence sets and the thick-slice variant, using the phantom's own liver and lesion truth.
* ``ct``: one portal-venous CT phantom on a 512 x 512 x 150 grid (0.78 x 0.63 x 1.6 mm), the
  speed case (``make_phantom(0, shape_kji=(150, 512, 512), sequences=("ct",))``).

  Sensitivity is given over all true lesions, over those of at least 5 mm (the smallest size
  ``detect_lesions`` reports by default; the phantoms hold 3-5 mm lesions) and of at least 10 mm,
  in the summary as found/total, share and 95 % Wilson interval (forty lesions of 10 mm or more
  leave an interval some 0.2 wide: ``--placements N`` draws the CHAOS lesions N times, each
  placement a new set of lesions in the same livers). After each summary, the same figures as if
  the lesions scoring below each of :data:`OPERATING_SCORES` had been rejected (the operating
  points a reader can choose).

  With ``--with-vessels`` the vessel mask of ``segment_vessels`` is passed to ``detect_lesions``
  (as the pipeline does); the time printed then includes the vessel segmentation.
* ``vessels``: portal and hepatic (+ IVC) Dice per tree on the phantoms (portal-venous and hbp).
* ``seeded``: one-click time on a 256 x 256 x 100 grid and one-click Dice on every phantom lesion.

Usage: ``python Testing/evaluate_lesions.py [--data DIR] [--cases chaos chaos-pipeline phantom ct vessels seeded]
[--seeds 1 2 3] [--placements 1] [--liver-folds DIR]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "LiverMetsModule"))

from evaluate import fold_weights
from lesion_metrics import dice, match_lesions, operating_points, vessel_dice, wilson_interval
from livermets.geometry import Geometry, Volume
from livermets.labels import PHANTOM_LABEL_VALUES
from livermets.segmentation.lesions import detect_lesions
from livermets.segmentation.liver_net import model_card
from livermets.segmentation.pipeline import segment
from livermets.segmentation.seeded import segment_lesion_from_seed
from livermets.segmentation.vessels import segment_vessels
from synthetic_liver import grid_mm, make_case, place_balls

DIAMETERS_MM = (6.0, 8.0, 10.0, 14.0, 20.0, 30.0)
CYST_DIAMETER_MM = 12.0
OPERATING_SCORES = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)  # figures also given for the lesions scoring at least these
LESION_SIZES = [(d, False) for d in DIAMETERS_MM] + [(CYST_DIAMETER_MM, True)]
# Focal findings already present in the "healthy" CHAOS livers, found by reviewing every
# detection on the unmodified T2 images by eye (not a radiologist's read): round, sharply
# bounded, T2-bright lesions (two with a target look in chaos15; a fluid-bright oval and a round
# bright lesion in chaos19). Per case: (k, j, i) voxel centre and radius (mm). No lesion is
# inserted over them and a detection there is neither a hit nor a false positive.
REAL_FINDINGS_KJI = {
    "chaos15": [((25, 101, 72), 14.0), ((26, 168, 76), 12.0)],
    "chaos19": [((18, 167, 66), 15.0), ((28, 165, 142), 11.0)],
}


def chaos_cases(data: Path, placements: int = 1):
    """Per CHAOS case and placement: (name, images, liver, geometry, truth, cysts, ignore). Placement
    0 draws the lesions with the case number as seed, placement p > 0 with 100 p + the case number
    (named ``chaosNN/pP``); none meets the seeds of ``Testing/train_liver_net.py`` (1000 and up)."""
    for image_path in sorted((data / "chaos_t2").glob("chaos*_t2spir.nii.gz")):
        name = image_path.name.split("_")[0]
        image = sitk.ReadImage(str(image_path))
        labels = sitk.GetArrayFromImage(sitk.ReadImage(str(image_path).replace("t2spir", "labels")))
        geometry = Geometry.from_sitk(image)
        findings = _spheres(REAL_FINDINGS_KJI.get(name, []), geometry)
        drawn = labels == 1
        background = {"t2": sitk.GetArrayFromImage(image).astype(np.float32)}
        for placement in range(placements):
            seed = 100 * placement + int(name[-2:])
            balls = place_balls(drawn, geometry, np.random.default_rng(seed), LESION_SIZES, avoid=findings)
            case = make_case(geometry=geometry, balls=balls, sequences=("t2",), liver=drawn, background=background,
                             seed=seed)
            liver = drawn | (case.lesions > 0)  # the organ mask includes lesions bulging at the capsule
            cysts = np.isin(case.lesions, [n + 1 for n, b in enumerate(balls) if b.cyst])
            truth = np.where(cysts, 0, case.lesions)
            yield (f"{name}/p{placement}" if placement else name), case.images, liver, geometry, truth, cysts, \
                cysts | findings


def _spheres(centres_radii, geometry: Geometry) -> np.ndarray:
    """Mask of balls given as ((k, j, i) voxel centre, radius mm) on ``geometry``."""
    spacing = np.asarray(geometry.spacing_mm)
    points = grid_mm(geometry.shape, spacing)
    mask = np.zeros(geometry.shape, dtype=bool)
    for centre_kji, radius_mm in centres_radii:
        mask |= np.linalg.norm(points - np.asarray(centre_kji) * spacing, axis=-1) <= radius_mm
    return mask


PHANTOM_SETUPS = {"standard": [("hbp",), ("t2",), ("portal_venous",), ("hbp", "t2", "dwi")],
                  "small": [("t2",), ("hbp", "t2", "dwi")],
                  "thick": [("hbp",), ("t2",), ("hbp", "t2", "dwi")]}


def phantoms(seeds=(1, 2, 3)):
    """(seed, variant, phantom) for every seed and variant, or nothing if the phantom is absent."""
    try:
        from livermets.phantom import make_phantom
    except ImportError:
        print("phantom: livermets.phantom not available, skipped")
        return
    for seed in seeds:
        for variant in PHANTOM_SETUPS:
            yield seed, variant, make_phantom(seed, variant=variant, sequences=("hbp", "t2", "dwi", "portal_venous"))


def phantom_cases(built):
    """Lesion cases: the phantom's whole-liver mask and metastasis instances; its cyst is ignored."""
    cyst_value = PHANTOM_LABEL_VALUES["cyst"]
    for seed, variant, ph in built:
        for sequences in PHANTOM_SETUPS[variant]:
            cyst = ph.anatomy == cyst_value
            yield (f"phantom s{seed} {variant} {'+'.join(sequences)}", {s: ph.images[s] for s in sequences},
                   ph.liver.astype(bool), ph.geometry, ph.lesions.astype(np.int32), cyst, cyst)


def ct_cases():
    """The 512 x 512 x 150 CT phantom (speed case), or nothing if the phantom is absent."""
    try:
        from livermets.phantom import make_phantom
    except ImportError:
        print("ct: livermets.phantom not available, skipped")
        return
    cyst_value = PHANTOM_LABEL_VALUES["cyst"]
    ph = make_phantom(0, shape_kji=(150, 512, 512), sequences=("ct",))
    cyst = ph.anatomy == cyst_value
    yield ("phantom ct 512x512x150", {"ct": ph.images["ct"]}, ph.liver.astype(bool), ph.geometry,
           ph.lesions.astype(np.int32), cyst, cyst)


def evaluate_vessels(built) -> None:
    """Vessel Dice per tree on phantoms (whole image and inside the liver)."""
    value = PHANTOM_LABEL_VALUES
    rows = []
    for seed, variant, ph in built:
        for sequence in ("portal_venous", "hbp"):
            start = time.perf_counter()
            result = segment_vessels({sequence: ph.images[sequence]}, ph.liver.astype(bool), ph.geometry)
            seconds = time.perf_counter() - start
            portal = ph.anatomy == value["portal_vein"]
            hepatic = np.isin(ph.anatomy, [value["hepatic_veins"], value["ivc"]])
            liver = ph.liver.astype(bool)
            row = [vessel_dice(portal, result.portal, ph.geometry), vessel_dice(hepatic, result.hepatic, ph.geometry),
                   vessel_dice(portal, result.portal, ph.geometry, region=liver),
                   vessel_dice(hepatic, result.hepatic, ph.geometry, region=liver)]
            rows.append((sequence, row))
            print(f"vessels s{seed} {variant:8s} {sequence:13s} portal {row[0]:.3f} hepatic+IVC {row[1]:.3f}  "
                  f"in liver: portal {row[2]:.3f} hepatic {row[3]:.3f}  branches {len(result.centerlines)}  "
                  f"{seconds:.1f} s {'; '.join(result.warnings)}")
    for sequence in ("portal_venous", "hbp"):
        values = np.asarray([row for seq, row in rows if seq == sequence])
        if len(values):
            mean = values.mean(axis=0)
            print(f"SUMMARY vessels {sequence}: runs {len(values)}  Dice portal {mean[0]:.3f} hepatic+IVC {mean[1]:.3f}"
                  f"  in liver: portal {mean[2]:.3f} hepatic {mean[3]:.3f}  (min in liver {values[:, 2:].min():.3f})")


def benchmark_seeded(built) -> None:
    """One-click time on a 256 x 256 x 100 grid, and Dice of one click per phantom lesion."""
    geometry = Geometry((100, 256, 256), (1.5, 1.5, 3.0), (0.0, 0.0, 0.0))
    rng = np.random.default_rng(0)
    image = rng.normal(100.0, 8.0, geometry.shape).astype(np.float32)
    k, j, i = np.ogrid[:100, :256, :256]
    image[((k - 50) * 3.0) ** 2 + ((j - 128) * 1.5) ** 2 + ((i - 128) * 1.5) ** 2 < 15.0 ** 2] += 60.0
    times = []
    for _ in range(10):
        start = time.perf_counter()
        segment_lesion_from_seed(image, geometry, (50, 128, 128), sequence="t2")
        times.append(time.perf_counter() - start)
    print(f"seeded: 256x256x100 one click median {np.median(times):.3f} s, max {max(times):.3f} s (10 runs)")
    dices = []
    for seed, variant, ph in built:
        for sequence in ("hbp", "t2"):
            for label in range(1, int(ph.lesions.max()) + 1):
                lesion = ph.lesions == label
                inside = np.argwhere(lesion)
                center = inside[np.argmin(np.linalg.norm(inside - inside.mean(0), axis=1))]
                mask = segment_lesion_from_seed(ph.images[sequence], ph.geometry, tuple(center), sequence=sequence,
                                                liver=ph.liver.astype(bool))
                dices.append(dice(lesion, mask))
    if dices:
        print(f"SUMMARY seeded: {len(dices)} one-click segmentations, Dice mean {np.mean(dices):.3f} "
              f"median {np.median(dices):.3f}, >= 0.75 in {np.mean(np.asarray(dices) >= 0.75):.2f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    parser.add_argument("--cases", nargs="+", default=["chaos", "phantom", "vessels", "seeded"],
                        choices=["chaos", "chaos-pipeline", "phantom", "ct", "vessels", "seeded"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3], help="phantom seeds")
    parser.add_argument("--placements", type=int, default=1,
                        help="chaos, chaos-pipeline: lesion placements per case (each a new draw of the lesions)")
    parser.add_argument("--min-score", type=float, default=0.5, help="detect_lesions min_score (0..1)")
    parser.add_argument("--with-vessels", action="store_true",
                        help="pass segment_vessels' mask to detect_lesions, as the pipeline does")
    parser.add_argument("--liver-folds", type=Path,
                        help="chaos-pipeline: the cross-validation liver networks that held each case out")
    args = parser.parse_args(argv)
    folds = fold_weights(args.liver_folds) if args.liver_folds else {}
    trained_on = set(model_card()["training_cases"])
    built = list(phantoms(args.seeds)) if set(args.cases) & {"phantom", "vessels", "seeded"} else []
    for group in [g for g in args.cases if g in ("chaos", "chaos-pipeline", "phantom", "ct")]:
        if group.startswith("chaos"):
            source = chaos_cases(args.data, args.placements)
        elif group == "phantom":
            source = phantom_cases(built)
        else:
            source = ct_cases()
        rows = []
        for name, images, liver, geometry, truth, cysts, ignore in source:
            start = time.perf_counter()
            liver_text = ""
            if group == "chaos-pipeline":
                case_name = name.split("/")[0]
                engine = f"builtin:{folds[case_name]}" if case_name in folds else "builtin"
                found = segment({name: Volume(image, geometry) for name, image in images.items()}, engine=engine)
                instances, likely_cyst = found.lesions, [bool(row.get("likely_cyst")) for row in found.lesion_table]
                scores = [float(row["score"]) for row in found.lesion_table]
                seen = " (seen in training)" if case_name not in folds and case_name in trained_on else ""
                liver_text = f"liver Dice {dice(liver, found.liver > 0):.3f}{seen}  "
            else:
                vessels = None
                if args.with_vessels:
                    found = segment_vessels(images, liver, geometry)
                    vessels = found.portal | found.hepatic
                result = detect_lesions(images, liver, geometry, vessels=vessels, min_score=args.min_score)
                instances, likely_cyst, scores = result.instances, result.likely_cyst, result.scores
            seconds = time.perf_counter() - start
            match = match_lesions(truth, instances, geometry, ignore=ignore)
            on_findings = match_lesions(truth, instances, geometry, ignore=cysts).false_positives \
                - match.false_positives
            cyst_flags = [flag for n, flag in enumerate(likely_cyst, 1) if cysts[instances == n].mean() > 0.5]
            rows.append((match, cyst_flags, on_findings, scores))
            print(f"{name:36s} lesions {len(match.detected):2d}  sens {match.sensitivity():.2f}  "
                  f"sens>=5mm {_fmt(match.sensitivity(5.0))}  sens>=10mm {_fmt(match.sensitivity(10.0))}  "
                  f"FP {match.false_positives}{f' (+{on_findings} on real findings)' if on_findings else ''} "
                  f"Dice {match.lesion_dice:.3f}  detected-Dice {_fmt(match.detected_dice)}  "
                  f"cyst flagged {sum(cyst_flags)}/{len(cyst_flags)}  {liver_text}{seconds:.1f} s")
            missed = [round(d, 1) for d, hit in zip(match.truth_diameters_mm, match.detected) if not hit]
            if missed:
                print(f"{'':36s} missed diameters (mm): {missed}")
        if rows:
            _summary(group, rows)
    if "vessels" in args.cases:
        evaluate_vessels(built)
    if "seeded" in args.cases:
        benchmark_seeded(built)
    return 0


def _fmt(value) -> str:
    return "  - " if value is None else f"{value:.2f}"


def _share(hits: list[bool]) -> str:
    """``found/total share [95 % Wilson interval]``."""
    if not hits:
        return "  - "
    low, high = wilson_interval(sum(hits), len(hits))
    return f"{sum(hits)}/{len(hits)} {np.mean(hits):.3f} [{low:.2f}-{high:.2f}]"


def _summary(group: str, rows) -> None:
    """Print the summary of ``rows`` -- (LesionMatch, cyst flags, false positives on real findings,
    scores of the predicted labels 1..N) per case -- then the figures as if only the lesions scoring
    at least each of :data:`OPERATING_SCORES` had been kept."""
    sizes = [(hit, d) for match, *_ in rows for hit, d in zip(match.detected, match.truth_diameters_mm)]
    detected = [hit for hit, _ in sizes]
    reportable = [hit for hit, d in sizes if d >= 5.0]
    large = [hit for hit, d in sizes if d >= 10.0]
    fps = [match.false_positives for match, *_ in rows]
    with_findings = (sum(fps) + sum(count for _, _, count, _ in rows)) / len(fps)
    dices = [match.lesion_dice for match, *_ in rows]
    flags = [flag for _, cyst_flags, _, _ in rows for flag in cyst_flags]
    print(f"SUMMARY {group}: cases {len(rows)}  lesions {len(detected)}  sensitivity {_share(detected)}  "
          f"sensitivity>=5mm {_share(reportable)}  sensitivity>=10mm {_share(large)}  FP/case {np.mean(fps):.2f} "
          f"(max {max(fps)}; {with_findings:.2f} counting real findings)  "
          f"lesion Dice mean {np.mean(dices):.3f} (min {min(dices):.3f})  "
          f"cysts flagged {sum(flags)}/{len(flags)}")
    for point in operating_points([(match, scores) for match, _, _, scores in rows], list(OPERATING_SCORES)):
        large_found = float("nan") if point["sensitivity_large"] is None else point["sensitivity_large"]
        print(f"  {group} score>={point['min_score']:.2f}  sensitivity {point['sensitivity']:.3f}  "
              f"sensitivity>=10mm {large_found:.3f}  FP/case {point['false_positives_per_case']:.2f}")


if __name__ == "__main__":
    raise SystemExit(main())
