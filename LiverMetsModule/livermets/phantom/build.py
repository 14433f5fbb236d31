"""``make_phantom``: the synthetic abdomen, its images on every sequence and its ground truth."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from livermets.geometry import Geometry
from livermets.phantom import noise
from livermets.phantom.anatomy import Scene, build_scene, material_to_label, material_to_lesion_id
from livermets.phantom.raster import Raster, rasterize
from livermets.phantom.render import (
    BIAS_AMPLITUDE,
    BLUR_SIGMA_MM,
    NOISE_SIGMA,
    PHANTOM_SEQUENCES,
    render_partial_volume,
)
from livermets.phantom.truth import couinaud_map, legend, result_labels, whole_liver_mask
from livermets.progress import ProgressCallback, report, scaled

# voxel size (i, j, k) in mm of each variant
VARIANT_SPACING_MM: dict[str, tuple[float, float, float]] = {
    "standard": (1.5, 1.5, 3.0), "thick": (1.25, 1.25, 7.5), "small": (3.0, 3.0, 3.0)}
# field of view (mm) along i (L-R), j (A-P), k (S-I), centred on the world origin
FIELD_OF_VIEW_MM = (400.0, 320.0, 240.0)
REFERENCE_SEQUENCE = "hbp"  # never shifted by breathing


@dataclass
class Phantom:
    """A rendered phantom; every array is ``[k, j, i]`` on ``geometry``.

    Attributes
    ----------
    images : sequence name -> float32 image (MRI arbitrary units, CT in HU).
    anatomy : uint8 ``PHANTOM_LABELS`` at voxel centres of the reference (hepatobiliary) phase.
    lesions : uint16 metastasis instances 1..N (ids of ``legend["lesions"]``), 0 elsewhere.
    couinaud : uint8 segment 1..8 on every whole-liver voxel, 0 elsewhere.
    liver : uint8 0/1 whole liver (parenchyma, lesions, cyst, intrahepatic portal and hepatic veins).
    labels : uint8 result-contract labels (``RESULT_LABELS``).
    legend : JSON-able description, RAS mm (see :func:`livermets.phantom.truth.legend`).
    scene : the world-space construction (shapes, vessel trees, lesion shapes, Couinaud planes).
    phase_anatomy : anatomy of phases shifted by breathing (use :meth:`anatomy_for`).
    """

    seed: int
    variant: str
    geometry: Geometry
    images: dict
    anatomy: np.ndarray
    lesions: np.ndarray
    couinaud: np.ndarray
    liver: np.ndarray
    labels: np.ndarray
    legend: dict
    scene: Scene = field(repr=False)
    phase_anatomy: dict = field(default_factory=dict, repr=False)

    def anatomy_for(self, sequence: str) -> np.ndarray:
        """Anatomy labels as seen on ``sequence`` (differs from ``anatomy`` only with breathing)."""
        if sequence not in self.images:
            raise KeyError(f"the phantom has no {sequence!r} image; it has {', '.join(self.images)}")
        return self.phase_anatomy.get(sequence, self.anatomy)


def phantom_geometry(variant: str = "standard", shape_kji: Sequence[int] | None = None,
                     direction_lps=None) -> Geometry:
    """The grid of a phantom variant (or ``shape_kji`` over the same field of view), centred on the origin."""
    if variant not in VARIANT_SPACING_MM:
        raise ValueError(f"unknown phantom variant {variant!r}; use one of: {', '.join(VARIANT_SPACING_MM)}")
    fov = np.asarray(FIELD_OF_VIEW_MM)
    if shape_kji is None:
        spacing = np.asarray(VARIANT_SPACING_MM[variant])
        shape_ijk = np.maximum(np.round(fov / spacing).astype(int), 1)
    else:
        shape_ijk = np.asarray(shape_kji, dtype=int)[::-1]
        if shape_ijk.shape != (3,) or shape_ijk.min() < 1:
            raise ValueError(f"shape_kji must be three positive sizes, got {shape_kji}")
        spacing = fov / shape_ijk
    direction = np.eye(3) if direction_lps is None else np.asarray(direction_lps, dtype=float).reshape(3, 3)
    if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-6):
        raise ValueError("direction_lps must be an orthonormal 3 x 3 matrix")
    origin = -direction @ (spacing * (shape_ijk - 1) / 2.0)
    return Geometry(tuple(shape_ijk[::-1]), tuple(spacing), tuple(origin), tuple(direction.ravel()))


def min_vessel_radius_mm(geometry: Geometry) -> float:
    """Thinnest painted vessel: half the voxel diagonal (a tube at least that thick is connected on the
    grid), kept within 1.3-2.6 mm so that thick slices still show the main branches."""
    half_diagonal = 0.5 * float(np.linalg.norm(geometry.spacing_ijk_mm))
    return float(np.clip(half_diagonal, 1.3, 2.6))


def breathing_shift_ras_mm(seed: int, sequence: str, breathing_mm: float) -> np.ndarray:
    """Rigid shift (RAS mm) of the moving anatomy on ``sequence``: S-I of 0.5-1 x ``breathing_mm``
    with a random sign, A-P up to 0.2 x ``breathing_mm``; zero on the reference (hepatobiliary) phase."""
    if breathing_mm <= 0 or sequence == REFERENCE_SEQUENCE:
        return np.zeros(3)
    rng = np.random.default_rng([seed, 4, PHANTOM_SEQUENCES.index(sequence)])
    superior = breathing_mm * rng.uniform(0.5, 1.0) * rng.choice([-1.0, 1.0])
    anterior = 0.2 * breathing_mm * rng.uniform(-1.0, 1.0)
    return np.array([0.0, anterior, superior])


def _snapper(geometry: Geometry):
    def snap(points_ras: np.ndarray) -> np.ndarray:
        return geometry.kji_to_ras(np.round(geometry.ras_to_kji(points_ras)))
    return snap


def _image(raster: Raster, geometry: Geometry, sequence: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, 5, PHANTOM_SEQUENCES.index(sequence)])
    image = render_partial_volume(raster, sequence)
    if sequence in BLUR_SIGMA_MM:
        image = noise.gaussian_blur(image, geometry, BLUR_SIGMA_MM[sequence])
    if sequence == "ct":
        return noise.gaussian(image, NOISE_SIGMA[sequence], rng)
    image *= noise.bias_field(geometry, BIAS_AMPLITUDE[sequence], rng)
    return noise.rician(image, NOISE_SIGMA[sequence], rng)


def make_phantom(seed: int = 0, *, variant: str = "standard", shape_kji: Sequence[int] | None = None,
                 sequences: Sequence[str] = PHANTOM_SEQUENCES, breathing_mm: float = 0.0, cyst: bool = True,
                 direction_lps=None, progress: ProgressCallback | None = None) -> Phantom:
    """Build the teaching phantom.

    Parameters
    ----------
    seed : anatomy (liver wobble, vessel branches, lesions), breathing and noise all follow from it.
    variant : "standard" (1.5 x 1.5 x 3 mm), "thick" (1.25 x 1.25 x 7.5 mm) or "small" (3 mm isotropic).
    shape_kji : explicit grid size over the same 400 x 320 x 240 mm field of view (overrides the spacing).
    sequences : subset of ``PHANTOM_SEQUENCES``.
    breathing_mm : maximum rigid S-I shift (mm) of the abdominal organs between phases; 0 = aligned.
    cyst : add one simple hepatic cyst.
    direction_lps : 3 x 3 direction matrix (columns: LPS directions of i, j, k) for an oblique grid.
    """
    sequences = (sequences,) if isinstance(sequences, str) else tuple(sequences)
    unknown = [s for s in sequences if s not in PHANTOM_SEQUENCES]
    if unknown or not sequences:
        raise ValueError(f"unknown phantom sequence(s) {unknown}; "
                         f"use some of: {', '.join(PHANTOM_SEQUENCES)}")
    if breathing_mm < 0:
        raise ValueError(f"breathing_mm must be >= 0, got {breathing_mm}")
    geometry = phantom_geometry(variant, shape_kji, direction_lps)
    report(progress, 0.0, "building the phantom anatomy")
    scene = build_scene(int(seed), cyst=cyst, min_vessel_radius_mm=min_vessel_radius_mm(geometry),
                        snap=_snapper(geometry))
    shifts = {s: breathing_shift_ras_mm(int(seed), s, breathing_mm) for s in sequences}
    distinct = sorted({tuple(v) for v in shifts.values()} | {(0.0, 0.0, 0.0)})
    rasters = {}
    for n, shift in enumerate(distinct):
        rasters[shift] = rasterize(scene.layers, geometry, shift_ras_mm=shift,
                                   progress=scaled(progress, 0.05 + 0.5 * n / len(distinct),
                                                   0.05 + 0.5 * (n + 1) / len(distinct)))
    reference = rasters[(0.0, 0.0, 0.0)]
    to_label = material_to_label()
    anatomy = to_label[reference.material]
    lesions = material_to_lesion_id()[reference.material]
    whole = whole_liver_mask(anatomy, reference.recorded["liver_envelope"])
    images = {}
    for n, sequence in enumerate(sequences):
        report(progress, 0.55 + 0.35 * n / len(sequences), f"rendering {sequence}")
        images[sequence] = _image(rasters[tuple(shifts[sequence])], geometry, sequence, int(seed))
    phase_anatomy = {s: to_label[rasters[tuple(shifts[s])].material] for s in sequences if any(shifts[s])}
    report(progress, 0.9, "measuring the ground truth")
    couinaud = couinaud_map(whole, geometry, scene)
    info = legend(seed=int(seed), variant=variant, custom_grid=shape_kji is not None,
                  geometry=geometry, sequences=sequences, scene=scene, anatomy=anatomy, lesions=lesions,
                  whole_liver=whole, couinaud=couinaud, breathing_shifts=shifts)
    report(progress, 1.0, "phantom ready")
    return Phantom(int(seed), variant, geometry, images, anatomy, lesions, couinaud, whole.astype(np.uint8),
                   result_labels(anatomy, whole), info, scene, phase_anatomy)
