"""Per-lesion measurements: size, shape, Couinaud segments, distances to vessels and capsule.

Entry point: :func:`measure_lesions`. Inputs are arrays indexed ``[k, j, i]`` on one
grid; outputs are plain dicts (JSON ready) in mm, ml and RAS mm.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from livermets.geometry import Geometry
from livermets.labels import RESULT_HEPATIC, RESULT_PORTAL
from livermets.measure.distances import StructureDistance
from livermets.measure.lesion_size import max_diameter_3d, recist_axes, sphericity
from livermets.measure.surface import boundary_voxels, crop_box
from livermets.measure.vessels import estimate_ivc
from livermets.progress import ProgressCallback, report

CONTACT_MM = 1.0
STRUCTURES = ("portal", "hepatic", "ivc", "capsule")
BOX_PAD_VOXELS = 3
# Below this many voxels a surface estimate says more about the grid than the lesion: no sphericity.
MIN_VOXELS_FOR_SHAPE = 27


def _surface_areas_mm2(lesions: np.ndarray, spacing_mm) -> dict[int, float]:
    """Surface area of every lesion label (ITK's Crofton-formula perimeter, mm^2)."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.ascontiguousarray(lesions, dtype=np.uint32))
    image.SetSpacing(tuple(float(s) for s in spacing_mm[::-1]))
    shape = sitk.LabelShapeStatisticsImageFilter()
    shape.ComputePerimeterOn()
    shape.Execute(image)
    return {int(label): float(shape.GetPerimeter(label)) for label in shape.GetLabels()}


def couinaud_fractions(mask: np.ndarray, couinaud: np.ndarray) -> dict[str, float]:
    """Fraction of ``mask`` in each Couinaud segment ("1".."8"), largest first; voxels outside
    every segment are left out of the denominator."""
    values = couinaud[mask]
    values = values[(values >= 1) & (values <= 8)]
    if values.size == 0:
        return {}
    counts = np.bincount(values.astype(int), minlength=9)[1:]
    order = np.argsort(-counts, kind="stable")
    return {str(int(segment) + 1): round(float(counts[segment]) / values.size, 4)
            for segment in order if counts[segment] > 0}


def vessel_masks(labels: np.ndarray, geometry: Geometry, ivc: Optional[np.ndarray] = None) -> dict[str, np.ndarray]:
    """Portal, hepatic-vein and IVC masks from ``labels.nii.gz`` values (IVC estimated when not given)."""
    hepatic_and_ivc = labels == RESULT_HEPATIC
    if ivc is None:
        ivc = estimate_ivc(hepatic_and_ivc, geometry)
    ivc = np.asarray(ivc, dtype=bool)
    return {"portal": labels == RESULT_PORTAL, "hepatic": hepatic_and_ivc & ~ivc, "ivc": ivc}


def structure_distances(labels: np.ndarray, geometry: Geometry, liver: np.ndarray, *,
                        ivc: Optional[np.ndarray] = None, box: Optional[tuple] = None) -> dict[str, StructureDistance]:
    """Distance maps (mm) to the portal veins, hepatic veins, IVC and the outside of the liver
    (capsule), within ``box``. They depend only on ``labels`` values 3 / 4, ``liver`` and ``ivc``,
    so a caller may reuse them for further lesions while those stay the same."""
    structures = dict(vessel_masks(labels, geometry, ivc))
    structures["capsule"] = ~np.asarray(liver, dtype=bool)
    return {name: StructureDistance(mask, geometry, box) for name, mask in structures.items()}


def measure_lesions(lesions: np.ndarray, labels: np.ndarray, geometry: Geometry, *,
                    couinaud: Optional[np.ndarray] = None, liver: Optional[np.ndarray] = None,
                    ivc: Optional[np.ndarray] = None, distances: Optional[dict[str, StructureDistance]] = None,
                    progress: Optional[ProgressCallback] = None) -> list[dict]:
    """Measure every lesion instance.

    Parameters
    ----------
    lesions : int array [k, j, i]
        Lesion instances 1..N (0 background).
    labels : int array [k, j, i]
        ``labels.nii.gz`` values (1 parenchyma, 2 lesion, 3 portal veins, 4 hepatic veins + IVC).
    geometry : Geometry
        The common grid.
    couinaud : int array, optional
        Couinaud segments 1..8 (0 outside); without it ``couinaud`` is empty.
    liver : bool array, optional
        Whole liver (for the capsule distance); default ``labels > 0``.
    ivc : bool array, optional
        Explicit IVC mask; default estimated from label 4.
    distances : dict, optional
        :func:`structure_distances` of this study, computed earlier (every lesion must lie in their box).

    Returns
    -------
    list of dict, one per lesion id (ascending), see ``docs`` of the measure command for keys.
    """
    lesions = np.asarray(lesions)
    liver = (labels > 0) if liver is None else np.asarray(liver, dtype=bool)
    ids = [int(v) for v in np.unique(lesions) if v != 0]
    if not ids:
        return []
    if distances is None:
        report(progress, 0.05, "distance maps of vessels and liver surface")
        distances = structure_distances(labels, geometry, liver, ivc=ivc,
                                        box=crop_box(liver | (lesions > 0), pad=BOX_PAD_VOXELS))
    box = distances["capsule"].box
    offset = np.array([s.start for s in box])
    lesion_box = lesions[box]
    if np.count_nonzero(lesion_box) != np.count_nonzero(lesions):
        raise ValueError("a lesion lies outside the box of the given distance maps: compute them anew")
    areas = _surface_areas_mm2(lesion_box, geometry.spacing_mm)
    results = []
    for number, lesion_id in enumerate(ids):
        report(progress, 0.3 + 0.7 * number / len(ids), f"lesion {lesion_id}")
        mask_box = lesion_box == lesion_id
        inner = crop_box(mask_box, pad=1)
        mask = mask_box[inner]
        corner = offset + np.array([s.start for s in inner])
        count = int(np.count_nonzero(mask))
        volume_mm3 = count * float(np.prod(geometry.spacing_mm))
        recist = recist_axes(mask, geometry, corner)
        feret = max_diameter_3d(mask, geometry, corner)
        surface_kji = np.argwhere(boundary_voxels(mask)) + corner
        centroid_ras = geometry.kji_to_ras(np.argwhere(mask).mean(axis=0) + corner)
        nearest, points, contact = {}, {}, []
        for name in STRUCTURES:
            found = distances[name].nearest(surface_kji)
            nearest[name] = None if found is None else round(found.distance_mm, 2)
            points[name] = None if found is None else found.to_dict()
            if found is not None and name != "capsule" and found.distance_mm < CONTACT_MM:
                contact.append(name)
        full_mask_slices = tuple(slice(int(c), int(c) + n) for c, n in zip(corner, mask.shape))
        fractions = {} if couinaud is None else couinaud_fractions(mask, np.asarray(couinaud)[full_mask_slices])
        results.append({
            "id": lesion_id,
            "volume_ml": round(volume_mm3 / 1000.0, 3),
            "centroid_ras_mm": [round(float(v), 2) for v in centroid_ras],
            "recist_long_mm": round(recist.long.length_mm, 2),
            "recist_short_mm": round(recist.short.length_mm, 2),
            "recist": recist.to_dict(),
            "max_diameter_3d_mm": round(feret.length_mm, 2),
            "max_diameter_3d": feret.to_dict(),
            "surface_area_mm2": round(areas.get(lesion_id, 0.0), 1),
            "sphericity": (round(sphericity(volume_mm3, areas.get(lesion_id, 0.0)), 3)
                           if count >= MIN_VOXELS_FOR_SHAPE else None),
            "couinaud": fractions,
            "couinaud_segment": int(next(iter(fractions))) if fractions else None,
            "nearest": nearest,
            "nearest_points": points,
            "vessel_contact": contact,
        })
    report(progress, 1.0, "lesions measured")
    return results
