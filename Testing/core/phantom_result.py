"""A result folder made from a phantom's truth, for tests of what reads result folders (report, SEG)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from livermets.phantom import make_phantom, write_phantom


def truth_result_folder(root: Path, *, lesion_keys: tuple[str, ...], **summary) -> tuple[Path, dict]:
    """Write the small phantom (seed 0) to ``root/phantom`` and its truth as ``root/result``
    (liver, labels, lesions and a ``lesions.json`` holding ``lesion_keys`` of each lesion plus
    ``summary``, with the hbp image named relative to the folder). Returns (result folder, legend)."""
    write_phantom(make_phantom(0, variant="small"), root / "phantom")
    result = root / "result"
    result.mkdir()
    for name in ("liver", "labels", "lesions"):
        shutil.copy(root / "phantom" / "truth" / f"{name}.nii.gz", result / f"{name}.nii.gz")
    legend = json.loads((root / "phantom" / "truth" / "legend.json").read_text(encoding="utf-8"))
    (result / "lesions.json").write_text(json.dumps({
        "lesions": [{key: lesion[key] for key in lesion_keys} for lesion in legend["lesions"]],
        "sequences": {"hbp": "../phantom/hbp.nii.gz"}, **summary}), encoding="utf-8")
    return result, legend
