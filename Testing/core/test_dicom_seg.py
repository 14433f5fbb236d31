"""DICOM SEG export: the right source series is chosen, and every segment survives the round trip exactly.

Truth is the phantom's own label maps (``truth/``), used as the result folder; the DICOM folder
is written here from the phantom's images: three contrast phases on the segmentation's grid
with realistic tags, plus a T2 series on a coarser grid that must never be chosen.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from livermets.cli import main
from livermets.dicom import list_series, write_series
from livermets.errors import InputError, LiverMetsError
from livermets.geometry import Geometry, Volume
from livermets.imageio import read_image
from livermets.labels import STRUCTURES
from phantom_result import truth_result_folder

PATIENT = {"PatientName": "Muster^Erika", "PatientID": "PID-0042", "PatientBirthDate": "19580317",
           "PatientSex": "F", "StudyDescription": "MRI liver Primovist", "AccessionNumber": "ACC991",
           "ContrastBolusAgent": "Primovist", "Manufacturer": "SIEMENS", "MagneticFieldStrength": "1.5"}
PHASES = [(3, "arterial", "t1_vibe_fs_tra_bh_arterial"),
          (4, "portal_venous", "t1_vibe_fs_tra_bh_portal venous"),
          (5, "hbp", "t1_vibe_fs_tra_bh_hbp_20min")]


def scanner_values(volume: Volume) -> Volume:
    """Integer grey values, as an MR scanner stores them (classic MR Image Storage files)."""
    return Volume(np.rint(volume.array * 10.0).astype(np.int16), volume.geometry)


def coarse(volume: Volume) -> Volume:
    """Every second column and row: another grid, as a T2 series often has."""
    g = volume.geometry
    geometry = Geometry((g.shape[0], (g.shape[1] + 1) // 2, (g.shape[2] + 1) // 2),
                        (2 * g.spacing_ijk_mm[0], 2 * g.spacing_ijk_mm[1], g.spacing_ijk_mm[2]),
                        g.origin_lps_mm, g.direction_lps)
    return Volume(np.ascontiguousarray(volume.array[:, ::2, ::2]), geometry)


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("seg")
    result, _legend = truth_result_folder(root, lesion_keys=("id", "center_ras_mm", "volume_ml"))
    dicom = root / "dicom"
    study = {"study_uid": "2.25.1001", "frame_of_reference_uid": "2.25.1002"}
    for number, sequence, description in PHASES:
        volume = scanner_values(read_image(root / "phantom" / f"{sequence}.nii.gz"))
        write_series(volume, dicom, tags=PATIENT, series_number=number, series_description=description,
                     **study)
    t2 = coarse(scanner_values(read_image(root / "phantom" / "t2.nii.gz")))
    write_series(t2, dicom, tags=PATIENT, series_number=6, series_description="t2_haste_tra_mbh", **study)
    return {"root": root, "result": result, "dicom": dicom}


def truth_masks(result: Path) -> dict[str, np.ndarray]:
    arrays = {name: read_image(result / f"{name}.nii.gz").array for name in ("liver", "labels", "lesions")}
    masks = {"Liver": arrays["liver"] > 0, "Portal vein": arrays["labels"] == 3,
             "Hepatic veins and IVC": arrays["labels"] == 4}
    masks.update({f"Lesion {n}": arrays["lesions"] == n for n in np.unique(arrays["lesions"]) if n})
    return masks


def decode_with_pydicom(seg, datasets, geometry: Geometry) -> dict[str, np.ndarray]:
    """Segments by label, decoded frame by frame with pydicom alone (independent of highdicom).

    Each frame names its segment and its source image; the source's ImagePositionPatient gives the slice.
    """
    to_ras = np.diag([-1.0, -1.0, 1.0])
    slice_of = {}
    for ds in datasets:
        position_ras = to_ras @ np.array(ds.ImagePositionPatient, float)
        slice_of[ds.SOPInstanceUID] = int(round(geometry.ras_to_kji(position_ras)[0]))
    labels = {item.SegmentNumber: item.SegmentLabel for item in seg.SegmentSequence}
    masks = {label: np.zeros(geometry.shape, bool) for label in labels.values()}
    frames = seg.pixel_array.reshape(-1, seg.Rows, seg.Columns)
    for frame, group in zip(frames, seg.PerFrameFunctionalGroupsSequence):
        number = group.SegmentIdentificationSequence[0].ReferencedSegmentNumber
        source = group.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        masks[labels[number]][slice_of[source]] = frame > 0
    return masks


def test_seg_round_trip_keeps_every_voxel_and_references_the_hbp_series(case, tmp_path):
    pytest.importorskip("highdicom")
    import pydicom
    from livermets.dicom_seg import choose_source_series, read_dicom_seg, source_datasets, write_dicom_seg

    written = write_dicom_seg(case["result"], case["dicom"], tmp_path / "seg.dcm", sequence="hbp")
    assert written.source_description == "t1_vibe_fs_tra_bh_hbp_20min"
    geometry = read_image(case["result"] / "liver.nii.gz").geometry
    info = choose_source_series(case["dicom"], geometry, sequence="hbp")
    datasets = source_datasets(info)
    read_back = read_dicom_seg(tmp_path / "seg.dcm", datasets, geometry)
    truth = truth_masks(case["result"])
    assert list(read_back) == list(truth) == list(written.segment_labels)
    assert len([name for name in truth if name.startswith("Lesion")]) >= 3
    for name, mask in truth.items():
        assert mask.any(), name
        assert np.array_equal(read_back[name], mask), f"segment {name} changed in the round trip"

    seg = pydicom.dcmread(tmp_path / "seg.dcm")
    decoded = decode_with_pydicom(seg, datasets, geometry)
    for name, mask in truth.items():
        assert np.array_equal(decoded[name], mask), f"segment {name} differs when decoded with pydicom"
    assert seg.Modality == "SEG" and seg.SegmentationType == "BINARY"
    assert str(seg.PatientName) == PATIENT["PatientName"] and seg.PatientID == PATIENT["PatientID"]
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == info.series_uid
    assert seg.FrameOfReferenceUID == datasets[0].FrameOfReferenceUID
    expected = {"Liver": "liver", "Portal vein": "portal_vein", "Hepatic veins and IVC": "hepatic_veins"}
    for item in seg.SegmentSequence:
        key = expected.get(item.SegmentLabel, "lesion")
        code = item.SegmentedPropertyTypeCodeSequence[0]
        category = item.SegmentedPropertyCategoryCodeSequence[0]
        assert (code.CodeValue, code.CodingSchemeDesignator) == (STRUCTURES[key].type.value, "SCT")
        assert category.CodeValue == STRUCTURES[key].category.value
        if key == "lesion":
            assert item.TrackingID == item.SegmentLabel and item.TrackingUID
    assert not list(tmp_path.glob(".*part*")), "no temporary file is left behind"


def test_series_choice_uses_grid_then_sequence(case):
    from livermets.dicom_seg import choose_source_series

    assert [info.series_number for info in list_series(case["dicom"])] == [3, 4, 5, 6]
    geometry = read_image(case["result"] / "liver.nii.gz").geometry
    assert choose_source_series(case["dicom"], geometry, sequence="portal_venous").series_number == 4
    assert choose_source_series(case["dicom"], geometry, sequence="arterial").series_number == 3
    with pytest.raises(InputError, match="--series"):
        choose_source_series(case["dicom"], geometry)  # three phases fit the grid: the user must say
    with pytest.raises(InputError, match="not on the segmentation's grid"):
        choose_source_series(case["dicom"], geometry, series="6")  # the coarse T2
    assert choose_source_series(case["dicom"], geometry, series="5").description.endswith("hbp_20min")


def test_command_line_and_missing_inputs(case, tmp_path, capsys):
    pytest.importorskip("highdicom")
    out = tmp_path / "lesions.seg.dcm"
    assert main(["--quiet", "dicom-seg", str(case["result"]), "--source", str(case["dicom"]),
                 "--out", str(out)]) == 0
    assert "t1_vibe_fs_tra_bh_hbp_20min" in capsys.readouterr().out and out.is_file()
    assert main(["--quiet", "dicom-seg", str(case["result"]), "--source", str(tmp_path / "none"),
                 "--out", str(tmp_path / "x.dcm")]) == 2
    assert "does not exist" in capsys.readouterr().err and not (tmp_path / "x.dcm").exists()


def test_missing_highdicom_gives_the_install_hint(case, tmp_path, monkeypatch):
    from livermets.dicom_seg import write_dicom_seg

    monkeypatch.setitem(sys.modules, "highdicom", None)  # what Python does when the package is absent
    with pytest.raises(LiverMetsError, match="pip install highdicom"):
        write_dicom_seg(case["result"], case["dicom"], tmp_path / "seg.dcm", sequence="hbp")
