"""Reading a result folder (``livermets segment`` output or a phantom's ``truth/``). Files: ``liver.nii.gz`` (0/1), ``labels.nii.gz`` (1 parenchyma, 2 lesion,
3 portal veins, 4 hepatic veins + IVC), ``lesions.nii.gz`` (instances 1..N); optional
``ivc.nii.gz`` (0/1) or ``anatomy.nii.gz`` (phantom labels, 5 = IVC) give the IVC explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from livermets.errors import InputError
from livermets.geometry import Geometry
from livermets.labels import PHANTOM_LABEL_VALUES

REQUIRED_FILES = ("liver.nii.gz", "labels.nii.gz", "lesions.nii.gz")
PHANTOM_IVC = PHANTOM_LABEL_VALUES["ivc"]


@dataclass
class ResultArrays:
    """Arrays ``[k, j, i]`` of one result folder on one grid."""

    geometry: Geometry
    liver: np.ndarray
    labels: np.ndarray
    lesions: np.ndarray
    ivc: Optional[np.ndarray] = None
    couinaud: Optional[np.ndarray] = None


def _read(path: Path):
    from livermets.imageio import read_image

    return read_image(path)


def read_result_dir(result_dir, *, with_couinaud: bool = False) -> ResultArrays:
    """Read the result files; all must share one grid. ``with_couinaud`` also reads ``couinaud.nii.gz``."""
    folder = Path(result_dir)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder: give the output folder of `livermets segment`")
    missing = [name for name in REQUIRED_FILES if not (folder / name).exists()]
    if missing:
        raise InputError(f"{folder} lacks {', '.join(missing)}: run `livermets segment` into it first")
    volumes = {name: _read(folder / name) for name in REQUIRED_FILES}
    geometry = volumes["liver.nii.gz"].geometry
    for name, volume in volumes.items():
        if not volume.geometry.same_grid(geometry):
            raise InputError(f"{folder / name} is not on the grid of liver.nii.gz: the result files must "
                             "come from one segmentation")
    ivc = None
    if (folder / "ivc.nii.gz").exists():
        ivc = _read(folder / "ivc.nii.gz").array > 0
    elif (folder / "anatomy.nii.gz").exists():
        ivc = _read(folder / "anatomy.nii.gz").array == PHANTOM_IVC
    couinaud = None
    if with_couinaud:
        if not (folder / "couinaud.nii.gz").exists():
            raise InputError(f"{folder} has no couinaud.nii.gz: run `livermets measure {folder}` first")
        couinaud = _read(folder / "couinaud.nii.gz").array.astype(np.uint8)
    return ResultArrays(geometry, volumes["liver.nii.gz"].array > 0, volumes["labels.nii.gz"].array.astype(np.int16),
                        volumes["lesions.nii.gz"].array.astype(np.int32), ivc, couinaud)
