"""Describe an image file or a DICOM folder.

For each image (each series of a DICOM folder) prints its series number and description,
modality, the sequence LiverMets guesses and why, size (i x j x k voxels), spacing in mm,
the LPS position of the first voxel, whether the grid is oblique, and whether LiverMets can use
it (a 2D or 4D file is described, marked NOT USABLE, and the command still succeeds).
With --check the image is also loaded exactly as the other commands load it, and any problem
ends the command with exit code 2.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from livermets.dicom import select_series
from livermets.errors import InputError
from livermets.imageio import describe_path, read_image
from livermets.progress import ProgressCallback

HELP = "describe an image file or a DICOM folder"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="image file (.nii.gz, .nrrd, .mha, .dcm ...) or DICOM folder")
    parser.add_argument("--series", help="DICOM folder only: series number, UID or description to describe")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--check", action="store_true",
                        help="also load the image as the other commands do; exit 2 with the reason if it is unusable")


def run(args: argparse.Namespace, progress: ProgressCallback) -> int:
    infos = describe_path(args.path)
    if args.series is not None:
        if not Path(args.path).is_dir():
            raise InputError(f"{args.path} is a single file; --series applies only to DICOM folders")
        infos = [select_series(infos, args.series, args.path)]
    checked = None
    if args.check:
        volume = read_image(args.path, series=args.series)
        size = " x ".join(str(n) for n in volume.geometry.shape[::-1])
        checked = (f"check: loaded {size} voxels of {volume.array.dtype}, "
                   f"values {volume.array.min():g} .. {volume.array.max():g}")
    if args.json:
        print(json.dumps([info.to_dict() for info in infos], indent=2))
    else:
        print("\n\n".join(info.to_text() for info in infos))
        if checked:
            print(checked)
    return 0
