"""Detection and overlap metrics for lesion and vessel segmentation (truth vs prediction).

All functions take arrays indexed ``[k, j, i]`` on one grid plus its
:class:`~livermets.geometry.Geometry` (for sizes in mm) and return plain numbers.

Matching rule (per lesion): a true lesion is *detected* when a predicted instance covers
at least ``min_overlap`` of the true lesion's voxels or the true lesion covers at least
``min_overlap`` of that instance (so a small lesion inside a bigger prediction, or a big
lesion found by a small one, both count); a predicted instance that matches no true
lesion is a *false positive*, unless most of it (> 50 %) lies in ``ignore`` (e.g. cysts
or other structures that are not scored). Size of a true lesion = diameter of the ball of
the same volume (mm).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk
from livermets.geometry import Geometry


def instances_of(mask: np.ndarray) -> np.ndarray:
    """Instance labels: an integer array with several labels is returned as is; a binary
    mask is split into 26-connected components."""
    mask = np.asarray(mask)
    if mask.dtype != bool and mask.max() > 1:
        return mask.astype(np.int32)
    image = sitk.GetImageFromArray(mask.astype(np.uint8))
    return sitk.GetArrayFromImage(sitk.ConnectedComponent(image, True)).astype(np.int32)


def dice(truth: np.ndarray, prediction: np.ndarray) -> float:
    """Dice overlap of two binary masks (1.0 when both are empty)."""
    truth = np.asarray(truth, dtype=bool)
    prediction = np.asarray(prediction, dtype=bool)
    total = int(truth.sum()) + int(prediction.sum())
    return 1.0 if total == 0 else 2.0 * float((truth & prediction).sum()) / total


@dataclass
class LesionMatch:
    """Per-case detection summary.

    ``truth_diameters_mm[n]`` and ``detected[n]`` describe true lesion n, ``matched_by[n]`` the
    predicted labels that found it; ``false_labels`` are the predicted labels counted as false
    positives; ``lesion_dice`` is the Dice of the union masks, ``detected_dice`` the mean
    per-lesion Dice of detected lesions (each against the union of the predictions matched to it).
    """

    truth_diameters_mm: list[float] = field(default_factory=list)
    detected: list[bool] = field(default_factory=list)
    matched_by: list[tuple[int, ...]] = field(default_factory=list)
    per_lesion_dice: list[float] = field(default_factory=list)
    false_positives: int = 0
    false_labels: list[int] = field(default_factory=list)
    lesion_dice: float = 0.0

    def sensitivity(self, min_diameter_mm: float = 0.0) -> float | None:
        """Fraction of true lesions at least ``min_diameter_mm`` that were found (None if none)."""
        hits = [d for d, size in zip(self.detected, self.truth_diameters_mm) if size >= min_diameter_mm]
        return None if not hits else float(np.mean(hits))

    @property
    def detected_dice(self) -> float | None:
        values = [d for d, hit in zip(self.per_lesion_dice, self.detected) if hit]
        return None if not values else float(np.mean(values))


def match_lesions(truth: np.ndarray, prediction: np.ndarray, geometry: Geometry, *,
                  ignore: np.ndarray | None = None, min_overlap: float = 0.1) -> LesionMatch:
    """Match true and predicted lesion instances (binary masks are split into components)."""
    truth_labels = instances_of(truth)
    predicted = instances_of(prediction)
    voxel_mm3 = float(geometry.voxel_volume_ml) * 1000.0
    n_pred = int(predicted.max())
    pred_sizes = np.bincount(predicted.ravel(), minlength=n_pred + 1)
    matched_pred = np.zeros(n_pred + 1, dtype=bool)
    result = LesionMatch()
    for label in range(1, int(truth_labels.max()) + 1):
        lesion = truth_labels == label
        size = int(lesion.sum())
        if size == 0:
            continue
        result.truth_diameters_mm.append((6.0 * size * voxel_mm3 / np.pi) ** (1.0 / 3.0))
        overlap = np.bincount(predicted[lesion], minlength=n_pred + 1)
        overlap[0] = 0
        covers = (overlap >= min_overlap * size) | (overlap >= min_overlap * np.maximum(pred_sizes, 1))
        hits = np.nonzero(covers & (overlap > 0))[0]
        result.detected.append(bool(hits.size))
        result.matched_by.append(tuple(int(h) for h in hits))
        matched_pred[hits] = True
        result.per_lesion_dice.append(dice(lesion, np.isin(predicted, hits)) if hits.size else 0.0)
    for label in np.nonzero(~matched_pred[1:])[0] + 1:
        if pred_sizes[label] == 0:
            continue
        touches_truth = bool((truth_labels[predicted == label] > 0).mean() >= min_overlap)
        ignored = ignore is not None and bool(np.asarray(ignore, dtype=bool)[predicted == label].mean() > 0.5)
        if not touches_truth and not ignored:
            result.false_positives += 1
            result.false_labels.append(int(label))
    result.lesion_dice = dice(truth_labels > 0, predicted > 0)
    return result


def operating_points(cases: list[tuple[LesionMatch, list[float]]], thresholds: list[float],
                     large_mm: float = 10.0) -> list[dict]:
    """Detection figures as if only predictions scoring at least each threshold were kept (the
    points of a free-response ROC curve, Chakraborty 1989, doi:10.1118/1.596358). ``cases``: per
    case its match and the scores of predicted labels 1..N (``scores[n - 1]`` for label n). A true
    lesion counts as found when one of the predictions that matched it is kept. Returns per
    threshold ``min_score``, ``sensitivity``, ``sensitivity_large`` (lesions of at least
    ``large_mm``; None if there are none) and ``false_positives_per_case``."""
    points = []
    for threshold in thresholds:
        found, found_large, false = [], [], 0
        for match, scores in cases:
            kept = {label for label, score in enumerate(scores, start=1) if score >= threshold}
            for labels, diameter_mm in zip(match.matched_by, match.truth_diameters_mm):
                hit = bool(kept.intersection(labels))
                found.append(hit)
                if diameter_mm >= large_mm:
                    found_large.append(hit)
            false += len(kept.intersection(match.false_labels))
        points.append({"min_score": threshold, "sensitivity": float(np.mean(found)) if found else None,
                       "sensitivity_large": float(np.mean(found_large)) if found_large else None,
                       "false_positives_per_case": false / max(len(cases), 1)})
    return points


def wilson_interval(hits: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson's score interval for a proportion ``hits / total`` (Wilson 1927,
    doi:10.1080/01621459.1927.10502953): at z = 1.96 the 95 % interval, which unlike the normal
    approximation stays within 0..1 and is not empty at 0 or ``total`` hits."""
    if total <= 0:
        raise ValueError("a proportion needs at least one trial")
    share = hits / total
    centre = (share + z * z / (2 * total)) / (1 + z * z / total)
    half = z / (1 + z * z / total) * np.sqrt(share * (1 - share) / total + z * z / (4 * total * total))
    return max(float(centre - half), 0.0), min(float(centre + half), 1.0)


def lesion_sensitivity(truth: np.ndarray, prediction: np.ndarray, geometry: Geometry, *,
                       min_diameter_mm: float = 0.0) -> float | None:
    """Per-lesion sensitivity over true lesions of at least ``min_diameter_mm`` (None if none)."""
    return match_lesions(truth, prediction, geometry).sensitivity(min_diameter_mm)


def false_positives(truth: np.ndarray, prediction: np.ndarray, geometry: Geometry, *,
                    ignore: np.ndarray | None = None) -> int:
    """Number of predicted instances matching no true lesion (outside ``ignore``)."""
    return match_lesions(truth, prediction, geometry, ignore=ignore).false_positives


def lesion_dice(truth: np.ndarray, prediction: np.ndarray, geometry: Geometry) -> float:
    """Dice of the union of all lesions (per case)."""
    del geometry  # same grid by contract; kept for a uniform signature
    return dice(np.asarray(truth) > 0, np.asarray(prediction) > 0)


def vessel_dice(truth: np.ndarray, prediction: np.ndarray, geometry: Geometry, *,
                region: np.ndarray | None = None) -> float:
    """Dice of one vessel tree, optionally restricted to ``region`` (e.g. liver + margin)."""
    del geometry
    truth = np.asarray(truth, dtype=bool)
    prediction = np.asarray(prediction, dtype=bool)
    if region is not None:
        region = np.asarray(region, dtype=bool)
        truth, prediction = truth & region, prediction & region
    return dice(truth, prediction)
