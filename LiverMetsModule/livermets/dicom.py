"""DICOM series: list the series of a folder, read one as a 3D volume, write one (for tests and export).

Reading uses SimpleITK's GDCM reader, so no pydicom is needed. Slices are sorted by GDCM along
the slice normal; the volume keeps the direction cosines stored in ImageOrientationPatient
(oblique stays oblique) and RescaleSlope / RescaleIntercept are applied by GDCM (CT in HU).
Only the files directly inside the folder are considered (no recursion into subfolders).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence, Union

import numpy as np

from livermets.dicom_tags import TAG_KEYWORDS, keyword_tags, sequence_hint_from_tags
from livermets.dicom_write import write_series
from livermets.errors import InputError
from livermets.geometry import Volume
from livermets.imageinfo import OBLIQUE_TOLERANCE_DEG, ImageInfo, obliquity_deg, problem_with_size

__all__ = ["list_series", "read_series", "read_dicom_file", "select_series", "sequence_hint_from_tags",
           "write_series", "is_dicom_file", "series_uid_of_file", "itk_warnings_off"]

LOG = logging.getLogger(__name__)

SeriesChoice = Union[str, int, None]

IMAGE_FILE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
# Slice gaps may differ from their mean by this fraction before the series counts as uneven.
GAP_TOLERANCE = 0.1


def is_dicom_file(path: Path) -> bool:
    """True when the file carries the DICOM Part 10 marker ("DICM" at byte 128)."""
    try:
        with open(path, "rb") as stream:
            stream.seek(128)
            return stream.read(4) == b"DICM"
    except OSError:
        return False


def _sitk():
    import SimpleITK as sitk

    return sitk


@contextmanager
def itk_warnings_off() -> Iterator[None]:
    """Silence ITK's warnings (printed straight to stderr) inside the block; our errors say what matters."""
    sitk = _sitk()
    previous = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(previous)


def _header(path: str):
    """An ImageFileReader that has read the header (tags included) of one DICOM file."""
    sitk = _sitk()
    reader = sitk.ImageFileReader()
    reader.SetImageIO("GDCMImageIO")
    reader.SetFileName(path)
    reader.LoadPrivateTagsOn()
    reader.ReadImageInformation()
    return reader


def _tags_of(reader) -> dict[str, str]:
    """The tags of :data:`TAG_KEYWORDS` present in the header, by keyword; undecodable values are skipped."""
    keys = set(reader.GetMetaDataKeys())
    tags = {}
    for key in TAG_KEYWORDS:
        if key in keys:
            try:
                tags[key] = reader.GetMetaData(key)
            except (UnicodeDecodeError, RuntimeError):
                LOG.debug("tag %s could not be decoded as text", key)
    return keyword_tags(tags)


def _no_images_message(folder: Path) -> str:
    """One sentence explaining why a folder yields no DICOM image series."""
    entries = sorted(folder.iterdir())
    files = [entry for entry in entries if entry.is_file() and not entry.name.startswith(".")]
    subfolders = [entry for entry in entries if entry.is_dir() and not entry.name.startswith(".")]
    if not files and not subfolders:
        return f"folder {folder} is empty; pass a DICOM series folder or an image file"
    images = [entry for entry in files if entry.name.lower().endswith(IMAGE_FILE_SUFFIXES)]
    if images:
        return (f"folder {folder} holds no DICOM images but {len(images)} image file(s) such as "
                f"'{images[0].name}'; pass the file itself")
    dicom_files = [entry for entry in files if is_dicom_file(entry)]
    if dicom_files:
        return (f"folder {folder} holds {len(dicom_files)} DICOM file(s) but none is an image "
                "(they may be reports, segmentations or presentation states); pass the folder of an image series")
    if not files:
        return (f"folder {folder} holds no files, only {len(subfolders)} subfolder(s) such as "
                f"'{subfolders[0].name}'; pass the folder of one series")
    return f"folder {folder} holds no DICOM images ({len(files)} file(s), none of them DICOM)"


def _series_info(folder: Path, series_uid: str, files: Sequence[str]) -> ImageInfo:
    """Describe one series from the headers of its first and last file (as ITK will read it)."""
    sitk = _sitk()
    first = _header(files[0])
    tags = _tags_of(first)
    size = list(first.GetSize())
    spacing = list(first.GetSpacing())
    origin = tuple(first.GetOrigin())
    direction = tuple(first.GetDirection())
    components = first.GetNumberOfComponents()
    if len(files) > 1:
        # ITK's series reader: slice axis = slice normal, spacing = projected first-to-last distance.
        normal = np.asarray(direction, dtype=float).reshape(3, 3)[:, 2]
        last_origin = np.asarray(_header(files[-1]).GetOrigin(), dtype=float)
        step_mm = float(normal @ (last_origin - np.asarray(origin))) / (len(files) - 1)
        size = size[:2] + [len(files)]
        spacing = spacing[:2] + [abs(step_mm) if step_mm != 0 else 1.0]
    elif len(size) == 3 and size[2] == 1:
        size = size[:2] + [1]
    problem = problem_with_size(tuple(size), components)
    if tags.get("Modality", "").upper() not in ("", "MR", "CT"):
        problem = problem or f"its modality is {tags['Modality']}; LiverMets reads MR and CT images"
    hint, reason = sequence_hint_from_tags(tags)
    number = tags.get("SeriesNumber", "")
    return ImageInfo(
        path=str(folder), series_uid=series_uid,
        series_number=int(float(number)) if number.strip().lstrip("+-").replace(".", "", 1).isdigit() else None,
        description=tags.get("SeriesDescription", ""), modality=tags.get("Modality") or None,
        sequence_hint=hint, hint_reason=reason,
        shape_kji=tuple(int(n) for n in reversed(size)), spacing_ijk_mm=tuple(float(s) for s in spacing),
        origin_lps_mm=tuple(float(o) for o in origin), direction_lps=tuple(float(d) for d in direction),
        pixel_type=sitk.GetPixelIDValueAsString(first.GetPixelID()), n_files=len(files),
        oblique=len(direction) == 9 and obliquity_deg(direction) > OBLIQUE_TOLERANCE_DEG,
        problem=problem)


def list_series(folder) -> list[ImageInfo]:
    """Describe every DICOM image series directly inside ``folder``, ordered by series number.

    Raises :class:`InputError` when the folder is missing or holds no DICOM image.
    """
    sitk = _sitk()
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"folder {folder} does not exist; check the path")
    infos = []
    with itk_warnings_off():
        for uid in sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)):
            files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid)
            try:
                infos.append(_series_info(folder, uid, files))
            except RuntimeError as error:
                LOG.debug("skipping series %s: %s", uid, error)
    if not infos:
        raise InputError(_no_images_message(folder))
    return sorted(infos, key=lambda info: (info.series_number is None, info.series_number or 0, info.series_uid))


def _series_list_text(infos: Sequence[ImageInfo]) -> str:
    return ", ".join(f"{'?' if info.series_number is None else info.series_number} '{info.description}'"
                     for info in infos)


def select_series(infos: Sequence[ImageInfo], series: SeriesChoice, folder) -> ImageInfo:
    """Pick one series by number, UID or exact description (case-insensitive).

    With ``series=None`` the folder must hold exactly one series; otherwise the
    :class:`InputError` lists them and says to pass ``--series``.
    """
    if series is None:
        if len(infos) == 1:
            return infos[0]
        raise InputError(f"folder {folder} holds {len(infos)} series ({_series_list_text(infos)}); "
                         "choose one with --series NUMBER (or its UID)")
    text = str(series).strip()
    matches = [info for info in infos if info.series_uid == text]
    if not matches and text.lstrip("+-").isdigit():
        matches = [info for info in infos if info.series_number == int(text)]
    if not matches:
        matches = [info for info in infos if info.description.lower() == text.lower()]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise InputError(f"folder {folder} has no series '{text}'; it holds {_series_list_text(infos)}")
    raise InputError(f"folder {folder} has {len(matches)} series matching '{text}'; "
                     f"pass the series UID instead ({', '.join(info.series_uid or '?' for info in matches)})")


def _check_slice_positions(reader, n_slices: int, direction_lps: Sequence[float], where: str) -> None:
    """Refuse series whose slices overlap, are unevenly spaced (missing slice) or sheared (gantry tilt)."""
    if n_slices < 3:
        return
    positions = []
    for index in range(n_slices):
        if not reader.HasMetaDataKey(index, "0020|0032"):
            return
        positions.append([float(v) for v in reader.GetMetaData(index, "0020|0032").split("\\")])
    positions = np.asarray(positions)
    normal = np.asarray(direction_lps, dtype=float).reshape(3, 3)[:, 2]
    gaps_mm = np.diff(positions @ normal)
    if np.abs(gaps_mm).min() < 1e-3:
        raise InputError(f"{where}: several images share one slice position (several echoes, b-values or phases "
                         "in one series); export each as its own series or pick one with --series")
    mean_gap = float(np.mean(gaps_mm))
    if np.abs(gaps_mm - mean_gap).max() > GAP_TOLERANCE * abs(mean_gap):
        raise InputError(f"{where}: slice gaps vary from {np.abs(gaps_mm).min():.2f} to {np.abs(gaps_mm).max():.2f} mm "
                         "(a slice is missing or the spacing changes); export the complete series again")
    step = (positions[-1] - positions[0]) / (n_slices - 1)
    angle_deg = float(np.degrees(np.arccos(min(1.0, abs(step @ normal) / np.linalg.norm(step)))))
    if angle_deg > OBLIQUE_TOLERANCE_DEG:
        raise InputError(f"{where}: slices are sheared by {angle_deg:.1f} degrees (gantry tilt); "
                         "resample the series to a regular grid first (e.g. in 3D Slicer)")


def _read_files(files: Sequence[str], info: ImageInfo) -> Volume:
    sitk = _sitk()
    where = f"series {info.series_number} '{info.description}' in {info.path}"
    if info.problem:
        raise InputError(f"{where} cannot be used: {info.problem}")
    reader = sitk.ImageSeriesReader()
    reader.SetImageIO("GDCMImageIO")
    reader.SetFileNames(list(files))
    reader.MetaDataDictionaryArrayUpdateOn()
    try:
        with itk_warnings_off():
            image = reader.Execute()
    except RuntimeError as error:
        detail = str(error).strip().splitlines()[-1]
        raise InputError(f"{where} could not be read ({detail}); check that the files are complete") from None
    if image.GetDimension() != 3:
        raise InputError(f"{where} is not a 3D image")
    if len(files) > 1:
        _check_slice_positions(reader, len(files), image.GetDirection(), where)
    return Volume.from_sitk(image)


def read_series(folder, series: SeriesChoice = None) -> Volume:
    """Read one series of a DICOM folder as a 3D volume (LPS geometry as stored, rescale applied).

    ``series`` is a series number, a SeriesInstanceUID or an exact series description; it may be
    omitted when the folder holds a single series.
    """
    sitk = _sitk()
    infos = list_series(folder)
    info = select_series(infos, series, folder)
    with itk_warnings_off():
        files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), info.series_uid)
    return _read_files(files, info)


def _file_header(path: Path):
    try:
        with itk_warnings_off():
            return _header(str(path))
    except RuntimeError:
        raise InputError(f"{path} is not a readable DICOM image (it may be a report, a segmentation "
                         "or a damaged file)") from None


def series_uid_of_file(path) -> str:
    """SeriesInstanceUID of one DICOM image file (InputError if it is not a readable image)."""
    path = Path(path)
    uid = _tags_of(_file_header(path)).get("SeriesInstanceUID")
    if not uid:
        raise InputError(f"{path} is a DICOM image without a series UID; pass its folder instead")
    return uid


def read_dicom_file(path) -> Volume:
    """Read the series a single DICOM file belongs to (a multi-frame file is read alone)."""
    path = Path(path)
    header = _file_header(path)
    size = header.GetSize()
    if len(size) == 3 and size[2] > 1:
        info = _series_info(path.parent, _tags_of(header).get("SeriesInstanceUID", ""), [str(path)])
        return _read_files([str(path)], info)
    return read_series(path.parent, series_uid_of_file(path))
