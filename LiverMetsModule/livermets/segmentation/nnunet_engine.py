"""An engine from a trained nnU-Net v2 model folder, for a user who has ``nnunetv2`` and a model.

nnU-Net: Isensee et al., Nature Methods 18:203-211 (2021), doi:10.1038/s41592-020-01008-z.
Models for this job are trained, for example, on liver tumours (LiTS, Bilic et al., Medical
Image Analysis 84:102680, 2023) or on the Medical Segmentation Decathlon's liver and
hepatic-vessel tasks (Antonelli et al., Nature Communications 13:4128, 2022).

The model folder is the one nnU-Net writes when it trains (for example
``DatasetXXX_Name/nnUNetTrainer__nnUNetPlans__3d_fullres``, holding ``dataset.json``,
``plans.json`` and ``fold_*/checkpoint_final.pth``). Its classes are read by name from
``dataset.json`` (:func:`structures_from_labels`); what the model does not segment comes from
the built-in detectors. Its input channels are matched to the given images by the channel names
(:func:`channel_images`).

nnU-Net takes the arrays as they are, ``[k, j, i]`` with spacing in that order, as its own
SimpleITK reader gives them: like nnU-Net itself this does not reorient, so the images must be
oriented as the model's training images were.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np

from livermets import sequences as seq
from livermets.errors import InputError, NoLiverFoundError
from livermets.progress import report, scaled
from livermets.segmentation import filters
from livermets.segmentation.engines import (
    EngineOutput,
    SegmentationEngine,
    add_vessels_and_lesions,
    canonical_images,
)
from livermets.segmentation.lesions import describe_instances

LESION_WORDS = ("tumor", "tumour", "lesion", "cancer", "metasta")
CHECKPOINTS = ("checkpoint_final.pth", "checkpoint_best.pth")  # the first one present is used


def structures_from_labels(labels: dict) -> dict[str, tuple[int, ...]]:
    """Label values per LiverMets structure (``liver``, ``lesion``, ``portal``, ``hepatic``,
    ``ivc``; only those the model has) from ``dataset.json``'s ``labels``: nnU-Net v2's
    ``{name: value}`` or the Decathlon's ``{"value": name}``. Names are matched without case:
    "liver"; a lesion word (:data:`LESION_WORDS`); "portal"; "hepatic" with "vein"; "vena cava"
    or "ivc". Raises ``InputError`` for region-based labels (a list of values per name)."""
    pairs = []
    for key, value in labels.items():
        if isinstance(value, (list, tuple)):
            raise InputError(f"the model's class {key!r} is region-based ({value}); LiverMets reads "
                             "models with one label value per class")
        name, number = (value, key) if str(key).isdigit() else (key, value)
        pairs.append((str(name).lower().replace("_", " "), int(number)))
    found: dict[str, list[int]] = {}
    for name, number in pairs:
        if number == 0:
            continue
        if name == "liver":
            structure = "liver"
        elif any(word in name for word in LESION_WORDS):
            structure = "lesion"
        elif "portal" in name:
            structure = "portal"
        elif "vena cava" in name or name == "ivc":
            structure = "ivc"
        elif "hepatic" in name and "vein" in name:
            structure = "hepatic"
        else:
            continue
        found.setdefault(structure, []).append(number)
    return {structure: tuple(numbers) for structure, numbers in found.items()}


def channel_images(channels: list[str], sequences: list[str]) -> list[int]:
    """For each model input channel (``dataset.json`` channel names, in order), the index of the
    given image to feed it: the image whose sequence is the contrast the channel names ("CT",
    "T2", "hbp", ...); a one-channel model whose name is no known contrast takes the first image.
    Raises ``InputError`` naming the channels that no given image can feed."""
    chosen, missing = [], []
    for name in channels:
        try:
            wanted = seq.check(name)
        except ValueError:
            wanted = None
        if wanted is None and len(channels) == 1:
            chosen.append(0)
        elif wanted in sequences:
            chosen.append(sequences.index(wanted))
        else:
            missing.append(name)
    if missing:
        raise InputError(f"the nnU-Net model expects the channels {', '.join(channels)}; no image given is "
                         f"{', '.join(missing)} (images given: {', '.join(sequences)}); give those images "
                         "with their sequence names")
    return chosen


def read_model(folder: Path) -> tuple[dict[str, tuple[int, ...]], list[str]]:
    """``(structures, channel names)`` of the model in ``folder`` (see :func:`structures_from_labels`)."""
    card = folder / "dataset.json"
    if not card.is_file():
        raise InputError(f"{folder} is not an nnU-Net model folder: it has no dataset.json")
    dataset = json.loads(card.read_text(encoding="utf-8"))
    channels = dataset.get("channel_names") or dataset.get("modality") or {}
    names = [str(channels[key]) for key in sorted(channels, key=int)]
    structures = structures_from_labels(dataset.get("labels", {}))
    if not structures:
        raise InputError(f"the nnU-Net model in {folder} has no class LiverMets can use (liver, a tumour or "
                         f"lesion class, portal or hepatic veins, IVC); its classes: {dataset.get('labels')}")
    return structures, names


def split_prediction(segmentation: np.ndarray, probabilities: np.ndarray | None,
                     structures: dict[str, tuple[int, ...]]) -> dict:
    """The model's labels ``segmentation`` (``[k, j, i]``) as LiverMets structures: ``liver``
    (the whole organ: liver and lesion classes, when the model has a liver class), ``lesions``
    (uint16 instances 1..N, the lesion class's connected parts, largest first) with ``scores`` (the
    mean lesion probability over each, from ``probabilities`` ``(classes, k, j, i)``, else 1.0),
    and ``portal`` / ``hepatic`` (hepatic veins and IVC) / ``ivc`` masks; absent keys for
    structures the model lacks."""
    out: dict = {}
    lesion = np.isin(segmentation, structures.get("lesion", ()))
    if "liver" in structures:
        out["liver"] = np.isin(segmentation, structures["liver"]) | lesion
    if "lesion" in structures:
        parts, count = filters.connected_components(lesion)
        sizes = np.bincount(parts.ravel(), minlength=count + 1)[1:]
        order = np.argsort(-sizes, kind="stable") + 1  # label values, largest part first
        relabel = np.zeros(count + 1, dtype=np.uint16)
        relabel[order] = np.arange(1, count + 1)
        out["lesions"] = relabel[parts]
        if probabilities is not None:
            chance = probabilities[list(structures["lesion"])].sum(axis=0)
            means = np.bincount(parts.ravel(), weights=chance.ravel(), minlength=count + 1)[1:] / np.maximum(sizes, 1)
            out["scores"] = [round(float(means[label - 1]), 4) for label in order]
        else:
            out["scores"] = [1.0] * count
    if "portal" in structures:
        out["portal"] = np.isin(segmentation, structures["portal"])
    if "hepatic" in structures or "ivc" in structures:
        out["ivc"] = np.isin(segmentation, structures.get("ivc", ()))
        out["hepatic"] = np.isin(segmentation, structures.get("hepatic", ())) | out["ivc"]
    return out


class NnUNetEngine(SegmentationEngine):
    """Liver, lesions and veins from an nnU-Net model folder (``--engine nnunet:FOLDER``), the
    structures it lacks from the built-in engine (the liver by the intensity model and bundled
    network, vessels and lesions by the classical detectors)."""

    name = "nnunet"
    requires = ("nnunetv2", "nnunetv2")

    def __init__(self, folder: str = ""):
        self.folder = Path(folder).expanduser() if folder else None

    def available(self) -> tuple[bool, str]:
        if self.folder is None:
            return False, "name the trained model folder: --engine nnunet:FOLDER"
        if not self.folder.is_dir():
            return False, f"the model folder {self.folder} does not exist"
        if importlib.util.find_spec(self.requires[0]) is None:
            return False, "the nnunetv2 package is not installed; install it with `pip install nnunetv2`"
        if _trained_folds(self.folder) is None:
            return False, f"{self.folder} holds no trained fold (fold_*/{CHECKPOINTS[0]})"
        return True, ""

    def run(self, images, geometry, sequences, *, progress=None, timings=None, rename=None) -> EngineOutput:
        structures, channels = read_model(self.folder)
        arrays = list(images.values())
        feed = channel_images(channels, list(sequences))
        started = time.monotonic()
        report(progress, 0.05, f"nnU-Net ({self.folder.name})")
        segmentation, probabilities = _predict(self.folder, np.stack([arrays[i] for i in feed]), geometry)
        if timings is not None:
            timings["nnunet"] = time.monotonic() - started
        parts = split_prediction(segmentation, probabilities, structures)
        warnings = [(f"nnU-Net model {self.folder.parent.name}/{self.folder.name}: "
                     f"{', '.join(sorted(structures))} from the model, the rest from the built-in engine")]
        if "liver" in parts:
            liver = parts["liver"]
            if not liver.any():
                raise NoLiverFoundError("the nnU-Net model found no liver in the first image")
        else:
            from livermets.segmentation.liver import segment_liver

            found = segment_liver(arrays[0], geometry, sequence=sequences[0], progress=scaled(progress, 0.5, 0.7))
            liver, warnings = found.mask.astype(bool), warnings + list(found.warnings)
        output = EngineOutput(liver=liver.astype(np.uint8), lesions=np.zeros(geometry.shape, dtype=np.uint16),
                              warnings=warnings)
        both_trees = "portal" in parts and "hepatic" in parts
        if both_trees:  # else the built-in detector draws the trees, and the model's one replaces its own
            output.portal, output.hepatic, output.ivc = parts["portal"], parts["hepatic"], parts["ivc"]
        named = rename(liver) if rename else images
        if "lesions" in parts:
            lesions = np.where(liver, parts["lesions"], 0).astype(np.uint16)
            kept = np.unique(lesions[lesions > 0])  # parts outside the liver are dropped, the rest renumbered
            renumber = np.zeros(int(parts["lesions"].max()) + 1, dtype=np.uint16)
            renumber[kept] = np.arange(1, len(kept) + 1)
            found = describe_instances(renumber[lesions], [parts["scores"][i - 1] for i in kept],
                                       canonical_images(named), liver, geometry)
            output.lesions, output.lesion_table = found.instances, found.table
        add_vessels_and_lesions(output, named, geometry, progress=scaled(progress, 0.7, 1.0), timings=timings,
                                lesions="lesions" not in parts)
        if not both_trees and ("portal" in parts or "hepatic" in parts):
            own, other = ("portal", "hepatic") if "portal" in parts else ("hepatic", "portal")
            built = getattr(output, other)
            setattr(output, other, (np.zeros(geometry.shape, dtype=bool) if built is None
                                    else np.asarray(built, dtype=bool) & ~parts[own]))
            setattr(output, own, parts[own])
            output.ivc = parts["ivc"] if own == "hepatic" else None if output.ivc is None else output.ivc & output.hepatic
        return output


def _trained_folds(folder: Path) -> tuple[str, tuple] | None:
    """``(checkpoint name, folds)``: the first of :data:`CHECKPOINTS` any ``fold_*`` of ``folder``
    holds and the folds holding it (numbers, or "all"); None if no fold is trained."""
    for checkpoint in CHECKPOINTS:
        names = sorted(path.parent.name.removeprefix("fold_") for path in folder.glob(f"fold_*/{checkpoint}"))
        if names:
            return checkpoint, tuple(int(name) if name.isdigit() else name for name in names)
    return None


def _predict(folder: Path, channels: np.ndarray, geometry) -> tuple[np.ndarray, np.ndarray]:
    """nnU-Net's labels ``[k, j, i]`` and class probabilities ``(classes, k, j, i)`` for the
    stacked input ``channels`` ``(c, k, j, i)`` on ``geometry`` (every trained fold, mirroring
    on; on the GPU when torch has one). nnU-Net's notes go to stderr: stdout is LiverMets' result."""
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    checkpoint, folds = _trained_folds(folder)
    with contextlib.redirect_stdout(sys.stderr):
        predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=True,
                                    perform_everything_on_device=device.type == "cuda", device=device,
                                    verbose=False, verbose_preprocessing=False, allow_tqdm=False)
        predictor.initialize_from_trained_model_folder(str(folder), use_folds=folds, checkpoint_name=checkpoint)
        segmentation, probabilities = predictor.predict_single_npy_array(
            np.ascontiguousarray(channels, dtype=np.float32), {"spacing": [float(s) for s in geometry.spacing_mm]},
            None, None, True)
    return np.asarray(segmentation), np.asarray(probabilities, dtype=np.float32)
