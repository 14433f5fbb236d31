"""Write a 3D volume as a classic DICOM image series (one file per slice) with SimpleITK / GDCM.

Used to build realistic test folders and to export volumes. Each slice carries
ImagePositionPatient / ImageOrientationPatient from the volume's LPS geometry (oblique grids
included), PixelSpacing, SliceThickness and SpacingBetweenSlices. UIDs are derived from the
content (``2.25.<hash>``), so the same input gives the same UIDs.

DICOM readers put the slice axis along row x column. A left-handed grid (k opposite to that,
common in NIfTI files) is therefore written with its slices in reverse order: the files describe
the same voxels in space, and reading them back gives ``array[::-1]`` on the mirrored k axis.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Mapping, Optional

import numpy as np

from livermets.dicom_tags import TAG_KEYWORDS
from livermets.geometry import Geometry, Volume

_KEYWORD_TAGS: dict[str, str] = {keyword: key for key, keyword in TAG_KEYWORDS.items()}
_KEYWORD_TAGS.update({
    "PatientName": "0010|0010", "PatientID": "0010|0020", "PatientBirthDate": "0010|0030",
    "PatientSex": "0010|0040", "StudyDate": "0008|0020", "StudyTime": "0008|0030",
    "SeriesDate": "0008|0021", "StudyID": "0020|0010", "AccessionNumber": "0008|0050",
    "StudyDescription": "0008|1030", "Manufacturer": "0008|0070", "BodyPartExamined": "0018|0015",
    "RepetitionTime": "0018|0080", "EchoTime": "0018|0081", "MagneticFieldStrength": "0018|0087",
    "KVP": "0018|0060", "ConvolutionKernel": "0018|1210", "PatientPosition": "0018|5100",
})

_DEFAULT_TAGS: dict[str, str] = {
    "0010|0010": "LiverMets^Synthetic", "0010|0020": "LIVERMETS-SYNTHETIC", "0008|0020": "20260101",
    "0008|0030": "120000", "0020|0010": "1", "0008|0050": "", "0018|5100": "HFS",
}
_SOP_CLASS = {"MR": "1.2.840.10008.5.1.4.1.1.4", "CT": "1.2.840.10008.5.1.4.1.1.2"}
CT_INTERCEPT = -1024


def new_uid(*parts: object) -> str:
    """A DICOM UID under the UUID-derived root 2.25 from a hash of ``parts`` (deterministic)."""
    digest = hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).digest()
    return "2.25." + str(int.from_bytes(digest[:16], "big"))


def _tag_key(name: str) -> str:
    if "|" in name:
        return name.lower()
    if name not in _KEYWORD_TAGS:
        raise ValueError(f"unknown DICOM keyword {name!r}; give the tag as 'gggg|eeee' instead")
    return _KEYWORD_TAGS[name]


def _ds(value: float) -> str:
    """A DICOM decimal string (at most 16 characters)."""
    text = f"{value:.10g}"
    return text if len(text) <= 16 else f"{value:.8g}"


def _pixels_and_rescale(array: np.ndarray, modality: str) -> tuple[np.ndarray, dict[str, str]]:
    """Real-world values to hand GDCM, plus the tags that make it store them exactly (or within slope/2).

    GDCM applies the inverse of RescaleSlope / RescaleIntercept found in the tags when it writes.
    """
    values = np.asarray(array)
    if values.dtype == bool:
        values = values.astype(np.uint8)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    integral = np.issubdtype(values.dtype, np.integer) or bool(np.all(np.mod(values, 1) == 0))
    if integral and modality == "CT" and low >= CT_INTERCEPT and high - CT_INTERCEPT <= 32767:
        return values.astype(np.int16), {"0028|1052": str(CT_INTERCEPT), "0028|1053": "1", "0028|1054": "HU"}
    if integral and values.dtype in (np.uint8, np.int8):
        return values, {}
    if integral and -32768 <= low and high <= 32767:
        return values.astype(np.int16), {}
    if integral and 0 <= low and high <= 65535:
        return values.astype(np.uint16), {}
    slope = (high - low) / 65000.0 if high > low else 1.0
    intercept, slope = float(_ds(low)), float(_ds(slope))
    return values.astype(np.float64), {
        "0028|1052": _ds(intercept), "0028|1053": _ds(slope),
        "0028|0100": "16", "0028|0101": "16", "0028|0102": "15", "0028|0103": "0"}


def write_series(volume: Volume, folder, *, tags: Optional[Mapping[str, str]] = None, series_number: int = 1,
                 series_description: str = "", modality: str = "MR", study_uid: Optional[str] = None,
                 frame_of_reference_uid: Optional[str] = None, series_uid: Optional[str] = None) -> list[Path]:
    """Write ``volume`` as one DICOM file per slice ``k`` into ``folder`` (created if needed).

    Parameters
    ----------
    volume : Volume
        3D image; integer values (or integral floats) are stored exactly as int16 / uint16; other
        floats through RescaleSlope / Intercept (error at most slope / 2). CT uses intercept -1024.
    folder : path
        Target folder; files are named ``s<series>_<slice>.dcm`` so several series can share it.
    tags : mapping, optional
        Extra tags by DICOM keyword (``"ContrastBolusAgent"``) or ``"gggg|eeee"``; they override defaults.
    series_number, series_description, modality : DICOM SeriesNumber, SeriesDescription, Modality (MR or CT).
    study_uid, frame_of_reference_uid, series_uid : str, optional
        Give the same study / frame-of-reference UIDs to series that belong together; default: derived from content.

    Returns
    -------
    The written files; entry ``k`` holds slice ``k`` of ``volume`` (also for a left-handed grid,
    whose files are numbered the other way). All files appear at once (written to a temporary
    folder, then moved).
    """
    modality = modality.upper()
    if modality not in _SOP_CLASS:
        raise ValueError(f"modality must be MR or CT, got {modality!r}")
    left_handed = np.linalg.det(volume.geometry.direction_matrix_lps) < 0
    geometry = _mirrored_k(volume.geometry) if left_handed else volume.geometry
    direction = geometry.direction_matrix_lps
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    values, pixel_tags = _pixels_and_rescale(volume.array[::-1] if left_handed else volume.array, modality)
    content = hashlib.sha256(np.ascontiguousarray(volume.array).tobytes()).hexdigest()
    identity = (content, geometry, series_number, series_description, modality)
    study_uid = study_uid or new_uid("study", *identity)
    series_uid = series_uid or new_uid("series", *identity)
    frame_uid = frame_of_reference_uid or new_uid("frame", study_uid, geometry)

    common = dict(_DEFAULT_TAGS)
    common.update({
        "0008|0060": modality, "0008|0016": _SOP_CLASS[modality], "0008|0008": "ORIGINAL\\PRIMARY\\AXIAL",
        "0020|000d": study_uid, "0020|000e": series_uid, "0020|0052": frame_uid,
        "0020|0011": str(int(series_number)), "0008|103e": series_description,
        "0020|0037": "\\".join(_ds(v) for v in list(direction[:, 0]) + list(direction[:, 1])),
        "0018|0050": _ds(geometry.spacing_ijk_mm[2]), "0018|0088": _ds(geometry.spacing_ijk_mm[2]),
    })
    common.update(pixel_tags)
    for name, value in (tags or {}).items():
        common[_tag_key(name)] = str(value)

    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.ascontiguousarray(values))
    geometry.apply_to_sitk(image)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    normal = direction[:, 2]
    names = [f"s{int(series_number):03d}_{k + 1:04d}.dcm" for k in range(geometry.shape[0])]
    temporary = Path(tempfile.mkdtemp(prefix=".livermets-", dir=folder))
    try:
        for k, name in enumerate(names):
            position = np.asarray(image.TransformIndexToPhysicalPoint((0, 0, k)))
            slice_image = image[:, :, k]
            for key, value in common.items():
                slice_image.SetMetaData(key, value)
            slice_image.SetMetaData("0008|0018", new_uid("instance", series_uid, k))
            slice_image.SetMetaData("0020|0013", str(k + 1))
            slice_image.SetMetaData("0020|0032", "\\".join(_ds(v) for v in position))
            slice_image.SetMetaData("0020|1041", _ds(float(position @ normal)))
            writer.SetFileName(str(temporary / name))
            writer.Execute(slice_image)
        for name in names:
            os.replace(temporary / name, folder / name)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    paths = [folder / name for name in names]
    return paths[::-1] if left_handed else paths


def _mirrored_k(geometry: Geometry) -> Geometry:
    """The same voxel grid with the k axis running the other way (origin at the last slice)."""
    direction = geometry.direction_matrix_lps.copy()
    last_slice_lps = geometry.ijk_to_lps() @ np.array([0.0, 0.0, geometry.shape[0] - 1, 1.0])
    direction[:, 2] *= -1.0
    return Geometry(geometry.shape, geometry.spacing_ijk_mm, tuple(last_slice_lps[:3]), tuple(direction.ravel()))
