"""DICOM series: write realistic series with write_series, list them, read them back exactly.

Truth is the synthetic volume and its analytic grid; pydicom (tests only) checks the tags on disk.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from livermets.dicom import list_series, read_series, sequence_hint_from_tags, write_series
from livermets.errors import InputError
from livermets.geometry import Geometry, Volume
from livermets.imageio import describe_path, read_image, read_study

SHAPE_KJI = (20, 24, 28)
ANGLE = np.radians(20.0)
TILT_ABOUT_L = np.array([[1, 0, 0], [0, np.cos(ANGLE), -np.sin(ANGLE)], [0, np.sin(ANGLE), np.cos(ANGLE)]])
OBLIQUE = Geometry(SHAPE_KJI, (0.8, 0.9, 3.0), (-110.5, -95.25, 40.125), TILT_ABOUT_L.ravel())
AXIAL = Geometry(SHAPE_KJI, (0.8, 0.8, 3.5), (-112.0, -90.0, 20.0))
STUDY_UID = "2.25.1111"
FRAME_UID = "2.25.2222"


def corners_kji(shape) -> np.ndarray:
    return np.array([[k, j, i] for k in (0, shape[0] - 1) for j in (0, shape[1] - 1) for i in (0, shape[2] - 1)],
                    dtype=float)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """One folder with three MR series: oblique int16 HBP, float portal venous, int16 T2 HASTE."""
    folder = tmp_path_factory.mktemp("mr_study")
    rng = np.random.default_rng(7)
    truth = {
        3: ("HBP 20min", Volume(rng.integers(0, 1200, SHAPE_KJI).astype(np.int16), OBLIQUE), {"ContrastBolusAgent": "Primovist"}),
        5: ("portal venous", Volume(rng.normal(400, 90, SHAPE_KJI).astype(np.float32), AXIAL), {}),
        7: ("T2 HASTE", Volume(rng.integers(0, 3000, SHAPE_KJI).astype(np.int16), AXIAL), {}),
    }
    files = {number: write_series(volume, folder, tags=tags, series_number=number, series_description=description,
                                  study_uid=STUDY_UID, frame_of_reference_uid=FRAME_UID)
             for number, (description, volume, tags) in truth.items()}
    return folder, truth, files


def test_list_series_describes_each_series(study):
    folder, truth, _ = study
    infos = list_series(folder)
    assert [info.series_number for info in infos] == [3, 5, 7]
    assert [info.description for info in infos] == ["HBP 20min", "portal venous", "T2 HASTE"]
    assert [info.sequence_hint for info in infos] == ["hbp", "portal_venous", "t2"]
    assert [info.oblique for info in infos] == [True, False, False]
    for info in infos:
        assert info.usable and info.modality == "MR" and info.n_files == SHAPE_KJI[0]
        assert info.shape_kji == SHAPE_KJI
        expected = truth[info.series_number][1].geometry
        np.testing.assert_allclose(info.spacing_ijk_mm, expected.spacing_ijk_mm, atol=1e-6)
        np.testing.assert_allclose(info.origin_lps_mm, expected.origin_lps_mm, atol=1e-6)
    assert "oblique: yes, 20.0 degrees" in infos[0].to_text()


@pytest.mark.parametrize("number", [3, 5, 7])
def test_read_series_back_geometry_and_values(study, number):
    folder, truth, _ = study
    _, expected, _ = truth[number]
    volume = read_series(folder, number)
    corners = corners_kji(SHAPE_KJI)
    np.testing.assert_allclose(volume.geometry.kji_to_ras(corners), expected.geometry.kji_to_ras(corners), atol=1e-3)
    np.testing.assert_allclose(volume.geometry.direction_lps, expected.geometry.direction_lps, atol=1e-6)
    if np.issubdtype(expected.array.dtype, np.integer):
        np.testing.assert_array_equal(volume.array, expected.array)
    else:
        # stored as uint16 with RescaleSlope = range / 65000: error at most half a step
        half_step = float(np.ptp(expected.array)) / 65000 / 2
        assert np.abs(volume.array - expected.array).max() <= half_step * 1.01
    (info,) = [info for info in list_series(folder) if info.series_number == number]
    # the header-only listing predicts the loaded grid
    assert info.geometry().same_grid(volume.geometry, tolerance_mm=1e-9)
    np.testing.assert_allclose(info.spacing_ijk_mm, volume.geometry.spacing_ijk_mm, rtol=1e-12)


def test_written_tags_on_disk(study):
    folder, truth, files = study
    oblique_files = files[3]
    first, last = (pydicom.dcmread(oblique_files[k]) for k in (0, -1))
    np.testing.assert_allclose([float(v) for v in first.ImageOrientationPatient],
                               list(TILT_ABOUT_L[:, 0]) + list(TILT_ABOUT_L[:, 1]), atol=1e-9)
    # slice k sits at origin + k * 3.0 mm along the third direction column
    expected_last = np.add(OBLIQUE.origin_lps_mm, (SHAPE_KJI[0] - 1) * 3.0 * TILT_ABOUT_L[:, 2])
    np.testing.assert_allclose([float(v) for v in last.ImagePositionPatient], expected_last, atol=1e-6)
    assert [float(v) for v in first.PixelSpacing] == [0.9, 0.8]  # row spacing (j), column spacing (i)
    assert float(first.SliceThickness) == 3.0 and first.Rows == 24 and first.Columns == 28
    assert first.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4" and first.Modality == "MR"
    assert first.StudyInstanceUID == STUDY_UID and first.FrameOfReferenceUID == FRAME_UID
    assert first.ContrastBolusAgent == "Primovist" and first.SeriesNumber == 3
    assert len({pydicom.dcmread(f).SOPInstanceUID for f in oblique_files}) == SHAPE_KJI[0]


def test_ct_series_uses_rescale_intercept_and_reads_hounsfield_units(tmp_path):
    hounsfield = np.random.default_rng(1).integers(-1024, 2500, SHAPE_KJI).astype(np.int16)
    files = write_series(Volume(hounsfield, AXIAL), tmp_path, series_number=2, series_description="abdomen",
                         modality="CT")
    header = pydicom.dcmread(files[0])
    assert header.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    assert float(header.RescaleIntercept) == -1024.0 and float(header.RescaleSlope) == 1.0
    assert header.pixel_array.min() >= 0  # stored values are HU + 1024
    (info,) = list_series(tmp_path)
    assert info.sequence_hint == "ct" and "modality CT" in info.hint_reason
    np.testing.assert_array_equal(read_series(tmp_path).array, hounsfield)


def test_write_series_is_deterministic(tmp_path):
    volume = Volume(np.arange(np.prod(SHAPE_KJI), dtype=np.int16).reshape(SHAPE_KJI) % 500, AXIAL)
    first = write_series(volume, tmp_path / "a", series_number=1)
    second = write_series(volume, tmp_path / "b", series_number=1)
    assert pydicom.dcmread(first[4]).SOPInstanceUID == pydicom.dcmread(second[4]).SOPInstanceUID
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [p.name for p in first]  # no temporary left


def test_left_handed_grid_is_written_as_the_same_voxels(tmp_path):
    """Slice axis opposite to row x column (as in many NIfTI files): DICOM gets the slices reversed."""
    mirrored = Geometry(SHAPE_KJI, (0.8, 0.9, 3.0), OBLIQUE.origin_lps_mm,
                        (TILT_ABOUT_L @ np.diag([1.0, 1.0, -1.0])).ravel())
    array = np.random.default_rng(3).integers(0, 800, SHAPE_KJI).astype(np.int16)
    files = write_series(Volume(array, mirrored), tmp_path)
    # files[k] holds input slice k: its position is the input's slice k centre
    position_k5 = mirrored.ijk_to_lps() @ np.array([0.0, 0.0, 5.0, 1.0])
    np.testing.assert_allclose([float(v) for v in pydicom.dcmread(files[5]).ImagePositionPatient],
                               position_k5[:3], atol=1e-6)
    back = read_series(tmp_path)
    assert np.linalg.det(back.geometry.direction_matrix_lps) > 0
    np.testing.assert_array_equal(back.array, array[::-1])
    corners = corners_kji(SHAPE_KJI)
    flipped = corners.copy()
    flipped[:, 0] = SHAPE_KJI[0] - 1 - corners[:, 0]
    np.testing.assert_allclose(back.geometry.kji_to_ras(flipped), mirrored.kji_to_ras(corners), atol=1e-3)


def test_echo_and_repetition_times_on_disk_name_an_unnamed_series(tmp_path):
    """A series whose description names nothing is told T2 by its TE / TR read from the files."""
    volume = Volume(np.ones(SHAPE_KJI, np.int16), AXIAL)
    write_series(volume, tmp_path / "a", series_number=4, series_description="Ax resp trig",
                 tags={"EchoTime": "90", "RepetitionTime": "3200"})
    write_series(volume, tmp_path / "b", series_number=5, series_description="Ax resp trig")
    (timed,), (untimed,) = list_series(tmp_path / "a"), list_series(tmp_path / "b")
    assert timed.sequence_hint == "t2" and "echo time 90 ms" in timed.hint_reason
    assert untimed.sequence_hint is None


@pytest.mark.realdata
def test_real_chaos_volume_through_dicom(shared_data, tmp_path):
    """A real left-handed, slightly oblique NIfTI -> DICOM series -> volume: same voxels in space."""
    original = read_image(shared_data / "chaos_t2" / "chaos02_t2spir.nii.gz")
    write_series(original, tmp_path, series_number=2, series_description="T2 SPIR")
    (info,) = list_series(tmp_path)
    assert info.sequence_hint == "t2"
    back = read_series(tmp_path)
    assert np.linalg.det(original.geometry.direction_matrix_lps) < 0  # so the k axis comes back reversed
    np.testing.assert_array_equal(back.array, original.array[::-1])
    corners = corners_kji(original.geometry.shape)
    flipped = corners.copy()
    flipped[:, 0] = original.geometry.shape[0] - 1 - corners[:, 0]
    np.testing.assert_allclose(back.geometry.kji_to_ras(flipped), original.geometry.kji_to_ras(corners), atol=1e-3)


def test_series_choice_by_number_uid_and_description(study):
    folder, truth, files = study
    uid = pydicom.dcmread(files[7][0]).SeriesInstanceUID
    expected = truth[7][1].array
    for choice in (7, "7", uid, "t2 haste"):
        np.testing.assert_array_equal(read_image(folder, series=choice).array, expected)
    with pytest.raises(InputError, match="has no series '9'; it holds 3 'HBP 20min'"):
        read_image(folder, series=9)


def test_folder_with_several_series_needs_a_choice(study):
    folder, _, _ = study
    with pytest.raises(InputError) as caught:
        read_image(folder)
    message = str(caught.value)
    assert "holds 3 series" in message and "--series" in message
    assert "'HBP 20min'" in message and "'portal venous'" in message and "'T2 HASTE'" in message


def test_single_dicom_file_reads_its_whole_series(study):
    folder, truth, files = study
    volume = read_image(files[5][3])
    assert volume.geometry.shape == SHAPE_KJI
    (info,) = describe_path(files[5][3])
    assert info.series_number == 5


def test_read_study_same_and_shifted_grid(study, tmp_path):
    folder, truth, _ = study
    volumes, grid = read_study([(folder, 5), (folder, 7)])
    assert grid.same_grid and grid.max_offset_mm < 1e-3
    shift_lps_mm = (2.0, -1.0, 2.0)  # |shift| = 3 mm for every voxel centre
    shifted = Geometry(SHAPE_KJI, AXIAL.spacing_ijk_mm, tuple(np.add(AXIAL.origin_lps_mm, shift_lps_mm)))
    write_series(Volume(truth[7][1].array, shifted), tmp_path, series_number=8, series_description="T2 moved")
    _, grid = read_study([(folder, 5), (tmp_path, 8)])
    assert not grid.same_grid
    assert grid.max_offset_mm == pytest.approx(3.0, abs=1e-3)
    assert "not on the grid" in grid.text


def test_missing_slice_is_refused(tmp_path):
    volume = Volume(np.ones(SHAPE_KJI, np.int16), AXIAL)
    files = write_series(volume, tmp_path, series_number=4, series_description="T2 gap")
    files[9].unlink()
    with pytest.raises(InputError, match="slice gaps vary from 3.50 to 7.00 mm"):
        read_series(tmp_path)


def test_series_in_a_subfolder_is_pointed_out(tmp_path):
    write_series(Volume(np.ones(SHAPE_KJI, np.int16), AXIAL), tmp_path / "SE0004", series_number=4)
    with pytest.raises(InputError, match="only 1 subfolder.* such as 'SE0004'; pass the folder of one series"):
        list_series(tmp_path)


@pytest.mark.parametrize("tags, expected, reason_word", [
    ({"Modality": "CT", "SeriesDescription": "Abdomen portal venous"}, "ct", "modality CT"),
    ({"Modality": "MR", "SeriesDescription": "HBP 20min"}, "hbp", "hbp"),
    ({"Modality": "MR", "SeriesDescription": "t1_vibe_fs_tra 20 min"}, "hbp", "20 min"),
    ({"Modality": "MR", "SeriesDescription": "VIBE delayed", "ContrastBolusAgent": "Primovist"}, "hbp", "delay"),
    ({"Modality": "MR", "SeriesDescription": "VIBE delayed", "ContrastBolusAgent": "Dotarem"}, None, "not gadoxetate"),
    ({"Modality": "MR", "SeriesDescription": "LAVA late arterial"}, "arterial", "arterial"),
    ({"Modality": "MR", "SeriesDescription": "ax t1 art"}, "arterial", "art"),
    ({"Modality": "MR", "SeriesDescription": "Portal venous"}, "portal_venous", "portal"),
    ({"Modality": "MR", "SeriesDescription": "VIBE PV"}, "portal_venous", "pv"),
    ({"Modality": "MR", "SeriesDescription": "vibe 70s"}, "portal_venous", "70s"),
    ({"Modality": "MR", "SeriesDescription": "T2 HASTE"}, "t2", "t2"),
    ({"Modality": "MR", "SeriesDescription": "haste_tra_mbh"}, "t2", "haste"),
    ({"Modality": "MR", "SeriesDescription": "tse_tra SPAIR"}, "t2", "spair"),
    ({"Modality": "MR", "SeriesDescription": "ep2d_diff_b50_400_800"}, "dwi", "diff"),
    ({"Modality": "MR", "SeriesDescription": "b800 tra"}, "dwi", "b800"),
    ({"Modality": "MR", "SeriesDescription": "resolve", "0018|9087": "800"}, "dwi", "(0018,9087)"),
    ({"Modality": "MR", "SeriesDescription": "ep2d", "SequenceName": "*ep_b800t"}, "dwi", "ep_b800t"),
    ({"Modality": "MR", "SeriesDescription": "ep2d_diff_ADC"}, None, "ADC map"),
    ({"Modality": "MR", "SeriesDescription": "x", "ImageType": "DERIVED\\PRIMARY\\DIFFUSION\\ADC"}, None, "ADC"),
    ({"Modality": "MR", "SeriesDescription": "t1_vibe_tra", "ContrastBolusAgent": "Primovist",
      "ContrastBolusStartTime": "101500", "AcquisitionTime": "101610"}, "portal_venous", "70 s after"),
    ({"Modality": "MR", "SeriesDescription": "t1_vibe_tra", "ContrastBolusAgent": "Primovist",
      "ContrastBolusStartTime": "101500", "AcquisitionTime": "103500"}, "hbp", "1200 s after"),
    ({"Modality": "MR", "SeriesDescription": "t1 vibe pre"}, "t1", "pre"),
    ({"Modality": "MR", "SeriesDescription": "t1_vibe_tra", "ContrastBolusAgent": "Gadovist"}, None, "does not name"),
    ({"Modality": "SR", "SeriesDescription": "report"}, None, "neither MR nor CT"),
    ({"SeriesDescription": "case12_ct_venous.nii.gz"}, "ct", "'ct'"),
    ({"SeriesDescription": "case12_pct_venous.nii.gz"}, "portal_venous", "venous"),
    ({"Modality": "MR", "SeriesDescription": "localizer"}, None, "no sequence or phase keyword"),
    # no word names it: the echo and repetition times give the weighting
    ({"Modality": "MR", "SeriesDescription": "Ax FSE resp", "EchoTime": "86.4", "RepetitionTime": "4615"}, "t2",
     "T2-weighted"),
    ({"Modality": "MR", "SeriesDescription": "Ax 3D", "0018|0081": "2.1", "0018|0080": "4.4"}, "t1", "gradient echo"),
    ({"Modality": "MR", "SeriesDescription": "Ax 3D", "EchoTime": "2.1", "RepetitionTime": "4.4",
      "ContrastBolusAgent": "Dotarem"}, None, "no phase is named"),
    ({"Modality": "MR", "SeriesDescription": "Ax FIESTA", "EchoTime": "1.6", "RepetitionTime": "3.8"}, None,
     "balanced steady-state"),
    ({"Modality": "MR", "SeriesDescription": "Ax 2D", "EchoTime": "30", "RepetitionTime": "500"}, None,
     "do not settle"),
])
def test_sequence_hint_from_tags(tags, expected, reason_word):
    hint, reason = sequence_hint_from_tags(tags)
    assert hint == expected
    assert reason_word in reason
