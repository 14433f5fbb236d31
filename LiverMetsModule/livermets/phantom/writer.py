"""Writing a phantom to a folder: one NIfTI per sequence plus ``truth/`` (labels and legend).

Every file is first written under a temporary name in the same folder and then renamed, so a
reader never sees a half-written file. SimpleITK's gzip stream carries no time stamp, so the
same phantom always gives byte-identical files.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from livermets.files import write_json
from livermets.geometry import Volume


def _write_image(array: np.ndarray, geometry, path: Path) -> Path:
    import SimpleITK as sitk

    temporary = path.with_name(f".{path.name[:-len('.nii.gz')]}.tmp{os.getpid()}.nii.gz")
    try:
        sitk.WriteImage(Volume(array, geometry).to_sitk(), str(temporary), True)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
    return path


def write_phantom(phantom, out_dir: str | Path) -> dict:
    """Write ``<sequence>.nii.gz`` for each image and ``truth/{anatomy,liver,labels,lesions,couinaud}.nii.gz``
    plus ``truth/legend.json`` (written last). Returns name -> path (names: sequences, ``anatomy``,
    ``liver``, ``labels``, ``lesions``, ``couinaud``, ``legend``)."""
    out = Path(out_dir)
    truth = out / "truth"
    truth.mkdir(parents=True, exist_ok=True)
    geometry = phantom.geometry
    paths = {}
    for sequence, image in phantom.images.items():
        paths[sequence] = _write_image(image.astype(np.float32), geometry, out / f"{sequence}.nii.gz")
    arrays = {"anatomy": phantom.anatomy.astype(np.uint8), "liver": phantom.liver.astype(np.uint8),
              "labels": phantom.labels.astype(np.uint8), "lesions": phantom.lesions.astype(np.uint16),
              "couinaud": phantom.couinaud.astype(np.uint8)}
    for name, array in arrays.items():
        paths[name] = _write_image(array, geometry, truth / f"{name}.nii.gz")
    paths["legend"] = write_json(truth / "legend.json", phantom.legend)
    return paths
