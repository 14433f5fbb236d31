"""Virtual resection and future liver remnant (FLR) on a result folder.

Exactly one of --segments (Couinaud numbers; needs couinaud.nii.gz from `livermets measure`),
--plane (a point and a normal in RAS mm; the side the normal points to is resected) or
--wedge (lesion id and margin in mm, repeatable). Writes RESULTDIR/plan.json (resected and
remnant functional volumes, FLR %, standardised FLR with --height-cm and --weight-kg
(Vauthey et al., Liver Transpl 2002), every lesion's margin to the cut with R1 flags, cut
vessels, the minimum FLR commonly cited for the liver condition as information only) and
remnant.nii.gz / resected.nii.gz.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from livermets.errors import InputError
from livermets.planning.flr import LIVER_CONDITIONS
from livermets.progress import ProgressCallback

HELP = "virtual resection and future liver remnant"


def _numbers(text: str, kind=float) -> list:
    try:
        return [kind(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _wedge(text: str) -> tuple[int, float]:
    try:
        lesion, margin = text.split(":")
        return int(lesion), float(margin)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a wedge is LESION_ID:MARGIN_MM (e.g. 3:10), got {text!r}") from None


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("result_dir", metavar="RESULTDIR", help="result folder (after `livermets measure`)")
    parser.add_argument("--segments", type=lambda t: _numbers(t, int), help="Couinaud segments to resect, e.g. 5,6,7,8")
    parser.add_argument("--plane", type=_numbers, metavar="PX,PY,PZ,NX,NY,NZ",
                        help="cutting plane: point and normal (RAS mm); the normal points to the resected side")
    parser.add_argument("--wedge", type=_wedge, action="append", metavar="ID:MARGIN_MM",
                        help="wedge around lesion ID with a margin in mm (repeatable)")
    parser.add_argument("--height-cm", type=float, help="patient height (cm), for the standardised FLR")
    parser.add_argument("--weight-kg", type=float, help="patient weight (kg), for the standardised FLR")
    parser.add_argument("--liver-condition", choices=LIVER_CONDITIONS,
                        help="shows the FLR minimum commonly cited for this condition (information only)")


def run(args: argparse.Namespace, progress: ProgressCallback) -> int:
    from livermets.planning.plan import plan_result_dir

    if args.wedge and len({lesion for lesion, _ in args.wedge}) != len(args.wedge):
        raise InputError("each lesion may have one --wedge only")
    plan = plan_result_dir(args.result_dir, segments=args.segments, plane=args.plane,
                           wedges=dict(args.wedge) if args.wedge else None, height_cm=args.height_cm,
                           weight_kg=args.weight_kg, liver_condition=args.liver_condition, progress=progress)
    r1 = [str(m["id"]) for m in plan["lesions"] if m["r1"]]
    print(f"{plan['name']}: resected {plan['resected_volume_ml']:.0f} ml, remnant {plan['remnant_volume_ml']:.0f} ml, "
          f"FLR {plan['flr_pct']:.1f} %" + (f"; R1 risk (< 1 mm) for lesion(s) {', '.join(r1)}" if r1 else ""))
    print(f"wrote {Path(args.result_dir) / 'plan.json'}")
    return 0
