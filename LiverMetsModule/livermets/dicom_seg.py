"""DICOM Segmentation (SEG) export of a result folder, referencing the source DICOM series.

Segments (binary, may overlap): 1 liver, 2 portal veins, 3 hepatic veins and IVC, then one
segment per lesion ("Lesion n", tracking id "Lesion n" and a tracking UID, so PACS and viewers
can follow each lesion); each with the SNOMED CT category and type of
:data:`livermets.labels.STRUCTURES`. Empty structures are left out.

The source series is the one in the DICOM folder on the result's grid (same size and voxel
centres); when several phases share that grid, the one whose description names the result's
sequence wins, or the caller names it. Frames are matched to source slices by position, and the
file is read back and compared voxel by voxel before it is kept.

highdicom (Herrmann et al., "Highdicom: a Python library for standardized encoding of image
annotations and machine learning model outputs in pathology and radiology", J Digit Imaging 2022)
and pydicom are optional: ``pip install highdicom``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from livermets import __version__
from livermets.errors import InputError, LiverMetsError
from livermets.geometry import LPS_TO_RAS, Geometry
from livermets.labels import STRUCTURES
from livermets.progress import ProgressCallback, report

INSTALL_HINT = "pip install highdicom"  # in Slicer: slicer.util.pip_install("highdicom")
POSITION_TOLERANCE_MM = 0.01


@dataclass(frozen=True)
class SegmentMask:
    """One segment to export: label, structure key (:data:`STRUCTURES`), tracking id, [k, j, i] mask."""

    label: str
    structure: str
    tracking_id: Optional[str]
    mask: np.ndarray


@dataclass(frozen=True)
class SegExport:
    """What :func:`write_dicom_seg` wrote: file, referenced series UID, segment labels in number order."""

    path: Path
    source_series_uid: str
    source_description: str
    segment_labels: tuple[str, ...]


def _highdicom():
    try:
        import highdicom
        import pydicom
    except ImportError as error:
        raise LiverMetsError(f"DICOM SEG export needs the optional package highdicom ({error.name} is "
                             f"missing); install it with '{INSTALL_HINT}'") from error
    return highdicom, pydicom


def result_segments(result_dir: Path) -> tuple[Geometry, list[SegmentMask]]:
    """Segments of a result folder in export order, with the common grid (empty ones left out)."""
    from livermets.models import result_structures

    geometry, structures = result_structures(Path(result_dir))
    segments = []
    for structure in structures:
        if structure.key.startswith("lesion_"):
            segments.append(SegmentMask(structure.name, "lesion", structure.name, structure.mask))
        else:
            segments.append(SegmentMask(structure.name, structure.key, None, structure.mask))
    return geometry, segments


def series_geometry(info) -> Geometry:
    """Grid of a :class:`livermets.imageinfo.ImageInfo` series."""
    return Geometry(info.shape_kji, info.spacing_ijk_mm, info.origin_lps_mm, info.direction_lps)


def choose_source_series(dicom_dir: Path, geometry: Geometry, *, sequence: Optional[str] = None,
                         series: Optional[str] = None):
    """The series of ``dicom_dir`` the segmentation was made on (``ImageInfo``).

    ``series`` (number, UID or description) picks one explicitly. Otherwise: the series on the
    same grid as ``geometry``; among several, the one whose sequence hint is ``sequence``.
    Raises :class:`InputError` naming the series when none or several fit.
    """
    from livermets.dicom import list_series, select_series

    infos = list_series(Path(dicom_dir))
    if series is not None:
        chosen = select_series(infos, series, dicom_dir)
        if not series_geometry(chosen).same_grid(geometry):
            raise InputError(f"series '{chosen.description}' is not on the segmentation's grid "
                             f"{geometry.shape}; choose the series the segmentation was computed on")
        return chosen
    names = ", ".join(f"{info.series_number} '{info.description}'" for info in infos)
    on_grid = [info for info in infos if series_geometry(info).same_grid(geometry)]
    if not on_grid:
        raise InputError(f"no series in {dicom_dir} is on the segmentation's grid {geometry.shape} "
                         f"(series: {names}); give the DICOM folder the images came from")
    if len(on_grid) > 1 and sequence:
        same_sequence = [info for info in on_grid if info.sequence_hint == sequence]
        on_grid = same_sequence or on_grid
    if len(on_grid) > 1:
        choices = ", ".join(f"{info.series_number} '{info.description}'" for info in on_grid)
        raise InputError(f"several series fit the segmentation's grid ({choices}); choose one with --series")
    return on_grid[0]


def source_datasets(info) -> list:
    """pydicom headers (no pixels) of the series' files, in GDCM's slice order."""
    import SimpleITK as sitk

    _, pydicom = _highdicom()
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(info.path, info.series_uid)
    return [pydicom.dcmread(name, stop_before_pixels=True) for name in files]


def image_position_lps(dataset) -> list[float]:
    """ImagePositionPatient (LPS mm) of a classic image, or of the first frame of an enhanced one."""
    if "ImagePositionPatient" in dataset:
        return [float(v) for v in dataset.ImagePositionPatient]
    try:
        frame = dataset.PerFrameFunctionalGroupsSequence[0]
        return [float(v) for v in frame.PlanePositionSequence[0].ImagePositionPatient]
    except (AttributeError, IndexError) as error:
        raise InputError(f"DICOM image {dataset.get('SOPInstanceUID', '?')} has no image position; "
                         "it cannot be a source of a segmentation") from error


def slice_indices(datasets: list, geometry: Geometry) -> np.ndarray:
    """Grid slice index ``k`` of every source image, from ImagePositionPatient (LPS mm).

    Raises :class:`InputError` when an image is not exactly a slice of the grid.
    """
    positions_ras = np.array([image_position_lps(ds) for ds in datasets]) @ LPS_TO_RAS.T
    kji = geometry.ras_to_kji(positions_ras)
    k = np.rint(kji[:, 0]).astype(int)
    tolerance = POSITION_TOLERANCE_MM / min(geometry.spacing_mm)
    if (np.abs(kji - np.column_stack([k, np.zeros((len(k), 2))])).max() > tolerance
            or k.min() < 0 or k.max() >= geometry.shape[0] or len(set(k.tolist())) != len(k)):
        raise InputError("the DICOM slices do not line up with the segmentation's grid; "
                         "give the series the segmentation was computed on")
    return k


def _uid(*parts: object) -> str:
    """A deterministic DICOM UID under the UUID root 2.25 from ``parts``."""
    digest = hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).digest()
    return "2.25." + str(int.from_bytes(digest[:16], "big"))


def _segment_descriptions(segments: list[SegmentMask], series_uid: str) -> list:
    highdicom, pydicom = _highdicom()
    coded = highdicom.sr.CodedConcept
    # Algorithm family (DICOM CID 7162): intensity models and thresholds, no trained network.
    algorithm = highdicom.AlgorithmIdentificationSequence(
        name="LiverMets", version=__version__, family=pydicom.sr.codedict.codes.cid7162.HistogramAnalysis)
    descriptions = []
    for number, segment in enumerate(segments, start=1):
        structure = STRUCTURES[segment.structure]
        descriptions.append(highdicom.seg.SegmentDescription(
            segment_number=number, segment_label=segment.label,
            segmented_property_category=coded(structure.category.value, structure.category.scheme,
                                              structure.category.meaning),
            segmented_property_type=coded(structure.type.value, structure.type.scheme,
                                          structure.type.meaning),
            algorithm_type="AUTOMATIC", algorithm_identification=algorithm,
            tracking_uid=_uid("tracking", series_uid, segment.label) if segment.tracking_id else None,
            tracking_id=segment.tracking_id))
    return descriptions


def read_dicom_seg(path: Path, datasets: list, geometry: Geometry) -> dict[str, np.ndarray]:
    """Segments of a SEG file as [k, j, i] boolean masks on ``geometry``, by segment label.

    ``datasets`` are the referenced source images; frames are mapped to them by SOP instance UID.
    """
    highdicom, _ = _highdicom()
    seg = highdicom.seg.segread(str(path))
    k = slice_indices(datasets, geometry)
    numbers = list(seg.segment_numbers)
    pixels = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=[str(ds.SOPInstanceUID) for ds in datasets], segment_numbers=numbers,
        assert_missing_frames_are_empty=True)
    masks = {}
    for column, number in enumerate(numbers):
        mask = np.zeros(geometry.shape, dtype=bool)
        mask[k] = pixels[..., column] > 0
        masks[seg.get_segment_description(number).segment_label] = mask
    return masks


def write_dicom_seg(result_dir: Path, dicom_dir: Path, out_path: Path, *, series: Optional[str] = None,
                    sequence: Optional[str] = None, progress: Optional[ProgressCallback] = None) -> SegExport:
    """Write the result folder's segments as one DICOM SEG file referencing the source series.

    The file is written under a temporary name, read back and compared voxel by voxel with the
    result's label maps, and only then renamed to ``out_path``.
    """
    highdicom, _ = _highdicom()
    report(progress, 0.0, "reading the result folder")
    geometry, segments = result_segments(Path(result_dir))
    if not segments:
        raise InputError(f"{result_dir} holds no segmented structure to export")
    report(progress, 0.15, "finding the source series")
    info = choose_source_series(Path(dicom_dir), geometry, sequence=sequence, series=series)
    datasets = source_datasets(info)
    k = slice_indices(datasets, geometry)
    pixels = np.stack([segment.mask[k] for segment in segments], axis=-1).astype(np.uint8)

    report(progress, 0.35, f"encoding {len(segments)} segments")
    content = hashlib.sha256(pixels.tobytes()).hexdigest()
    seg = highdicom.seg.Segmentation(
        source_images=datasets, pixel_array=pixels, segmentation_type="BINARY",
        segment_descriptions=_segment_descriptions(segments, info.series_uid),
        series_instance_uid=_uid("seg-series", info.series_uid, content, __version__),
        series_number=int(info.series_number or 0) + 1000,
        sop_instance_uid=_uid("seg-instance", info.series_uid, content, __version__),
        instance_number=1, manufacturer="LiverMets", manufacturer_model_name="LiverMets",
        software_versions=__version__, device_serial_number="0",
        series_description="LiverMets segmentation", content_label="LIVERMETS",
        content_description="Liver, vessels and metastases (automatic)", omit_empty_frames=True)

    out_path = Path(out_path)
    temporary = out_path.with_name(f".{out_path.name}.part")
    try:
        seg.save_as(str(temporary))
        report(progress, 0.75, "reading the SEG back to verify it")
        masks = read_dicom_seg(temporary, datasets, geometry)
        for segment in segments:
            if not np.array_equal(masks.get(segment.label), segment.mask):
                raise LiverMetsError(f"the written DICOM SEG does not reproduce segment '{segment.label}'; "
                                     "nothing was written (please report this)")
        temporary.replace(out_path)
    finally:
        temporary.unlink(missing_ok=True)
    report(progress, 1.0, "DICOM SEG written")
    return SegExport(out_path, info.series_uid, info.description, tuple(s.label for s in segments))
