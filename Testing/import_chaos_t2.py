"""Lay out CHAOS T2-SPIR cases from the preprocessing of Ouyang et al. as ``../shared/data`` holds them,
so that ``evaluate.py``, ``evaluate_lesions.py`` and ``train_liver_net.py`` can take them with ``--data``.

Usage::

    python Testing/import_chaos_t2.py SOURCE --out DIR [--skip chaos01,chaos02,...]

``SOURCE`` holds ``image_N.nii.gz`` and ``label_N.nii.gz`` (the ``chaos_MR_T2_normalized`` folder of
Ouyang C. et al., "Self-supervision with superpixels: training few-shot medical image segmentation
without annotation", ECCV 2020, doi:10.1007/978-3-030-58526-6_45; images of the CHAOS challenge, Kavur
et al., Med Image Anal 2021, doi:10.1016/j.media.2020.101950, CC BY-SA 4.0). Each case N becomes
``DIR/chaos_t2/chaosNN_t2spir.nii.gz`` (int16) and ``chaosNN_labels.nii.gz`` (uint8: 0 background,
1 liver, 2 right kidney, 3 left kidney, 4 spleen), the same grid and values, and ``DIR/README.md``
says where they came from. ``../shared/data`` holds ten of the twenty MR training cases in this
preprocessing; ``--skip`` leaves those out. Every case is checked first: if one does not check
out, nothing is written.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

LABEL_VALUES = {0, 1, 2, 3, 4}


def checked_case(image_path: Path, label_path: Path) -> tuple[sitk.Image, sitk.Image]:
    """One case's image (int16) and labels (uint8), cast losslessly; ``ValueError`` naming the file
    when they are not on one grid, the image does not fit int16 or a label lies outside 0-4."""
    image, labels = sitk.ReadImage(str(image_path)), sitk.ReadImage(str(label_path))
    if image.GetSize() != labels.GetSize() or not all(
            np.allclose(a, b) for a, b in ((image.GetSpacing(), labels.GetSpacing()),
                                           (image.GetOrigin(), labels.GetOrigin()),
                                           (image.GetDirection(), labels.GetDirection()))):
        raise ValueError(f"{image_path.name} and {label_path.name} are not on the same grid")
    values = sitk.GetArrayViewFromImage(image)
    if not np.array_equal(values, np.round(values)) or values.min() < -32768 or values.max() > 32767:
        raise ValueError(f"{image_path.name} does not fit int16 losslessly")
    found = set(np.unique(sitk.GetArrayViewFromImage(labels)).astype(int).tolist())
    if not found <= LABEL_VALUES:
        raise ValueError(f"{label_path.name} holds label values {sorted(found - LABEL_VALUES)} outside 0-4")
    return sitk.Cast(image, sitk.sitkInt16), sitk.Cast(labels, sitk.sitkUInt8)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="folder with image_N.nii.gz and label_N.nii.gz")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--skip", default="", help="comma-separated case names (chaosNN) to leave out")
    args = parser.parse_args(argv)
    skip = {name for name in args.skip.split(",") if name}
    numbers = sorted(int(m.group(1)) for path in args.source.glob("image_*.nii.gz")
                     if (m := re.fullmatch(r"image_(\d+)\.nii\.gz", path.name)))
    if not numbers:
        print(f"no image_N.nii.gz in {args.source}", file=sys.stderr)
        return 1
    cases = {}  # every case is checked before anything is written
    for number in numbers:
        name = f"chaos{number:02d}"
        label_path = args.source / f"label_{number}.nii.gz"
        if name in skip:
            continue
        if not label_path.exists():
            print(f"{name}: no label_{number}.nii.gz, skipped", file=sys.stderr)
            continue
        cases[name] = checked_case(args.source / f"image_{number}.nii.gz", label_path)
    folder = args.out / "chaos_t2"
    folder.mkdir(parents=True, exist_ok=True)
    for name, (image, labels) in cases.items():
        sitk.WriteImage(image, str(folder / f"{name}_t2spir.nii.gz"), True)
        sitk.WriteImage(labels, str(folder / f"{name}_labels.nii.gz"), True)
    written = list(cases)
    (args.out / "README.md").write_text(
        "CHAOS T2-SPIR MR training cases (Kavur et al. 2021, CC BY-SA 4.0) in the preprocessing of Ouyang et al.\n"
        f"(ECCV 2020), laid out by Testing/import_chaos_t2.py: {', '.join(written)}.\n")
    print(f"wrote {len(written)} cases to {args.out / 'chaos_t2'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
