"""Virtual liver resection: by a plane, by Couinaud segments, or by a wedge around lesions.

A :class:`ResectionModel` is built once from the result arrays (indexed ``[k, j, i]``)
and evaluates plans; :class:`PlaneResection` keeps the voxel coordinates so that moving
the plane costs one dot product (fast enough to follow a dragged plane in Slicer).

Volumes are ml; distances mm; points and normals RAS mm. The *functional* liver is the
liver mask without lesion voxels (tumour excluded from both FLR terms). A lesion's margin
is the distance from its surface to the cut surface: to the plane for plane cuts, to the
other side of the cut (remnant or resected liver) for segment and wedge resections.
Margins under 1 mm are flagged R1.
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

import numpy as np

from livermets.errors import InputError
from livermets.geometry import Geometry
from livermets.measure.distances import StructureDistance, distance_map_mm
from livermets.measure.lesion_size import volume_ml
from livermets.measure.lesions import vessel_masks
from livermets.measure.surface import boundary_midpoints_kji, box_half_thickness_mm, boundary_voxels, crop_box

R1_MARGIN_MM = 1.0
INTRAHEPATIC_REACH_MM = 3.0
NAMED_RESECTIONS = {
    "right hepatectomy": (5, 6, 7, 8),
    "left hepatectomy": (2, 3, 4),
    "extended right hepatectomy": (4, 5, 6, 7, 8),
    "extended left hepatectomy": (2, 3, 4, 5, 8),
}


def name_resection(segments: Iterable[int]) -> str:
    """Usual name of a segment set ('right hepatectomy', 'segmentectomy 6', ...)."""
    chosen = tuple(sorted(set(int(s) for s in segments)))
    for name, named in NAMED_RESECTIONS.items():
        if chosen == tuple(sorted(named)):
            return name
    return ("segmentectomy " if len(chosen) == 1 else "segmentectomies ") + ", ".join(map(str, chosen))


class ResectionModel:
    """The liver, lesions and vessels of one case, cropped to the liver, ready for plans.

    Parameters
    ----------
    liver : bool array [k, j, i]
        Whole liver (lesions and intrahepatic vessels included).
    lesions : int array [k, j, i]
        Lesion instances 1..N.
    labels : int array [k, j, i]
        ``labels.nii.gz`` values (3 portal veins, 4 hepatic veins + IVC).
    geometry : Geometry
    couinaud : int array, optional
        Segments 1..8, needed for segment resections.
    ivc : bool array, optional
        Explicit IVC mask (else estimated from label 4).
    """

    def __init__(self, liver: np.ndarray, lesions: np.ndarray, labels: np.ndarray, geometry: Geometry, *,
                 couinaud: Optional[np.ndarray] = None, ivc: Optional[np.ndarray] = None) -> None:
        liver = np.asarray(liver, dtype=bool)
        if not liver.any():
            raise InputError("the liver mask is empty: segment the liver before planning")
        self.geometry = geometry
        self.spacing = np.asarray(geometry.spacing_mm, dtype=float)
        self.box = crop_box(liver | (np.asarray(lesions) > 0), pad=2)
        self.offset = np.array([s.start for s in self.box])
        self.liver = liver[self.box]
        self.lesions = np.asarray(lesions)[self.box]
        self.couinaud = None if couinaud is None else np.asarray(couinaud)[self.box]
        self.functional = self.liver & (self.lesions == 0)
        self.total_functional_ml = volume_ml(self.functional, geometry)
        self.lesion_ids = [int(v) for v in np.unique(self.lesions) if v != 0]
        self.lesion_surface_kji = {i: np.argwhere(boundary_voxels(self.lesions == i)) + self.offset
                                   for i in self.lesion_ids}
        self.lesion_points_ras = {i: geometry.kji_to_ras(boundary_midpoints_kji(self.lesions == i) + self.offset)
                                  for i in self.lesion_ids}
        near_liver = distance_map_mm(self.liver, self.spacing) <= INTRAHEPATIC_REACH_MM
        self.vessels = {}
        for name, mask in vessel_masks(np.asarray(labels), geometry, ivc).items():
            cropped = mask[self.box] & near_liver
            if cropped.any():
                self.vessels[name] = cropped

    # --- shared pieces ------------------------------------------------------
    def full_grid(self, region: np.ndarray) -> np.ndarray:
        """A cropped boolean region put back on the full grid."""
        full = np.zeros(self.geometry.shape, dtype=bool)
        full[self.box] = region
        return full

    def cut_vessels(self, cut_voxels: dict[str, np.ndarray], normal_ras: Optional[np.ndarray],
                    thickness_mm: float) -> list[dict]:
        """Group cut vessel voxels (per tree, cropped grid) into cut sites with a calibre each.

        The calibre is the diameter of the circle of equal area: cut area = voxel volume x count /
        ``thickness_mm`` (the layer of cut voxels), made perpendicular to the vessel with the
        vessel's local axis (principal axis of its voxels within 10 mm) and the cut normal.
        """
        import SimpleITK as sitk

        sites = []
        for name, cut in cut_voxels.items():
            if not cut.any():
                continue
            vessel = self.vessels[name]
            window = crop_box(cut, pad=1)
            components = sitk.GetArrayFromImage(sitk.ConnectedComponent(
                sitk.GetImageFromArray(cut[window].astype(np.uint8)), True))
            corner = np.array([s.start for s in window])
            for label in range(1, int(components.max()) + 1):
                kji = np.argwhere(components == label) + corner
                centre_kji = kji.mean(axis=0)
                area_mm2 = len(kji) * float(np.prod(self.spacing)) / thickness_mm
                if normal_ras is not None:
                    area_mm2 *= self._axis_cosine(vessel, centre_kji, normal_ras)
                sites.append({"vessel": name, "diameter_mm": round(2.0 * float(np.sqrt(area_mm2 / np.pi)), 1),
                              "center_ras_mm": [round(float(v), 1) for v in
                                                self.geometry.kji_to_ras(centre_kji + self.offset)]})
        sites.sort(key=lambda site: -site["diameter_mm"])
        return sites

    def _axis_cosine(self, vessel: np.ndarray, centre_kji: np.ndarray, normal_ras: np.ndarray) -> float:
        """|cos| of the angle between the cut normal and the vessel's local axis (at least 0.3)."""
        reach = np.ceil(10.0 / self.spacing).astype(int)
        low = np.maximum(np.floor(centre_kji).astype(int) - reach, 0)
        window = tuple(slice(int(a), int(b)) for a, b in zip(low, low + 2 * reach + 1))
        points = self.geometry.kji_to_ras(np.argwhere(vessel[window]) + low + self.offset)
        if len(points) < 4:
            return 1.0
        _, _, vt = np.linalg.svd(points - points.mean(axis=0), full_matrices=False)
        return max(0.3, abs(float(vt[0] @ normal_ras)))

    def summary(self, resected_ml: float, margins: list[dict], vessels_cut: list[dict]) -> dict:
        return {"resected_volume_ml": round(resected_ml, 2),
                "remnant_volume_ml": round(self.total_functional_ml - resected_ml, 2),
                "total_functional_volume_ml": round(self.total_functional_ml, 2),
                "lesions": margins, "vessels_cut": vessels_cut}

    # --- mask resections ----------------------------------------------------
    def segments_region(self, segments: Sequence[int]) -> np.ndarray:
        """Liver voxels (cropped grid) in the chosen Couinaud segments."""
        if self.couinaud is None:
            raise InputError("segment resection needs Couinaud segments: run `livermets measure` first")
        bad = [s for s in segments if not 1 <= int(s) <= 8]
        if bad or not segments:
            raise InputError(f"Couinaud segments are 1..8, got {list(segments)}")
        return self.liver & np.isin(self.couinaud, [int(s) for s in segments])

    def wedge_region(self, wedges: dict[int, float]) -> np.ndarray:
        """Liver voxels (cropped grid) within ``margin_mm`` of the chosen lesions' surfaces."""
        region = np.zeros(self.liver.shape, dtype=bool)
        for lesion_id, margin_mm in wedges.items():
            if lesion_id not in self.lesion_ids:
                raise InputError(f"there is no lesion {lesion_id}: lesions are {self.lesion_ids}")
            if margin_mm < 0:
                raise InputError(f"a wedge margin must be 0 mm or more, got {margin_mm}")
            lesion = self.lesions == lesion_id
            window = crop_box(lesion, pad=int(np.ceil((margin_mm + 2 * self.spacing.max()) / self.spacing.min())))
            distance = distance_map_mm(lesion[window], self.spacing)
            region[window] |= distance <= margin_mm + 0.5 * float(self.spacing.mean())
        return region & self.liver

    def evaluate_region(self, resected: np.ndarray) -> dict:
        """Volumes, lesion margins and cut vessels of resecting ``resected`` (bool, cropped grid)."""
        resected = resected & self.liver
        remnant = self.liver & ~resected
        to_remnant = to_resected = None
        margins = []
        for lesion_id in self.lesion_ids:
            lesion = self.lesions == lesion_id
            inside, outside = bool((lesion & resected).any()), bool((lesion & remnant).any())
            if inside and outside:
                margins.append(_margin(lesion_id, "transected", 0.0))
                continue
            if inside:
                to_remnant = to_remnant or _LocalDistance(remnant, self)
                found = to_remnant.nearest(self.lesion_surface_kji[lesion_id])
                margins.append(_margin(lesion_id, "resected", None if found is None else found.distance_mm))
            else:
                to_resected = to_resected or _LocalDistance(resected, self)
                found = to_resected.nearest(self.lesion_surface_kji[lesion_id])
                margins.append(_margin(lesion_id, "remnant", None if found is None else found.distance_mm))
        cut = {}
        for name, vessel in self.vessels.items():
            inside = vessel & resected
            crossing = np.zeros_like(inside)
            for axis in range(3):
                for step in (1, -1):
                    crossing |= inside & np.roll(vessel & ~resected, step, axis=axis)
            cut[name] = crossing
        return self.summary(volume_ml(resected & self.functional, self.geometry), margins,
                            self.cut_vessels(cut, None, float(self.spacing.mean())))


class _LocalDistance(StructureDistance):
    """StructureDistance on the model's cropped grid."""

    def __init__(self, region: np.ndarray, model: ResectionModel) -> None:
        super().__init__(model.full_grid(region), model.geometry, model.box)


def _margin(lesion_id: int, status: str, margin_mm: Optional[float]) -> dict:
    return {"id": lesion_id, "status": status,
            "margin_mm": None if margin_mm is None else round(float(margin_mm), 2),
            "r1": bool(margin_mm is not None and margin_mm < R1_MARGIN_MM)}


class PlaneResection:
    """Resection by a plane, re-evaluated quickly as the plane moves.

    The resected side is the one the normal points to. Voxel coordinates (RAS mm) of the
    functional liver and of the intrahepatic vessels are computed once.
    """

    def __init__(self, model: ResectionModel) -> None:
        self.model = model
        geometry = model.geometry
        self.functional_ras = geometry.kji_to_ras(np.argwhere(model.functional) + model.offset).astype(np.float32)
        self.vessel_kji = {name: np.argwhere(mask) for name, mask in model.vessels.items()}
        self.vessel_ras = {name: geometry.kji_to_ras(kji + model.offset).astype(np.float32)
                           for name, kji in self.vessel_kji.items()}
        self.axes_unit_ras = geometry.axis_vectors_ras() / np.asarray(geometry.spacing_mm)[:, None]

    def update(self, point_ras, normal_ras) -> dict:
        """Evaluate the plane through ``point_ras`` with ``normal_ras`` (toward the resected side)."""
        point = np.asarray(point_ras, dtype=float)
        normal = np.asarray(normal_ras, dtype=float)
        if point.shape != (3,) or normal.shape != (3,) or np.linalg.norm(normal) == 0:
            raise InputError("a plane needs a point and a non-zero normal, three RAS values each")
        normal = normal / np.linalg.norm(normal)
        offset = float(point @ normal)
        signed = self.functional_ras @ normal.astype(np.float32) - offset
        half_thickness = box_half_thickness_mm(self.axes_unit_ras @ normal, self.model.spacing)
        # partial volume: the share of each voxel box beyond the plane, linear across its thickness
        resected_fraction = np.clip(0.5 + signed / (2.0 * half_thickness), 0.0, 1.0)
        resected_ml = float(resected_fraction.sum()) * self.model.geometry.voxel_volume_ml
        margins = []
        for lesion_id, points in self.model.lesion_points_ras.items():
            distance = points @ normal - offset
            if distance.min() < 0 < distance.max():
                margins.append(_margin(lesion_id, "transected", 0.0))
            elif distance.min() >= 0:
                margins.append(_margin(lesion_id, "resected", float(distance.min())))
            else:
                margins.append(_margin(lesion_id, "remnant", float(-distance.max())))
        cut = {}
        for name, ras in self.vessel_ras.items():
            signed_vessel = ras @ normal.astype(np.float32) - offset
            on_plane = (signed_vessel > -half_thickness) & (signed_vessel <= half_thickness)  # one layer
            mask = np.zeros(self.model.liver.shape, dtype=bool)
            mask[tuple(self.vessel_kji[name][on_plane].T)] = True
            cut[name] = mask
        result = self.model.summary(resected_ml, margins, self.model.cut_vessels(cut, normal, 2.0 * half_thickness))
        result["plane"] = {"point_ras_mm": [float(v) for v in point], "normal_ras": [float(v) for v in normal]}
        return result

    def resected_region(self, point_ras, normal_ras) -> np.ndarray:
        """Liver voxels (full grid) on the normal's side of the plane."""
        normal = np.asarray(normal_ras, dtype=float)
        normal = normal / np.linalg.norm(normal)
        kji = np.argwhere(self.model.liver)
        region = np.zeros(self.model.liver.shape, dtype=bool)
        ras = self.model.geometry.kji_to_ras(kji + self.model.offset)
        region[tuple(kji[(ras @ normal - float(np.asarray(point_ras) @ normal)) > 0].T)] = True
        return self.model.full_grid(region)
