"""The phantom's scene: materials and the ordered layers that paint them.

Layers are painted in order; a later layer overwrites an earlier one, restricted to the
materials listed in its ``over`` (``None``: over anything). Precedence, from first to last:
body fat, muscle ring, visceral fat, paraspinal muscle, ribs, spine, lungs, spleen, kidneys,
stomach, aorta, liver, metastases (only over liver), cyst (only over liver), portal veins,
hepatic veins, IVC. Vessels therefore take precedence over lesions where they would
overlap; lesion placement keeps them at least 0.8 mm apart, so this only matters in principle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from livermets.labels import PHANTOM_LABEL_VALUES
from livermets.phantom import shapes
from livermets.phantom.couinaud import CouinaudPlanes
from livermets.phantom.liver import VISCERAL_CENTER_XY, VISCERAL_RADII_XY, LiverSurface
from livermets.phantom.vessels import (
    AORTA_CENTER_XY,
    AORTA_RADIUS_MM,
    IVC_CENTER_XY,
    IVC_RADII_XY,
    Segment,
    VesselTree,
    grow_branches,
    main_trunks,
)

# material ids (uint8) of the rendered scene
AIR, FAT, MUSCLE, RIB, MARROW, CSF, LUNG, SPLEEN, RIGHT_KIDNEY, LEFT_KIDNEY = range(10)
STOMACH_WALL, STOMACH_CONTENT, AORTA, IVC, LIVER, PORTAL, HEPATIC, CYST, CORTICAL_BONE = range(10, 19)
LESION_BASE = 32          # lesion n (1-based): core material 30 + 2n, rim material 31 + 2n
MAX_LESIONS = (256 - LESION_BASE) // 2
N_MATERIALS = 256

_LABEL = PHANTOM_LABEL_VALUES
_MATERIAL_LABEL = {
    AIR: 0, FAT: _LABEL["fat"], MUSCLE: _LABEL["body_wall"], RIB: _LABEL["body_wall"],
    MARROW: _LABEL["vertebra"], CSF: _LABEL["vertebra"], CORTICAL_BONE: _LABEL["vertebra"], LUNG: 0,
    SPLEEN: _LABEL["spleen"], RIGHT_KIDNEY: _LABEL["right_kidney"], LEFT_KIDNEY: _LABEL["left_kidney"],
    STOMACH_WALL: _LABEL["stomach"], STOMACH_CONTENT: _LABEL["stomach"], AORTA: _LABEL["aorta"],
    IVC: _LABEL["ivc"], LIVER: _LABEL["liver"], PORTAL: _LABEL["portal_vein"],
    HEPATIC: _LABEL["hepatic_veins"], CYST: _LABEL["cyst"],
}


def lesion_core_material(lesion_id: int) -> int:
    return 30 + 2 * lesion_id


def lesion_rim_material(lesion_id: int) -> int:
    return 31 + 2 * lesion_id


def material_to_label() -> np.ndarray:
    """Lookup table (256,) uint8: material id -> ``PHANTOM_LABELS`` value."""
    lut = np.zeros(N_MATERIALS, dtype=np.uint8)
    for material, label in _MATERIAL_LABEL.items():
        lut[material] = label
    lut[LESION_BASE:] = _LABEL["lesion"]
    return lut


def material_to_lesion_id() -> np.ndarray:
    """Lookup table (256,) uint16: material id -> lesion instance (0 for non-lesions)."""
    lut = np.zeros(N_MATERIALS, dtype=np.uint16)
    lut[LESION_BASE:] = (np.arange(LESION_BASE, N_MATERIALS) - 30) // 2
    return lut


def _over(*materials: int, lesions: bool = False) -> np.ndarray:
    lut = np.zeros(N_MATERIALS, dtype=bool)
    lut[list(materials)] = True
    if lesions:
        lut[LESION_BASE:] = True
    return lut


@dataclass
class Layer:
    """Paint ``material`` where ``shape`` is inside (and the current material is allowed by ``over``).

    ``moves``: the layer follows breathing shifts. ``record``: also keep its inside mask under this name.
    """

    material: int
    shape: object
    over: np.ndarray | None = None
    moves: bool = True
    record: str | None = None


@dataclass
class LesionSpec:
    """One placed metastasis (``kind == "metastasis"``) or cyst (``kind == "cyst"``), world RAS mm."""

    id: int
    kind: str
    shape: shapes.Lesion
    diameter_mm: float
    rim_enhancing: bool = False
    near_vessel: bool = False
    subcapsular: bool = False


@dataclass
class Scene:
    layers: list
    liver: LiverSurface
    portal: VesselTree
    hepatic: VesselTree
    planes: CouinaudPlanes
    lesions: list = field(default_factory=list)
    cysts: list = field(default_factory=list)
    min_vessel_radius_mm: float = 0.0


BODY_RADII_XY = (170.0, 128.0)
MUSCLE_RADII_XY = (156.0, 116.0)
Z_ALL = (-1000.0, 1000.0)


def _body_layers(liver: LiverSurface) -> list:
    soft = _over(FAT, LUNG)
    ellipse = shapes.EllipticCylinder
    return [
        Layer(FAT, ellipse((0, 0), BODY_RADII_XY, *Z_ALL), moves=False),
        Layer(MUSCLE, ellipse((0, 0), MUSCLE_RADII_XY, *Z_ALL), moves=False),
        Layer(FAT, ellipse(VISCERAL_CENTER_XY, VISCERAL_RADII_XY, *Z_ALL), moves=False),
        Layer(MUSCLE, ellipse((32, -100), (22, 16), *Z_ALL), moves=False),
        Layer(MUSCLE, ellipse((-32, -100), (22, 16), *Z_ALL), moves=False),
        Layer(RIB, shapes.Ribs(MUSCLE_RADII_XY, (-50.0, -15.0, 20.0, 55.0, 90.0, 125.0)),
              over=_over(MUSCLE, FAT),
              moves=False),
        Layer(MARROW, ellipse((0, -76), (22, 18), *Z_ALL), moves=False),
        Layer(CORTICAL_BONE, ellipse((0, -104), (15, 13), *Z_ALL), moves=False),
        Layer(CORTICAL_BONE, ellipse((0, -122), (4, 12), *Z_ALL), moves=False),
        Layer(CSF, ellipse((0, -104), (8, 7), *Z_ALL), moves=False),
        Layer(LUNG, shapes.Carved(shapes.Ellipsoid((78, -14, 130), (62, 80, 96)), liver, 6.0),
              over=_over(FAT)),
        Layer(LUNG, shapes.Carved(shapes.Ellipsoid((-76, -14, 124), (60, 78, 92)), liver, 6.0),
              over=_over(FAT)),
        Layer(SPLEEN, shapes.Ellipsoid((-98, -38, 8), (28, 40, 50)), over=soft),
        Layer(RIGHT_KIDNEY, shapes.Ellipsoid((72, -62, -74), (26, 22, 52)), over=soft),
        Layer(LEFT_KIDNEY, shapes.Ellipsoid((-70, -60, -58), (26, 22, 52)), over=soft),
        Layer(STOMACH_WALL, shapes.Ellipsoid((-60, 16, -6), (38, 34, 48)), over=soft),
        Layer(STOMACH_CONTENT, shapes.Ellipsoid((-60, 16, -6), (33, 29, 43)), over=_over(STOMACH_WALL)),
        Layer(AORTA, ellipse(AORTA_CENTER_XY, (AORTA_RADIUS_MM, AORTA_RADIUS_MM), *Z_ALL), moves=False),
        Layer(LIVER, liver, over=_over(FAT, LUNG, STOMACH_WALL, STOMACH_CONTENT), record="liver_envelope"),
    ]


def _vessel_layers(tree: VesselTree, material: int, min_radius_mm: float) -> list:
    over = _over(FAT, LUNG, LIVER, SPLEEN, STOMACH_WALL, STOMACH_CONTENT, CYST, lesions=True)
    return [Layer(material, shapes.Capsule(s.p0, s.p1, s.r0, s.r1), over=over)
            for s in tree.segments if s.r1 >= min_radius_mm]


def lesion_layers(specs: Sequence[LesionSpec]) -> list:
    layers = []
    for spec in specs:
        if spec.kind == "cyst":
            layers.append(Layer(CYST, spec.shape, over=_over(LIVER)))
            continue
        core, rim = lesion_core_material(spec.id), lesion_rim_material(spec.id)
        if spec.rim_enhancing:
            layers.append(Layer(rim, spec.shape, over=_over(LIVER)))
            layers.append(Layer(core, shapes.LesionCore(spec.shape), over=_over(rim)))
        else:
            layers.append(Layer(core, spec.shape, over=_over(LIVER)))
    return layers


def build_scene(seed: int, *, cyst: bool, min_vessel_radius_mm: float, snap=None) -> Scene:
    """Everything of the phantom in world RAS mm, deterministic from ``seed``.

    ``min_vessel_radius_mm``: vessel tubes thinner than this are not painted (chosen from the
    voxel size so that every painted tree stays connected on the grid). ``snap``: maps
    (n, 3) RAS points to the nearest voxel centres (lesion centres are snapped so each has a voxel).
    """
    from livermets.phantom.lesions import place_lesions, set_flags

    rng_liver, rng_vessels, rng_lesions = (np.random.default_rng([seed, stream]) for stream in (1, 2, 3))
    liver = LiverSurface(rng_liver)
    portal, hepatic = main_trunks()
    planes = CouinaudPlanes.from_hepatic_veins(hepatic)
    lesions, cysts = place_lesions(liver, portal, hepatic, planes, rng_lesions, cyst=cyst, snap=snap)
    obstacles = [Segment(s.shape.center, s.shape.center, s.shape.max_radius_mm, s.shape.max_radius_mm,
                         "lesion") for s in lesions + cysts]
    grow_branches(portal, hepatic, liver, rng_vessels, obstacles)
    set_flags(lesions + cysts, liver, portal, hepatic)
    layers = _body_layers(liver)
    layers += lesion_layers(lesions + cysts)
    layers += _vessel_layers(portal, PORTAL, min_vessel_radius_mm)
    layers += _vessel_layers(hepatic, HEPATIC, min_vessel_radius_mm)
    layers.append(Layer(IVC, shapes.EllipticCylinder(IVC_CENTER_XY, IVC_RADII_XY, *Z_ALL)))
    return Scene(layers, liver, portal, hepatic, planes, lesions, cysts, min_vessel_radius_mm)
