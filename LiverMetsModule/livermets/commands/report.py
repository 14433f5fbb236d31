"""HTML (and PDF) report of a result folder written by 'livermets segment'.

Writes into RESULTDIR/report (or --out): results.json (versioned, see results.schema.json),
report.html (one self-contained file, pictures embedded), report.pdf with --pdf, and the key
images and 3D views as PNG in images/. With --source the patient and study come from the DICOM
series the result was computed on; --deidentify drops name, ID, birth date, dates, institution
and file names from every output. For research use only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from livermets.errors import InputError
from livermets.progress import ProgressCallback

HELP = "HTML / PDF report of a result folder"


def _image_argument(text: str) -> tuple[str, Path]:
    name, separator, path = text.partition("=")
    if not separator or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH (e.g. hbp=hbp.nii.gz), got {text!r}")
    return name.strip(), Path(path)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("result_dir", metavar="RESULTDIR", type=Path,
                        help="folder written by 'livermets segment'")
    parser.add_argument("--out", type=Path, help="output folder (default RESULTDIR/report)")
    parser.add_argument("--pdf", action="store_true", help="also write report.pdf")
    parser.add_argument("--deidentify", action="store_true",
                        help="leave out patient name, ID, birth date, dates, institution and file names")
    parser.add_argument("--source", metavar="DICOMDIR", type=Path,
                        help="DICOM folder of the source images (patient and study for the header)")
    parser.add_argument("--series", help="with --source: series number, UID or description to read")
    parser.add_argument("--image", action="append", type=_image_argument, default=[], metavar="NAME=PATH",
                        help="source image for the key images when lesions.json names none")
    parser.add_argument("--no-pictures", action="store_true", help="skip key images and 3D views (faster)")


def run(args: argparse.Namespace, progress: ProgressCallback) -> int:
    from livermets.report.build import build_report

    if not args.result_dir.is_dir():
        raise InputError(f"result folder {args.result_dir} does not exist; run 'livermets segment' first")
    files = build_report(args.result_dir, args.out, pdf=args.pdf, deidentify=args.deidentify,
                         dicom_dir=args.source, series=args.series, images=dict(args.image) or None,
                         pictures=not args.no_pictures, progress=progress)
    for path in (files.html, files.pdf, files.results_json):
        if path is not None:
            print(path)
    return 0
