"""Small synthetic liver volumes with known lesions and vessels, for tests and evaluation.

Objects are described in *grid millimetres*: ``p = (k, j, i) * spacing_kji_mm``; with the
default identity LPS direction, +i is the patient's left, +j posterior and +k superior, so
the two-tree vessel layout below is anatomically oriented (IVC posterior-medial and vertical,
hepatic veins draining into it superiorly, portal trunk entering inferior-medially).
Partial volume is the fraction of each voxel inside an object: the signed distance is taken at
sub-voxel points (one per ``SUB_VOXEL_MM`` along each axis, so a 7.7 mm slice integrates its
whole thickness as a real slice profile does) with a linear ramp one sub-voxel wide, and
averaged. Masks are the voxel centres inside the analytic shapes (the truth) while images show
blurred edges like a real scanner. Objects inserted into a real image carry noise of that
image's strength and grain (:func:`image_noise`); on the CHAOS T2 livers it is 19-30 (sd) with a
grain of about one pixel, a fifth to a third of the spread of the liver's values, which also
holds its vessels and shading.

Relative intensities (liver = 1) per sequence follow the polarity table in
``livermets.sequences``: lesions dark on hbp / portal_venous, bright on t2 / dwi; cysts
fluid-bright on t2 and dark on dwi; vessels dark on hbp / t2, bright on portal_venous.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from livermets.geometry import Geometry
from livermets.segmentation.filters import distance_inside_mm, robust_center_spread

CONTRAST = {  # sequence: (outside, liver, lesion, cyst, vessel)
    "hbp": (0.25, 1.0, 0.45, 0.30, 0.35),
    "portal_venous": (0.30, 1.0, 0.60, 0.35, 1.8),
    "t2": (0.40, 1.0, 1.8, 3.5, 0.30),
    "dwi": (0.30, 1.0, 2.0, 0.60, 0.30),
    "t1": (0.40, 1.0, 0.55, 0.40, 0.50),
}
SIGNAL = 300.0
SUB_VOXEL_MM = 1.5  # partial volume: sub-voxel points at most this far apart along each axis
MAX_GRAIN_PX = 4.0  # noise grain (Gaussian sigma, pixels) searched up to this


@dataclass
class Tube:
    """A tapered capsule from ``start_mm`` to ``end_mm`` (grid mm, k-j-i), radii in mm."""

    start_mm: tuple[float, float, float]
    end_mm: tuple[float, float, float]
    radius_start_mm: float
    radius_end_mm: float
    tree: str  # "portal" | "hepatic" | "ivc"


@dataclass
class Ball:
    """A lesion (or cyst) of mean radius ``radius_mm``; ``irregularity`` > 0 makes the radius
    vary smoothly with direction by about that fraction (lobulated shape, fixed by ``shape_seed``).
    ``value`` (relative to liver = 1) replaces the :data:`CONTRAST` table's lesion or cyst value
    in every sequence."""

    center_mm: tuple[float, float, float]
    radius_mm: float
    cyst: bool = False
    irregularity: float = 0.0
    shape_seed: int = 0
    value: float | None = None


@dataclass
class SyntheticCase:
    geometry: Geometry
    images: dict[str, np.ndarray]
    liver: np.ndarray
    lesions: np.ndarray            # int32 instances 1..N (solid lesions and cysts)
    balls: list[Ball]              # ball n is label n + 1
    portal: np.ndarray
    hepatic: np.ndarray            # hepatic veins + IVC
    ivc: np.ndarray
    tubes: list[Tube] = field(default_factory=list)


def _partial_volume(points: np.ndarray, spacing_kji_mm: Sequence[float]):
    """A function taking a signed-distance function (grid mm -> mm, negative inside) and returning
    the voxel centres of ``points`` inside the object (its mask, the truth) and the fraction of
    each voxel inside it: the mean over sub-voxel points
    (``SUB_VOXEL_MM`` apart at most) of a linear ramp one sub-voxel wide. Only voxels whose
    centre is within half a voxel diagonal plus that ramp of the surface are sub-sampled; the
    others are wholly inside or outside."""
    counts = [max(1, int(np.ceil(s / SUB_VOXEL_MM))) for s in spacing_kji_mm]
    offsets = np.stack(np.meshgrid(*[((np.arange(n) + 0.5) / n - 0.5) * s for n, s in zip(counts, spacing_kji_mm)],
                                   indexing="ij"), axis=-1).reshape(-1, 3).astype(np.float32)
    ramp_mm = float(np.prod([s / n for s, n in zip(spacing_kji_mm, counts)])) ** (1.0 / 3.0)
    reach_mm = 0.5 * float(np.linalg.norm(spacing_kji_mm)) + ramp_mm

    def fraction(distance_at) -> tuple[np.ndarray, np.ndarray]:
        distance = distance_at(points)
        inside = distance < 0
        out = inside.astype(np.float32)
        mixed = np.abs(distance) < reach_mm
        centres = points[mixed]
        out[mixed] = np.mean([np.clip(0.5 - distance_at(centres + offset) / ramp_mm, 0.0, 1.0) for offset in offsets],
                             axis=0)
        return inside, out

    return fraction


def place_balls(liver: np.ndarray, geometry: Geometry, rng: np.random.Generator,
                sizes: Sequence[tuple[float, bool]], *, subcapsular_every: int = 4,
                avoid: np.ndarray | None = None) -> list[Ball]:
    """Non-overlapping lobulated lesions of the given ``(diameter_mm, cyst)`` sizes (a size is
    skipped if 200 draws find no room), centres inside ``liver`` (a ``[k, j, i]`` mask on
    ``geometry``) and at least their radius plus 4 mm away from ``avoid``. Size number ``n``
    reaches the capsule when ``n % subcapsular_every == 1`` (centre 0.3-0.9 radii deep, so it
    bulges out of the liver); the others lie at least their radius plus 2 mm deep."""
    spacing = np.asarray(geometry.spacing_mm)
    depth = distance_inside_mm(liver, spacing)
    clearance = distance_inside_mm(~avoid, spacing) if avoid is not None and avoid.any() else None
    balls: list[Ball] = []
    for index, (diameter, cyst) in enumerate(sizes):
        radius = diameter / 2
        subcapsular = index % subcapsular_every == 1
        low, high = (0.3 * radius, 0.9 * radius) if subcapsular else (radius + 2.0, np.inf)
        allowed = (depth >= low) & (depth <= high)
        if clearance is not None:
            allowed &= clearance > radius + 4.0
        candidates = np.argwhere(allowed)
        if not len(candidates):
            continue
        for _ in range(200):
            center = candidates[rng.integers(len(candidates))] * spacing
            if all(np.linalg.norm(center - np.asarray(b.center_mm)) > radius + b.radius_mm + 4 for b in balls):
                balls.append(Ball(tuple(float(c) for c in center), radius, cyst=cyst,
                                  irregularity=0.15, shape_seed=int(rng.integers(1 << 30))))
                break
    return balls


def image_noise(image: np.ndarray, mask: np.ndarray, spacing_kji_mm: Sequence[float]) -> tuple[float, float]:
    """(sd, grain) of an image's noise inside ``mask``, modelled as :func:`correlated_noise`
    (reconstruction and resampling correlate neighbouring pixels in the plane of the slices).
    From the robust spreads of pixel differences at distances 1 and 2 along the in-plane axes
    (``mask`` eroded by two pixels, so the organ's edge is left out): such noise gives them
    variances ``2 sd^2 (1 - rho(d))``, ``rho`` the autocorrelation of :func:`_grain_kernel`.
    Fine anatomy adds to the distance-2 differences a little more than to the others, so the
    grain may come out a little coarse."""
    axis = int(np.argmax(spacing_kji_mm))
    plane_axes = [a for a in range(3) if a != axis]
    inner = np.asarray(mask, dtype=bool)
    for _ in range(2):
        for plane_axis in plane_axes:
            inner = inner & np.roll(inner, 1, plane_axis) & np.roll(inner, -1, plane_axis)
    image = np.asarray(image, dtype=np.float64)
    spreads = []
    for distance in (1, 2):
        differences = []
        for plane_axis in plane_axes:
            both = inner & np.roll(inner, distance, plane_axis)
            differences.append((image - np.roll(image, distance, plane_axis))[both])
        spreads.append(robust_center_spread(np.concatenate(differences))[1])
    ratio = spreads[1] / max(spreads[0], 1e-12)
    low, high = 0.0, MAX_GRAIN_PX  # the ratio rises from 1 (white noise) towards 2 (smooth)
    for _ in range(30):
        middle = 0.5 * (low + high)
        rho = _autocorrelation(_grain_kernel(middle))
        low, high = (middle, high) if np.sqrt((1 - rho[2]) / (1 - rho[1])) < ratio else (low, middle)
    grain = 0.5 * (low + high)
    rho = _autocorrelation(_grain_kernel(grain))
    return float(spreads[0] / np.sqrt(2.0 * (1.0 - rho[1]))), float(grain)


def _grain_kernel(grain_px: float) -> np.ndarray:
    """Sampled Gaussian of ``grain_px`` pixels (sum 1); a single tap when it is below 0.1."""
    if grain_px < 0.1:
        return np.ones(1)
    reach = int(np.ceil(4 * grain_px))
    kernel = np.exp(-0.5 * (np.arange(-reach, reach + 1) / grain_px) ** 2)
    return kernel / kernel.sum()


def _autocorrelation(kernel: np.ndarray) -> np.ndarray:
    """Autocorrelation at distances 0, 1, 2 of white noise filtered by ``kernel``."""
    padded = np.concatenate([kernel, np.zeros(2)])
    products = [float(padded[:len(kernel)] @ padded[d:d + len(kernel)]) for d in range(3)]
    return np.array(products) / float(kernel @ kernel)


def correlated_noise(shape: Sequence[int], spacing_kji_mm: Sequence[float], grain_px: float,
                     rng: np.random.Generator) -> np.ndarray:
    """Unit-sd noise ``[k, j, i]`` float32: white noise filtered along both in-plane axes (those
    other than the one of largest spacing) by :func:`_grain_kernel` (periodic at the edges)."""
    noise = rng.normal(0.0, 1.0, size=tuple(shape))
    kernel = _grain_kernel(grain_px)
    reach = len(kernel) // 2
    for plane_axis in (a for a in range(3) if a != int(np.argmax(spacing_kji_mm))):
        noise = sum(weight * np.roll(noise, shift, plane_axis)
                    for shift, weight in zip(range(-reach, reach + 1), kernel))
    return (noise / float(kernel @ kernel)).astype(np.float32)  # each pass scales the sd by |kernel|


def grid_mm(shape: Sequence[int], spacing_kji_mm: Sequence[float]) -> np.ndarray:
    """Grid-mm coordinates ``[k, j, i, 3]`` of every voxel centre."""
    axes = [np.arange(n, dtype=np.float32) * s for n, s in zip(shape, spacing_kji_mm)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)


def ball_distance(points: np.ndarray, ball: Ball) -> np.ndarray:
    """Approximate signed distance (mm, negative inside) to the ball's surface."""
    offset = points - np.asarray(ball.center_mm, dtype=np.float32)
    length = np.linalg.norm(offset, axis=-1)
    radius = np.float32(ball.radius_mm)
    if ball.irregularity > 0:
        rng = np.random.default_rng(ball.shape_seed)
        axes = rng.normal(size=(3, 3))
        axes /= np.linalg.norm(axes, axis=1, keepdims=True)
        weights = rng.uniform(-1, 1, size=(2, 3))
        unit = offset / np.maximum(length, 1e-6)[..., None]
        cosines = unit @ axes.T.astype(np.float32)
        wobble = cosines @ weights[0] + (cosines ** 2 - 1.0 / 3.0) @ weights[1]
        radius = radius * (1.0 + ball.irregularity * wobble / 2.0)
    return length - radius


def tube_distance(points: np.ndarray, tube: Tube) -> np.ndarray:
    a = np.asarray(tube.start_mm, dtype=np.float32)
    b = np.asarray(tube.end_mm, dtype=np.float32)
    axis = b - a
    t = np.clip(((points - a) @ axis) / float(axis @ axis), 0.0, 1.0)
    nearest = a + t[..., None] * axis
    radius = tube.radius_start_mm + t * (tube.radius_end_mm - tube.radius_start_mm)
    return np.linalg.norm(points - nearest, axis=-1) - radius


def two_tree_vessels() -> list[Tube]:
    """Portal tree entering inferior-medially and hepatic veins draining into a vertical IVC,
    laid out for the default 40 x 96 x 96 grid at 3 x 1.5 x 1.5 mm (120 x 144 x 144 mm)."""
    ivc = [Tube((0.0, 112.0, 88.0), (119.0, 112.0, 88.0), 8.0, 8.0, "ivc")]
    hepatic = [Tube((95.0, 110.0, 84.0), (104.0, 55.0, 32.0), 4.5, 2.5, "hepatic"),
               Tube((97.0, 106.0, 88.0), (105.0, 45.0, 72.0), 4.0, 2.5, "hepatic"),
               Tube((92.0, 108.0, 80.0), (82.0, 80.0, 28.0), 3.5, 2.5, "hepatic")]
    portal = [Tube((10.0, 78.0, 118.0), (42.0, 72.0, 84.0), 6.0, 5.5, "portal"),
              Tube((42.0, 72.0, 84.0), (52.0, 62.0, 30.0), 4.5, 3.0, "portal"),
              Tube((42.0, 72.0, 84.0), (58.0, 48.0, 100.0), 4.0, 2.5, "portal"),
              Tube((47.0, 67.0, 57.0), (36.0, 98.0, 40.0), 3.5, 2.5, "portal")]
    return ivc + hepatic + portal


def make_case(*, shape: Sequence[int] = (40, 96, 96), spacing_kji_mm: Sequence[float] = (3.0, 1.5, 1.5),
              balls: Sequence[Ball] = (), tubes: Sequence[Tube] = (), sequences: Sequence[str] = ("t2",),
              liver_center_mm: Sequence[float] | None = None, liver_radii_mm: Sequence[float] = (45, 50, 55),
              noise: float = 0.05, seed: int = 0, direction_lps: Sequence[float] = (1, 0, 0, 0, 1, 0, 0, 0, 1),
              background: dict[str, np.ndarray] | None = None, liver: np.ndarray | None = None,
              geometry: Geometry | None = None) -> SyntheticCase:
    """Render a case. With ``background`` (real images per sequence), ``liver`` (its mask) and
    ``geometry`` (their grid) the objects are blended into the real volume instead of a
    synthetic ellipsoid liver; object intensities are then relative to the real liver's median."""
    shape = tuple(int(n) for n in shape)
    if geometry is None:
        geometry = Geometry(shape, tuple(spacing_kji_mm[::-1]), (0.0, 0.0, 0.0), tuple(direction_lps))
    else:
        shape, spacing_kji_mm = geometry.shape, geometry.spacing_mm
    points = grid_mm(shape, spacing_kji_mm)
    fraction = _partial_volume(points, spacing_kji_mm)

    if liver is None:
        center = np.asarray(liver_center_mm if liver_center_mm is not None
                            else [(n - 1) * s / 2 for n, s in zip(shape, spacing_kji_mm)], dtype=np.float32)
        radii = np.asarray(liver_radii_mm, dtype=np.float32)

        def liver_distance(at: np.ndarray) -> np.ndarray:
            return (np.linalg.norm((at - center) / radii, axis=-1) - 1.0) * float(radii.min())

        liver, liver_fraction = fraction(liver_distance)
    else:
        liver = np.asarray(liver, dtype=bool)
        liver_fraction = liver.astype(np.float32)

    lesions = np.zeros(shape, dtype=np.int32)
    ball_fractions = []
    for index, ball in enumerate(balls, start=1):
        inside, ball_fraction = fraction(lambda at, ball=ball: ball_distance(at, ball))
        lesions[inside & (lesions == 0)] = index
        ball_fractions.append(ball_fraction)
    tree_masks = {"portal": np.zeros(shape, bool), "hepatic": np.zeros(shape, bool), "ivc": np.zeros(shape, bool)}
    vessel_fraction = np.zeros(shape, dtype=np.float32)
    for tube in tubes:
        inside, tube_fraction = fraction(lambda at, tube=tube: tube_distance(at, tube))
        tree_masks[tube.tree] |= inside
        np.maximum(vessel_fraction, tube_fraction, out=vessel_fraction)
    tree_masks["portal"] &= ~(tree_masks["hepatic"] | tree_masks["ivc"])
    hepatic = tree_masks["hepatic"] | tree_masks["ivc"]

    rng = np.random.default_rng(seed)
    images = {}
    for sequence in sequences:
        outside, liver_value, lesion_value, cyst_value, vessel_value = CONTRAST[sequence]
        if background is not None:
            image = background[sequence].astype(np.float32)
            scale = float(np.median(image[liver]))
        else:
            scale = SIGNAL
            image = scale * (outside + (liver_value - outside) * liver_fraction)
        image = image * (1 - vessel_fraction) + scale * vessel_value * vessel_fraction
        for ball, ball_fraction in zip(balls, ball_fractions):
            value = ball.value if ball.value is not None else cyst_value if ball.cyst else lesion_value
            image = image * (1 - ball_fraction) + scale * value * ball_fraction
        if background is not None:
            # real images carry their own noise: inside the inserted objects, noise of the same
            # strength and grain; where an object covers a fraction f of a voxel, the real noise
            # left is (1 - f) of it, so the added noise is sqrt(1 - (1 - f)^2) of the full
            inserted = np.maximum.reduce([vessel_fraction] + ball_fractions)
            noise_sd, grain_px = image_noise(background[sequence], liver, spacing_kji_mm)
            added = correlated_noise(shape, spacing_kji_mm, grain_px, rng) * noise_sd
            image = image + np.sqrt(inserted * (2.0 - inserted)) * added
        elif noise > 0:
            image = image + rng.normal(0.0, noise * scale, size=shape).astype(np.float32)
        images[sequence] = image.astype(np.float32)
    return SyntheticCase(geometry, images, liver, lesions, list(balls), tree_masks["portal"], hepatic,
                         tree_masks["ivc"], list(tubes))


def bulging_lesion_case(sequence: str, *balls: Ball) -> SyntheticCase:
    """A case whose liver mask leaves out a third of a 24 mm lesion bulging through its right (i)
    surface (label 1), with ``balls`` added: a 30 x 128 x 128 grid at 3 x 1.5 x 1.5 mm, the liver
    ellipsoid's right surface at 145.25 mm and its left one at 45.25 mm, so there is room beyond both."""
    lesion = Ball((43.5, 95.25, 143.0), 12.0, irregularity=0.1, shape_seed=2)
    return make_case(balls=[lesion, *balls], sequences=(sequence,), seed=4, shape=(30, 128, 128),
                     liver_radii_mm=(35, 45, 50))
