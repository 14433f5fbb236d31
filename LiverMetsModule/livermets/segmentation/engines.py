"""Segmentation engines: the built-in ones (numpy + SimpleITK, nothing to install) and optional others.

An engine turns aligned images (dict sequence name -> array on the first image's grid) into
an :class:`EngineOutput`. ``provides`` says which structures it makes itself; the pipeline
does not care how.

* ``builtin`` (default): liver from the intensity model and the bundled network of
  :mod:`~livermets.segmentation.liver_net`, combined; vessels and lesions by the classical
  detectors. ``builtin:WEIGHTS`` uses the network in ``WEIGHTS`` (a ``liver_net.npz`` written by
  ``Testing/train_liver_net.py``, for example one retrained on a site's own images) instead.
* ``classical``: the same without trained weights: liver from the intensity model and a level set.
* ``totalsegmentator``: liver, portal vein and IVC from TotalSegmentator, when installed.
* ``nnunet:FOLDER``: whatever a trained nnU-Net model in FOLDER segments (liver, lesions,
  veins; :mod:`~livermets.segmentation.nnunet_engine`), when ``nnunetv2`` is installed; the
  built-in engine supplies the rest.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from livermets.errors import InputError, LiverMetsError, NoLiverFoundError
from livermets.geometry import Geometry, Volume
from livermets.progress import ProgressCallback, report, scaled
from livermets.segmentation import parallel
from livermets.sequences import SEQUENCES

LOG = logging.getLogger(__name__)
BEYOND_CAPSULE_MM = 25.0  # an engine's liver may leave out a lesion bulging through the capsule: lesions
                          # may reach this far outside it (half of a 50 mm one), and the liver takes them in


@dataclass
class EngineOutput:
    """Arrays ``[k, j, i]`` on the first image's grid (``None`` for structures not made)."""

    liver: np.ndarray
    lesions: np.ndarray
    lesion_table: list[dict] = field(default_factory=list)
    portal: Optional[np.ndarray] = None
    hepatic: Optional[np.ndarray] = None
    ivc: Optional[np.ndarray] = None
    warnings: list[str] = field(default_factory=list)


class SegmentationEngine:
    """Base class: ``name``, ``provides``, ``requires`` (the module it imports and the pip
    package that installs it, if any), ``available()`` and ``run()``."""

    name = "base"
    provides: frozenset = frozenset()
    requires: tuple[str, str] = ("", "")

    def available(self) -> tuple[bool, str]:
        """``(True, "")`` or ``(False, reason with an install hint)``."""
        raise NotImplementedError

    def run(
        self,
        images: dict[str, np.ndarray],
        geometry: Geometry,
        sequences: list[str],
        *,
        progress: Optional[ProgressCallback] = None,
        timings: Optional[dict] = None,
        rename: Optional[Callable[[np.ndarray], dict[str, np.ndarray]]] = None,
    ) -> EngineOutput:
        """Segment; ``rename``, given the liver mask once found, returns ``images`` under the
        sequence names judged inside that liver, used for the vessels and lesions."""
        raise NotImplementedError


def canonical_images(images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Only images under canonical names (a repeated contrast's ``_2`` copy is left out)."""
    return {name: image for name, image in images.items() if name in SEQUENCES}


def _timed(timings: Optional[dict], stage: str, started: float) -> None:
    if timings is not None:
        timings[stage] = time.monotonic() - started


class BuiltinEngine(SegmentationEngine):
    """Liver by :func:`livermets.segmentation.liver.segment_liver` on the first image (intensity
    model and bundled network combined, or intensity alone for ``liver_method="intensity"``),
    then the vessel and lesion detectors of :mod:`~livermets.segmentation.vessels` and
    :mod:`~livermets.segmentation.lesions` on all aligned images (each skipped with a warning
    when its module is not installed)."""

    name = "builtin"
    provides = frozenset({"liver", "vessels", "lesions"})
    liver_method = "combined"

    def __init__(self, weights: str = ""):
        self.weights = weights
        if weights:
            self.name = f"{self.name}:{weights}"

    def available(self) -> tuple[bool, str]:
        if self.weights and not Path(self.weights).is_file():
            return False, f"no liver network weights at {self.weights}: give the path of a liver_net.npz"
        return True, ""

    @parallel.blas_on_one_thread()
    def run(self, images, geometry, sequences, *, progress=None, timings=None, rename=None) -> EngineOutput:
        from livermets.segmentation.liver import segment_liver
        from livermets.segmentation.liver_net import shipped_network

        started = time.monotonic()
        first_name = next(iter(images))
        found = segment_liver(
            images[first_name],
            geometry,
            sequence=sequences[0],
            method=self.liver_method,
            network=shipped_network(self.weights) if self.weights else None,
            progress=scaled(progress, 0.0, 0.5),
        )
        _timed(timings, "liver", started)
        output = EngineOutput(
            liver=found.mask, lesions=np.zeros(geometry.shape, dtype=np.uint16), warnings=list(found.warnings)
        )
        add_vessels_and_lesions(
            output, rename(found.mask) if rename else images, geometry, progress=scaled(progress, 0.5, 1.0),
            timings=timings
        )
        return output


class ClassicalEngine(BuiltinEngine):
    """:class:`BuiltinEngine` without trained weights: the liver comes from the intensity model
    and its level set alone."""

    name = "classical"
    liver_method = "intensity"


@parallel.blas_on_one_thread()
def add_vessels_and_lesions(
    output: EngineOutput,
    images: dict[str, np.ndarray],
    geometry: Geometry,
    *,
    progress: Optional[ProgressCallback] = None,
    timings: Optional[dict] = None,
    lesions: bool = True,
) -> None:
    """Fill ``output``'s vessels (unless already set) and, if ``lesions``, its lesions in
    ``output.liver`` or bulging out of it by up to :data:`BEYOND_CAPSULE_MM` (the liver then takes
    them in: it is the whole organ, lesions included)."""
    liver = np.asarray(output.liver, dtype=bool)
    canonical = canonical_images(images)
    warnings = output.warnings
    if output.portal is None:
        report(progress, 0.0, "vessels")
        started = time.monotonic()
        vessels = _optional("livermets.segmentation.vessels", "segment_vessels", warnings, "vessels")
        if vessels is not None:
            try:
                result = vessels(canonical, liver, geometry)
                output.portal = np.asarray(result.portal, dtype=bool)
                output.hepatic = np.asarray(result.hepatic, dtype=bool)
                ivc = getattr(result, "ivc", None)
                output.ivc = None if ivc is None else np.asarray(ivc, dtype=bool)
                warnings.extend(getattr(result, "warnings", None) or [])  # e.g. why no trees were drawn
            except LiverMetsError as error:
                warnings.append(f"vessels were not segmented: {error}")
            except Exception as error:  # an optional step must not lose the liver: keep going, say why
                LOG.exception("vessel segmentation failed")
                warnings.append(f"vessels were not segmented (internal error {type(error).__name__}: {error})")
        _timed(timings, "vessels", started)

    if not lesions:
        report(progress, 1.0, "vessels done")
        return
    report(progress, 0.5, "lesions")
    started = time.monotonic()
    detect = _optional("livermets.segmentation.lesions", "detect_lesions", warnings, "lesions")
    if detect is not None:
        vessel_mask = None
        if output.portal is not None and output.hepatic is not None:
            vessel_mask = output.portal | output.hepatic
        try:
            result = detect(canonical, liver, geometry, vessels=vessel_mask, beyond_capsule_mm=BEYOND_CAPSULE_MM)
            output.lesions = np.asarray(result.instances, dtype=np.uint16)
            output.liver = (liver | (output.lesions > 0)).astype(np.asarray(output.liver).dtype)
            output.lesion_table = list(getattr(result, "table", []) or [])
        except LiverMetsError as error:
            warnings.append(f"lesions were not detected: {error}")
        except Exception as error:  # an optional step must not lose the liver: keep going, say why
            LOG.exception("lesion detection failed")
            warnings.append(f"lesions were not detected (internal error {type(error).__name__}: {error})")
    _timed(timings, "lesions", started)
    report(progress, 1.0, "vessels and lesions done")


def _optional(module_name: str, function: str, warnings: list[str], what: str):
    """The function if its module is installed, else ``None`` and a warning."""
    if importlib.util.find_spec(module_name) is None:
        warnings.append(f"{what} were not segmented: {module_name} is not installed in this version")
        return None
    return getattr(importlib.import_module(module_name), function)


# TotalSegmentator class indices (total_mr / total tasks, TotalSegmentator v2 class maps).
_TOTALSEG_LABELS = {
    "total_mr": {"liver": 5, "ivc": 24, "portal": 25},
    "total": {"liver": 5, "ivc": 63, "portal": 64},
}


class TotalSegmentatorEngine(SegmentationEngine):
    """Liver, portal/splenic vein and IVC from TotalSegmentator (Wasserthal et al. 2023,
    doi:10.1148/ryai.230024) when the ``totalsegmentator`` package and its weights are
    installed; lesions still come from the classical detector."""

    name = "totalsegmentator"
    provides = frozenset({"liver", "vessels"})
    requires = ("totalsegmentator", "TotalSegmentator")

    def available(self) -> tuple[bool, str]:
        if importlib.util.find_spec(self.requires[0]) is None:
            return False, (
                "the totalsegmentator package is not installed; install it with "
                "`pip install TotalSegmentator` (it downloads model weights on first use) "
                "or use the default engine (builtin)"
            )
        return True, ""

    def run(self, images, geometry, sequences, *, progress=None, timings=None, rename=None) -> EngineOutput:
        from totalsegmentator.python_api import totalsegmentator

        from livermets.imageio import read_image, write_image

        started = time.monotonic()
        task = "total" if sequences[0] == "ct" else "total_mr"
        first = next(iter(images))
        with tempfile.TemporaryDirectory(prefix="livermets-ts-") as folder:
            source = Path(folder) / "image.nii.gz"
            target = Path(folder) / "labels.nii.gz"
            write_image(Volume(np.asarray(images[first], dtype=np.float32), geometry), source)
            report(progress, 0.05, f"TotalSegmentator ({task})")
            totalsegmentator(str(source), str(target), ml=True, task=task, quiet=True)
            labels = read_image(target).array
        _timed(timings, "totalsegmentator", started)
        codes = _TOTALSEG_LABELS[task]
        liver = (labels == codes["liver"]).astype(np.uint8)
        if not liver.any():
            raise NoLiverFoundError("TotalSegmentator found no liver in the first image")
        ivc = labels == codes["ivc"]
        output = EngineOutput(
            liver=liver,
            lesions=np.zeros(geometry.shape, dtype=np.uint16),
            portal=labels == codes["portal"],
            hepatic=ivc.copy(),
            ivc=ivc,
            warnings=["TotalSegmentator has no hepatic-vein class: label 4 holds only the IVC"],
        )
        add_vessels_and_lesions(
            output, rename(liver) if rename else images, geometry, progress=scaled(progress, 0.5, 1.0),
            timings=timings
        )
        return output


ENGINES: dict[str, type] = {
    "builtin": BuiltinEngine,
    "classical": ClassicalEngine,
    "totalsegmentator": TotalSegmentatorEngine,
}


def get_engine(name: str) -> SegmentationEngine:
    """An available engine by name (``nnunet:FOLDER`` for an nnU-Net model folder), or
    :class:`InputError` saying why not and what to do."""
    engine = _engine(name)
    ok, reason = engine.available()
    if not ok:
        raise InputError(f"engine {engine.name!r} is not available: {reason}")
    return engine


def missing_package(name: str) -> str:
    """The pip package that the engine ``name`` needs and this Python lacks ("" if none), so
    that an application can offer to install it."""
    module, package = _engine(name).requires
    return package if module and importlib.util.find_spec(module) is None else ""


def _engine(name: str) -> SegmentationEngine:
    """The engine ``name`` names (available or not); :class:`InputError` for an unknown name."""
    key, _, argument = name.strip().partition(":")
    key = key.lower()
    if key == "nnunet":
        from livermets.segmentation.nnunet_engine import NnUNetEngine

        return NnUNetEngine(argument.strip())
    if key == "builtin":
        return BuiltinEngine(argument.strip())
    if key in ENGINES and not argument:
        return ENGINES[key]()
    raise InputError(
        f"unknown engine {name!r}; use one of: {', '.join(ENGINES)}, builtin:WEIGHTS, nnunet:FOLDER"
    )
