"""Segment liver, lesions and venous trees from one or several phases of one study.

The first IMAGE defines the result grid; further images (other phases of the same study) are
aligned to it. Sequences are taken from --sequence (one per image), else from DICOM tags or
file names, else guessed from the image. Writes liver.nii.gz, labels.nii.gz (1 liver
parenchyma, 2 lesion, 3 portal veins, 4 hepatic veins + IVC), lesions.nii.gz (one label per
lesion) and lesions.json (lesion table, sequences, alignment, timings, warnings) into --out.
When no liver is found the command fails with exit code 2 and writes nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from livermets.errors import InputError
from livermets.progress import ProgressCallback
from livermets.sequences import SEQUENCES

HELP = "segment liver, lesions and vessels"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "images",
        nargs="+",
        metavar="IMAGE",
        help="image file (.nii.gz, .nrrd, .mha, .dcm) or DICOM folder; the first sets the grid",
    )
    parser.add_argument("--out", required=True, help="result folder (created if missing)")
    parser.add_argument(
        "--sequence",
        nargs="+",
        metavar="S",
        help=f"sequence of each image, in order ({', '.join(SEQUENCES)}); default: guessed",
    )
    parser.add_argument(
        "--series", help="for a DICOM folder with several series: which one (number, UID or name)"
    )
    parser.add_argument(
        "--engine",
        default="builtin",
        help="builtin (default: intensity model and bundled liver network), builtin:WEIGHTS (the "
        "same with a retrained liver_net.npz), classical (no trained weights), totalsegmentator, "
        "or nnunet:FOLDER (a trained nnU-Net v2 model folder; what it does not segment comes from builtin)",
    )
    parser.add_argument(
        "--no-align",
        action="store_true",
        help="trust the scanner positions of further images instead of registering them",
    )


def run(args: argparse.Namespace, progress: ProgressCallback) -> int:
    from livermets.imageio import describe_path, read_image
    from livermets.segmentation.pipeline import segment, write_result

    if args.sequence is not None and len(args.sequence) != len(args.images):
        raise InputError(
            f"--sequence gives {len(args.sequence)} names for {len(args.images)} images; "
            "give one per image, in the same order"
        )
    volumes, hints = [], []
    for path in args.images:
        volumes.append(read_image(path, series=args.series if Path(path).is_dir() else None))
        infos = describe_path(path)
        hints.append(infos[0].sequence_hint if len(infos) == 1 else None)
    result = segment(
        volumes, args.sequence, engine=args.engine, hints=hints, align=not args.no_align, progress=progress
    )
    paths = write_result(result, args.out, input_files=args.images)
    used = ", ".join(f"{s['sequence']} ({s['source']}, {s['confidence']:.2f})" for s in result.sequences)
    print(f"liver volume: {result.liver_volume_ml:.0f} ml")
    print(f"lesions found: {len(result.lesion_table)}")
    print(f"sequences: {used}")
    for warning in result.warnings:
        print(f"warning: {warning}")
    print(f"files: {Path(args.out)}/ ({', '.join(path.name for path in paths.values())})")
    return 0
