"""``measure_result_dir``: measure a result folder and write measurements.json and couinaud.nii.gz."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Optional

from livermets.errors import InputError
from livermets.measure.couinaud import CouinaudLandmarks, couinaud_map, landmarks_from_vessels
from livermets.files import write_json
from livermets.measure.io import read_result_dir
from livermets.measure.lesions import measure_lesions
from livermets.measure.liver_summary import liver_summary
from livermets.progress import ProgressCallback, report, scaled

LOG = logging.getLogger(__name__)


def measure_result_dir(result_dir, *, landmarks: Optional[CouinaudLandmarks] = None,
                       recompute_couinaud: bool = False,
                       progress: Optional[ProgressCallback] = None) -> dict:
    """Measure lesions and liver of ``result_dir``; write ``measurements.json`` and ``couinaud.nii.gz``.

    An existing ``couinaud.nii.gz`` (a user's edit, or a phantom's truth) is used as it is and never
    overwritten unless ``recompute_couinaud`` or ``landmarks`` is given. Otherwise segments come from
    ``landmarks`` when given, else automatically from the vessels in ``labels.nii.gz``; if that fails
    the segments are left out and ``couinaud_method`` says why.
    Returns the dict written to ``measurements.json``.
    """
    from livermets.imageio import write_label

    started = time.monotonic()
    folder = Path(result_dir)
    report(progress, 0.0, "reading the result files")
    use_existing = (folder / "couinaud.nii.gz").exists() and landmarks is None and not recompute_couinaud
    arrays = read_result_dir(folder, with_couinaud=use_existing)
    if not arrays.liver.any():
        raise InputError(f"{folder / 'liver.nii.gz'} is empty: nothing to measure")
    report(progress, 0.1, "Couinaud segments")
    method, couinaud, found = "landmarks", None, landmarks
    if use_existing:
        method, couinaud = "from the existing couinaud.nii.gz", arrays.couinaud
    elif found is None:
        try:
            found = landmarks_from_vessels(arrays.labels, arrays.liver, arrays.geometry, ivc=arrays.ivc)
            method = "automatic from vessels"
        except InputError as error:
            LOG.warning("Couinaud segments left out: %s", error)
            method = f"none ({error})"
    if found is not None:
        couinaud = couinaud_map(arrays.liver, arrays.geometry, found)
    lesions = measure_lesions(arrays.lesions, arrays.labels, arrays.geometry, couinaud=couinaud,
                              liver=arrays.liver, ivc=arrays.ivc, progress=scaled(progress, 0.2, 0.95))
    result = {"result_dir": folder.name, "units": {"length": "mm", "volume": "ml", "points": "RAS mm"},
              **liver_summary(arrays.liver, arrays.lesions, arrays.geometry, lesions),
              "couinaud_method": method,
              "couinaud_landmarks": None if found is None else found.to_dict(),
              "ivc_source": "from ivc.nii.gz" if arrays.ivc is not None
              else "estimated from the hepatic veins and IVC label",
              "lesions": lesions}
    if couinaud is not None and not use_existing:
        write_label(couinaud, arrays.geometry, folder / "couinaud.nii.gz")
        result["couinaud_file"] = "couinaud.nii.gz"
    result["seconds"] = round(time.monotonic() - started, 3)
    write_json(folder / "measurements.json", result)
    report(progress, 1.0, f"measured {len(lesions)} lesion(s)")
    return result
