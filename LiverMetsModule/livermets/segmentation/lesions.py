"""Automatic detection of focal liver lesions (metastases, cysts) inside a liver mask.

Method (no trained model; thresholds are in units of the liver's own robust spread)
--------------------------------------------------------------------------------
0. Working grid: voxels much finer than the smallest lesion needs (below a quarter of
   ``min_diameter_mm`` along an axis) are resampled to that spacing for detection; the
   final boundaries are drawn back on the input grid (linear interpolation of the evidence
   around each lesion, boundary at the lesion's own threshold).
1. Evidence map: per sequence a robust z-score against the liver, signed by
   :func:`livermets.sequences.lesion_polarity` so lesions are positive (dark on hbp,
   portal-venous, arterial, t1, ct; bright on t2, dwi); the spread is the MAD of the quieter
   half of the histogram around a clipped median, so vessels as bright (or dark) as lesions
   do not inflate it; sequences are averaged and the mean re-normalised, so one or several
   sequences use the same thresholds.
2. Candidates: liver voxels above a level in connected parts reaching :data:`SEED_Z`; levels
   rise geometrically from :data:`LOW_Z` to (at least) half the highest evidence, and at each
   level the pieces not yet accepted are scored (a component-tree search, as in MSER, Matas et
   al. 2002): a lesion merged with a vessel or noise at a low level stands alone at a higher one.
   A piece scoring :data:`CONFIDENT_SCORE` is accepted at once; a weaker one waits, so that a
   better-scoring piece inside it at a higher level wins, and is kept only if none does.
3. Instances: touching objects are split by a marker watershed on the inside distance map
   (markers = h-maxima of the distance, depth in mm; Beucher & Meyer 1993), which also cuts
   a lesion from a vessel running into it and chops vessel trees into tube pieces.
4. Each piece gets its own boundary at half its contrast (partial volume; the contrast is
   estimated on the piece, then once more on the region it gives), grown inside the liver up
   to the capsule; an opening at half its inscribed radius trims vessel stalks.
5. Score 0..1 from contrast, size, and shape: a blob is not a tube, so a piece must fill a
   good part of the ball spanning its largest extent (roundness) and not be elongated along
   its principal axis; overlap with a given vessel mask lowers the score.
6. Vessel check on the grown instance, in the plane of the slices (thick slices make 3D shape
   measures meaningless: a vessel cut by a 7 mm slice is as "round" as a lesion): its largest
   cross-section must reach ``min_diameter_mm`` and, on slices at least
   :data:`THICK_SLICE_RATIO` pixels thick, be round (principal-axis ratio, fill of its Feret
   disc; where the liver's edge cuts it, fill of the part of the disc inside the liver; on
   thinner slices step 5 judges the shape in 3D, and a cross-section a few pixels across on a
   coarse grid gains or loses a row with the noise); structure of about its own contrast
   attached to it must not be as thick as :data:`THICK_FRACTION` of its radius where it joins
   it (a lesion is thicker than the vessels touching it, a vessel piece is no thicker than its
   continuation; measured by a morphological opening, the granulometry of Serra 1982, "Image
   Analysis and Mathematical Morphology"; a thick vessel reached only through a thin one is not
   a continuation); an instance on one slice, narrower than :data:`JUNCTION_DIAMETER_MM`, must
   stand out from the liver around it in its plane (the 90th percentile of the evidence in a ring
   2-6 mm out below :data:`MAX_SURROUND` of its contrast: where veins of its polarity meet within
   a thick slice, the confluence is round and thicker than each vein, but the veins leave it on
   every side; on real T2 livers, where veins are bright, such confluences and mottled parenchyma
   were most of the false positives; the price is a lesion that small with such veins close
   around it); and an instance of in-plane radius below :data:`ONE_SLICE_RADIUS` slice
   spacings must not continue on both neighbouring slices (a vessel crossing the slices does; a
   ball that small reaches at most a quarter of each neighbour's thickness, too little to show
   there with :data:`MAX_CONTINUATION` of its contrast). Where the instance lies against the
   liver's upper or lower surface, it must not be the partial volume of what lies beyond: the
   next slice there, outside the liver, must not hold clearly more of its contrast (a bright
   kidney or gallbladder under a T2 slice, air or lung over an hbp one), nor stand out from its
   own surroundings there as much as the instance stands out from the liver (a vein leaving the
   liver, crossing its last slice).
   On CT, an instance of fat density (median below :data:`FAT_HU`) is fat in a fissure, at the
   hilum or focal fat that the liver mask holds, not a lesion: metastases and cysts are denser.
   Instances below ``min_score`` are dropped.
7. Likely cyst: fluid-bright on t2 (>= :data:`CYST_T2_RATIO` x liver median) and not bright
   on dwi, when those sequences are given; on CT, of water density throughout its core (the
   instance less one voxel of partial volume: median at most :data:`CYST_HU`, no part above
   :data:`CYST_HU_HIGH`, so not a necrotic lesion's enhancing rim).
8. Bulging lesions (``beyond_capsule_mm`` > 0, for an automatic liver, which may leave out a large
   lesion bulging through the capsule: a network trained on healthy livers sees a bright round
   object at the liver's edge as a neighbour): steps 0-6 once more in the liver and a rim of that
   width around it, the evidence still measured against the liver. Candidates in the rim lie near
   something standing out against the capsule, and may cross the liver's outermost voxel layer
   where something stands out on both sides of it. None are looked for when more than
   :data:`MAX_LESION_LIKE_RIM` of the rim stands out (on hbp, portal-venous and CT the fat around
   the liver is as dark as a lesion: a lesion would not stand out there). An instance found so
   is kept if it bulges: at least :data:`MIN_BULGE` of it outside the liver, at least
   :data:`MIN_HELD` of its surroundings in it, at most :data:`MAX_AT_EDGE` at the rim's outer
   edge (what goes on beyond the rim is another organ: kidney, spleen, bowel) and none of its
   outside part at the image's edge, at least :data:`BULGE_DIAMETERS` smallest lesions across
   by volume and along each axis (a ball, not a structure on one thick slice), and not fluid (a
   gallbladder or a renal cyst lies against the liver as a bulging cyst would). It replaces the
   instances of steps 0-6 it overlaps (parts of it cut by the liver's edge).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from livermets.errors import InputError
from livermets.geometry import Geometry
from livermets.segmentation import filters, parallel
from livermets.segmentation.morphology import binary_morphology
from livermets.sequences import lesion_polarity

SMOOTH_MM = 1.0            # Gaussian sigma (mm) of the evidence map used to draw boundaries
DETECT_SIGMA_PER_DIAMETER = 0.4  # detection map sigma = 0.4 x smallest lesion diameter (matched filter)
WORK_SAMPLES_PER_DIAMETER = 4    # working grid: at least this many samples across the smallest lesion
LOW_Z = 2.5                # candidate voxels: evidence above this (robust SDs of the liver)
LEVEL_STEP = 1.4           # thresholds LOW_Z * 1.4^n up to half the highest evidence (or just above it)
SEED_Z = 4.0               # a candidate must reach this somewhere
CONTRAST_FRACTION = 0.5    # instance boundary at this fraction of its peak contrast
CONFIDENT_SCORE = 0.8      # a piece scoring this is accepted at once; lower ones wait for a better one inside
MIN_BLOB_RATIO = 0.45      # Hessian |l1| / sqrt(|l2 l3|) at the lesion's scale: ~1 ball, ~0 tube
MIN_ROUNDNESS = 0.2        # volume / ball of the same extent: ~0.5-1 for lesions, < 0.1 for vessel pieces
SPLIT_DEPTH_MM = 1.5       # h-maxima depth separating two touching lesions
MAX_ELONGATION = 3.0       # longest / middle principal axis above which a shape is tube-like
MAX_PLANE_ELONGATION = 1.5  # largest cross-section: principal-axis ratio (lobulated lesions ~1.0-1.4)
MIN_PLANE_FILL = 0.6       # largest cross-section: area / disc of its Feret diameter (disc 1, triangle 0.55)
MIN_SHAPE_PIXELS = 2.0     # in-plane shape measured only if the cross-section's radius spans this many pixels
THICK_SLICE_RATIO = 1.5    # ... and the slices are at least this many pixels thick (else 3D tests judge)
MAX_CAPSULE_OUTLINE = 0.25  # a cross-section with this fraction of its outline on the liver's edge is cut by it
ATTACHED_FRACTION = 1 / 3  # attached structure: evidence between this fraction of the instance's contrast ...
ALIKE_CEILING = 1.5        # ... and this multiple of it
THICK_FRACTION = 0.7      # attached structure as thick as this fraction of the instance's radius ...
MAX_THICK_ATTACHMENT = 1.0  # ... may hold at most this many instance volumes
JUNCTION_DIAMETER_MM = 15.0  # an instance on one slice narrower than this could be where vessels join: ...
SURROUND_NEAR_MM = 2.0     # ... the liver around its cross-section from this far (mm; at least one pixel) ...
SURROUND_WIDTH_MM = 4.0    # ... over this width ...
MAX_SURROUND = 0.55        # ... has a 90th percentile of evidence below this share of the instance's contrast
ONE_SLICE_RADIUS = 0.75    # instance of radius below this many slice spacings: it cannot fill both neighbours,
MAX_CONTINUATION = 0.4     # so its evidence beyond both ends / its contrast stays below this
PARTIAL_VOLUME_RATIO = 1.5  # partial volume: the neighbour beyond the liver has this multiple of a voxel's evidence,
LOCAL_PARTIAL_VOLUME_RATIO = 1.0  # ... or this multiple of its contrast to the liver around it, over its own surroundings
MAX_EXPLAINED = 0.4         # and at most this fraction of an instance's voxels may be so explained
FAT_HU = -20.0             # on CT, an instance whose median is below this (HU) is fat, not a lesion
CYST_T2_RATIO = 2.5        # fluid: median t2 at least this many times the liver's
CYST_DWI_MAX_Z = 1.0       # cysts are not brighter than liver on high-b dwi
CYST_HU = 20.0             # CT: a cyst's core has a median of at most this (HU, water density) ...
CYST_HU_HIGH = 35.0        # ... and a 90th percentile of at most this (no enhancing part)
NEAR_BULGE_MM = 20.0       # beyond the capsule, candidates only this near something standing out against it, ...
MAX_LESION_LIKE_RIM = 0.25  # ... and none if more than this share of the rim stands out (on hbp, portal-venous
                            # and CT the fat around the liver is as dark as a lesion)
MIN_BULGE = 0.2            # a lesion bulging out of the liver has at least this share of itself outside, ...
MIN_HELD = 0.2             # ... at least this share of its surroundings inside (a third for a ball whose
                           # centre lies a third of its radius outside a flat capsule; an automatic liver
                           # that leaves out a lesion often leaves out liver around it too: 0.24-0.33 for
                           # three of the 30 mm lesions on CHAOS), ...
BULGE_DIAMETERS = 2.0      # ... is at least this many smallest lesions across (an automatic liver leaves out
                           # large lesions only: the network took in every 20 mm one on CHAOS), ...
MAX_AT_EDGE = 0.02         # ... and at most this share at the outer edge of the rim searched


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
                   min_score: float = 0.5, beyond_capsule_mm: float = 0.0) -> LesionResult:
    """Find lesions inside ``liver`` on one or several aligned sequences, numbered from the
    highest score down.

    Parameters
    ----------
    images : dict sequence name -> float array ``[k, j, i]`` on ``geometry``
    liver : bool/uint8 ``[k, j, i]`` whole-liver mask (lesions included)
    vessels : optional bool ``[k, j, i]`` vessel mask; lesions overlapping it are penalised, and
        vessels in it touching a lesion do not count as its continuation (step 6)
    min_diameter_mm : smallest lesion (volume-equivalent diameter, and diameter of its largest
        cross-section) to report; also sets the working grid (:data:`WORK_SAMPLES_PER_DIAMETER`)
    min_score : instances scoring below this (0..1) are not reported
    beyond_capsule_mm : for a ``liver`` that may leave out lesions bulging through the capsule
        (an automatic one; a reader's outline includes them): lesions may reach this far (mm)
        outside it (step 8 of the module docstring). 0: inside ``liver`` only.
    """
    images = _check_inputs(images, liver, geometry, vessels)
    liver = np.asarray(liver).astype(bool)
    spacing = tuple(float(s) for s in geometry.spacing_mm)
    vessels = None if vessels is None else np.asarray(vessels, dtype=bool)
    regions = [liver]
    if beyond_capsule_mm > 0:
        regions.append(filters.morphology_mm(liver, spacing, beyond_capsule_mm, "dilate"))
    # the two searches are independent: side by side (step 8 doubles the work on T2 and DWI)
    searches = parallel.thread_map(
        lambda region: _search(images, liver, region, vessels, spacing, min_diameter_mm, min_score), regions)
    found = searches[0]
    if beyond_capsule_mm > 0:
        found = _with_bulging(found, searches[1], liver, regions[1], images, spacing, min_diameter_mm)
    found.sort(key=lambda item: -item[0])
    instances = np.zeros(geometry.shape, dtype=np.uint16)
    kept = []  # (score, box, voxels in the box), no voxel in two
    for score, box, voxels in found:
        voxels = voxels & (instances[box] == 0)
        if voxels.any():
            kept.append((score, box, voxels))
            instances[box][voxels] = len(kept)
    scores = [round(float(score), 4) for score, _, _ in kept]
    reference = _cyst_reference(images, liver & (instances == 0))
    cysts = [_likely_cyst({name: image[box] for name, image in images.items()}, voxels, reference, spacing)
             for _, box, voxels in kept]
    table = [_describe(voxels, [b.start for b in box], n, scores[n - 1], cysts[n - 1], geometry)
             for n, (_, box, voxels) in enumerate(kept, start=1)]
    return LesionResult(instances, scores, cysts, table)


def _search(images: dict[str, np.ndarray], liver: np.ndarray, region: np.ndarray, vessels: np.ndarray | None,
            spacing, min_diameter_mm: float, min_score: float) -> list[tuple[float, tuple[slice, ...], np.ndarray]]:
    """Steps 0-6 in ``region`` (``liver`` itself, or the liver and a rim around it, where the
    evidence is measured against the liver all the same): ``(score, box, voxels in the box)`` per
    instance on the input grid, boxes in full-grid voxels, best first."""
    box = _bounding_box(region, pad=[2, 2, 2])  # all work happens in the region's box
    liver, region = liver[box], region[box]
    images = {name: image[box] for name, image in images.items()}
    work_spacing = working_spacing_kji_mm(spacing, min_diameter_mm)
    resampled = work_spacing != spacing
    if resampled:
        work_images = {name: filters.resample_spacing(image, spacing, work_spacing, linear=True)
                       for name, image in images.items()}
        work_liver, work_region = (filters.resample_spacing(mask, spacing, work_spacing, linear=False)
                                   for mask in (liver, region))
    else:
        work_images, work_liver, work_region = images, liver, region
    work_vessels = None
    if vessels is not None:
        work_vessels = vessels[box]
        if resampled:
            work_vessels = filters.resample_spacing(work_vessels, spacing, work_spacing, linear=False)
    rim = work_region & ~work_liver

    # detection on a map smoothed at the smallest lesion's scale; boundaries on a sharper one
    evidence = filters.combined_evidence(work_images, work_liver, work_spacing, lesion_polarity, quieter_side=True,
                                         sigma_mm=DETECT_SIGMA_PER_DIAMETER * min_diameter_mm, support=work_region)
    if rim.any() and float(np.mean(evidence[rim] > LOW_Z)) > MAX_LESION_LIKE_RIM:
        return []  # what surrounds the liver looks like a lesion: no lesion would stand out there
    # resampling already smoothed by half the working spacing: the boundary map keeps SMOOTH_MM in all
    presmooth_mm = max((0.5 * w for w, s in zip(work_spacing, spacing) if w > s), default=0.0)
    sharp_sigma_mm = float(np.sqrt(max(SMOOTH_MM ** 2 - presmooth_mm ** 2, 0.0)))
    sharp = filters.combined_evidence(work_images, work_liver, work_spacing, lesion_polarity, quieter_side=True,
                                      sigma_mm=sharp_sigma_mm, support=work_region)
    # the outermost voxel layer is partial volume with whatever surrounds the liver: candidates
    # start one voxel inside (along the axes sampled finer than a voxel of the others) and may
    # grow back into that layer (subcapsular lesions); with a rim, they may also lie in the rim
    # near what stands out there, and cross that layer where something stands out on both sides
    interior = filters.morphology_mm(work_liver, work_spacing, min(work_spacing), "erode")
    if rim.any():
        step = min(work_spacing)
        crossing = work_liver & ~interior & (evidence > LOW_Z)
        for side in (rim, interior):
            crossing &= filters.morphology_mm(side & (evidence > LOW_Z), work_spacing, step, "dilate")
        at_capsule = rim & (evidence > SEED_Z) & filters.morphology_mm(work_liver, work_spacing, step, "dilate")
        interior = (interior | crossing | rim) & filters.morphology_mm(at_capsule, work_spacing, NEAR_BULGE_MM,
                                                                     "dilate")
    pieces, piece_scores = _accept_pieces(evidence, sharp, interior, work_vessels, work_spacing, min_diameter_mm,
                                          min_score)
    grown, thresholds = _grow_instances(pieces, sharp, work_region, work_spacing)
    roundness = {label: _plane_check(grown[around] == label, work_region[around], work_spacing, min_diameter_mm)
                 for label, around in _label_boxes(grown, pad=1).items()}
    boxes = _label_boxes(grown, pad=0)
    # two round instances touching each other are two lesions, not a vessel and its continuation;
    # a segmented vessel touching an instance is another object (the instance's own overlap with
    # the vessel mask is scored in step 5)
    free = work_region & ~np.isin(grown, [label for label, value in roundness.items() if value >= 0.5])
    if work_vessels is not None:
        free &= ~work_vessels
    kept = []  # (score, box, voxels in the box, boundary threshold) on the working grid
    for label in sorted(boxes):
        voxels = grown[boxes[label]] == label
        score = piece_scores[label] * roundness[label]
        if score >= min_score:
            score *= _isolation(boxes[label], voxels, sharp, free, work_spacing)
        if score >= min_score:
            score *= _not_partial_volume(boxes[label], voxels, work_images, work_region, work_spacing,
                                         sharp_sigma_mm)
        if score >= min_score and "ct" in work_images:
            score *= float(np.median(work_images["ct"][boxes[label]][voxels]) >= FAT_HU)
        if score >= min_score:
            kept.append((score, boxes[label], voxels, thresholds[label]))
    kept.sort(key=lambda item: -item[0])
    found = []
    for score, work_box, voxels, threshold in kept:
        if resampled:
            work_box, voxels = _to_input_grid(work_box, voxels, sharp, threshold, work_spacing, region, spacing)
        full_box = tuple(slice(b.start + o.start, b.stop + o.start) for b, o in zip(work_box, box))
        found.append((score, full_box, voxels))
    return found


def _with_bulging(inside: list, everywhere: list, liver: np.ndarray, reach: np.ndarray,
                  images: dict[str, np.ndarray], spacing, min_diameter_mm: float) -> list:
    """Step 8: the instances of ``inside`` (found in ``liver``) with those of ``everywhere`` (found
    in ``reach``, the liver and a rim around it) that bulge out of the liver: at least
    :data:`MIN_BULGE` of the instance outside it, at least :data:`MIN_HELD` of its surroundings
    (one voxel around it) in it, at most :data:`MAX_AT_EDGE` at the rim's outer edge (what goes
    on beyond the rim is another organ), nothing outside the liver at the image's edge,
    :data:`BULGE_DIAMETERS` times ``min_diameter_mm`` across or more (volume-equivalent
    diameter, and extent along each grid axis) and not fluid (a gallbladder or a renal cyst
    lies against the liver as a bulging cyst would). A bulging instance replaces those of
    ``inside`` it overlaps."""
    reference = _cyst_reference(images, liver)
    bulging = []
    for score, box, voxels in everywhere:
        volume_mm3 = float(voxels.sum() * np.prod(spacing))
        outside = voxels & ~liver[box]
        extents_mm = [(int(np.ptp(where)) + 1) * step for where, step in zip(np.nonzero(voxels), spacing)]
        if outside.sum() < MIN_BULGE * voxels.sum() or \
                (6.0 * volume_mm3 / np.pi) ** (1.0 / 3.0) < BULGE_DIAMETERS * min_diameter_mm or \
                min(extents_mm) < BULGE_DIAMETERS * min_diameter_mm:
            continue  # too little outside, or too small or too flat to be a lesion the liver left out
        if any((b.start == 0 and np.take(outside, 0, axis).any()) or
               (b.stop == n and np.take(outside, -1, axis).any()) for axis, (b, n) in enumerate(zip(box, liver.shape))):
            continue  # it goes on beyond the image: what it is there is unknown
        pad = tuple(slice(max(b.start - 1, 0), min(b.stop + 1, n)) for b, n in zip(box, liver.shape))
        around = np.zeros([b.stop - b.start for b in pad], dtype=bool)
        around[tuple(slice(b.start - p.start, b.stop - p.start) for b, p in zip(box, pad))] = voxels
        shell = binary_morphology(around, [1, 1, 1], "dilate") & ~around
        if liver[pad][shell].mean() < MIN_HELD or (~reach[pad][shell]).mean() > MAX_AT_EDGE:
            continue
        if _likely_cyst({name: image[box] for name, image in images.items()}, voxels, reference, spacing):
            continue
        bulging.append((score, box, voxels))
    if not bulging:
        return inside
    covered = np.zeros(liver.shape, dtype=bool)
    for _, box, voxels in bulging:
        covered[box] |= voxels
    return [item for item in inside if not covered[item[1]][item[2]].any()] + bulging


def describe_instances(instances: np.ndarray, scores: list[float], images: dict[str, np.ndarray],
                       liver: np.ndarray, geometry: Geometry) -> LesionResult:
    """A :class:`LesionResult` for lesion ``instances`` drawn by another method (uint16
    ``[k, j, i]``, labels 1..N, ``scores[i]`` the confidence 0..1 of label ``i + 1``): the same
    table rows and likely-cyst flags as for detected lesions (``images`` aligned by sequence name)."""
    instances = np.asarray(instances, dtype=np.uint16)
    if len(scores) != int(instances.max()):
        raise InputError(f"{len(scores)} scores given for {int(instances.max())} lesion instances")
    boxes = _label_boxes(instances, pad=0)
    if sorted(boxes) != list(range(1, len(scores) + 1)):
        raise InputError("lesion instances must be labelled 1..N without gaps")
    reference = _cyst_reference(images, np.asarray(liver, dtype=bool) & (instances == 0))
    cysts, table = [], []
    for label, score in enumerate(scores, start=1):
        box = boxes[label]
        voxels = instances[box] == label
        cysts.append(_likely_cyst({name: image[box] for name, image in images.items()}, voxels, reference,
                                  geometry.spacing_mm))
        table.append(_describe(voxels, [b.start for b in box], label, float(score), cysts[-1], geometry))
    return LesionResult(instances, [float(score) for score in scores], cysts, table)


def working_spacing_kji_mm(spacing_kji_mm, min_diameter_mm: float) -> tuple[float, float, float]:
    """Detection grid spacing (mm, k-j-i): each axis finer than ``min_diameter_mm`` /
    :data:`WORK_SAMPLES_PER_DIAMETER` is coarsened to that, the others are kept."""
    finest = min_diameter_mm / WORK_SAMPLES_PER_DIAMETER
    return tuple(float(max(s, finest)) for s in spacing_kji_mm)


def _to_input_grid(work_box, voxels: np.ndarray, sharp: np.ndarray, threshold: float, work_spacing,
                   liver: np.ndarray, spacing) -> tuple[tuple[slice, ...], np.ndarray]:
    """An instance found on the working grid (``voxels`` in ``work_box``), drawn on the input
    grid (crop of shape ``liver.shape``, same first voxel centre): the evidence minus the
    instance's threshold, kept on the instance and one voxel around it, is interpolated
    linearly and cut at zero (sub-voxel boundary). Returns (input-grid box, voxels in it)."""
    grown = tuple(slice(max(b.start - 1, 0), min(b.stop + 1, n)) for b, n in zip(work_box, sharp.shape))
    near = np.zeros([b.stop - b.start for b in grown], dtype=bool)
    near[tuple(slice(b.start - g.start, b.stop - g.start) for b, g in zip(work_box, grown))] = voxels
    work_box = grown
    near = binary_morphology(near, [1, 1, 1], "dilate")
    local = sharp[work_box]
    margin = float(np.abs(local).max()) + 1.0
    signed = np.where(near, np.clip(local - threshold, -margin, margin), -margin).astype(np.float32)
    # the input-grid voxels whose centres lie inside the working box
    low = [int(np.ceil(b.start * w / s - 1e-6)) for b, w, s in zip(work_box, work_spacing, spacing)]
    high = [min(int(np.floor((b.stop - 1) * w / s + 1e-6)) + 1, n)
            for b, w, s, n in zip(work_box, work_spacing, spacing, liver.shape)]
    image = filters.image_from_array(signed, work_spacing)
    image.SetOrigin([float(b.start * w) for b, w in zip(work_box[::-1], work_spacing[::-1])])
    reference = sitk.Image([int(h - lo) for lo, h in zip(low[::-1], high[::-1])], sitk.sitkFloat32)
    reference.SetSpacing([float(s) for s in spacing[::-1]])
    reference.SetOrigin([float(lo * s) for lo, s in zip(low[::-1], spacing[::-1])])
    values = filters.array_from_image(sitk.Resample(image, reference, sitk.Transform(), sitk.sitkLinear, -margin))
    region = tuple(slice(lo, h) for lo, h in zip(low, high))
    return region, (values > 0) & liver[region]


def _check_inputs(images, liver, geometry, vessels) -> dict[str, np.ndarray]:
    checked = filters.checked_images(images, liver, geometry, task="looking for lesions")
    if vessels is not None and tuple(np.shape(vessels)) != geometry.shape:
        raise InputError(f"the vessel mask has shape {np.shape(vessels)} but the grid is {geometry.shape}")
    return checked


def _grow_instances(labels: np.ndarray, evidence: np.ndarray, liver: np.ndarray,
                    spacing) -> tuple[np.ndarray, dict[int, float]]:
    """Give each instance its own boundary at CONTRAST_FRACTION of its peak evidence:
    (int32 labels, {label: boundary threshold in evidence units})."""
    out = np.zeros(labels.shape, dtype=np.int32)
    thresholds: dict[int, float] = {}
    reach_mm = 2.0 * max(min(spacing), 1.0)
    for label, box in sorted(_label_boxes(labels, pad=[int(np.ceil(reach_mm / s)) + 1 for s in spacing]).items()):
        core_box = labels[box] == label
        allowed = filters.morphology_mm(core_box, spacing, reach_mm, "dilate") & liver[box]
        allowed &= ((labels[box] == 0) | core_box) & (out[box] == 0)
        # the contrast is estimated on the core, then once more on the region it gives (a core
        # accepted at a low level carries a partial-volume rim that lowers its estimate)
        region = core_box
        for _ in range(2):
            threshold = max(LOW_Z * 0.6, CONTRAST_FRACTION * float(np.percentile(evidence[box][region], 75)))
            above = allowed & (evidence[box] > threshold)
            grown = _touching(above, core_box & above)
            if not grown.any():
                break
            region = grown
        keep = filters.trim_stalks(region & (evidence[box] > threshold), spacing)
        if keep.any():
            out[box][keep] = label
            thresholds[label] = threshold
    return out, thresholds


def _plane_check(voxels: np.ndarray, liver: np.ndarray, spacing, min_diameter_mm: float) -> float:
    """Factor 0..1 from the largest cross-section of ``voxels`` (a box with one voxel of margin;
    ``liver`` on the same box) in the plane of the slices (the slice axis has the largest
    spacing, k when all are equal): its area-equivalent diameter reaches ``min_diameter_mm`` (on
    thick slices a vessel cut by one slice has a lesion's volume), and, when the slices are
    :data:`THICK_SLICE_RATIO` pixels thick or more, it is round -- principal-axis ratio and fill
    of its Feret disc -- unless it is too few pixels across to have a measurable shape; where
    the liver's edge cuts it (a subcapsular lesion's outline there is the mask's, not its own)
    only the fill of the disc's part inside the liver counts."""
    axis = int(np.argmax(spacing))
    plane_spacing = np.delete(np.asarray(spacing, dtype=float), axis)
    planes, liver_planes = np.moveaxis(voxels, axis, 0), np.moveaxis(liver, axis, 0)
    index = int(np.argmax(planes.sum(axis=(1, 2))))
    widest = planes[index]
    radius_mm = float(np.sqrt(widest.sum() * np.prod(plane_spacing) / np.pi))
    factor = _sigmoid((2 * radius_mm - min_diameter_mm) / (0.05 * min_diameter_mm))
    thick = spacing[axis] >= THICK_SLICE_RATIO * plane_spacing.max()
    if thick and radius_mm >= MIN_SHAPE_PIXELS * plane_spacing.max():
        outline = widest & ~binary_morphology(widest[None], [1, 1, 0], "erode")[0]
        at_capsule = outline & ~binary_morphology(liver_planes[index][None], [1, 1, 0], "erode")[0]
        cut = at_capsule.sum() >= MAX_CAPSULE_OUTLINE * outline.sum()
        elongation, fill = _plane_shape(widest, plane_spacing, liver_planes[index] if cut else None)
        factor *= _sigmoid((MAX_PLANE_ELONGATION - elongation) / 0.05) * _sigmoid((fill - MIN_PLANE_FILL) / 0.03)
    return factor


def _isolation(box, voxels: np.ndarray, evidence: np.ndarray, free: np.ndarray, spacing) -> float:
    """Factor 0..1 that a grown instance (``voxels`` in the tight ``box``) is not a piece of a
    vessel (step 6 of the module docstring): structure of about its contrast attached to it
    within ``free`` (the liver less other round instances) is not as thick as a good part of its
    radius; on one slice and narrower than :data:`JUNCTION_DIAMETER_MM`, it stands out from the
    liver around it (:func:`_surround`); and if its radius is below :data:`ONE_SLICE_RADIUS` slices
    it does not go on through both neighbouring slices (slice axis: the largest spacing, k when all
    are equal)."""
    axis = int(np.argmax(spacing))
    spacing_array = np.asarray(spacing, dtype=float)
    areas_mm2 = np.moveaxis(voxels, axis, 0).sum(axis=(1, 2)) * np.prod(np.delete(spacing_array, axis))
    radius_mm = float(np.sqrt(areas_mm2.max() / np.pi))
    pad = [int(np.ceil((2.5 * radius_mm + s) / s)) for s in spacing]
    wide = tuple(slice(max(b.start - p, 0), min(b.stop + p, n)) for b, p, n in zip(box, pad, evidence.shape))
    instance = np.zeros([b.stop - b.start for b in wide], dtype=bool)
    instance[tuple(slice(b.start - w.start, b.stop - w.start) for b, w in zip(box, wide))] = voxels
    order = [axis] + [a for a in range(3) if a != axis]
    voxels, evidence, free = (np.transpose(a, order) for a in (instance, evidence[wide], free[wide]))
    spacing = spacing_array[order]
    contrast = float(np.percentile(evidence[voxels], 75))

    # attached structure of about the same contrast (a vessel piece goes on into vessel of its own
    # contrast; a brighter vessel running by is another object), as thick as a good part of the radius
    # and joined to the instance by that thickness (a lesion fed by a thin vessel from a thick one
    # slices away is not a piece of the thick one)
    shell = binary_morphology(voxels, [1, 1, 1], "dilate")
    alike = (evidence > max(ATTACHED_FRACTION * contrast, LOW_Z)) & (evidence < ALIKE_CEILING * contrast)
    attached = _touching(alike & free | voxels, voxels)
    opened = filters.morphology_mm(attached, spacing, THICK_FRACTION * radius_mm, "open")
    thick = _touching(opened, shell) & ~shell
    factor = _sigmoid((MAX_THICK_ATTACHMENT - thick.sum() / voxels.sum()) / (0.2 * MAX_THICK_ATTACHMENT))

    if 2 * radius_mm < JUNCTION_DIAMETER_MM and np.count_nonzero(areas_mm2) == 1:
        # on one slice and as narrow as a junction of vessels: it must stand out from the liver around it
        widest = int(np.argmax(voxels.sum(axis=(1, 2))))
        factor *= _sigmoid((MAX_SURROUND - _surround(voxels[widest], evidence[widest], free[widest], spacing[1:],
                                                      contrast)) / 0.05)

    if radius_mm < ONE_SLICE_RADIUS * spacing[0]:
        # too small to fill both neighbouring slices: it must not go on through both
        footprint = filters.morphology_mm(voxels.any(axis=0)[None], spacing,
                                          max(0.5 * radius_mm, float(spacing[1:].max())), "dilate")[0]
        slices = np.nonzero(voxels.any(axis=(1, 2)))[0]
        beyond = []
        for index in (slices.min() - 1, slices.max() + 1):
            values = evidence[index][footprint & free[index]] if 0 <= index < len(voxels) else np.zeros(0)
            beyond.append(float(np.percentile(values, 90)) / contrast if values.size else 0.0)
        factor *= _sigmoid((MAX_CONTINUATION - min(beyond)) / 0.05)
    return factor


def _surround(section: np.ndarray, evidence: np.ndarray, free: np.ndarray, plane_spacing, contrast: float) -> float:
    """90th percentile of the evidence in the ring of ``free`` from
    :data:`SURROUND_NEAR_MM` (at least one pixel: past the partial volume of the edge) to
    :data:`SURROUND_WIDTH_MM` further around a cross-section, in the plane, as a share of
    ``contrast``; 0 when there is no such ring (2D arrays, ``plane_spacing`` in mm)."""
    distance_mm = filters.distance_inside_mm(~section[None], [1.0, *plane_spacing])[0]
    near_mm = max(SURROUND_NEAR_MM, float(max(plane_spacing)))
    ring = (distance_mm > near_mm) & (distance_mm <= near_mm + SURROUND_WIDTH_MM) & free
    return float(np.percentile(evidence[ring], 90)) / contrast if ring.any() else 0.0


def _not_partial_volume(box, voxels: np.ndarray, images: dict[str, np.ndarray], liver: np.ndarray, spacing,
                        sigma_mm: float) -> float:
    """Factor 0..1 that a grown instance (``voxels`` in the tight ``box``) is not the partial
    volume of a structure outside the liver across the slices (step 6 of the module docstring).

    A slice through the liver next to its upper or lower surface also holds part of what lies
    beyond it (up to about half on thick slices, more where slice profiles overlap or the slices
    were interpolated), so an organ of lesion-like contrast there makes a lesion-like spot. A
    voxel of an end slice is *explained* when the voxel at the same in-plane place on the next
    slice is outside ``liver`` and either has :data:`PARTIAL_VOLUME_RATIO` times its evidence or
    more, or stands out from the surroundings there (their lower quartile, on a ring as wide as
    the instance's radius: below a vein running through the ring) by
    :data:`LOCAL_PARTIAL_VOLUME_RATIO` times the voxel's own contrast to the liver around it, or
    more (a vein that leaves the liver through its last slice is no brighter beyond it, but it is
    a structure there). Evidence as for the boundaries, ``sigma_mm``, but also outside the liver,
    on a crop around the instance. A lesion at that surface as dark (or bright) as an even
    outside is not explained. Instances with more than :data:`MAX_EXPLAINED` of their voxels
    explained are dropped; slice axis: the largest spacing."""
    axis = int(np.argmax(spacing))
    voxels_k, liver_k = np.moveaxis(voxels, axis, 0), np.moveaxis(liver, axis, 0)  # slice axis first
    first = box[axis].start
    plane = tuple(b for a, b in enumerate(box) if a != axis)
    slices = np.nonzero(voxels_k.any(axis=(1, 2)))[0]
    ends = [(end, first + end + step) for end, step in ((slices.min(), -1), (slices.max(), 1))
            if 0 <= first + end + step < len(liver_k)]
    ends = [(end, beyond) for end, beyond in ends if (voxels_k[end] & ~liver_k[beyond][plane]).any()]
    if not ends:
        return 1.0
    # the local level of the evidence needs about filters.BACKGROUND_MM of liver around the
    # instance, and its Gaussian filters at least 4 voxels along every axis (the image has that many)
    pad = [2 if a == axis else int(np.ceil(filters.BACKGROUND_MM / s)) for a, s in enumerate(spacing)]
    crop = []
    for b, p, n in zip(box, pad, liver.shape):
        start, stop = max(b.start - p, 0), min(b.stop + p, n)
        crop.append(slice(min(start, max(stop - 4, 0)), max(stop, min(start + 4, n))))
    crop = tuple(crop)
    across = filters.combined_evidence({name: image[crop] for name, image in images.items()}, liver[crop], spacing,
                                       lesion_polarity, quieter_side=True, sigma_mm=sigma_mm,
                                       support=np.ones(liver[crop].shape, dtype=bool))
    across_k, liver_crop_k = np.moveaxis(across, axis, 0), np.moveaxis(liver[crop], axis, 0)
    inner = tuple(slice(b.start - c.start, b.stop - c.start) for a, (b, c) in enumerate(zip(box, crop)) if a != axis)
    plane_spacing = np.delete(np.asarray(spacing, dtype=float), axis)
    explained = np.zeros(voxels_k.shape, dtype=bool)
    for end, beyond in ends:
        here_k, there_k = first + end - crop[axis].start, beyond - crop[axis].start
        section = np.zeros(liver_crop_k[here_k].shape, dtype=bool)
        section[inner] = voxels_k[end]
        ring = _ring(section, plane_spacing)
        inside = ring & liver_crop_k[here_k]
        here, there = across_k[here_k], across_k[there_k]
        local_here = here - (float(np.median(here[inside])) if inside.any() else 0.0)
        local_there = there - (float(np.percentile(there[ring], 25)) if ring.any() else 0.0)
        beyond_liver = section & ~liver_crop_k[there_k]
        explained[end] |= (beyond_liver & ((there >= PARTIAL_VOLUME_RATIO * here) |
                                           (local_there >= LOCAL_PARTIAL_VOLUME_RATIO * local_here)))[inner]
    return _sigmoid((MAX_EXPLAINED - explained.sum() / voxels.sum()) / 0.05)


def _ring(section: np.ndarray, spacing) -> np.ndarray:
    """The surroundings of a 2D ``section`` (pixel ``spacing`` in mm): from one pixel beyond it out
    to its area-equivalent radius (at least two pixels)."""
    radius_mm = max(float(np.sqrt(section.sum() * np.prod(spacing) / np.pi)), 2 * float(max(spacing)))
    wide = filters.morphology_mm(section[None], (radius_mm + 1.0, *spacing), radius_mm, "dilate")[0]
    return wide & ~binary_morphology(section[None], [1, 1, 0], "dilate")[0]


def _plane_shape(plane: np.ndarray, spacing, within: np.ndarray | None = None) -> tuple[float, float]:
    """(principal-axis ratio, area / disc of the Feret diameter) of a 2D mask, pixels as squares.
    With ``within`` (a 2D mask) the disc is clipped to it (a shape cut by the edge of the organ
    fills the part of its Feret disc inside the organ) and the ratio is not measured (1)."""
    points = np.argwhere(plane) * np.asarray(spacing, dtype=float)
    pixel_mm2 = float(spacing[0] * spacing[1])
    extremes = _hull_candidates(points) if len(points) > 3 else points
    distances = np.sqrt(((extremes[:, None] - extremes[None]) ** 2).sum(-1))
    first, second = np.unravel_index(int(np.argmax(distances)), distances.shape)
    feret_mm = float(distances[first, second]) + np.sqrt(pixel_mm2)
    if within is not None:
        center = 0.5 * (extremes[first] + extremes[second])
        grid = np.argwhere(np.ones(plane.shape, dtype=bool)) * np.asarray(spacing, dtype=float)
        disc = (((grid - center) ** 2).sum(1) <= (0.5 * feret_mm) ** 2).reshape(plane.shape) & within
        return 1.0, float(len(points) / max(int(disc.sum()), 1))
    spread = np.cov(points.T) if len(points) > 2 else np.zeros((2, 2))
    moments = np.linalg.eigvalsh(spread + np.eye(2) * pixel_mm2 / 12.0)
    return float(np.sqrt(moments[1] / moments[0])), float(len(points) * pixel_mm2 / (np.pi / 4 * feret_mm ** 2))


def _touching(mask: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Connected parts of ``mask`` that contain a ``seeds`` voxel."""
    parts, _ = filters.connected_components(mask)
    touching = np.unique(parts[seeds])
    return np.isin(parts, touching[touching > 0])


def _bounding_box(mask: np.ndarray, pad) -> tuple[slice, slice, slice]:
    where = np.nonzero(mask)
    return tuple(slice(max(int(w.min()) - p, 0), min(int(w.max()) + p + 1, n))
                 for w, p, n in zip(where, pad, mask.shape))


def _label_boxes(labels: np.ndarray, pad) -> dict[int, tuple[slice, slice, slice]]:
    """Bounding box of every label > 0 of ``labels``, widened by ``pad`` voxels per axis (an int
    for all axes or one per axis) and clipped to the array."""
    pad = [pad] * 3 if np.isscalar(pad) else list(pad)
    statistics = sitk.LabelShapeStatisticsImageFilter()
    statistics.ComputePerimeterOff()
    statistics.Execute(sitk.GetImageFromArray(np.asarray(labels, dtype=np.uint32)))
    boxes = {}
    for label in statistics.GetLabels():
        corner_ijk = statistics.GetBoundingBox(label)
        start, size = corner_ijk[:3][::-1], corner_ijk[3:][::-1]
        boxes[int(label)] = tuple(slice(max(int(a) - p, 0), min(int(a) + int(n) + p, m))
                                  for a, n, p, m in zip(start, size, pad, labels.shape))
    return boxes


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


def _accept_pieces(evidence, sharp, interior, vessels, spacing, min_diameter_mm, min_score):
    """Search down the threshold tree: at rising evidence levels, split the candidates into
    pieces and score them (a lesion merged with vessels or noise at a low level stands alone at
    a higher one). A piece scoring >= :data:`CONFIDENT_SCORE` is accepted at once; one between
    ``min_score`` and that waits, so a better-scoring piece inside it at a higher level can win,
    and is accepted at the end if nothing accepted overlaps it (best scores first).
    Returns (int32 labels, {label: score})."""
    accepted = np.zeros(evidence.shape, dtype=np.int32)
    scores: dict[int, float] = {}
    waiting = []  # (score, level index, box, voxels in the box)
    top = 0.5 * float(evidence[interior].max()) if interior.any() else LOW_Z
    steps = int(np.ceil(np.log(max(top, LOW_Z) / LOW_Z) / np.log(LEVEL_STEP)))
    levels = LOW_Z * LEVEL_STEP ** np.arange(steps + 1)
    ball_mm3 = np.pi / 6 * min_diameter_mm ** 3

    def accept(box, voxels, score) -> None:
        new_label = len(scores) + 1
        accepted[box][voxels] = new_label
        scores[new_label] = score

    for index, level in enumerate(levels):
        taken = filters.morphology_mm(accepted > 0, spacing, max(spacing), "dilate")
        candidates = interior & (evidence > level) & ~taken
        reaching = filters.keep_reaching(candidates, evidence, max(SEED_Z, level))
        pieces = _split_parts(reaching, spacing, 2 * ball_mm3)
        piece_scores = _score_pieces(pieces, evidence, sharp, vessels, spacing, min_diameter_mm, min_score)
        for box, voxels, score in _settle(pieces, piece_scores, evidence, sharp, vessels, spacing, min_diameter_mm,
                                          min_score):
            if score >= CONFIDENT_SCORE:
                accept(box, voxels, score)
            elif score >= min_score:
                waiting.append((score, index, box, voxels))
    taken_count = -1
    for score, _, box, voxels in sorted(waiting, key=lambda item: (-item[0], item[1])):
        if taken_count != len(scores):
            taken = filters.morphology_mm(accepted > 0, spacing, max(spacing), "dilate")
            taken_count = len(scores)
        if not taken[box][voxels].any():
            accept(box, voxels, score)
    return accepted, scores


def _settle(pieces, piece_scores, evidence, sharp, vessels, spacing, min_diameter_mm, min_score):
    """``(box, voxels in the box, score)`` of each scored piece, in label order: a large piece
    failing the test is scored again with its stalks cut (:func:`_without_stalks`). The pieces
    are independent and are worked on side by side (:func:`parallel.thread_map`)."""
    boxes = _label_boxes(pieces, pad=1)
    large_mm3 = 8 * (np.pi / 6 * min_diameter_mm ** 3)  # eight balls of the smallest lesion
    voxel_mm3 = float(np.prod(spacing))

    def settle(item: tuple[int, float]) -> tuple[tuple[slice, ...], np.ndarray, float]:
        label, score = item
        box = boxes[label]
        voxels = pieces[box] == label
        if score < min_score and voxels.sum() * voxel_mm3 >= large_mm3:
            voxels, score = _without_stalks(voxels, evidence[box], sharp[box],
                                            None if vessels is None else vessels[box], spacing, min_diameter_mm,
                                            min_score)
        return box, voxels, score

    return parallel.thread_map(settle, piece_scores.items())


def _split_parts(mask: np.ndarray, spacing, min_volume_mm3: float) -> np.ndarray:
    """Labels 1..N: each connected part of ``mask`` holding at least ``min_volume_mm3`` split by
    :func:`filters.split_by_distance` in its own box, smaller parts (room for one lesion at most)
    kept whole."""
    parts, count = filters.connected_components(mask)
    out = np.zeros(mask.shape, dtype=np.int32)
    sizes = np.bincount(parts.ravel(), minlength=count + 1)
    voxel_mm3 = float(np.prod(spacing))
    boxes = sorted(_label_boxes(parts, pad=1).items())

    def split(item: tuple[int, tuple[slice, ...]]) -> tuple[np.ndarray, np.ndarray]:
        label, box = item
        part = parts[box] == label
        if sizes[label] * voxel_mm3 < min_volume_mm3:
            return part, part.astype(np.int32)
        return part, filters.split_by_distance(part, spacing, depth_mm=SPLIT_DEPTH_MM)

    next_label = 1
    for (_, box), (part, pieces) in zip(boxes, parallel.thread_map(split, boxes)):
        out[box][part] = pieces[part] + (next_label - 1)
        next_label += int(pieces.max())
    return out


def _without_stalks(piece, evidence, sharp, vessels, spacing, min_diameter_mm, min_score):
    """A large piece failing the shape test, scored again with its thin attachments cut
    (a lesion and the vessel running into it, merged on thick slices): (voxels, score); all
    arrays are crops of one box."""
    trimmed = filters.trim_stalks(piece, spacing)
    score = _score_pieces(trimmed.astype(np.int32), evidence, sharp, vessels, spacing, min_diameter_mm,
                          min_score).get(1, 0.0)
    return trimmed, score


def _score_pieces(pieces, evidence, sharp, vessels, spacing, min_diameter_mm, min_score) -> dict[int, float]:
    """Confidence 0..1 per piece that it is a lesion, not noise or a vessel: contrast, size
    (volume-equivalent diameter), straightness (principal axes), roundness (volume over the
    ball spanning the Feret diameter), overlap with ``vessels`` and -- for pieces passing
    all that -- the Hessian blob ratio at the piece's scale, the larger of its values at the
    centroid and at the strongest evidence."""
    if pieces.max() == 0:
        return {}
    label_image = filters.image_from_array(pieces.astype(np.uint32), spacing)
    shape = sitk.LabelShapeStatisticsImageFilter()
    shape.ComputePerimeterOff()
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
        moments = np.asarray(shape.GetPrincipalMoments(label)) + voxel_mm ** 2 / 12.0
        elongation = float(np.sqrt(moments[2] / moments[1]))
        peak = intensity.GetMaximum(label)
        contrast = _sigmoid((peak - SEED_Z) / 0.5 + 2.0)
        size = _sigmoid((diameter_mm - min_diameter_mm) / (0.05 * min_diameter_mm))
        straight = _sigmoid((MAX_ELONGATION - elongation) / 0.3)
        vessel_fraction = overlap.GetMean(label) if vessels is not None else 0.0
        scores[int(label)] = contrast * size * straight * (1.0 - vessel_fraction)
    # roundness needs the Feret diameter (costly on large vessel pieces): only where it can matter
    hopeful = [label for label, score in scores.items() if score >= min_score]
    boxes = _label_boxes(np.where(np.isin(pieces, hopeful), pieces, 0), pad=0) if hopeful else {}
    for label in hopeful:
        volume_mm3 = shape.GetPhysicalSize(label)
        inside = np.argwhere(pieces[boxes[label]] == label)  # k, j, i in the piece's box
        roundness = volume_mm3 / (np.pi / 6.0 * (_feret_diameter_mm(inside * np.asarray(spacing)) + voxel_mm) ** 3)
        scores[label] *= _sigmoid((roundness - MIN_ROUNDNESS) / 0.04)
        if scores[label] >= min_score:
            # at the centroid and at the strongest evidence: on thick slices or for a lobulated
            # lesion the centroid can fall off the lesion's core, a tube is no blob at either
            peak_kji = inside[int(np.argmax(sharp[boxes[label]][tuple(inside.T)]))] + [b.start for b in boxes[label]]
            center_kji = np.asarray(shape.GetCentroid(label))[::-1] / np.asarray(spacing)
            radius_mm = (6.0 * volume_mm3 / np.pi) ** (1.0 / 3.0) / 2.0
            ratio = max(_blob_ratio(sharp, point, radius_mm, spacing) for point in (center_kji, peak_kji))
            scores[label] *= _sigmoid((ratio - MIN_BLOB_RATIO) / 0.05)
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
    offset_mm = (center - np.asarray([b.start for b in grid.box])) * np.asarray(spacing)
    index = np.clip(np.round(offset_mm / grid.spacing_mm).astype(int), 0, np.asarray(work.shape) - 1)
    values = filters.hessian_eigenvalues_at(work, (grid.spacing_mm,) * 3, sigma, index)
    if (values >= 0).any():
        return 0.0
    magnitude = np.abs(values)
    return float(magnitude[0] / np.sqrt(magnitude[1] * magnitude[2]))


def _cyst_reference(images: dict[str, np.ndarray], parenchyma: np.ndarray) -> dict[str, tuple[float, float]]:
    """Liver level and spread per sequence that can tell a cyst (t2, dwi), from ``parenchyma``
    (CT needs none: Hounsfield units are absolute)."""
    return {name: filters.robust_center_spread(images[name][parenchyma]) for name in ("t2", "dwi")
            if name in images and parenchyma.any()}


def _likely_cyst(crops: dict[str, np.ndarray], voxels: np.ndarray, reference: dict[str, tuple[float, float]],
                 spacing) -> bool:
    """Fluid-like: very bright on t2, not bright on dwi, of water density on ct (needs at least
    one of them); ``crops``: each sequence over the lesion's box, ``voxels``: the lesion in it,
    ``reference``: :func:`_cyst_reference`, ``spacing``: (k, j, i) mm."""
    if not reference and "ct" not in crops:
        return False
    verdict = True
    if "t2" in reference:
        liver_t2 = reference["t2"][0]
        verdict &= liver_t2 > 0 and float(np.median(crops["t2"][voxels])) >= CYST_T2_RATIO * liver_t2
    if "dwi" in reference:
        center, spread = reference["dwi"]
        verdict &= (float(np.median(crops["dwi"][voxels])) - center) / spread <= CYST_DWI_MAX_Z
    if "ct" in crops:
        core = filters.morphology_mm(voxels, spacing, float(max(sorted(spacing)[:2])), "erode")
        values = crops["ct"][core]
        verdict &= values.size > 0 and float(np.median(values)) <= CYST_HU and \
            float(np.percentile(values, 90)) <= CYST_HU_HIGH
    return bool(verdict)


def _describe(voxels: np.ndarray, corner_kji, label: int, score: float, cyst: bool, geometry: Geometry) -> dict:
    """Table row of a lesion given as ``voxels`` in a box whose first voxel is ``corner_kji``."""
    center_kji = np.argwhere(voxels).mean(axis=0) + np.asarray(corner_kji)
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


def _feret_diameter_mm(points_mm: np.ndarray) -> float:
    """Largest distance between two of the 3D ``points_mm``: exact among the extreme points
    along 64 directions spread over a half sphere (a Fibonacci lattice), which hold it up to
    a fraction of a voxel."""
    count = 64
    z = (np.arange(count) + 0.5) / count
    angle = np.pi * (3.0 - np.sqrt(5.0)) * np.arange(count)
    directions = np.stack([z, np.sqrt(1 - z ** 2) * np.cos(angle), np.sqrt(1 - z ** 2) * np.sin(angle)], axis=1)
    projection = points_mm @ directions.T
    extremes = points_mm[np.unique(np.concatenate([projection.argmax(0), projection.argmin(0)]))]
    return float(np.sqrt(((extremes[:, None] - extremes[None]) ** 2).sum(-1)).max())


def _hull_candidates(points: np.ndarray) -> np.ndarray:
    """Extreme points of a 2D set along 64 directions (enough for the diameter)."""
    angles = np.linspace(0, np.pi, 64, endpoint=False)
    directions = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    projection = points @ directions.T
    index = np.unique(np.concatenate([projection.argmax(0), projection.argmin(0)]))
    return points[index]

