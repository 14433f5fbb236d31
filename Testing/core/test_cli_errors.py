"""The command line on real bad inputs: one clear stderr line, exit code 2, a traceback only with --debug.

`livermets info` exercises read_image / describe_path, which every other command reuses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from livermets.cli import main
from livermets.dicom import write_series
from livermets.geometry import Geometry, Volume
from livermets.imageio import write_image

SHAPE_KJI = (12, 14, 16)
GRID = Geometry(SHAPE_KJI, (1.0, 1.0, 2.5), (-20.0, -30.0, 10.0))
MODULE_DIR = Path(__file__).resolve().parents[2] / "LiverMetsModule"


def volume(seed: int = 0) -> Volume:
    return Volume(np.random.default_rng(seed).integers(0, 900, SHAPE_KJI).astype(np.int16), GRID)


def write_structured_report(path: Path) -> None:
    """A minimal DICOM Basic Text SR: valid DICOM, but no image in it."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"
    meta.MediaStorageSOPInstanceUID = "2.25.41"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    report = Dataset()
    report.file_meta = meta
    report.SOPClassUID, report.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    report.Modality, report.ValueType = "SR", "CONTAINER"
    report.StudyInstanceUID, report.SeriesInstanceUID, report.SeriesNumber = "2.25.40", "2.25.42", 1
    report.save_as(path, enforce_file_format=True)


@pytest.fixture
def inputs(tmp_path) -> dict[str, Path]:
    """Good and bad inputs, each a real file or folder."""
    good = write_image(volume(), tmp_path / "good.nii.gz")
    paths = {"good": good, "missing": tmp_path / "no_such_scan.nii.gz"}
    paths["garbage"] = tmp_path / "garbage.nii.gz"
    paths["garbage"].write_bytes(np.random.default_rng(5).bytes(3000))
    paths["truncated"] = tmp_path / "truncated.nii.gz"
    paths["truncated"].write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    paths["twod"] = tmp_path / "slice2d.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((14, 16), np.int16)), str(paths["twod"]))
    paths["fourd"] = tmp_path / "dynamic4d.nii.gz"
    sitk.WriteImage(sitk.JoinSeries([volume(1).to_sitk(), volume(2).to_sitk()]), str(paths["fourd"]))
    paths["empty"] = tmp_path / "empty_folder"
    paths["empty"].mkdir()
    paths["report"] = tmp_path / "sr_only"
    paths["report"].mkdir()
    write_structured_report(paths["report"] / "report.dcm")
    paths["not_dicom"] = tmp_path / "notes"
    paths["not_dicom"].mkdir()
    (paths["not_dicom"] / "readme.txt").write_text("not an image\n")
    paths["two_series"] = tmp_path / "study"
    write_series(volume(3), paths["two_series"], series_number=4, series_description="HBP 20min")
    write_series(volume(4), paths["two_series"], series_number=6, series_description="T2 HASTE")
    return paths


@pytest.mark.parametrize("case, extra, words", [
    ("missing", [], ["no_such_scan.nii.gz", "does not exist"]),
    ("garbage", [], ["garbage.nii.gz", "could not be read as NIfTI"]),
    ("truncated", [], ["truncated.nii.gz", "damaged NIfTI", "cut short"]),
    ("empty", [], ["empty_folder", "is empty"]),
    ("report", [], ["sr_only", "none is an image"]),
    ("not_dicom", [], ["notes", "none of them DICOM"]),
    ("twod", ["--check"], ["slice2d.nii.gz", "2D image"]),
    ("fourd", ["--check"], ["dynamic4d.nii.gz", "4D image"]),
    ("two_series", ["--check"], ["holds 2 series", "4 'HBP 20min'", "6 'T2 HASTE'", "--series"]),
    ("two_series", ["--series", "5"], ["no series '5'"]),
    ("good", ["--series", "4"], ["good.nii.gz", "--series applies only to DICOM folders"]),
])
def test_info_bad_input_prints_one_line_and_exits_2(inputs, capsys, case, extra, words):
    code = main(["info", str(inputs[case]), *extra])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("livermets info: error: ")
    for word in words:
        assert word in lines[0]
    assert "Traceback" not in captured.err and captured.out == ""


def test_info_describes_unusable_4d_file_and_succeeds(inputs, capsys):
    assert main(["info", str(inputs["fourd"])]) == 0
    out = capsys.readouterr().out
    assert "16 x 14 x 12 x 2 voxels (4D)" in out and "NOT USABLE" in out and "4D image" in out


def test_info_on_a_study_folder_text_json_and_series(inputs, capsys):
    assert main(["info", str(inputs["two_series"])]) == 0
    out = capsys.readouterr().out
    assert out.count("usable: yes") == 2
    assert "sequence: hbp (series description 'HBP 20min' contains 'hbp')" in out
    assert "16 x 14 x 12 voxels (i x j x k), spacing 1 x 1 x 2.5 mm" in out

    assert main(["info", str(inputs["two_series"]), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [entry["sequence_hint"] for entry in data] == ["hbp", "t2"]
    assert data[0]["origin_ras_mm"] == [20.0, 30.0, 10.0]  # LPS (-20, -30, 10) with x, y negated

    assert main(["info", str(inputs["two_series"]), "--series", "6", "--check"]) == 0
    out = capsys.readouterr().out
    assert "T2 HASTE" in out and "HBP" not in out and "check: loaded 16 x 14 x 12 voxels of int16" in out


def run_cli(*args: str) -> subprocess.CompletedProcess:
    environment = dict(os.environ, PYTHONPATH=str(MODULE_DIR))
    return subprocess.run([sys.executable, "-m", "livermets", *args], capture_output=True, text=True,
                          env=environment, timeout=120)


def test_subprocess_exit_code_and_debug_traceback(inputs):
    plain = run_cli("info", str(inputs["truncated"]))
    assert plain.returncode == 2
    assert len(plain.stderr.strip().splitlines()) == 1 and "Traceback" not in plain.stderr
    assert "truncated.nii.gz" in plain.stderr
    debug = run_cli("--debug", "info", str(inputs["truncated"]))
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "InputError" in debug.stderr
    good = run_cli("info", str(inputs["good"]))
    assert good.returncode == 0 and "usable: yes" in good.stdout and good.stderr == ""
