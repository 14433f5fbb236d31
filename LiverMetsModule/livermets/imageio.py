"""Read and write 3D images: NIfTI, NRRD, MetaImage and DICOM series, with exact LPS geometry.

* :func:`read_image` returns a :class:`~livermets.geometry.Volume` whose array keeps the file's
  pixel type (int16 MRI stays int16, uint8 labels stay uint8, float stays float; DICOM with a
  RescaleSlope/Intercept comes back as GDCM converts it, e.g. int32 HU for CT). Callers that need
  float convert themselves. Direction cosines are kept as stored: nothing is reoriented.
* Every problem with the input raises :class:`~livermets.errors.InputError` with one sentence.
* :func:`write_image` / :func:`write_label` write atomically (temporary name, then rename), so a
  failed or interrupted write never leaves a half file under the final name.

NIfTI stores its geometry in 32-bit floats, so a NIfTI round trip keeps positions to about
1e-5 mm at 100 mm from the origin; NRRD and MetaImage keep them to about 1e-12.
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from livermets import dicom
from livermets.dicom_tags import sequence_hint_from_tags
from livermets.errors import InputError
from livermets.geometry import Geometry, Volume
from livermets.imageinfo import OBLIQUE_TOLERANCE_DEG, ImageInfo, obliquity_deg, problem_with_size
from livermets.sequences import CT

__all__ = ["read_image", "write_image", "write_label", "describe_path", "read_study", "ImageInfo", "StudyGrid",
           "image_format"]

LOG = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
StudyItem = Union[PathLike, Tuple[PathLike, Union[str, int, None]]]

# file name ending -> format; ".nii.gz" is tested before the single suffixes.
FORMATS: dict[str, str] = {
    ".nii.gz": "NIfTI", ".nii": "NIfTI", ".nrrd": "NRRD", ".nhdr": "NRRD",
    ".mha": "MetaImage", ".mhd": "MetaImage", ".dcm": "DICOM", ".ima": "DICOM",
}
WRITABLE = ("NIfTI", "NRRD", "MetaImage")
# A file without a modality whose values reach this low holds Hounsfield units (air is -1000 HU).
CT_AIR_BELOW = -500.0


def image_format(path: PathLike) -> str:
    """``"NIfTI"``, ``"NRRD"``, ``"MetaImage"`` or ``"DICOM"`` from the name (or the DICOM marker).

    Raises :class:`InputError` for any other file.
    """
    path = Path(path)
    name = path.name.lower()
    for ending, kind in FORMATS.items():
        if name.endswith(ending):
            return kind
    if "." not in name and dicom.is_dicom_file(path):
        return "DICOM"
    raise InputError(f"{path} has an unsupported file type; use NIfTI (.nii, .nii.gz), NRRD (.nrrd, .nhdr), "
                     "MetaImage (.mha, .mhd) or a DICOM file or folder")


def _nifti_truncation(path: Path) -> Optional[str]:
    """Why a NIfTI file holds fewer bytes than its header promises, or ``None`` when complete.

    ITK silently fills missing NIfTI data with zeros, so the length is checked here.
    """
    compressed = path.name.lower().endswith(".gz")
    try:
        with (gzip.open(path, "rb") if compressed else open(path, "rb")) as stream:
            header = stream.read(540)
            actual = len(header)
            while True:
                chunk = stream.read(1 << 22)
                if not chunk:
                    break
                actual += len(chunk)
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        return f"its compressed data is cut short or damaged ({error})"
    for endian in "<>":
        (size,) = struct.unpack(endian + "i", header[:4])
        if size == 348:
            dims = struct.unpack(endian + "8h", header[40:56])
            (bits,) = struct.unpack(endian + "h", header[72:74])
            (offset,) = struct.unpack(endian + "f", header[108:112])
            break
        if size == 540:
            dims = struct.unpack(endian + "8q", header[16:80])
            (bits,) = struct.unpack(endian + "h", header[14:16])
            (offset,) = struct.unpack(endian + "q", header[168:176])
            break
    else:
        return None  # ITK accepted it; leave the judgement to ITK
    voxels = int(np.prod([max(int(d), 1) for d in dims[1:1 + max(1, min(int(dims[0]), 7))]]))
    expected = int(offset) + voxels * int(bits) // 8
    if actual < expected:
        return f"it holds {actual} bytes but its header needs {expected} (the file is truncated)"
    return None


def _read_file(path: Path, kind: str):
    """Read a NIfTI / NRRD / MetaImage file fully as a SimpleITK image, or raise InputError."""
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        with dicom.itk_warnings_off():
            reader.ReadImageInformation()
            if kind == "NIfTI":
                truncation = _nifti_truncation(path)
                if truncation:
                    raise InputError(f"{path} is a damaged NIfTI file: {truncation}; copy or export it again")
            return reader.Execute()
    except RuntimeError as error:
        LOG.debug("reading %s failed: %s", path, error)
        raise InputError(f"{path} could not be read as {kind}: the file is damaged, incomplete or not an image; "
                         "copy or export it again") from None


def _existing(path: PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist; check the path")
    return path


def read_image(path: PathLike, *, series: Union[str, int, None] = None) -> Volume:
    """Read a 3D image file or one series of a DICOM folder.

    Parameters
    ----------
    path : path
        NIfTI (.nii, .nii.gz), NRRD (.nrrd, .nhdr), MetaImage (.mha, .mhd), a DICOM file (its whole
        series is read from the same folder) or a DICOM folder.
    series : str or int, optional
        For a DICOM folder holding several series: series number, SeriesInstanceUID or description.

    Returns
    -------
    Volume with the file's pixel type and LPS geometry as stored (see the module notes).

    Raises
    ------
    InputError
        Missing path, unsupported type, damaged or truncated file, not 3D (2D, 4D, one slice, colour),
        a folder without DICOM images, or a folder with several series and no ``series``.
    """
    path = _existing(path)
    if path.is_dir():
        return dicom.read_series(path, series)
    kind = image_format(path)
    if kind == "DICOM":
        return dicom.read_dicom_file(path)
    if series is not None:
        raise InputError(f"{path} is a single {kind} file; --series applies only to DICOM folders")
    image = _read_file(path, kind)
    problem = problem_with_size(image.GetSize(), image.GetNumberOfComponentsPerPixel())
    if problem:
        raise InputError(f"{path} cannot be used: {problem}")
    return Volume.from_sitk(image)


def _file_info(path: Path, kind: str) -> ImageInfo:
    import SimpleITK as sitk

    image = _read_file(path, kind)
    size = image.GetSize()
    direction = tuple(float(d) for d in image.GetDirection())
    hint, reason = sequence_hint_from_tags({"SeriesDescription": path.name}, text_source="file name")
    if hint is None and image.GetNumberOfComponentsPerPixel() == 1:
        lowest = float(sitk.GetArrayViewFromImage(image).min())
        if lowest <= CT_AIR_BELOW:
            hint, reason = CT, f"values go down to {lowest:g}, like air in Hounsfield units (MR has no such values)"
    return ImageInfo(
        path=str(path), series_uid=None, series_number=None, description="", modality=None,
        sequence_hint=hint, hint_reason=reason, shape_kji=tuple(int(n) for n in reversed(size)),
        spacing_ijk_mm=tuple(float(s) for s in image.GetSpacing()),
        origin_lps_mm=tuple(float(o) for o in image.GetOrigin()), direction_lps=direction,
        pixel_type=image.GetPixelIDTypeAsString(), n_files=1,
        oblique=len(direction) == 9 and obliquity_deg(direction) > OBLIQUE_TOLERANCE_DEG,
        problem=problem_with_size(size, image.GetNumberOfComponentsPerPixel()))


def describe_path(path: PathLike) -> list[ImageInfo]:
    """What a file or folder holds: one :class:`ImageInfo` per file, or per series of a DICOM folder.

    Image files are read completely (so damaged data is found); DICOM series only by the headers
    of their first and last file. 2D / 4D files are described with ``problem`` set rather than refused.
    """
    path = _existing(path)
    if path.is_dir():
        return dicom.list_series(path)
    kind = image_format(path)
    if kind == "DICOM":
        volume_series = dicom.series_uid_of_file(path)
        return [info for info in dicom.list_series(path.parent) if info.series_uid == volume_series]
    return [_file_info(path, kind)]


def _move_all(source: Path, target: Path, main_name: str) -> None:
    """Move every file of ``source`` into ``target``; the main (header) file last."""
    names = sorted(entry.name for entry in source.iterdir())
    for name in [n for n in names if n != main_name] + [main_name]:
        os.replace(source / name, target / name)


def write_image(volume: Volume, path: PathLike, *, like: Optional[Volume] = None) -> Path:
    """Write ``volume`` to a NIfTI / NRRD / MetaImage file atomically; returns the path.

    Parameters
    ----------
    volume : Volume
        Array ``[k, j, i]`` and its geometry; bool arrays are written as uint8.
    path : path
        Target; its ending picks the format. Compressed except plain ``.nii``. Parent folders are created.
    like : Volume, optional
        The input this result was computed from: its geometry is written (exactly as read) and
        ``volume.array`` must have its shape. Use it so results sit on the input's grid.
    """
    import SimpleITK as sitk

    path = Path(path)
    kind = image_format(path)
    if kind not in WRITABLE:
        raise ValueError(f"cannot write {kind} to {path}; use livermets.dicom.write_series for DICOM")
    geometry = volume.geometry
    if like is not None:
        if tuple(volume.array.shape) != like.geometry.shape:
            raise ValueError(f"array shape {volume.array.shape} differs from the reference grid {like.geometry.shape}")
        geometry = like.geometry
    array = np.ascontiguousarray(volume.array)
    if array.dtype == bool:
        array = array.astype(np.uint8)
    image = sitk.GetImageFromArray(array)
    geometry.apply_to_sitk(image)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=".livermets-", dir=path.parent))
    try:
        sitk.WriteImage(image, str(temporary / path.name), not path.name.lower().endswith(".nii"))
        _move_all(temporary, path.parent, path.name)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return path


def write_label(array: np.ndarray, geometry: Geometry, path: PathLike) -> Path:
    """Write an integer label map ``[k, j, i]`` on ``geometry`` as uint8 (max <= 255) or uint16."""
    array = np.asarray(array)
    if not (array.dtype == bool or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"a label map must hold integers, got {array.dtype}")
    low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
    if low < 0 or high > 65535:
        raise ValueError(f"label values must lie in 0..65535, got {low}..{high}")
    dtype = np.uint8 if high <= 255 else np.uint16
    return write_image(Volume(array.astype(dtype), geometry), path)


@dataclass(frozen=True)
class StudyGrid:
    """Whether the volumes of a study share one voxel grid.

    Attributes
    ----------
    same_grid : bool
        All volumes have the first one's size, direction and voxel centres (within 1e-3 mm).
    max_offset_mm : float
        Largest distance between corresponding corner voxel centres of any volume and the first.
    offsets_mm : tuple of float
        That distance for each volume (0 for the first).
    text : str
        One sentence for the user.
    """

    same_grid: bool
    max_offset_mm: float
    offsets_mm: tuple[float, ...]
    text: str


def _corner_offset_mm(first: Geometry, other: Geometry) -> float:
    corners = np.array([[k, j, i] for k in (0, 1) for j in (0, 1) for i in (0, 1)], dtype=float)
    first_points = first.kji_to_ras(corners * (np.asarray(first.shape) - 1))
    other_points = other.kji_to_ras(corners * (np.asarray(other.shape) - 1))
    return float(np.linalg.norm(first_points - other_points, axis=1).max())


def study_grid(volumes: Sequence[Volume], names: Sequence[str]) -> StudyGrid:
    """Compare the grids of ``volumes`` with the first one."""
    first = volumes[0].geometry
    offsets = tuple(_corner_offset_mm(first, volume.geometry) for volume in volumes)
    differing = [index for index, volume in enumerate(volumes) if not first.same_grid(volume.geometry)]
    if not differing:
        text = f"all {len(volumes)} volumes share one grid (largest corner offset {max(offsets):.3g} mm)"
    else:
        details = "; ".join(f"{names[index]} (size {' x '.join(map(str, volumes[index].geometry.shape[::-1]))}, "
                            f"corners up to {offsets[index]:.3g} mm away)" for index in differing)
        text = (f"{len(differing)} of {len(volumes)} volumes are not on the grid of {names[0]}: {details}; "
                "resample them onto one grid before combining")
    return StudyGrid(same_grid=not differing, max_offset_mm=max(offsets), offsets_mm=offsets, text=text)


def read_study(paths: Sequence[StudyItem]) -> tuple[list[Volume], StudyGrid]:
    """Read several phases of one study and say whether they share a voxel grid.

    Each item is an image path, or ``(dicom_folder, series)``.
    """
    if not paths:
        raise InputError("no images given; pass at least one image file or DICOM folder")
    volumes, names = [], []
    for item in paths:
        if isinstance(item, tuple):
            folder, series = item
            volumes.append(read_image(folder, series=series))
            names.append(f"{folder} series {series}")
        else:
            volumes.append(read_image(item))
            names.append(str(item))
    return volumes, study_grid(volumes, names)
