"""Write surface models (STL or OBJ) of liver, portal veins, hepatic veins + IVC and each lesion.

STL: one binary file per structure; OBJ: one models.obj (an object per structure) with
models.mtl colours. Coordinates in millimetres, in RAS (Slicer, default) or LPS (DICOM / ITK);
each file's header says which. Surfaces are closed and lightly smoothed, for 3D printing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from livermets.errors import InputError
from livermets.progress import ProgressCallback

HELP = "STL / OBJ surface models for 3D printing"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("result_dir", metavar="RESULTDIR", type=Path,
                        help="folder written by 'livermets segment'")
    parser.add_argument("--out", metavar="DIR", type=Path, required=True, help="folder for the model files")
    parser.add_argument("--format", choices=("stl", "obj"), default="stl", help="file format (default stl)")
    parser.add_argument("--frame", choices=("RAS", "LPS"), default="RAS", type=str.upper,
                        help="coordinate frame of the points (default RAS, as Slicer)")


def run(args: argparse.Namespace, progress: ProgressCallback) -> int:
    from livermets.models import export_models

    if not args.result_dir.is_dir():
        raise InputError(f"result folder {args.result_dir} does not exist; run 'livermets segment' first")
    for path in export_models(args.result_dir, args.out, file_format=args.format, frame=args.frame,
                              progress=progress):
        print(path)
    return 0
