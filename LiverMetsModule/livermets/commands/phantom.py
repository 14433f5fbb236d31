"""Write the synthetic teaching phantom: an abdomen with liver, portal and hepatic veins,
metastases and a cyst, imaged on hepatobiliary, portal-venous, arterial, T2, diffusion and CT
contrasts, with its ground truth (labels, lesion instances, Couinaud segments, legend.json).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from livermets.errors import InputError
from livermets.progress import ProgressCallback

HELP = "write a synthetic abdomen with ground truth (teaching phantom)"
DEFAULT_OUT = Path("livermets-output") / "phantom"


def configure(parser: argparse.ArgumentParser) -> None:
    from livermets.phantom import PHANTOM_SEQUENCES

    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"output folder (default: {DEFAULT_OUT} in the current directory)")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed of anatomy, lesions and noise (default 0)")
    parser.add_argument("--variant", choices=("standard", "thick", "small"), default="standard",
                        help="standard 1.5x1.5x3 mm, thick 1.25x1.25x7.5 mm, small 3 mm (default standard)")
    parser.add_argument("--sequences", default=",".join(PHANTOM_SEQUENCES),
                        help=f"comma-separated subset of {','.join(PHANTOM_SEQUENCES)} (default: all)")
    parser.add_argument("--breathing-mm", type=float, default=0.0,
                        help="largest S-I shift of the organs between phases, mm (default 0: aligned)")
    parser.add_argument("--no-cyst", action="store_true", help="leave out the simple liver cyst")


def _sequences(text: str) -> list:
    from livermets.phantom import PHANTOM_SEQUENCES
    from livermets.sequences import check

    names = []
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            name = check(part)
        except ValueError:
            name = part.strip()
        if name not in PHANTOM_SEQUENCES:
            raise InputError(f"the phantom has no {name!r} sequence; "
                             f"choose from: {', '.join(PHANTOM_SEQUENCES)}")
        if name not in names:
            names.append(name)
    if not names:
        raise InputError("--sequences is empty; give at least one of: " + ", ".join(PHANTOM_SEQUENCES))
    return names


def run(args: argparse.Namespace, progress: ProgressCallback) -> int:
    from livermets.phantom import make_phantom, write_phantom
    from livermets.progress import report, scaled

    sequences = _sequences(args.sequences)
    if args.breathing_mm < 0:
        raise InputError(f"--breathing-mm must be 0 or more, got {args.breathing_mm}")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot create the output folder {args.out} ({error.strerror or error}); "
                         "choose another --out folder") from None
    phantom = make_phantom(args.seed, variant=args.variant, sequences=sequences,
                           breathing_mm=args.breathing_mm, cyst=not args.no_cyst,
                           progress=scaled(progress, 0.0, 0.85))
    report(progress, 0.85, f"writing {args.out}")
    try:
        write_phantom(phantom, args.out)
    except OSError as error:
        raise InputError(f"cannot write the phantom to {args.out} ({error.strerror or error}); "
                         "check the free space and permissions") from None
    report(progress, 1.0, "done")
    legend = phantom.legend
    print(f"phantom written to {args.out}")
    print(f"  sequences: {', '.join(sequences)}")
    print(f"  lesions: {len(legend['lesions'])} metastases, {len(legend['cysts'])} cyst(s)")
    print(f"  liver volume: {legend['liver_volume_ml']:.0f} ml")
    print(f"  truth: {args.out / 'truth'}")
    return 0
