"""Image files in and out: exact geometry round trips, atomic writes, clear errors on bad files.

Expected geometry is the analytic grid the test builds; expected values are the arrays it wrote.
"""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import SimpleITK as sitk

from livermets.errors import InputError
from livermets.geometry import Geometry, Volume
from livermets.imageio import describe_path, read_image, read_study, write_image, write_label

SHAPE_KJI = (20, 24, 28)


def rotation_lps(angle_x_deg: float, angle_z_deg: float) -> np.ndarray:
    """Right-handed rotation: about the L axis, then about the S axis."""
    ax, az = np.radians([angle_x_deg, angle_z_deg])
    about_x = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    about_z = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return about_z @ about_x


OBLIQUE = Geometry(SHAPE_KJI, spacing_ijk_mm=(0.75, 0.9, 3.5), origin_lps_mm=(-120.5, 88.25, -40.0),
                   direction_lps=rotation_lps(17.0, -11.0).ravel())


def random_volume(dtype, geometry: Geometry = OBLIQUE, seed: int = 0) -> Volume:
    rng = np.random.default_rng(seed)
    if np.issubdtype(dtype, np.floating):
        array = rng.normal(300.0, 120.0, geometry.shape).astype(dtype)
    else:
        info = np.iinfo(dtype)
        array = rng.integers(max(info.min, -2000), min(info.max, 3000), geometry.shape, endpoint=True).astype(dtype)
    return Volume(array, geometry)


def corners_kji(shape) -> np.ndarray:
    return np.array([[k, j, i] for k in (0, shape[0] - 1) for j in (0, shape[1] - 1) for i in (0, shape[2] - 1)],
                    dtype=float)


@pytest.mark.parametrize("name", ["vol.nii.gz", "vol.nii", "vol.nrrd", "vol.nhdr", "vol.mha", "vol.mhd"])
@pytest.mark.parametrize("dtype", [np.int16, np.float32, np.uint8])
def test_round_trip_keeps_oblique_geometry_and_values(tmp_path, name, dtype):
    volume = random_volume(dtype)
    written = write_image(volume, tmp_path / name)
    back = read_image(written)
    assert back.array.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back.array, volume.array)
    g = back.geometry
    assert g.shape == OBLIQUE.shape
    np.testing.assert_allclose(g.spacing_ijk_mm, OBLIQUE.spacing_ijk_mm, atol=1e-6)
    np.testing.assert_allclose(g.direction_lps, OBLIQUE.direction_lps, atol=1e-6)
    # NIfTI keeps geometry in float32 (relative error 6e-8, so about 1e-5 mm at 120 mm from the origin)
    origin_tolerance_mm = 2e-5 if ".nii" in name else 1e-6
    np.testing.assert_allclose(g.origin_lps_mm, OBLIQUE.origin_lps_mm, atol=origin_tolerance_mm)
    corners = corners_kji(OBLIQUE.shape)
    np.testing.assert_allclose(g.kji_to_ras(corners), OBLIQUE.kji_to_ras(corners), atol=origin_tolerance_mm)


def test_write_leaves_only_the_final_files(tmp_path):
    write_image(random_volume(np.int16), tmp_path / "a.nii.gz")
    write_image(random_volume(np.int16), tmp_path / "b.nhdr")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names[0] == "a.nii.gz" and "b.nhdr" in names
    assert not any(name.startswith(".livermets") for name in names)
    assert len(names) == 3  # the detached NRRD data file beside b.nhdr


def test_compression_is_on_for_nii_gz_and_nrrd(tmp_path):
    smooth = Volume(np.zeros(SHAPE_KJI, np.int16), OBLIQUE)  # compresses to almost nothing
    raw_bytes = smooth.array.nbytes
    for name in ("c.nii.gz", "c.nrrd", "c.mha"):
        assert write_image(smooth, tmp_path / name).stat().st_size < raw_bytes / 10
    with gzip.open(tmp_path / "c.nii.gz") as stream:
        assert len(stream.read()) >= raw_bytes


def test_write_like_uses_the_reference_grid_exactly(tmp_path):
    reference = read_image(write_image(random_volume(np.int16), tmp_path / "in.nrrd"))
    drifted = Geometry(reference.geometry.shape, reference.geometry.spacing_ijk_mm,
                       tuple(np.add(reference.geometry.origin_lps_mm, 0.3)), reference.geometry.direction_lps)
    result = Volume((reference.array > 300).astype(np.uint8), drifted)
    back = read_image(write_image(result, tmp_path / "mask.nrrd", like=reference))
    assert back.geometry == reference.geometry  # NRRD keeps doubles; NIfTI would round to float32
    with pytest.raises(ValueError, match="reference grid"):
        write_image(Volume(np.zeros((2, 3, 4), np.uint8), Geometry((2, 3, 4), (1, 1, 1), (0, 0, 0))),
                    tmp_path / "bad.nii.gz", like=reference)


def test_write_label_chooses_uint8_or_uint16_and_refuses_bad_values(tmp_path):
    small = np.zeros(SHAPE_KJI, np.int64)
    small[5:10, 5:10, 5:10] = 4
    assert read_image(write_label(small, OBLIQUE, tmp_path / "l8.nii.gz")).array.dtype == np.uint8
    mask = read_image(write_label(small > 0, OBLIQUE, tmp_path / "mask.nii.gz")).array
    assert mask.dtype == np.uint8 and mask.sum() == 125 and mask.max() == 1
    small[0, 0, 0] = 300
    back = read_image(write_label(small, OBLIQUE, tmp_path / "l16.nrrd"))
    assert back.array.dtype == np.uint16 and back.array[0, 0, 0] == 300 and back.array[7, 7, 7] == 4
    with pytest.raises(ValueError, match="0..65535"):
        write_label(small - 1, OBLIQUE, tmp_path / "neg.nii.gz")
    with pytest.raises(ValueError, match="integers"):
        write_label(small.astype(float), OBLIQUE, tmp_path / "float.nii.gz")
    assert not (tmp_path / "neg.nii.gz").exists()


def write_raw(image, path):
    sitk.WriteImage(image, str(path))
    return path


@pytest.fixture
def bad_files(tmp_path):
    """Real broken or unusable files, made the way users meet them."""
    good = write_image(random_volume(np.int16), tmp_path / "good.nii.gz")
    data = good.read_bytes()
    files = {
        "garbage": tmp_path / "garbage.nii.gz",
        "truncated_gz": tmp_path / "truncated.nii.gz",
        "truncated_nii": tmp_path / "truncated.nii",
        "twod": write_raw(sitk.GetImageFromArray(np.zeros((24, 28), np.int16)), tmp_path / "slice2d.nii.gz"),
        "fourd": write_raw(sitk.JoinSeries([random_volume(np.int16).to_sitk()] * 3), tmp_path / "phases4d.nii.gz"),
        "one_slice": write_raw(sitk.GetImageFromArray(np.zeros((1, 24, 28), np.int16)), tmp_path / "one.nrrd"),
        "rgb": write_raw(sitk.GetImageFromArray(np.zeros((4, 24, 28, 3), np.uint8), isVector=True),
                         tmp_path / "colour.mha"),
        "png": tmp_path / "picture.png",
    }
    files["garbage"].write_bytes(np.random.default_rng(3).bytes(4000))
    files["truncated_gz"].write_bytes(data[: len(data) // 2])
    plain = write_image(random_volume(np.int16), tmp_path / "plain.nii")
    files["truncated_nii"].write_bytes(plain.read_bytes()[:-1000])
    files["png"].write_bytes(b"\x89PNG\r\n\x1a\n")
    return files


@pytest.mark.parametrize("case, words", [
    ("garbage", "could not be read as NIfTI"),
    ("truncated_gz", "damaged NIfTI"),
    ("truncated_nii", "truncated"),
    ("twod", "2D image"),
    ("fourd", "4D image"),
    ("one_slice", "single slice"),
    ("rgb", "3 values per voxel"),
    ("png", "unsupported file type"),
])
def test_read_image_refuses_bad_files_with_one_sentence(bad_files, case, words):
    with pytest.raises(InputError) as caught:
        read_image(bad_files[case])
    message = str(caught.value)
    assert words in message and bad_files[case].name in message and "\n" not in message


def test_read_image_missing_path(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_image(tmp_path / "nowhere.nii.gz")


def test_describe_marks_4d_and_2d_files_not_usable(bad_files):
    (fourd,) = describe_path(bad_files["fourd"])
    assert fourd.shape_kji == (3,) + SHAPE_KJI and not fourd.usable and "4D" in fourd.problem
    assert "NOT USABLE" in fourd.to_text()
    (twod,) = describe_path(bad_files["twod"])
    assert twod.shape_kji == (24, 28) and "2D" in twod.problem and not twod.oblique


def test_describe_file_reports_geometry_and_file_name_hint(tmp_path):
    path = write_image(random_volume(np.int16), tmp_path / "case7_T2_haste.nrrd")
    (info,) = describe_path(path)
    assert info.usable and info.oblique and info.n_files == 1
    assert info.sequence_hint == "t2" and "file name" in info.hint_reason
    assert info.geometry() == read_image(path).geometry
    assert info.pixel_type == "16-bit signed integer"
    assert "28 x 24 x 20" in info.to_text()


def test_describe_file_recognises_hounsfield_units(tmp_path):
    hounsfield = random_volume(np.int16).array - 1100  # air at about -1000 HU; MR magnitude is never negative
    (info,) = describe_path(write_image(Volume(hounsfield, OBLIQUE), tmp_path / "scan.nii.gz"))
    assert info.sequence_hint == "ct" and "Hounsfield" in info.hint_reason
    (info,) = describe_path(write_image(random_volume(np.uint8), tmp_path / "scan2.nii.gz"))
    assert info.sequence_hint is None


def test_read_study_same_and_shifted_grids(tmp_path):
    hbp = write_image(random_volume(np.int16, seed=1), tmp_path / "hbp.nrrd")
    portal = write_image(random_volume(np.int16, seed=2), tmp_path / "pv.nrrd")
    volumes, grid = read_study([hbp, portal])
    assert len(volumes) == 2 and grid.same_grid and grid.max_offset_mm < 1e-9
    shift_lps_mm = np.array([3.0, 0.0, 4.0])  # |shift| = 5 mm, the same at every voxel
    shifted = Geometry(OBLIQUE.shape, OBLIQUE.spacing_ijk_mm, tuple(np.add(OBLIQUE.origin_lps_mm, shift_lps_mm)),
                       OBLIQUE.direction_lps)
    moved = write_image(Volume(volumes[1].array, shifted), tmp_path / "moved.nrrd")
    _, grid = read_study([hbp, moved])
    assert not grid.same_grid
    assert grid.max_offset_mm == pytest.approx(5.0, abs=1e-9)
    assert grid.offsets_mm[0] == 0.0 and "moved.nrrd" in grid.text


@pytest.mark.realdata
def test_real_chaos_image_and_labels_share_a_grid(shared_data):
    image_path = shared_data / "chaos_t2" / "chaos02_t2spir.nii.gz"
    label_path = shared_data / "chaos_t2" / "chaos02_labels.nii.gz"
    (info,) = describe_path(image_path)
    assert info.usable and info.sequence_hint == "t2"
    volumes, grid = read_study([image_path, label_path])
    assert grid.same_grid
    assert volumes[0].array.dtype == np.int16 and volumes[1].array.dtype == np.uint8
    assert set(np.unique(volumes[1].array)) <= {0, 1, 2, 3, 4}
    # README: resampled to 1.25 x 1.25 x 7.7 mm
    np.testing.assert_allclose(volumes[0].geometry.spacing_ijk_mm, (1.25, 1.25, 7.7), atol=0.01)


@pytest.mark.realdata
def test_real_ct_example_is_described_as_ct(shared_data):
    (info,) = describe_path(shared_data / "totalseg_ct" / "example_ct_sm.nii.gz")
    assert info.usable and info.sequence_hint == "ct"
    assert info.shape_kji == (30, 101, 122)  # README: 122 x 101 x 30 at 3 mm
    np.testing.assert_allclose(info.spacing_ijk_mm, (3.0, 3.0, 3.0), atol=0.01)
