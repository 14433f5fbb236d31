"""Measure lesions and liver from a result folder.

Reads liver.nii.gz, labels.nii.gz and lesions.nii.gz of RESULTDIR and writes
RESULTDIR/measurements.json (per lesion: volume, RECIST 1.1 axes, maximum 3D diameter,
sphericity, Couinaud segments, distances to portal veins, hepatic veins, IVC and capsule;
whole liver: volumes, tumour burden, lesions per segment, lobar distribution) and
RESULTDIR/couinaud.nii.gz. An existing couinaud.nii.gz is used as it is (--recompute-couinaud
replaces it). Couinaud segments are found automatically from the vessels,
or from --landmarks (a JSON file with RAS mm points: ivc_point_ras, right_hepatic_vein_ras,
middle_hepatic_vein_ras, left_hepatic_vein_ras, portal_bifurcation_ras, umbilical_fissure_ras,
optional ivc_axis_ras and hepatic_confluence_ras). All lengths mm, volumes ml, points RAS mm.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from livermets.errors import InputError
from livermets.progress import ProgressCallback

HELP = "measure lesions and liver from a result folder"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("result_dir", metavar="RESULTDIR", help="output folder of `livermets segment`")
    parser.add_argument("--landmarks", metavar="JSON", help="Couinaud landmarks (RAS mm) instead of the automatic method")
    parser.add_argument("--recompute-couinaud", action="store_true",
                        help="replace an existing couinaud.nii.gz (by default an existing one is used as it is)")


def load_landmarks(path):
    """CouinaudLandmarks from a JSON file; InputError naming what is missing."""
    from livermets.measure.couinaud import CouinaudLandmarks

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return CouinaudLandmarks(**{key: tuple(float(v) for v in value) if value is not None else None
                                    for key, value in data.items()})
    except (OSError, ValueError, TypeError) as error:
        raise InputError(f"{path} is not a usable landmark file ({error}); see `livermets measure --help`") from None


def run(args: argparse.Namespace, progress: ProgressCallback) -> int:
    from livermets.measure.result_dir import measure_result_dir

    landmarks = load_landmarks(args.landmarks) if args.landmarks else None
    result = measure_result_dir(args.result_dir, landmarks=landmarks,
                                recompute_couinaud=args.recompute_couinaud, progress=progress)
    print(f"{len(result['lesions'])} lesion(s); liver {result['liver_volume_ml']:.0f} ml; tumour burden "
          f"{result['tumour_burden_pct']:.2f} %; {result['lobar_distribution']}; Couinaud: {result['couinaud_method']}")
    print(f"wrote {Path(args.result_dir) / 'measurements.json'}")
    return 0
