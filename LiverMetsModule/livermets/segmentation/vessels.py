"""Portal venous system and hepatic veins (with the IVC), separated by topology.

Method (numpy + SimpleITK; thresholds in units of the liver's robust spread)
-------------------------------------------------------------------------
1. Vessel evidence: robust z-score against the liver, signed by
   :func:`livermets.sequences.vessel_polarity` (bright on portal-venous / ct, dark on hbp / t2),
   averaged over sequences, inside the liver plus a :data:`MARGIN_MM` margin (hilum, IVC).
2. Vessel mask: evidence above :data:`LOW_Z` in parts reaching :data:`SEED_Z`, lesions (given,
   or round pieces after a split at the necks) removed;
   outside the liver only voxels on a tube (Hessian tubeness, two strong curvatures and one
   flat; Sato et al. 1998, doi:10.1016/S1361-8415(98)80009-1) count.
3. Roots, in RAS: an opening with a :data:`TRUNK_RADIUS_MM` ball keeps only the trunks. The
   IVC is the trunk with the longest superior-inferior extent among those posterior to the
   liver's centre, the rightmost if several (the aorta lies to its left). The portal root is
   the trunk anterior to the IVC, below the liver's centre and not left of the IVC that best
   combines size, crossing the capsule and closeness to the IVC along x (the hilum is medial).
4. Trees: every vessel voxel goes to the root it reaches along the widest path: a marker
   watershed on the negated inside-distance map floods from both roots, so two trees that
   touch at a thin partial-volume contact are cut there (a maximin / bottleneck path criterion).
   Parts reaching neither root are dropped.
5. Centerlines and radii per tree by :func:`livermets.segmentation.centerlines.trace_centerlines`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from livermets.geometry import Geometry
from livermets.segmentation import centerlines, filters
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
    mask; ``lesions``: optional mask of lesions to keep out of the vessels.
    """
    images = filters.checked_images(images, liver, geometry, task="segmenting vessels")
    full_liver = np.asarray(liver, dtype=bool)
    spacing = geometry.spacing_mm
    pad = [int(np.ceil(MARGIN_MM / s)) + 1 for s in spacing]
    box = _bounding_box(full_liver, pad)
    liver = full_liver[box]
    region = filters.morphology_mm(liver, spacing, MARGIN_MM, "dilate")
    evidence = filters.combined_evidence({k: v[box] for k, v in images.items()}, liver, spacing,
                                         vessel_polarity, sigma_mm=SMOOTH_MM, support=region)
    vessels = region & (evidence > LOW_Z)
    interior = filters.morphology_mm(liver, spacing, float(max(spacing)), "erode")
    vessels &= interior | _tubular(evidence, vessels & ~interior, spacing)
    if lesions is not None:
        vessels &= ~np.asarray(lesions, dtype=bool)[box]
    vessels = filters.keep_reaching(vessels, evidence, SEED_Z)
    vessels &= ~_blobs(vessels, liver, spacing)
    # partial volume: the wall sits half-way between liver and the lumen of the large vessels
    trunks = filters.morphology_mm(vessels, spacing, TRUNK_RADIUS_MM, "open")
    if trunks.any():
        vessels &= evidence > max(LOW_Z, WALL_FRACTION * float(np.median(evidence[trunks])))

    ras = _ras_grids(geometry, box)
    result = VesselResult(*(np.zeros(geometry.shape, dtype=bool) for _ in range(3)))
    ivc, portal_root = _find_roots(vessels, liver, ras, spacing)
    if ivc is None or portal_root is None:
        result.warnings.append("could not find both the IVC and the portal vein entry; vessels not separated")
        return result
    trees = _assign(vessels, {1: portal_root, 2: ivc}, spacing)
    result.portal[box] = trees == 1
    result.hepatic[box] = trees == 2
    result.ivc[box] = ivc & (trees == 2)
    result.portal_entry_ras_mm = [round(float(ras[a][portal_root].mean()), 2) for a in range(3)]
    result.ivc_axis_ras_mm = _axis_ends(ivc, ras)
    offset = np.asarray([b.start for b in box])
    for tree, label, root in (("portal", 1, portal_root), ("hepatic", 2, ivc)):
        for branch in centerlines.trace_centerlines(trees == label, root, spacing, min_branch_mm=MIN_BRANCH_MM):
            points = geometry.kji_to_ras(branch.points_kji + offset)
            result.centerlines.append({"tree": tree,
                                       "points_ras_mm": np.round(points, 2).tolist(),
                                       "radii_mm": np.round(branch.radii_mm, 2).tolist()})
    return result


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


def _ras_grids(geometry: Geometry, box) -> list[np.ndarray]:
    """RAS x, y, z (mm) of every voxel centre of ``box`` as broadcastable arrays."""
    matrix = geometry.ijk_to_ras()
    k = np.arange(box[0].start, box[0].stop, dtype=np.float32)[:, None, None]
    j = np.arange(box[1].start, box[1].stop, dtype=np.float32)[None, :, None]
    i = np.arange(box[2].start, box[2].stop, dtype=np.float32)[None, None, :]
    return [matrix[row, 0] * i + matrix[row, 1] * j + matrix[row, 2] * k + matrix[row, 3] for row in range(3)]


def _find_roots(vessels, liver, ras, spacing):
    """(IVC mask, portal root mask) from the trunks of the vessel mask, or None each."""
    trunks = filters.morphology_mm(vessels, spacing, TRUNK_RADIUS_MM, "open")
    labels, count = filters.connected_components(trunks)
    if count == 0:
        return None, None
    shape = np.broadcast_shapes(*(a.shape for a in ras))
    x, y, z = (np.broadcast_to(a, shape) for a in ras)
    liver_y, liver_z = float(y[liver].mean()), float(z[liver].mean())
    liver_z_low, liver_z_high = np.percentile(z[liver], [5, 95])
    parts = []
    for label in range(1, count + 1):
        voxels = labels == label
        zs = z[voxels]
        parts.append({"label": label, "x": float(x[voxels].mean()), "y": float(y[voxels].mean()),
                      "z": float(zs.mean()), "extent": float(zs.max() - zs.min()), "size": int(voxels.sum())})
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
    for p in hilum:  # the portal trunk crosses the capsule close to the IVC (medially)
        voxels = labels == p["label"]
        inside = float(liver[voxels].mean())
        crossing = 1.0 if 0.05 < inside < 0.95 else 0.3 if inside > 0 else 0.1
        p["weight"] = p["size"] * crossing / (1.0 + abs(p["x"] - ivc["x"]) / 30.0)
    portal = max(hilum, key=lambda p: p["weight"])
    return labels == ivc["label"], labels == portal["label"]


def _assign(vessels: np.ndarray, roots: dict[int, np.ndarray], spacing) -> np.ndarray:
    """Label each vessel voxel with the root it reaches along the widest path (0 = none)."""
    distance = filters.distance_inside_mm(vessels, spacing)
    markers = np.zeros(vessels.shape, dtype=np.uint32)
    for label, root in roots.items():
        markers[root & vessels] = label
    relief = filters.image_from_array(np.where(vessels, -distance, 1.0).astype(np.float32), spacing)
    marker_image = sitk.GetImageFromArray(markers)
    marker_image.CopyInformation(relief)
    flood = sitk.GetArrayFromImage(sitk.MorphologicalWatershedFromMarkers(relief, marker_image, False, True))
    parts, _ = filters.connected_components(vessels)
    rooted = np.unique(parts[markers > 0])
    return np.where(vessels & np.isin(parts, rooted[rooted > 0]), flood, 0).astype(np.uint8)


def _axis_ends(ivc: np.ndarray, ras) -> list[list[float]]:
    """Centres (RAS mm) of the lowest and highest tenth of the IVC."""
    shape = np.broadcast_shapes(*(a.shape for a in ras))
    points = np.stack([np.broadcast_to(a, shape)[ivc] for a in ras], axis=1)
    low, high = np.percentile(points[:, 2], [10, 90])
    return [np.round(points[points[:, 2] <= low].mean(0), 2).tolist(),
            np.round(points[points[:, 2] >= high].mean(0), 2).tolist()]
