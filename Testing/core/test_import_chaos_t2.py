"""Testing/import_chaos_t2.py: cases in the Ouyang et al. layout become the ../shared/data layout, losslessly."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from import_chaos_t2 import main


def _write(path: Path, array: np.ndarray, spacing=(1.25, 1.25, 7.7), origin=(-10.0, 20.0, -30.0),
           direction=(1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0)) -> None:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(direction)
    sitk.WriteImage(image, str(path))


def _case(source: Path, number: int, rng: np.random.Generator, labels: np.ndarray | None = None) -> tuple:
    image = rng.integers(0, 900, size=(4, 6, 5)).astype(np.float64)  # stored as float, integral values
    labels = rng.integers(0, 5, size=(4, 6, 5)).astype(np.float64) if labels is None else labels
    _write(source / f"image_{number}.nii.gz", image)
    _write(source / f"label_{number}.nii.gz", labels)
    return image, labels


def test_cases_are_renamed_cast_and_kept_on_their_grid(tmp_path):
    rng = np.random.default_rng(0)
    source, out = tmp_path / "ouyang", tmp_path / "data"
    source.mkdir()
    image, labels = _case(source, 21, rng)
    _case(source, 3, rng)
    assert main([str(source), "--out", str(out), "--skip", "chaos03"]) == 0
    assert sorted(p.name for p in (out / "chaos_t2").iterdir()) == ["chaos21_labels.nii.gz", "chaos21_t2spir.nii.gz"]
    written = sitk.ReadImage(str(out / "chaos_t2" / "chaos21_t2spir.nii.gz"))
    written_labels = sitk.ReadImage(str(out / "chaos_t2" / "chaos21_labels.nii.gz"))
    assert written.GetPixelID() == sitk.sitkInt16 and written_labels.GetPixelID() == sitk.sitkUInt8
    np.testing.assert_array_equal(sitk.GetArrayFromImage(written), image)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(written_labels), labels)
    assert np.allclose(written.GetSpacing(), (1.25, 1.25, 7.7)) and np.allclose(written.GetOrigin(), (-10, 20, -30))
    assert "chaos21" in (out / "README.md").read_text()


@pytest.mark.parametrize("problem", ["label value", "fraction", "grid", "direction"])
def test_a_case_that_does_not_check_out_is_refused_with_its_name(tmp_path, problem):
    rng = np.random.default_rng(1)
    source, out = tmp_path / "ouyang", tmp_path / "data"
    source.mkdir()
    _case(source, 2, rng)  # a good case before the bad one: nothing is written for either
    image, labels = _case(source, 5, rng)
    if problem == "label value":
        labels[0, 0, 0] = 7
        _write(source / "label_5.nii.gz", labels)
    elif problem == "fraction":
        image[1, 1, 1] = 10.5
        _write(source / "image_5.nii.gz", image)
    elif problem == "grid":
        _write(source / "label_5.nii.gz", labels, spacing=(1.0, 1.0, 7.7))
    else:
        _write(source / "label_5.nii.gz", labels, direction=(-1.0, 0, 0, 0, -1.0, 0, 0, 0, 1.0))
    with pytest.raises(ValueError, match="_5.nii.gz"):
        main([str(source), "--out", str(out)])
    assert not out.exists()
