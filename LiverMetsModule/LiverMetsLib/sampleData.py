"""LiverMets teaching phantoms as Slicer sample data.

The phantom is generated, not downloaded: ``phantomCaseFiles`` writes it once into a cache folder
(``livermets.phantom.write_phantom``; built in a temporary folder, then renamed, so a half-written case
is never reused) and ``loadPhantomCase`` loads its images into desktop Slicer. ``registerSampleData``
adds the cases to the Sample Data module with a custom loader; it does nothing when that module is
absent, so this file imports headless (only numpy, SimpleITK and the ``livermets`` core at import).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from LiverMetsLib.sequenceHint import rememberSequence

log = logging.getLogger(__name__)

SAMPLE_CATEGORY = "LiverMets"


@dataclass(frozen=True)
class PhantomCase:
    """One phantom case offered in Sample Data."""

    sampleName: str
    description: str
    seed: int
    variant: str
    sequences: tuple[str, ...]


PHANTOM_CASES = (
    PhantomCase(
        "LiverMetsPhantomMRI", "LiverMets phantom MRI (HBP, T2, DWI)", 0, "small", ("hbp", "t2", "dwi")
    ),
    PhantomCase("LiverMetsPhantomCT", "LiverMets phantom portal-venous CT", 1, "small", ("ct",)),
)


def phantomCaseFolderName(seed: int, variant: str, sequences: Sequence[str]) -> str:
    return f"LiverMetsPhantom-seed{int(seed)}-{variant}-{'-'.join(sequences)}"


def phantomCaseFiles(
    cacheDirectory: str | os.PathLike,
    *,
    seed: int = 0,
    variant: str = "small",
    sequences: Sequence[str] = ("hbp",),
) -> dict[str, Path]:
    """Paths of a phantom case's files in ``cacheDirectory``, generating the case when missing.

    Returns name -> path as ``write_phantom`` does: one NIfTI per sequence, and ``anatomy``,
    ``liver``, ``labels``, ``lesions``, ``couinaud`` and ``legend`` (ground truth).
    A case is complete when its ``truth/legend.json`` exists (written last).
    """
    from livermets.phantom import PHANTOM_SEQUENCES, make_phantom, write_phantom

    sequences = tuple(sequences)
    unknown = [name for name in sequences if name not in PHANTOM_SEQUENCES]
    if unknown or not sequences:
        raise ValueError(
            f"unknown phantom sequence(s) {unknown}; use some of: {', '.join(PHANTOM_SEQUENCES)}"
        )
    cacheDirectory = Path(cacheDirectory)
    folder = cacheDirectory / phantomCaseFolderName(seed, variant, sequences)
    if not (folder / "truth" / "legend.json").exists():
        cacheDirectory.mkdir(parents=True, exist_ok=True)
        temporary = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=cacheDirectory))
        try:
            write_phantom(make_phantom(int(seed), variant=variant, sequences=sequences), temporary)
            shutil.rmtree(folder, ignore_errors=True)  # an incomplete earlier attempt
            os.replace(temporary, folder)
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
        log.info("LiverMets: generated phantom case %s", folder)
    paths = {name: folder / f"{name}.nii.gz" for name in sequences}
    for name in ("anatomy", "liver", "labels", "lesions", "couinaud"):
        paths[name] = folder / "truth" / f"{name}.nii.gz"
    paths["legend"] = folder / "truth" / "legend.json"
    return paths


def loadPhantomCase(case: PhantomCase, cacheDirectory: Optional[str] = None) -> list:
    """Desktop Slicer: generate (if needed) and load the case's images; returns the volume nodes.

    Each volume gets the attribute ``LiverMets.Sequence`` naming its sequence.
    """
    import slicer

    if cacheDirectory is None:
        cacheDirectory = os.path.join(slicer.app.cachePath, "LiverMets")
    paths = phantomCaseFiles(cacheDirectory, seed=case.seed, variant=case.variant, sequences=case.sequences)
    volumeNodes = []
    for sequence in case.sequences:
        volumeNode = slicer.util.loadVolume(str(paths[sequence]), {"name": f"{case.sampleName} {sequence}"})
        rememberSequence(volumeNode, sequence)
        volumeNodes.append(volumeNode)
    return volumeNodes


def registerSampleData(thumbnailFileName: Optional[str] = None) -> bool:
    """Add the phantom cases to the Sample Data module; False when that module is not available."""
    try:
        import SampleData
    except ImportError:
        return False
    for case in PHANTOM_CASES:
        SampleData.SampleDataLogic.registerCustomSampleDataSource(
            category=SAMPLE_CATEGORY,
            sampleName=case.sampleName,
            uris=[],
            fileNames=[],
            nodeNames=[],
            thumbnailFileName=thumbnailFileName,
            # Newer Slicer passes the source to the downloader, older versions call it without arguments.
            customDownloader=lambda source=None, case=case: loadPhantomCase(case),
        )
    return True
