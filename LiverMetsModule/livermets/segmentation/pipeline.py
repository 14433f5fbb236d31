"""From a patient's images to liver, lesion instances and venous trees, and the result files.

``segment`` runs: sequence resolution -> alignment of every further phase onto the first
image's grid -> engine (liver; the built-in engines then call the vessel and lesion
detectors) -> label map and lesion table. ``write_result`` writes the files of the result
folder atomically. If no liver is found, :class:`~livermets.errors.NoLiverFoundError` is
raised and nothing is written: a result folder always holds a real liver.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Sequence, Union

import numpy as np

from livermets import __version__
from livermets.errors import InputError
from livermets.files import write_json
from livermets.geometry import Geometry, Volume
from livermets.labels import RESULT_HEPATIC, RESULT_LABELS, RESULT_LESION, RESULT_LIVER, RESULT_PORTAL
from livermets.progress import ProgressCallback, report, scaled
from livermets.segmentation import registration, sequence_guess
from livermets.segmentation.engines import EngineOutput, get_engine
from livermets.segmentation.sequence_guess import SequenceGuess
from livermets.sequences import CT, lesion_polarity

RESULT_FILES = ("liver.nii.gz", "labels.nii.gz", "lesions.nii.gz", "lesions.json")
SAME_GRID_TOLERANCE_MM = 1e-3


@dataclass
class SegmentationResult:
    """Everything ``segment`` found, on the grid of the first image.

    Attributes
    ----------
    geometry : Geometry of the first image (all arrays use it, indexed ``[k, j, i]``).
    liver : uint8 0/1 whole liver (parenchyma, lesions and intrahepatic vessels).
    labels : uint8, values of :data:`livermets.labels.RESULT_LABELS`.
    lesions : uint16 instances 1..N (0 background).
    lesion_table : one dict per lesion: ``id``, ``center_ras_mm``, ``volume_ml``,
        ``longest_axial_diameter_mm``, ``score``, ``likely_cyst``.
    sequences : one dict per input (``sequence``, ``confidence``, ``source``, ``reason``).
    alignment : one dict per further input (see :class:`registration.AlignmentReport`).
    timings_s : seconds per stage.
    warnings : sentences for the user (missing steps, doubtful inputs).
    engine : name of the engine used.
    """

    geometry: Geometry
    liver: np.ndarray
    labels: np.ndarray
    lesions: np.ndarray
    lesion_table: list[dict]
    sequences: list[dict]
    alignment: list[dict]
    timings_s: dict[str, float]
    warnings: list[str] = field(default_factory=list)
    engine: str = "builtin"

    @property
    def liver_volume_ml(self) -> float:
        return float(np.count_nonzero(self.liver)) * self.geometry.voxel_volume_ml


def _as_list(
    volumes: Union[Sequence[Volume], Mapping[str, Volume]], sequences: Optional[Sequence[Optional[str]]]
) -> tuple[list[Volume], list[Optional[str]]]:
    if isinstance(volumes, Mapping):
        names = list(volumes.keys())
        volumes = list(volumes.values())
        if sequences is None:
            sequences = names
    volumes = list(volumes)
    if not volumes:
        raise InputError("no images given; pass at least one image")
    for index, volume in enumerate(volumes):
        if not isinstance(volume, Volume):
            raise InputError(f"input {index + 1} is a {type(volume).__name__}, not an image volume")
    sequences = list(sequences) if sequences is not None else [None] * len(volumes)
    if len(sequences) != len(volumes):
        raise InputError(
            f"{len(sequences)} sequence names given for {len(volumes)} images; give one per "
            "image (or none and let LiverMets guess)"
        )
    return volumes, sequences


def segment(
    volumes: Union[Sequence[Volume], Mapping[str, Volume]],
    sequences: Optional[Sequence[Optional[str]]] = None,
    *,
    engine: str = "builtin",
    hints: Optional[Sequence[Optional[str]]] = None,
    align: bool = True,
    progress: Optional[ProgressCallback] = None,
) -> SegmentationResult:
    """Segment liver, lesions and venous trees from one or several phases of one study.

    Parameters
    ----------
    volumes : list of Volume, or dict sequence name -> Volume
        The first image defines the result grid; every other one is aligned to it.
    sequences : list of str or None, optional
        Canonical sequence per image (``livermets.sequences``); ``None`` entries are taken
        from ``hints``, else guessed: CT from Hounsfield units, an MRI contrast from intensities
        inside the liver once it is found (the liver does not depend on it), and that contrast
        is the one the vessels and lesions are looked for with. With a dict of volumes, its keys
        are used when this is not given.
    engine : str
        ``"builtin"`` (default, always available: intensity model and bundled liver network),
        ``"classical"`` (always available, no trained weights) or ``"totalsegmentator"`` (if installed).
    hints : list of str or None, optional
        Sequence hints from DICOM tags or file names (``ImageInfo.sequence_hint``).
    align : bool
        Register further phases to the first (rigid + light B-spline); when ``False`` they are
        only resampled by their headers.

    Raises
    ------
    InputError
        Bad input (see :func:`livermets.segmentation.liver.check_image`), wrong number of names,
        an image taken as CT whose values are not Hounsfield units.
    NoLiverFoundError
        No liver in the first image.
    """
    volumes, given = _as_list(volumes, sequences)
    hints = list(hints) if hints is not None else [None] * len(volumes)
    timings: dict[str, float] = {}
    warnings: list[str] = []
    first = volumes[0]
    started = time.monotonic()

    report(progress, 0.0, "identifying sequences")
    guesses = [
        sequence_guess.resolve(np.asarray(v.array), given=g, hint=h) for v, g, h in zip(volumes, given, hints)
    ]
    for index, (volume, guess) in enumerate(zip(volumes, guesses), start=1):
        if guess.sequence == CT:
            sequence_guess.check_hounsfield(volume.array, f"image {index}")
    timings["sequences"] = time.monotonic() - started

    started = time.monotonic()
    images, alignment = _aligned_images(volumes, guesses, align, warnings, scaled(progress, 0.02, 0.25))
    timings["alignment"] = time.monotonic() - started

    chosen = get_engine(engine)
    judged = list(guesses)

    def rename(liver: np.ndarray) -> dict[str, np.ndarray]:
        # MRI contrasts left to the image are judged inside the liver, before vessels and lesions
        judged[:] = _refine_guesses(guesses, images, liver, first.geometry)
        return _keyed(list(images.values()), [g.sequence for g in judged])

    output: EngineOutput = chosen.run(
        images,
        first.geometry,
        [g.sequence for g in guesses],
        progress=scaled(progress, 0.25, 0.97),
        timings=timings,
        rename=rename,
    )
    warnings.extend(output.warnings)
    guesses = judged
    warnings.extend(_guessed_contrast_warnings(guesses))
    labels = compose_labels(output.liver, output.lesions, output.portal, output.hepatic)
    report(progress, 1.0, "segmentation done")
    return SegmentationResult(
        geometry=first.geometry,
        liver=output.liver.astype(np.uint8),
        labels=labels,
        lesions=output.lesions.astype(np.uint16),
        lesion_table=output.lesion_table,
        sequences=[g.as_dict() for g in guesses],
        alignment=alignment,
        timings_s={k: round(v, 3) for k, v in timings.items()},
        warnings=warnings,
        engine=chosen.name,
    )


def _aligned_images(
    volumes: list[Volume],
    guesses: list[SequenceGuess],
    align: bool,
    warnings: list[str],
    progress: Optional[ProgressCallback],
) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Arrays on the first grid keyed by sequence name (a repeated name gets ``_2``, ``_3``...)."""
    first = volumes[0]
    arrays = [np.asarray(first.array, dtype=np.float32)]
    alignment: list[dict] = []
    for index in range(1, len(volumes)):
        report(progress, (index - 1) / max(len(volumes) - 1, 1), f"aligning image {index + 1} to image 1")
        volume = volumes[index]
        if align:
            array, found = registration.align(first, volume, index=index)
            alignment.append(found.as_dict())
            if found.edge_correlation_after < 0.2:
                warnings.append(
                    f"image {index + 1} ({guesses[index].sequence}) agrees poorly with image 1 after "
                    f"alignment (edge correlation {found.edge_correlation_after:.2f}); check that both "
                    "are of the same patient and study"
                )
        else:
            array = _resample_by_header(volume, first.geometry)
            alignment.append({"index": index, "method": "header only"})
        arrays.append(array)
    return _keyed(arrays, [g.sequence for g in guesses]), alignment


def _keyed(arrays: list[np.ndarray], names: list[str]) -> dict[str, np.ndarray]:
    """``arrays`` keyed by sequence name, in order; a repeated name gets ``_2``, ``_3``..."""
    images: dict[str, np.ndarray] = {}
    for name, array in zip(names, arrays):
        key, suffix = name, 2
        while key in images:
            key, suffix = f"{name}_{suffix}", suffix + 1
        images[key] = array
    return images


def _resample_by_header(volume: Volume, geometry: Geometry) -> np.ndarray:
    import SimpleITK as sitk

    from livermets.segmentation.morphology import resample_to, to_sitk

    if volume.geometry.same_grid(geometry, SAME_GRID_TOLERANCE_MM):
        return np.asarray(volume.array, dtype=np.float32)
    moved = resample_to(
        to_sitk(np.asarray(volume.array, dtype=np.float32), volume.geometry),
        geometry,
        default=float(np.min(volume.array)),
    )
    return sitk.GetArrayFromImage(moved)


def _refine_guesses(
    guesses: list[SequenceGuess], images: dict[str, np.ndarray], liver: np.ndarray, geometry: Geometry
) -> list[SequenceGuess]:
    """MRI images without a given or tagged sequence: judge the contrast inside the found liver
    (``images`` in the order of ``guesses``, on ``geometry``)."""
    refined = []
    arrays = list(images.values())
    for index, guess in enumerate(guesses):
        if guess.source == "image" and guess.sequence != "ct" and liver.any():
            guess = sequence_guess.mri_contrast(arrays[index], geometry, liver.astype(bool))
        refined.append(guess)
    return refined


def _guessed_contrast_warnings(guesses: list[SequenceGuess]) -> list[str]:
    """One sentence per MRI image whose contrast was guessed from its intensities: the guess
    decides whether lesions are looked for darker or brighter than the liver, and it rests on
    rules checked on few real images (:mod:`~livermets.segmentation.sequence_guess`)."""
    warnings = []
    for index, guess in enumerate(guesses, start=1):
        if guess.source == "image" and guess.sequence != CT:
            looked_for = "darker" if lesion_polarity(guess.sequence) == "dark" else "brighter"
            warnings.append(
                f"image {index}: its MRI contrast was guessed from the intensities as {guess.sequence} "
                f"(confidence {guess.confidence:.2f}), so lesions were looked for {looked_for} than the liver; "
                "if that is not its contrast, name it (--sequence on the command line, the sequence "
                "selector in Slicer) and run again"
            )
    return warnings


def compose_labels(
    liver: np.ndarray, lesions: np.ndarray, portal: Optional[np.ndarray], hepatic: Optional[np.ndarray]
) -> np.ndarray:
    """``labels.nii.gz`` values: liver parenchyma 1, then veins 3 / 4, then lesions 2 on top."""
    labels = np.zeros(liver.shape, dtype=np.uint8)
    labels[np.asarray(liver) > 0] = RESULT_LIVER
    if portal is not None:
        labels[np.asarray(portal, dtype=bool)] = RESULT_PORTAL
    if hepatic is not None:
        labels[np.asarray(hepatic, dtype=bool)] = RESULT_HEPATIC
    labels[np.asarray(lesions) > 0] = RESULT_LESION
    return labels


def _write_label_file(array: np.ndarray, geometry: Geometry, path: Path, dtype) -> None:
    """Atomic label write (temporary name in the same folder, then rename)."""
    from livermets.imageio import write_image

    write_image(Volume(np.ascontiguousarray(array, dtype=dtype), geometry), path)


def result_summary(result: SegmentationResult) -> dict:
    """The content of ``lesions.json``."""
    return {
        "version": __version__,
        "engine": result.engine,
        "units": {"length": "mm", "volume": "ml", "points": "RAS mm"},
        "label_values": {str(k): v for k, v in RESULT_LABELS.items()},
        "liver_volume_ml": round(result.liver_volume_ml, 2),
        "lesion_count": len(result.lesion_table),
        "lesions": result.lesion_table,
        "sequences": result.sequences,
        "alignment": result.alignment,
        "timings_s": result.timings_s,
        "warnings": result.warnings,
    }


def write_result(result: SegmentationResult, out_dir: Union[str, os.PathLike], *,
                 input_files: Sequence[Optional[Union[str, os.PathLike]]] = ()) -> dict[str, Path]:
    """Write ``liver.nii.gz``, ``labels.nii.gz``, ``lesions.nii.gz`` and ``lesions.json``.

    ``input_files``: the image file of each input, in order (None for a DICOM folder); each is
    named in ``lesions.json`` relative to ``out_dir`` so that ``measure`` and ``report`` find it.
    Every file is written under a temporary name and renamed, so no half-written or empty
    file is ever presented under a result name. Returns name -> path.
    """
    if not np.asarray(result.liver).any():
        raise InputError("this result has an empty liver; nothing to write")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for entry, path in zip(result.sequences, input_files):
        if path is not None and Path(path).is_file():
            entry["file"] = os.path.relpath(Path(path).resolve(), out.resolve())
    paths = {name: out / name for name in RESULT_FILES}
    _write_label_file(result.liver, result.geometry, paths["liver.nii.gz"], np.uint8)
    _write_label_file(result.labels, result.geometry, paths["labels.nii.gz"], np.uint8)
    _write_label_file(result.lesions, result.geometry, paths["lesions.nii.gz"], np.uint16)
    write_json(paths["lesions.json"], result_summary(result))
    return paths
