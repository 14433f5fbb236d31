"""Write the segmentation of a result folder as one DICOM SEG file referencing its source series.

Segments: liver, portal veins, hepatic veins and IVC, and one per lesion, with SNOMED CT codes.
The source series is the one in DICOMDIR on the result's grid (when several phases share it,
the one matching the result's sequence, or --series). The SEG is read back and checked voxel
by voxel before it is kept. Needs the optional package highdicom (pip install highdicom).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from livermets.errors import InputError
from livermets.progress import ProgressCallback

HELP = "write the segmentation as DICOM SEG"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("result_dir", metavar="RESULTDIR", type=Path,
                        help="folder written by 'livermets segment'")
    parser.add_argument("--source", metavar="DICOMDIR", type=Path, required=True,
                        help="DICOM folder holding the series the segmentation was computed on")
    parser.add_argument("--out", metavar="FILE", type=Path, required=True, help="SEG file to write (.dcm)")
    parser.add_argument("--series", help="series number, UID or description, when several fit")
    parser.add_argument("--sequence", help="prefer the series of this sequence (hbp, portal_venous, ...)")


def run(args: argparse.Namespace, progress: ProgressCallback) -> int:
    from livermets.dicom_seg import write_dicom_seg

    if not args.result_dir.is_dir():
        raise InputError(f"result folder {args.result_dir} does not exist; run 'livermets segment' first")
    if args.out.parent and not args.out.parent.is_dir():
        raise InputError(f"folder {args.out.parent} does not exist; create it or choose another --out")
    sequence = args.sequence
    if sequence is None:
        from livermets.report.build import source_image

        try:
            sequence = source_image(args.result_dir)[0]
        except InputError:
            sequence = None  # no source image named: the grid alone must decide
    written = write_dicom_seg(args.result_dir, args.source, args.out, series=args.series, sequence=sequence,
                              progress=progress)
    print(f"{written.path}: {len(written.segment_labels)} segments on series '{written.source_description}'")
    return 0
