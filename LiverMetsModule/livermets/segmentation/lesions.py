"""Automatic detection of focal liver lesions (metastases, cysts) inside a liver mask.

Method (no trained model; thresholds are in units of the liver's own robust spread)
--------------------------------------------------------------------------------
1. Evidence map: per sequence a robust z-score against the liver (median / MAD), signed
   by :func:`livermets.sequences.lesion_polarity` so lesions are positive (dark on hbp,
   portal-venous, arterial, t1, ct; bright on t2, dwi); sequences are averaged and the
   mean re-normalised, so one or several sequences use the same thresholds.
2. Candidates: liver voxels above a level in connected parts reaching :data:`SEED_Z`; levels
   rise geometrically from :data:`LOW_Z` to half the highest evidence, and at each level the
   pieces not yet accepted are scored (a component-tree search, as in MSER, Matas et al. 2002):
   a lesion merged with a vessel or noise at a low level stands alone at a higher one.
3. Instances: touching objects are split by a marker watershed on the inside distance map
   (markers = h-maxima of the distance, depth in mm; Beucher & Meyer 1993), which also cuts
   a lesion from a vessel running into it and chops vessel trees into tube pieces.
4. Each piece gets its own boundary at half its contrast (partial volume), grown inside
   the liver up to the capsule; an opening at half its inscribed radius trims vessel stalks.
5. Score 0..1 from contrast, size, and shape: a blob is not a tube, so a piece must fill a
   good part of the ball spanning its largest extent (roundness) and not be elongated along
   its principal axis; overlap with a given vessel mask lowers the score. Instances below
   ``min_score`` are dropped.
6. Likely cyst: fluid-bright on t2 (>= :data:`CYST_T2_RATIO` x liver median) and not bright
   on dwi, when those sequences are given.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from livermets.errors import InputError
from livermets.geometry import Geometry
from livermets.segmentation import filters
from livermets.sequences import lesion_polarity

SMOOTH_MM = 1.0            # Gaussian sigma (mm) of the evidence map used to draw boundaries
DETECT_SIGMA_PER_DIAMETER = 0.4  # detection map sigma = 0.4 x smallest lesion diameter (matched filter)
LOW_Z = 2.5                # candidate voxels: evidence above this (robust SDs of the liver)
LEVEL_STEP = 1.4           # thresholds LOW_Z * 1.4^n up to half the highest evidence (component tree)
SEED_Z = 4.0               # a candidate must reach this somewhere
CONTRAST_FRACTION = 0.5    # instance boundary at this fraction of its peak contrast
MIN_BLOB_RATIO = 0.45      # Hessian |l1| / sqrt(|l2 l3|) at the lesion's scale: ~1 ball, ~0 tube
MIN_ROUNDNESS = 0.2        # volume / ball of the same extent: ~0.5-1 for lesions, < 0.1 for vessel pieces
SPLIT_DEPTH_MM = 1.5       # h-maxima depth separating two touching lesions
MAX_ELONGATION = 3.0       # longest / middle principal axis above which a shape is tube-like
CYST_T2_RATIO = 2.5        # fluid: median t2 at least this many times the liver's
CYST_DWI_MAX_Z = 1.0       # cysts are not brighter than liver on high-b dwi


@dataclass
class LesionResult:
    """Detected lesions on the input grid.

    ``instances`` is uint16 ``[k, j, i]``, 0 background and 1..N one label per lesion;
    ``scores[i]`` and ``likely_cyst[i]`` describe label ``i + 1``; ``table`` holds one dict per
    lesion: ``id``, ``center_ras_mm``, ``volume_ml``, ``longest_axial_diameter_mm``, ``score``,
    ``likely_cyst``.
    """

    instances: np.ndarray
    scores: list[float] = field(default_factory=list)
    likely_cyst: list[bool] = field(default_factory=list)
    table: list[dict] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.scores)


def detect_lesions(images: dict[str, np.ndarray], liver: np.ndarray, geometry: Geometry, *,
                   vessels: np.ndarray | None = None, min_diameter_mm: float = 5.0,
                   min_score: float = 0.5) -> LesionResult:
    """Find lesions inside ``liver`` on one or several aligned sequences.

    Parameters
    ----------
    images : dict sequence name -> float array ``[k, j, i]`` on ``geometry``
    liver : bool/uint8 ``[k, j, i]`` whole-liver mask (lesions included)
    vessels : optional bool ``[k, j, i]`` vessel mask; lesions overlapping it are penalised
    min_diameter_mm : smallest lesion (volume-equivalent diameter) to report
    min_score : instances scoring below this (0..1) are not reported
    """
    images = _check_inputs(images, liver, geometry, vessels)
    full_liver = np.asarray(liver).astype(bool)
    box = _bounding_box(full_liver, pad=[2, 2, 2])  # all work happens in the liver's box
    liver = full_liver[box]
    images = {name: image[box] for name, image in images.items()}
    vessels = None if vessels is None else np.asarray(vessels, dtype=bool)[box]
    spacing = geometry.spacing_mm
    # detection on a map smoothed at the smallest lesion's scale; boundaries on a sharper one
    evidence = filters.combined_evidence(images, liver, spacing, lesion_polarity,
                                         sigma_mm=DETECT_SIGMA_PER_DIAMETER * min_diameter_mm)
    sharp = filters.combined_evidence(images, liver, spacing, lesion_polarity, sigma_mm=SMOOTH_MM)

    # the outermost voxel layer is partial volume with whatever surrounds the liver: candidates
    # start one voxel inside and may grow back into that layer (subcapsular lesions)
    interior = _erode_one_voxel(liver)
    pieces, piece_scores = _accept_pieces(evidence, sharp, interior, vessels, spacing, min_diameter_mm, min_score)
    grown = _grow_instances(pieces, sharp, liver, spacing)
    kept = [(piece_scores[label], grown == label) for label in piece_scores if (grown == label).any()]
    kept.sort(key=lambda item: -item[0])

    instances = np.zeros(geometry.shape, dtype=np.uint16)
    for index, (_, voxels) in enumerate(kept, start=1):
        instances[box][voxels] = index
    scores = [round(float(score), 4) for score, _ in kept]
    cysts = [_likely_cyst(voxels, images, liver & (instances[box] == 0)) for _, voxels in kept]
    table = [_describe(instances == n, n, scores[n - 1], cysts[n - 1], geometry) for n in range(1, len(kept) + 1)]
    return LesionResult(instances, scores, cysts, table)


def _check_inputs(images, liver, geometry, vessels) -> dict[str, np.ndarray]:
    checked = filters.checked_images(images, liver, geometry, task="looking for lesions")
    if vessels is not None and tuple(np.shape(vessels)) != geometry.shape:
        raise InputError(f"the vessel mask has shape {np.shape(vessels)} but the grid is {geometry.shape}")
    return checked


def _erode_one_voxel(mask: np.ndarray) -> np.ndarray:
    image = sitk.GetImageFromArray(mask.astype(np.uint8))
    return sitk.GetArrayFromImage(sitk.BinaryErode(image, [1, 1, 1], sitk.sitkBall, 0, 1, False)).astype(bool)


def _grow_instances(labels: np.ndarray, evidence: np.ndarray, liver: np.ndarray, spacing) -> np.ndarray:
    """Give each instance its own boundary at CONTRAST_FRACTION of its peak evidence."""
    out = np.zeros(labels.shape, dtype=np.int32)
    count = int(labels.max())
    if count == 0:
        return out
    reach_mm = 2.0 * max(min(spacing), 1.0)
    for label in range(1, count + 1):
        core = labels == label
        if not core.any():
            continue
        box = _bounding_box(core, pad=[int(np.ceil(reach_mm / s)) + 1 for s in spacing])
        core_box = core[box]
        peak = float(np.percentile(evidence[box][core_box], 75))
        threshold = max(LOW_Z * 0.6, CONTRAST_FRACTION * peak)
        region = filters.morphology_mm(core_box, spacing, reach_mm, "dilate") & liver[box]
        region &= (labels[box] == 0) | core_box
        region &= out[box] == 0
        region &= evidence[box] > threshold
        keep = filters.trim_stalks(_touching(region, core_box & region), spacing)
        out[box][keep] = label
    return out


def _touching(mask: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Connected parts of ``mask`` that contain a ``seeds`` voxel."""
    parts, _ = filters.connected_components(mask)
    touching = np.unique(parts[seeds])
    return np.isin(parts, touching[touching > 0])


def _bounding_box(mask: np.ndarray, pad) -> tuple[slice, slice, slice]:
    where = np.nonzero(mask)
    return tuple(slice(max(int(w.min()) - p, 0), min(int(w.max()) + p + 1, n))
                 for w, p, n in zip(where, pad, mask.shape))


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


def _accept_pieces(evidence, sharp, interior, vessels, spacing, min_diameter_mm, min_score):
    """Greedy search down the threshold tree: at rising evidence levels, split the candidates
    into pieces and accept those scoring >= ``min_score`` (a lesion merged with vessels or
    noise at a low level stands alone at a higher one). Returns (int32 labels, {label: score})."""
    accepted = np.zeros(evidence.shape, dtype=np.int32)
    scores: dict[int, float] = {}
    top = 0.5 * float(evidence[interior].max()) if interior.any() else LOW_Z
    levels = LOW_Z * LEVEL_STEP ** np.arange(max(1, int(np.log(max(top, LOW_Z) / LOW_Z) / np.log(LEVEL_STEP)) + 1))
    for level in levels:
        taken = filters.morphology_mm(accepted > 0, spacing, max(spacing), "dilate")
        candidates = interior & (evidence > level) & ~taken
        pieces = filters.split_by_distance(filters.keep_reaching(candidates, evidence, max(SEED_Z, level)), spacing,
                                           depth_mm=SPLIT_DEPTH_MM)
        piece_scores = _score_pieces(pieces, evidence, sharp, vessels, spacing, min_diameter_mm, min_score)
        sizes_mm3 = np.bincount(pieces.ravel()) * float(np.prod(spacing))
        for label, score in piece_scores.items():
            voxels = pieces == label
            if score < min_score and sizes_mm3[label] >= np.pi / 6 * (2 * min_diameter_mm) ** 3:
                voxels, score = _without_stalks(voxels, evidence, sharp, vessels, spacing, min_diameter_mm, min_score)
            if score >= min_score:
                new_label = len(scores) + 1
                accepted[voxels] = new_label
                scores[new_label] = score
    return accepted, scores


def _without_stalks(piece, evidence, sharp, vessels, spacing, min_diameter_mm, min_score):
    """A large piece failing the shape test, scored again with its thin attachments cut
    (a lesion and the vessel running into it, merged on thick slices): (voxels, score)."""
    box = _bounding_box(piece, pad=[1, 1, 1])
    trimmed = filters.trim_stalks(piece[box], spacing)
    labels = trimmed.astype(np.int32)
    score = _score_pieces(labels, evidence[box], sharp[box], None if vessels is None else vessels[box], spacing,
                          min_diameter_mm, min_score).get(1, 0.0)
    voxels = np.zeros(piece.shape, dtype=bool)
    voxels[box] = trimmed
    return voxels, score


def _score_pieces(pieces, evidence, sharp, vessels, spacing, min_diameter_mm, min_score) -> dict[int, float]:
    """Confidence 0..1 per piece that it is a lesion, not noise or a vessel: contrast, size
    (volume-equivalent diameter), straightness (principal axes), roundness (volume over the
    ball spanning the Feret diameter), overlap with ``vessels`` and -- for pieces passing
    all that -- the Hessian blob ratio at the piece's scale."""
    if pieces.max() == 0:
        return {}
    label_image = filters.image_from_array(pieces.astype(np.uint32), spacing)
    shape = sitk.LabelShapeStatisticsImageFilter()
    shape.ComputeFeretDiameterOn()
    shape.Execute(label_image)
    intensity = sitk.LabelIntensityStatisticsImageFilter()
    intensity.Execute(label_image, filters.image_from_array(evidence, spacing))
    if vessels is not None:
        overlap = sitk.LabelIntensityStatisticsImageFilter()
        overlap.Execute(label_image, filters.image_from_array(np.asarray(vessels, dtype=np.float32), spacing))
    voxel_mm = float(np.mean(spacing))
    scores = {}
    for label in shape.GetLabels():
        volume_mm3 = shape.GetPhysicalSize(label)
        diameter_mm = (6.0 * volume_mm3 / np.pi) ** (1.0 / 3.0)
        roundness = volume_mm3 / (np.pi / 6.0 * (shape.GetFeretDiameter(label) + voxel_mm) ** 3)
        moments = np.asarray(shape.GetPrincipalMoments(label)) + voxel_mm ** 2 / 12.0
        elongation = float(np.sqrt(moments[2] / moments[1]))
        peak = intensity.GetMaximum(label)
        contrast = _sigmoid((peak - SEED_Z) / 0.5 + 2.0)
        size = _sigmoid((diameter_mm - min_diameter_mm) / (0.05 * min_diameter_mm))
        straight = _sigmoid((MAX_ELONGATION - elongation) / 0.3)
        round_ = _sigmoid((roundness - MIN_ROUNDNESS) / 0.04)
        vessel_fraction = overlap.GetMean(label) if vessels is not None else 0.0
        score = contrast * size * straight * round_ * (1.0 - vessel_fraction)
        if score >= min_score:
            center_kji = np.asarray(shape.GetCentroid(label))[::-1] / np.asarray(spacing)
            ratio = _blob_ratio(sharp, center_kji, diameter_mm / 2.0, spacing)
            score *= _sigmoid((ratio - MIN_BLOB_RATIO) / 0.05)
        scores[int(label)] = score
    return scores


def _blob_ratio(image: np.ndarray, center_kji, radius_mm: float, spacing) -> float:
    """Frangi's blob ratio |l1| / sqrt(|l2 l3|) of the Hessian at ``center_kji`` at the scale
    of a ball of ``radius_mm`` (sigma = r / sqrt(3)) on an isotropic local grid: ~1 for a
    bright ball, ~0 for a tube or a plate; 0 unless all three curvatures are negative."""
    sigma = float(np.clip(radius_mm / np.sqrt(3.0), 1.0, 12.0))
    center = np.clip(np.round(center_kji).astype(int), 0, np.asarray(image.shape) - 1)
    point = np.zeros(image.shape, dtype=bool)
    point[tuple(center)] = True
    grid = filters.WorkGrid.around(point, spacing, margin_mm=4.0 * sigma,
                                   spacing_mm=filters.working_spacing_mm(spacing, finest_mm=0.5 * sigma,
                                                                         coarsest_mm=max(sigma / 1.5, 1.0)))
    work = grid.to_work(image)
    where = np.zeros(work.shape, dtype=bool)
    offset_mm = (center - np.asarray([b.start for b in grid.box])) * np.asarray(spacing)
    where[tuple(np.clip(np.round(offset_mm / grid.spacing_mm).astype(int), 0, np.asarray(work.shape) - 1))] = True
    values = filters.hessian_eigenvalues(work, (grid.spacing_mm,) * 3, sigma, where)[0]
    if (values >= 0).any():
        return 0.0
    magnitude = np.abs(values)
    return float(magnitude[0] / np.sqrt(magnitude[1] * magnitude[2]))


def _likely_cyst(voxels: np.ndarray, images: dict[str, np.ndarray], parenchyma: np.ndarray) -> bool:
    """Fluid-like: very bright on t2 and not bright on dwi (needs at least one of them)."""
    if "t2" not in images and "dwi" not in images:
        return False
    if not parenchyma.any():
        parenchyma = ~voxels
    verdict = True
    if "t2" in images:
        liver_t2, _ = filters.robust_center_spread(images["t2"][parenchyma])
        lesion_t2 = float(np.median(images["t2"][voxels]))
        verdict &= liver_t2 > 0 and lesion_t2 >= CYST_T2_RATIO * liver_t2
    if "dwi" in images:
        center, spread = filters.robust_center_spread(images["dwi"][parenchyma])
        verdict &= (float(np.median(images["dwi"][voxels])) - center) / spread <= CYST_DWI_MAX_Z
    return bool(verdict)


def _describe(voxels: np.ndarray, label: int, score: float, cyst: bool, geometry: Geometry) -> dict:
    center_kji = np.argwhere(voxels).mean(axis=0)
    return {
        "id": label,
        "center_ras_mm": [round(float(v), 2) for v in geometry.kji_to_ras(center_kji)],
        "volume_ml": round(float(voxels.sum()) * geometry.voxel_volume_ml, 4),
        "longest_axial_diameter_mm": round(longest_axial_diameter_mm(voxels, geometry), 2),
        "score": score,
        "likely_cyst": cyst,
    }


def longest_axial_diameter_mm(mask: np.ndarray, geometry: Geometry) -> float:
    """Longest in-plane extent (mm, between voxel centres plus one voxel) over the axial slices
    of ``mask`` (slices across :meth:`Geometry.axial_axis`), as used for RECIST-like reporting."""
    axis = geometry.axial_axis()
    spacing = np.delete(np.asarray(geometry.spacing_mm, dtype=float), axis)
    best = 0.0
    for index in np.unique(np.nonzero(mask)[axis]):
        plane = np.take(mask, index, axis=axis)
        points = np.argwhere(plane) * spacing
        if len(points) > 400:
            points = _hull_candidates(points)
        difference = points[:, None, :] - points[None, :, :]
        best = max(best, float(np.sqrt((difference ** 2).sum(-1)).max()))
    return best + float(spacing.mean()) if best or mask.any() else 0.0


def _hull_candidates(points: np.ndarray) -> np.ndarray:
    """Extreme points of a 2D set along 64 directions (enough for the diameter)."""
    angles = np.linspace(0, np.pi, 64, endpoint=False)
    directions = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    projection = points @ directions.T
    index = np.unique(np.concatenate([projection.argmax(0), projection.argmin(0)]))
    return points[index]

