"""Ground-truth label maps and the legend, derived from the materials at voxel centres.

Definitions
-----------
* ``anatomy``: ``PHANTOM_LABELS`` value of the material at each voxel centre.
* whole liver: voxels inside the liver surface whose label is parenchyma, lesion, cyst, portal
  vein or hepatic vein (intrahepatic vessels); the IVC and extrahepatic portal vein are not liver.
* ``labels`` (result contract ``RESULT_LABELS``): 1 parenchyma and cyst of the whole liver, 2 lesion,
  3 the whole portal venous system (extrahepatic part included), 4 hepatic veins and IVC.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from livermets.geometry import Geometry
from livermets.labels import COUINAUD_NAMES, PHANTOM_LABEL_VALUES, PHANTOM_LABELS, RESULT_LABELS
from livermets.phantom.anatomy import LesionSpec, Scene
from livermets.phantom.shapes import fibonacci_directions

_L = PHANTOM_LABEL_VALUES
WHOLE_LIVER_LABELS = (_L["liver"], _L["lesion"], _L["portal_vein"], _L["hepatic_veins"], _L["cyst"])


def whole_liver_mask(anatomy: np.ndarray, envelope: np.ndarray) -> np.ndarray:
    return envelope & np.isin(anatomy, WHOLE_LIVER_LABELS)


def result_labels(anatomy: np.ndarray, whole_liver: np.ndarray) -> np.ndarray:
    labels = np.zeros(anatomy.shape, dtype=np.uint8)
    labels[whole_liver & np.isin(anatomy, (_L["liver"], _L["cyst"]))] = 1
    labels[anatomy == _L["lesion"]] = 2
    labels[anatomy == _L["portal_vein"]] = 3
    labels[np.isin(anatomy, (_L["hepatic_veins"], _L["ivc"]))] = 4
    return labels


def couinaud_map(whole_liver: np.ndarray, geometry: Geometry, scene: Scene,
                 chunk: int = 1 << 20) -> np.ndarray:
    """Segment 1..8 at the centre of every whole-liver voxel, 0 elsewhere (uint8 [k, j, i])."""
    out = np.zeros(whole_liver.shape, dtype=np.uint8)
    flat = np.flatnonzero(whole_liver)
    nj, ni = geometry.shape[1], geometry.shape[2]
    for start in range(0, len(flat), chunk):
        part = flat[start:start + chunk]
        kji = np.stack([part // (nj * ni), (part // ni) % nj, part % ni], axis=1)
        ras = geometry.kji_to_ras(kji)
        out.ravel()[part] = scene.planes.segment(ras[:, 0], ras[:, 1], ras[:, 2])
    return out


def longest_axial_diameter_mm(voxels_kji: np.ndarray, geometry: Geometry) -> float:
    """Largest distance (mm) between two voxel centres of one object, ``voxels_kji`` (n, 3) int,
    lying in the same slice across the array axis closest to S-I (0 for fewer than two voxels)."""
    if len(voxels_kji) < 2:
        return 0.0
    axis = geometry.axial_axis()
    low = voxels_kji.min(0)
    crop = np.zeros(tuple(voxels_kji.max(0) - low + 3), dtype=bool)
    crop[tuple((voxels_kji - low + 1).T)] = True
    best = 0.0
    for index in np.unique(voxels_kji[:, axis] - low[axis] + 1):
        plane = np.take(crop, index, axis=axis)
        edge = plane.copy()
        edge[1:-1, 1:-1] &= ~(plane[:-2, 1:-1] & plane[2:, 1:-1] & plane[1:-1, :-2] & plane[1:-1, 2:])
        coords = np.insert(np.argwhere(edge), axis, index, axis=1) + low - 1
        ras = geometry.kji_to_ras(coords.astype(float))
        if len(ras) > 1:
            d = ras[:, None, :] - ras[None, :, :]
            best = max(best, float(np.sqrt((d * d).sum(-1)).max()))
    return best


def _entry(spec: LesionSpec, voxels_kji: np.ndarray, geometry: Geometry, scene: Scene) -> dict:
    count = len(voxels_kji)
    center = spec.shape.center
    centroid = geometry.kji_to_ras(voxels_kji.mean(0)) if count else center
    return {
        "id": spec.id,
        "kind": spec.kind,
        "center_ras_mm": [round(float(v), 3) for v in center],
        "centroid_ras_mm": [round(float(v), 3) for v in centroid],
        "diameter_mm": round(spec.diameter_mm, 3),
        "longest_axial_diameter_mm": round(longest_axial_diameter_mm(voxels_kji, geometry), 3),
        "volume_ml": round(count * geometry.voxel_volume_ml, 5),
        "analytic_volume_ml": round(spec.shape.volume_ml(fibonacci_directions(4000)), 5),
        "voxel_count": count,
        "couinaud_segment": int(scene.planes.segment(*center)),
        "near_vessel": spec.near_vessel,
        "subcapsular": spec.subcapsular,
        "rim_enhancing": spec.rim_enhancing,
    }


def _voxels_by_value(volume: np.ndarray) -> dict:
    """value -> (n, 3) int array of the [k, j, i] indices of the voxels holding it (non-zero values)."""
    coords = np.argwhere(volume)
    values = volume[tuple(coords.T)]
    return {int(v): coords[values == v] for v in np.unique(values)}


def legend(*, seed: int, variant: str, custom_grid: bool, geometry: Geometry, sequences: Sequence[str],
           scene: Scene, anatomy: np.ndarray, lesions: np.ndarray, whole_liver: np.ndarray,
           couinaud: np.ndarray, breathing_shifts: dict) -> dict:
    """The JSON-able description of the phantom (all coordinates RAS mm)."""
    empty = np.zeros((0, 3), dtype=int)
    by_id = _voxels_by_value(lesions)
    entries = [_entry(spec, by_id.get(spec.id, empty), geometry, scene) for spec in scene.lesions]
    cyst_voxels = np.argwhere(anatomy == _L["cyst"])  # the phantom has at most one cyst
    cysts = [_entry(spec, cyst_voxels, geometry, scene) for spec in scene.cysts]
    branches = {}
    for tree in (scene.portal, scene.hepatic):
        names = []
        for segment in tree.segments:
            if segment.r1 >= scene.min_vessel_radius_mm and segment.branch not in names:
                names.append(segment.branch)
        branches[tree.name] = names
    branches["ivc"], branches["aorta"] = ["inferior vena cava"], ["aorta"]
    return {
        "description": "LiverMets synthetic teaching phantom (not patient data)",
        "seed": int(seed),
        "variant": variant,
        "custom_grid": bool(custom_grid),
        "frame": "coordinates are RAS millimetres; image files store LPS",
        "geometry": {
            "shape_kji": list(geometry.shape),
            "spacing_ijk_mm": list(geometry.spacing_ijk_mm),
            "origin_lps_mm": list(geometry.origin_lps_mm),
            "direction_lps": list(geometry.direction_lps),
            "ijk_to_ras": geometry.ijk_to_ras().round(6).tolist(),
        },
        "sequences": list(sequences),
        "labels": {
            "anatomy": {str(k): v for k, v in PHANTOM_LABELS.items()},
            "result": {str(k): v for k, v in RESULT_LABELS.items()},
            "couinaud": {str(k): v for k, v in COUINAUD_NAMES.items()},
        },
        "lesions": entries,
        "cysts": cysts,
        "vessels": branches,
        "min_vessel_radius_mm": round(scene.min_vessel_radius_mm, 3),
        "liver_volume_ml": round(int(whole_liver.sum()) * geometry.voxel_volume_ml, 3),
        "couinaud_volumes_ml": {str(n): round(int(count) * geometry.voxel_volume_ml, 3) for n, count
                                in enumerate(np.bincount(couinaud.ravel(), minlength=9)) if n > 0},
        "breathing_shift_ras_mm": {name: [round(float(v), 3) for v in shift]
                                   for name, shift in breathing_shifts.items()},
    }
