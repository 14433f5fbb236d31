"""Portal venous system and hepatic veins (with the IVC), separated by topology.

Method (numpy + SimpleITK; thresholds in units of the liver's robust spread or in mm)
-------------------------------------------------------------------------------------
0. Grid: axes finer than :data:`WORK_SPACING_MM` are resampled to it (:func:`work_geometry`);
   the trees come back to the input grid by linear interpolation of their masks.
1. Vessel evidence: robust z-score against the liver, signed by
   :func:`livermets.sequences.vessel_polarity` (bright on portal-venous / ct, dark on hbp / t2),
   averaged over sequences, inside the liver plus a :data:`MARGIN_MM` margin (hilum, IVC).
2. Vessel mask: evidence above :data:`LOW_Z` in parts reaching :data:`SEED_Z`, lesions (given,
   or round pieces after a split at the necks) removed;
   outside the liver only voxels on a tube (Hessian tubeness, two strong curvatures and one
   flat; Sato et al. 1998, doi:10.1016/S1361-8415(98)80009-1) count. If that mask holds less
   than :data:`MIN_INTRAHEPATIC_FRACTION` of the liver's interior, the veins do not stand out
   (no contrast, or not the polarity expected): no trees are returned, with the reason (and
   whether veins stand out the other way instead), rather than bones or cartilage taken for veins.
3. Roots, in RAS: an opening with a :data:`TRUNK_RADIUS_MM` ball keeps only the trunks. The
   IVC is the trunk with the longest superior-inferior extent among those posterior to the
   liver's centre, the rightmost if several (the aorta lies to its left). The portal root is
   the trunk anterior to the IVC, below the liver's centre and not left of the IVC that best
   combines size, crossing the capsule and closeness to the IVC along x (the hilum is medial).
4. Trees: every vessel voxel goes to the root it reaches along the widest path: a marker
   watershed on the negated inside-distance map floods from both roots, so two trees that
   touch at a thin partial-volume contact are cut there (a maximin / bottleneck path criterion).
   Inside the liver, gaps narrower than the largest voxel spacing are crossed (thick slices
   break oblique branches into pieces); parts reaching neither root are dropped.
5. Outside the liver each tree is followed from its trunks as a lumen of its own intensity
   (:func:`livermets.segmentation.trunks.follow_trunk`: IVC above and below the liver, portal
   trunk, confluence and splenic vein), since there the contrast to the liver says nothing
   (on hbp the fat is darker than the veins); the extrahepatic parts then get their
   partial-volume wall (:func:`livermets.segmentation.trunks.partial_volume_wall`). A tree
   whose part outside the liver holds more than a :data:`MAX_OUTSIDE_RADIUS_MM` tube along the
   whole scan followed something else than a vein (on fat-suppressed T2 the fat is as dark as
   the veins are expected to be): no trees are returned, with the reason.
6. Centerlines and radii per tree by :func:`livermets.segmentation.centerlines.trace_centerlines`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from livermets.geometry import Geometry
from livermets.segmentation import centerlines, filters, morphology, parallel, trunks
from livermets.sequences import vessel_polarity

MARGIN_MM = 15.0          # search region: liver dilated by this (hilum, intrahepatic IVC)
SMOOTH_MM = 1.0
LOW_Z = 2.5
SEED_Z = 4.0
TRUNK_RADIUS_MM = 4.0     # opening radius that keeps the IVC and the portal trunk
MIN_BRANCH_MM = 10.0
TUBE_SIGMAS_MM = (2.0, 3.5, 5.5)   # Hessian scales for vessel radii about 3-8 mm (r = sigma * sqrt(2))
MIN_TUBE_FRACTION = 0.15
MAX_VESSEL_ROUNDNESS = 0.3
HILUM_LEFT_MM = 20.0      # the portal root may lie at most this far left of the IVC axis
WALL_FRACTION = 0.5       # vessel wall at this fraction of the trunks' median contrast
WORK_SPACING_MM = 1.5     # finer axes are worked on at this spacing (two voxels across a 1.5 mm radius)
MIN_INTRAHEPATIC_FRACTION = 0.02  # veins of the expected look fill more of the liver's interior (phantoms 5-10 %;
                                  # a CT without contrast 1.1 %, CHAOS T2-SPIR with its bright veins 0-0.4 %)
MAX_OUTSIDE_RADIUS_MM = 20.0  # a tree's part outside the liver holds at most a tube of this radius along the
                              # scan's whole superior-inferior extent (the IVC is about 12 mm in radius)
# what makes veins look the other way on a contrast, said when they do
OTHER_WAY_CAUSES = {"t2": "slow flow makes veins bright on T2, most often with fat suppression",
                    "ct": "on a CT without contrast the veins are darker than the liver"}


@dataclass
class VesselResult:
    """Vessel trees on the input grid (bool ``[k, j, i]``).

    ``hepatic`` holds the hepatic veins *and* the IVC, ``ivc`` the IVC alone.
    ``centerlines``: one dict per branch, ``{"tree": "portal" | "hepatic", "points_ras_mm":
    [[x, y, z], ...] (tip first), "radii_mm": [...]}``. ``portal_entry_ras_mm``: centre of the
    portal root; ``ivc_axis_ras_mm``: inferior and superior end of the IVC axis (None if not
    found).
    """

    portal: np.ndarray
    hepatic: np.ndarray
    ivc: np.ndarray
    centerlines: list[dict] = field(default_factory=list)
    portal_entry_ras_mm: list[float] | None = None
    ivc_axis_ras_mm: list[list[float]] | None = None
    warnings: list[str] = field(default_factory=list)


def segment_vessels(images: dict[str, np.ndarray], liver: np.ndarray, geometry: Geometry, *,
                    lesions: np.ndarray | None = None) -> VesselResult:
    """Segment and separate the portal and hepatic venous trees around ``liver``.

    ``images``: aligned float arrays by sequence name on ``geometry``; ``liver``: whole-liver
    mask; ``lesions``: optional mask of lesions to keep out of the vessels. Grids finer than
    :data:`WORK_SPACING_MM` are worked on at that spacing (:func:`work_geometry`) and the trees
    brought back by linear interpolation of their masks (boundary at one half).
    """
    images = filters.checked_images(images, liver, geometry, task="segmenting vessels")
    work = work_geometry(geometry)
    if work == geometry:
        return _segment(images, np.asarray(liver, dtype=bool), lesions, geometry)
    for name in list(images):  # full-resolution copies are let go as soon as they are resampled
        images[name] = _resample(images[name], geometry, work, linear=True)
    work_lesions = None if lesions is None else _resample(lesions, geometry, work, linear=False).astype(bool)
    found = _segment(images, _resample(liver, geometry, work, linear=False).astype(bool), work_lesions, work)
    result = VesselResult(*(np.zeros(geometry.shape, dtype=bool) for _ in range(3)), found.centerlines,
                          found.portal_entry_ras_mm, found.ivc_axis_ras_mm, found.warnings)
    # one signed map for both trees: +1 portal, -1 hepatic, each boundary at one half
    box, values = _upsample(found.portal.astype(np.float32) - found.hepatic, work, geometry)
    result.portal[box], result.hepatic[box] = values >= 0.5, values <= -0.5
    box, values = _upsample(found.ivc.astype(np.float32), work, geometry)
    result.ivc[box] = (values >= 0.5) & result.hepatic[box]
    return result


def work_geometry(geometry: Geometry) -> Geometry:
    """``geometry`` with every spacing finer than :data:`WORK_SPACING_MM` coarsened to it, over
    the same extent (same first voxel centre, direction); ``geometry`` itself if none is finer."""
    spacing = np.maximum(geometry.spacing_ijk_mm, WORK_SPACING_MM)
    if np.array_equal(spacing, geometry.spacing_ijk_mm):
        return geometry
    extent = (np.asarray(geometry.shape[::-1]) - 1) * np.asarray(geometry.spacing_ijk_mm)
    shape_ijk = np.floor(extent / spacing + 1e-6).astype(int) + 1
    return Geometry(tuple(shape_ijk[::-1]), tuple(spacing), geometry.origin_lps_mm, geometry.direction_lps)


def _resample(array: np.ndarray, source: Geometry, target: Geometry, *, linear: bool) -> np.ndarray:
    """``array`` on ``source`` resampled onto ``target`` (linear: float32; else nearest, uint8)."""
    array = np.asarray(array, dtype=np.float32 if linear else np.uint8)
    image = morphology.to_sitk(array, source)
    return sitk.GetArrayFromImage(morphology.resample_to(image, target, linear=linear))


def _upsample(values: np.ndarray, work: Geometry, geometry: Geometry) -> tuple[tuple[slice, ...], np.ndarray]:
    """Float ``values`` on ``work`` linearly onto the box of ``geometry``'s grid that covers their
    nonzero voxels: ``(box slices, float32 values on the box)``."""
    where = np.argwhere(values != 0)
    if not len(where):
        return (slice(0, 0),) * 3, np.zeros((0, 0, 0), dtype=np.float32)
    scale = np.asarray(work.spacing_mm) / np.asarray(geometry.spacing_mm)
    low = np.maximum(np.floor((where.min(0) - 1) * scale).astype(int), 0)
    high = np.minimum(np.ceil((where.max(0) + 1) * scale).astype(int) + 1, geometry.shape)
    corner = geometry.kji_to_ras(low[None].astype(float))[0] * np.array([-1.0, -1.0, 1.0])  # RAS -> LPS
    box = Geometry(tuple(high - low), geometry.spacing_ijk_mm, tuple(corner), geometry.direction_lps)
    return tuple(slice(a, b) for a, b in zip(low, high)), _resample(values, work, box, linear=True)


def _segment(images: dict[str, np.ndarray], full_liver: np.ndarray, lesions: np.ndarray | None,
             geometry: Geometry) -> VesselResult:
    """:func:`segment_vessels` on the grid it works on."""
    spacing = geometry.spacing_mm
    pad = [int(np.ceil(MARGIN_MM / s)) + 1 for s in spacing]
    box = _bounding_box(full_liver, pad)
    liver = full_liver[box]
    region = filters.morphology_mm(liver, spacing, MARGIN_MM, "dilate")
    boxed = {name: image[box] for name, image in images.items()}
    evidence = filters.combined_evidence(boxed, liver, spacing, vessel_polarity, sigma_mm=SMOOTH_MM, support=region)
    vessels = region & (evidence > LOW_Z)
    interior = filters.morphology_mm(liver, spacing, float(max(spacing)), "erode")
    vessels &= interior | _tubular(evidence, vessels & ~interior, spacing)
    if lesions is not None:
        vessels &= ~np.asarray(lesions, dtype=bool)[box]
    vessels = filters.keep_reaching(vessels, evidence, SEED_Z)
    result = VesselResult(*(np.zeros(geometry.shape, dtype=bool) for _ in range(3)))
    intrahepatic = float(np.count_nonzero(vessels & interior)) / max(int(np.count_nonzero(interior)), 1)
    if intrahepatic < MIN_INTRAHEPATIC_FRACTION:
        result.warnings.append(_not_standing_out(boxed, liver, region, interior, spacing, intrahepatic))
        return result
    vessels &= ~_blobs(vessels, liver, spacing)
    # partial volume: the wall sits half-way between liver and the lumen of the large vessels
    wide = filters.morphology_mm(vessels, spacing, TRUNK_RADIUS_MM, "open")
    if wide.any():
        vessels &= evidence > max(LOW_Z, WALL_FRACTION * float(np.median(evidence[wide])))

    offset = np.asarray([b.start for b in box])
    trunk_mask = filters.morphology_mm(vessels, spacing, TRUNK_RADIUS_MM, "open")
    ivc, portal_root = _find_roots(trunk_mask, vessels, liver, geometry, offset)
    if ivc is None or portal_root is None:
        result.warnings.append("could not find both the IVC and the portal vein entry; vessels not separated")
        return result
    trees = np.zeros(geometry.shape, dtype=np.uint8)
    trees[box] = _assign(vessels, {1: portal_root, 2: ivc}, liver, spacing)
    roots, seeds = {}, {}
    for label, root in ((1, portal_root), (2, ivc)):
        roots[label] = np.zeros(geometry.shape, dtype=bool)
        roots[label][box] = root & (trees[box] == label)
        seeds[label] = np.zeros(geometry.shape, dtype=bool)
        seeds[label][box] = trunk_mask & (trees[box] == label)
    result.ivc[...] = _continue_outside(images, trees, seeds, roots[2], full_liver, spacing)
    implausible = _implausible_outside(trees, full_liver, geometry)
    if implausible:
        result.ivc[...] = False
        result.warnings.append(f"vessels not segmented: what was taken for the {implausible} outside the "
                               f"liver spreads far beyond a vein; this image may not show the veins as "
                               f"expected ({_polarities(images)})")
        return result
    result.portal[...] = trees == 1
    result.hepatic[...] = trees == 2
    result.portal_entry_ras_mm = np.round(_ras(portal_root, geometry, offset).mean(0), 2).tolist()
    result.ivc_axis_ras_mm = _axis_ends(_ras(result.ivc, geometry, np.zeros(3, dtype=int)))

    def trace(label: int) -> list[centerlines.Branch]:
        return centerlines.trace_centerlines(trees == label, roots[label], spacing, min_branch_mm=MIN_BRANCH_MM)

    for tree, branches in zip(("portal", "hepatic"), parallel.thread_map(trace, (1, 2))):
        for branch in branches:
            points = geometry.kji_to_ras(branch.points_kji)
            result.centerlines.append({"tree": tree,
                                       "points_ras_mm": np.round(points, 2).tolist(),
                                       "radii_mm": np.round(branch.radii_mm, 2).tolist()})
    return result


def _not_standing_out(images: dict[str, np.ndarray], liver: np.ndarray, region: np.ndarray, interior: np.ndarray,
                      spacing, share: float) -> str:
    """Why no trees are drawn when only ``share`` of the liver's ``interior`` looks like vessel,
    saying whether as much stands out with the other polarity, and what makes veins look so."""
    def other(sequence: str) -> str:
        return "dark" if vessel_polarity(sequence) == "bright" else "bright"

    flipped = filters.combined_evidence(images, liver, spacing, other, sigma_mm=SMOOTH_MM, support=region)
    seen = filters.keep_reaching(interior & (flipped > LOW_Z), flipped, SEED_Z)
    other_share = float(np.count_nonzero(seen)) / max(int(np.count_nonzero(interior)), 1)
    why = (f"vessels not segmented: the veins inside the liver do not stand out from it as expected "
           f"({100 * share:.1f} % of the liver looks like vessel, at least {100 * MIN_INTRAHEPATIC_FRACTION:.0f} % "
           f"expected; {_polarities(images)})")
    if other_share < MIN_INTRAHEPATIC_FRACTION:
        return why + "; a phase without vessel contrast, such as a CT without contrast, shows none"
    causes = "; ".join(OTHER_WAY_CAUSES.get(name, f"the image given as {name} may be another phase") for name in images)
    return (why + f", but {100 * other_share:.1f} % of it stands out the other way ({_looks(images, other)}): {causes}; "
            "the trees are drawn only from a phase that shows the veins as expected")


def _polarities(images: dict[str, np.ndarray]) -> str:
    """How the veins are expected to look, e.g. "veins expected bright on ct"."""
    return "veins expected " + _looks(images, vessel_polarity)


def _looks(images: dict[str, np.ndarray], polarity_of) -> str:
    """``polarity_of`` each sequence of ``images`` in words, e.g. "dark on hbp, bright on ct"."""
    return ", ".join(f"{polarity_of(name)} on {name}" for name in images)


def _implausible_outside(trees: np.ndarray, liver: np.ndarray, geometry: Geometry) -> str:
    """Name of the first tree (label 1 "portal venous system", 2 "hepatic veins and IVC") whose
    part outside ``liver`` holds more than a :data:`MAX_OUTSIDE_RADIUS_MM` tube along the grid's
    whole superior-inferior (RAS z) extent, or "" if neither does."""
    corners = np.array([[k, j, i] for k in (0, geometry.shape[0] - 1) for j in (0, geometry.shape[1] - 1)
                        for i in (0, geometry.shape[2] - 1)], dtype=float)
    z_ras = geometry.kji_to_ras(corners)[:, 2]
    limit_ml = np.pi * MAX_OUTSIDE_RADIUS_MM ** 2 * float(z_ras.max() - z_ras.min()) / 1000.0
    outside = np.bincount(trees[~liver].ravel(), minlength=3) * geometry.voxel_volume_ml
    for label, name in ((1, "portal venous system"), (2, "hepatic veins and IVC")):
        if outside[label] > limit_ml:
            return name
    return ""


def _bounding_box(mask: np.ndarray, pad) -> tuple[slice, slice, slice]:
    where = np.nonzero(mask)
    return tuple(slice(max(int(w.min()) - p, 0), min(int(w.max()) + p + 1, n))
                 for w, p, n in zip(where, pad, mask.shape))


def _tubular(evidence: np.ndarray, where: np.ndarray, spacing) -> np.ndarray:
    """Voxels of ``where`` on a bright tube of the evidence map (tubeness at vessel scales at
    least :data:`MIN_TUBE_FRACTION` of the evidence): outside the liver only tubes count as
    vessels, not a dark or bright neighbouring organ."""
    if not where.any():
        return where
    grid = filters.WorkGrid.around(where, spacing, margin_mm=3 * max(TUBE_SIGMAS_MM),
                                   spacing_mm=filters.working_spacing_mm(spacing, finest_mm=1.0, coarsest_mm=2.0))
    work_where = grid.to_work(where, linear=False).astype(bool)
    tube = filters.tubeness(grid.to_work(evidence), (grid.spacing_mm,) * 3, work_where, sigmas_mm=TUBE_SIGMAS_MM)
    ratio = grid.to_input(tube, evidence.shape) / np.maximum(evidence, 1e-3)
    return where & (ratio >= MIN_TUBE_FRACTION)


def _blobs(vessels: np.ndarray, liver: np.ndarray, spacing) -> np.ndarray:
    """Round pieces of the vessel mask (lesions with the vessels' polarity, e.g. on hbp): the
    mask is split at its necks; a piece at least 6 mm across whose core (thin stalks cut by
    :func:`filters.trim_stalks`) fills more than :data:`MAX_VESSEL_ROUNDNESS` of the ball
    spanning its Feret diameter, and lies inside the liver, is not vessel."""
    pieces = filters.split_by_distance(vessels, spacing, depth_mm=1.5)
    out = np.zeros(vessels.shape, dtype=bool)
    if pieces.max() == 0:
        return out
    shape = sitk.LabelShapeStatisticsImageFilter()
    shape.ComputeFeretDiameterOn()
    shape.Execute(filters.image_from_array(pieces.astype(np.uint32), spacing))
    for label in shape.GetLabels():
        if _roundness(shape, label, spacing) > MAX_VESSEL_ROUNDNESS:
            piece = pieces == label
            if _diameter_mm(shape, label) >= 6.0 and liver[piece].mean() > 0.9:
                out |= piece
        elif _diameter_mm(shape, label) >= 10.0:  # large piece: a lesion with a vessel stalk?
            box = tuple(slice(start, start + size) for start, size in
                        zip(shape.GetBoundingBox(label)[2::-1], shape.GetBoundingBox(label)[:2:-1]))
            core = filters.trim_stalks(pieces[box] == label, spacing)
            core_shape = sitk.LabelShapeStatisticsImageFilter()
            core_shape.ComputeFeretDiameterOn()
            core_shape.Execute(filters.image_from_array(core.astype(np.uint32), spacing))
            if (_diameter_mm(core_shape, 1) >= 6.0 and _roundness(core_shape, 1, spacing) > MAX_VESSEL_ROUNDNESS
                    and liver[box][core].mean() > 0.9):
                out[box] |= core
    return out


def _diameter_mm(shape, label: int) -> float:
    """Volume-equivalent diameter (mm) of ``label`` in a LabelShapeStatistics result."""
    return (6.0 * shape.GetPhysicalSize(label) / np.pi) ** (1.0 / 3.0)


def _roundness(shape, label: int, spacing) -> float:
    """Volume over the ball spanning the Feret diameter (plus one voxel)."""
    diameter_mm = shape.GetFeretDiameter(label) + float(np.mean(spacing))
    return shape.GetPhysicalSize(label) / (np.pi / 6.0 * diameter_mm ** 3)


def _ras(mask: np.ndarray, geometry: Geometry, offset: np.ndarray) -> np.ndarray:
    """RAS (mm) of the voxel centres of ``mask``, a crop of ``geometry``'s grid starting at
    ``offset`` (k, j, i): ``(n, 3)``."""
    return geometry.kji_to_ras(np.argwhere(mask) + offset)


def _find_roots(trunk_mask: np.ndarray, vessels: np.ndarray, liver: np.ndarray, geometry: Geometry,
                offset: np.ndarray):
    """(IVC mask, portal root mask) among the trunks (``vessels`` opened by a
    :data:`TRUNK_RADIUS_MM` ball; a crop of ``geometry``'s grid starting at ``offset``), or None each."""
    labels, count = filters.connected_components(trunk_mask)
    if count == 0:
        return None, None
    liver_ras = _ras(liver, geometry, offset)
    liver_y, liver_z = float(liver_ras[:, 1].mean()), float(liver_ras[:, 2].mean())
    liver_z_low, liver_z_high = np.percentile(liver_ras[:, 2], [5, 95])
    inside = labels > 0
    index = labels[inside]
    x, y, z = _ras(inside, geometry, offset).T
    size = np.bincount(index, minlength=count + 1)
    mean = [np.bincount(index, weights=a, minlength=count + 1) / np.maximum(size, 1) for a in (x, y, z)]
    top, bottom = np.full(count + 1, -np.inf), np.full(count + 1, np.inf)
    np.maximum.at(top, index, z)
    np.minimum.at(bottom, index, z)
    in_liver = np.bincount(index, weights=liver[inside], minlength=count + 1) / np.maximum(size, 1)
    parts = [{"label": label, "x": float(mean[0][label]), "y": float(mean[1][label]),
              "z": float(mean[2][label]), "extent": float(top[label] - bottom[label]),
              "size": int(size[label]), "inside": float(in_liver[label])}
             for label in range(1, count + 1)]
    vertical = [p for p in parts if p["y"] < liver_y and p["extent"] >= 0.3 * (liver_z_high - liver_z_low)]
    if not vertical:
        return None, None
    longest = max(p["extent"] for p in vertical)
    ivc = max((p for p in vertical if p["extent"] >= 0.7 * longest), key=lambda p: p["x"])
    # the hilum is anterior to the IVC, below the liver's centre, and not left of the IVC
    # (left of it lie the aorta and the stomach)
    hilum = [p for p in parts if p is not ivc and p["y"] > ivc["y"] and p["z"] < liver_z
             and p["x"] > ivc["x"] - HILUM_LEFT_MM]
    if not hilum:
        return labels == ivc["label"], None
    # a trunk joined to the IVC through the vessel mask is a hepatic vein draining into it
    joined, _ = filters.connected_components(vessels)
    ivc_parts = np.unique(joined[labels == ivc["label"]])
    apart = [p for p in hilum if not np.isin(joined[labels == p["label"]], ivc_parts).any()]
    for p in apart or hilum:  # the portal trunk crosses the capsule close to the IVC (medially)
        crossing = 1.0 if 0.05 < p["inside"] < 0.95 else 0.3 if p["inside"] > 0 else 0.1
        p["weight"] = p["size"] * crossing / (1.0 + abs(p["x"] - ivc["x"]) / 30.0)
    portal = max(apart or hilum, key=lambda p: p["weight"])
    return labels == ivc["label"], labels == portal["label"]


def _continue_outside(images: dict[str, np.ndarray], trees: np.ndarray, trunk_masks: dict[int, np.ndarray],
                      ivc_root: np.ndarray, liver: np.ndarray, spacing) -> np.ndarray:
    """Follow each tree (label 1 portal, 2 hepatic in ``trees``) from its trunks
    (``trunk_masks``) outside ``liver`` (:func:`trunks.follow_trunk`), and add the lumen reached
    and the partial-volume wall of the extrahepatic part to ``trees`` (in place); voxels both
    trees reach are left out, and extrahepatic voxels of a tree that do not look like its lumen
    are dropped. Returns the IVC: ``ivc_root``, what the hepatic tree reached and its wall."""
    smoothed = {name: filters.gaussian_mm(image, spacing, SMOOTH_MM) for name, image in images.items()}
    parenchyma = liver & (trees == 0)
    noise = {name: trunks.noise_spread(image, parenchyma, spacing) for name, image in smoothed.items()}
    polarity = {name: vessel_polarity(name) for name in images}
    free = ~liver & (trees == 0)
    models = {label: trunks.lumen_model(smoothed, noise, polarity, trees == label, trunk, free, spacing)
              for label, trunk in trunk_masks.items()}

    def follow(label: int) -> np.ndarray:
        model = models[label]
        if model is None:
            return np.zeros(trees.shape, dtype=bool)
        return trunks.follow_trunk(smoothed, model, trees == label, free, spacing)

    reached = dict(zip(models, parallel.thread_map(follow, list(models))))
    both = reached[1] & reached[2]
    for label in reached:
        reached[label] &= ~both
    ivc = ivc_root | reached[2]
    pad = [int(np.ceil(trunks.WALL_MM / step)) + 1 for step in spacing]
    for label, model in models.items():
        lumen = ((trees == label) & ~liver) | reached[label]
        if model is None or not lumen.any():
            continue
        box = _bounding_box(lumen, pad)
        unlike = lumen[box] & ~reached[label][box] & ~ivc_root[box] & ~model.band(smoothed, box)
        trees[box][unlike] = 0
        lumen[box] &= ~unlike
        allowed = lumen | (free & ~both & ~reached[3 - label] & (trees == 0))
        used = {name: smoothed[name] for name in model.level}  # the sequence(s) the lumen was followed on
        wall = trunks.partial_volume_wall(used, noise, lumen, allowed, spacing)
        trees[wall & (trees == 0)] = label
        if label == 2:
            box = _bounding_box(ivc, pad)
            ivc[box] |= wall[box] & filters.morphology_mm(ivc[box], spacing, trunks.WALL_MM, "dilate")
    return ivc & (trees == 2)


def _assign(vessels: np.ndarray, roots: dict[int, np.ndarray], liver: np.ndarray, spacing) -> np.ndarray:
    """Label each vessel voxel with the root it reaches along the widest path (0 = none).

    Inside ``liver``, pieces less than the largest voxel spacing apart count as connected (an
    oblique branch sampled by thick slices falls apart into pieces that only touch across the
    gap); a gap is crossed after every vessel voxel, the narrowest first (its relief is the
    distance to the vessels), so it never beats a path inside the vessels and a piece joins the
    closer tree."""
    distance = filters.distance_inside_mm(vessels, spacing)
    gap = filters.distance_inside_mm(~vessels, spacing)
    reach = vessels | (liver & (gap <= 0.5 * float(max(spacing))))
    markers = np.zeros(vessels.shape, dtype=np.uint32)
    for label, root in roots.items():
        markers[root & vessels] = label
    relief = filters.image_from_array(np.where(vessels, -distance, np.where(reach, gap, float(max(spacing))))
                                      .astype(np.float32), spacing)
    marker_image = sitk.GetImageFromArray(markers)
    marker_image.CopyInformation(relief)
    flood = sitk.GetArrayFromImage(sitk.MorphologicalWatershedFromMarkers(relief, marker_image, False, True))
    parts, _ = filters.connected_components(reach)
    rooted = np.unique(parts[markers > 0])
    return np.where(vessels & np.isin(parts, rooted[rooted > 0]), flood, 0).astype(np.uint8)


def _axis_ends(points: np.ndarray) -> list[list[float]]:
    """Centres (RAS mm) of the lowest and highest tenth of the IVC's voxel centres ``points`` (n, 3)."""
    low, high = np.percentile(points[:, 2], [10, 90])
    return [np.round(points[points[:, 2] <= low].mean(0), 2).tolist(),
            np.round(points[points[:, 2] >= high].mean(0), 2).tolist()]
