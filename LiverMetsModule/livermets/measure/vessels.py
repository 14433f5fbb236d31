"""Vessel helpers: the IVC inside the hepatic-vein label, and vessel calibre from distance maps.

``labels.nii.gz`` stores the hepatic veins and the inferior vena cava (IVC) in one
label. The IVC is the thick, vertical, retro-hepatic tube: a morphological opening
with a ball wider than any hepatic vein keeps it, and among what survives the IVC is
the component that runs furthest along the patient's superior-inferior axis.
"""

from __future__ import annotations

import numpy as np

from livermets.geometry import Geometry
from livermets.measure.surface import crop_box
from livermets.segmentation.morphology import binary_morphology

IVC_OPENING_RADIUS_MM = 5.0


def _opening(mask: np.ndarray, spacing_mm, radius_mm: float) -> np.ndarray:
    """Opening with a ball of ``radius_mm`` (at least one voxel along every axis)."""
    return binary_morphology(mask, [max(1, int(round(radius_mm / s))) for s in spacing_mm[::-1]], "open")


def _components(mask: np.ndarray) -> np.ndarray:
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.ascontiguousarray(mask, dtype=np.uint8))
    return sitk.GetArrayFromImage(sitk.ConnectedComponent(image, True))


def estimate_ivc(hepatic_and_ivc: np.ndarray, geometry: Geometry,
                 opening_radius_mm: float = IVC_OPENING_RADIUS_MM) -> np.ndarray:
    """Estimate the IVC part of a hepatic-vein + IVC mask (bool [k, j, i]); empty if none qualifies.

    Keeps the opened component with the largest superior-inferior extent (ties: larger volume),
    restricted to the original mask. A component counts only if it is taller (S-I) than wide.
    """
    hepatic_and_ivc = np.asarray(hepatic_and_ivc, dtype=bool)
    result = np.zeros(hepatic_and_ivc.shape, dtype=bool)
    box = crop_box(hepatic_and_ivc, pad=2)
    if box is None:
        return result
    opened = _opening(hepatic_and_ivc[box], geometry.spacing_mm, opening_radius_mm)
    components = _components(opened)
    offset = np.array([s.start for s in box])
    best, best_key = 0, (0.0, 0)
    for label in range(1, int(components.max()) + 1):
        kji = np.argwhere(components == label)
        ras = geometry.kji_to_ras(kji + offset)
        extent = ras.max(axis=0) - ras.min(axis=0)
        if extent[2] <= max(extent[0], extent[1]):
            continue
        key = (float(extent[2]), len(kji))
        if key > best_key:
            best, best_key = label, key
    if best:
        result[box] = (components == best) & hepatic_and_ivc[box]
    return result


def inscribed_radius_map_mm(vessel: np.ndarray, spacing_mm) -> np.ndarray:
    """Radius (mm) of the largest ball centred at each vessel voxel that stays in the vessel
    (distance to the nearest outside voxel centre, less half a voxel); 0 outside."""
    from livermets.measure.distances import distance_map_mm

    outside = distance_map_mm(~np.asarray(vessel, dtype=bool), spacing_mm)
    return np.where(vessel, np.maximum(outside - 0.5 * min(spacing_mm), 0.0), 0.0).astype(np.float32)
