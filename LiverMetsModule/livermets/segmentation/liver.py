"""Fully automatic whole-liver segmentation from one MRI or CT volume (numpy + SimpleITK).

Steps 1-5 derive every threshold from the image itself; then three methods:

- ``"intensity"``: no trained model at all; steps 6-7 refine the organ of step 5.
- ``"network"``: the liver mode and the body's contrast spread of steps 4-5 turn the image into
  scanner-independent units, and the small 2.5D U-Net of :mod:`~livermets.segmentation.liver_net`
  (numpy inference, shipped weights trained on public MRI, see its model card) gives the liver
  probability; >= 0.5, largest component, holes filled. A network liver far from the winning
  hypothesis's organ puts that mode in doubt: the runner-up hypotheses are tried as the network's
  liver level and the one whose organ the network then finds best is kept. A network liver whose
  median intensity is still far from the level it was given is found once more at that median.
- ``"combined"`` (default): both; where they agree the intensity outline (it follows the image's
  edges) trims the network's liver where the network is unsure, where they disagree the
  network's liver is used and a warning asks for review (:func:`combine`).

Method
------
1. Resample to a working grid of at least 2 mm in-plane (slices kept as they are); MRI, which
   has no absolute unit, is brought to working units (from 0, 99th percentile
   :data:`MRI_LEVEL`), so the scanner's or a converter's scaling changes nothing.
2. Body outline by Otsu's threshold (Otsu 1979, doi:10.1109/TSMC.1979.4310076),
   largest component, holes filled slice by slice.
3. MRI only: N4 bias-field correction on a shrunk copy (Tustison et al. 2010,
   doi:10.1109/TMI.2010.2046908).
4. Liver intensity hypotheses: the peaks and shoulders of the intensity histogram of
   *homogeneous* voxels deep inside the patient's right half (RAS +x is the patient's right),
   each with its left / right half widths (to the half maximum or the next valley) as spreads.
5. For each hypothesis: band = mode +- 2.5 spreads; an opening (6 mm) cuts thin bridges to
   spleen, stomach, heart, kidney and body wall; the component holding most seed voxels is kept
   and regrown inside the band. While that organ is implausible (volume, share on the patient's
   right, share of the body, an outline where the band ends) the separation is made stronger:
   10 mm opening, then a band of 1.5 spreads (a liver darker than muscle shares its wide band
   with the body wall). The most liver-like result wins (volume, share on the patient's right,
   depth below the body surface).
   On MRI its intensity must stand clear of the air outside the body (the lungs of a chest-only
   scan are otherwise a liver-sized region of one intensity on the right).
6. The band is widened to the 5th-95th percentiles of the organ's filled interior (livers with
   two intensity populations), and a threshold level set with curvature regularisation regrows
   the organ from a core opened by 6 mm (the organ itself when that keeps under 30 % of it);
   then slice-to-slice footprint propagation removes sideways leaks. Stronger openings (8, 10 mm)
   gained nothing on the real MRI and cut subcapsular metastases out of the phantom's liver.
7. Whole organ: closing (mm), 2D hole filling along the axial axis and 3D hole filling put
   back vessels and lesions enclosed by liver; light Gaussian smoothing, then the mask is
   resampled to the input grid.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Optional

import numpy as np
import SimpleITK as sitk

from livermets.errors import InputError, NoLiverFoundError
from livermets.geometry import Geometry
from livermets.progress import ProgressCallback, report, scaled
from livermets.segmentation import filters, liver_net, parallel
from livermets.segmentation import morphology as morph

# (band half width in spreads of the mode, opening radius mm), tried in order until the organ
# separated from its neighbours is plausible
SEPARATION_STEPS = ((2.5, 6.0), (2.5, 10.0), (1.5, 6.0), (1.5, 10.0))
SHOULDER_BINS = 4  # a histogram shoulder counts as a mode this many bins (of 160) or more from every peak
BAND_SDS = 2.5  # default half width of the liver intensity band, in spreads of its mode
INTERIOR_MARGIN_MM = 4.0  # the organ's interior, sampled to widen the band, is this far inside
INTERIOR_PERCENTILES = (5.0, 95.0)
LEVEL_SET_START_MM = (6.0,)  # opening radii of the level set's starting core, tried in order
CORE_KEEP_SHARE = 0.3  # ... the first that keeps at least this share of the organ is used
LEVEL_SET_ITERATIONS = 150
# the level set's in-plane pixel (mm) beside the network: on the 2 mm working grid it took 4 s of a
# 40-slice MRI beside a 2 s network, on 3 mm pixels 2 s; held-out CHAOS liver Dice 0.859 -> 0.857
# (median), phantoms 0.954 -> 0.953. Alone (method "intensity") it keeps the working grid: there
# the coarser pixels let it leak more (CHAOS median Dice 0.813 -> 0.805, volume error 19 -> 23 %)
LEVEL_SET_BESIDE_NETWORK_MM = 3.0
LEVEL_SET_CURVATURE = 2.0  # weight of the smoothness term against intensity-driven growth
WORK_SPACING_MM = 2.0  # finest in-plane spacing of the working grid
# N4 works on a copy shrunk to voxels of about this size: its time grows with the voxel count,
# and the field, smooth over tens of mm, barely changes: on four CHAOS cases and the 40-slice hbp
# phantom the corrected image differs from that of 8 mm voxels by 0.1-0.5 % (median; 99th
# percentile 0.4-1.6 %), computed in 0.7-0.9 s instead of 1.7-2.5 s
N4_SPACING_MM = 12.0
MRI_LEVEL = 1000.0  # MRI has no absolute unit: its working copy runs from 0 and has this 99th percentile
MIN_SPACING_MM, MAX_SPACING_MM = 0.1, 20.0
MIN_RIGHT_SHARE = 0.6  # a liver lies mostly right of the body's mid-sagittal plane (0.9-1.0 on CHAOS)
MAX_BODY_SHARE = 0.5  # ... and never fills most of the imaged body
# ... and is bounded by intensity: of the tissue within EDGE_SHELL_MM outside it, at most this
# share lies in its own band (0.01-0.36 for every hypothesis on CHAOS, TotalSegmentator and the
# winners on the phantoms; 0.79-0.89 for pieces the opening carved out of one uniform tissue)
EDGE_SHELL_MM, MAX_SHELL_IN_BAND = 4.0, 0.6
MIN_LIVER_ML, MAX_LIVER_ML = 150.0, 6000.0  # physiological range with margin (adults)
# MRI: the liver's signal stands clear of the air outside the body by at least this share of the
# way from air to the body's 99th percentile, and by this many air noise spreads (0.15 / 8 at the
# least on CHAOS, TotalSegmentator MR and the phantoms; lungs 0.04 / 1.3 at most)
MIN_SIGNAL_SHARE, MIN_SIGNAL_NOISES = 0.08, 4.0
LIVER_METHODS = ("combined", "network", "intensity")
MIN_AGREEMENT = 0.7  # Dice between the two methods' livers below which only the network's is used
# the network's liver has about the intensity it was told the liver has: its median lay within
# 0.5 spreads of that level on every CHAOS case held out; 2.5 spreads away, the level was another
# tissue's (chaos05 with its dome cut off: network's liver Dice 0.47, 0.83 at its own median)
MAX_LEVEL_SHIFT = 1.0
SURE_PROBABILITY = 0.9  # the intensity outline may cut the network's liver only where it is less sure
MAX_HYPOTHESES = 3  # the winning intensity hypothesis and at most two runners-up, for the network's check


@dataclass
class LiverResult:
    """A liver mask on the input grid and how it was found.

    ``mask`` is uint8 0/1 indexed ``[k, j, i]``; ``intensity_mean`` / ``intensity_sd`` are the
    parenchyma model in input units (after bias correction for MRI); ``centre_ras_mm`` is the
    mask's centroid in RAS mm.
    """

    mask: np.ndarray
    volume_ml: float
    centre_ras_mm: tuple[float, float, float]
    intensity_mean: float
    intensity_sd: float
    warnings: list[str] = field(default_factory=list)


def check_image(image: np.ndarray, geometry: Geometry) -> None:
    """Raise :class:`InputError` when ``image`` cannot hold an abdomen we can segment."""
    if image.ndim != 3 or tuple(image.shape) != geometry.shape:
        raise InputError(
            f"expected a 3D image matching its geometry {geometry.shape}, got shape {image.shape}"
        )
    spacing = geometry.spacing_ijk_mm
    if min(spacing) < MIN_SPACING_MM or max(spacing) > MAX_SPACING_MM:
        raise InputError(
            f"voxel spacing {tuple(round(s, 4) for s in spacing)} mm is outside "
            f"{MIN_SPACING_MM}-{MAX_SPACING_MM} mm; check the image header"
        )
    extent_mm = np.asarray(geometry.shape[::-1]) * np.asarray(spacing)
    if np.sum(extent_mm >= 60.0) < 3 or min(geometry.shape) < 3:
        raise InputError(
            f"the image covers only {tuple(round(float(e)) for e in extent_mm)} mm "
            f"({geometry.shape[::-1]} voxels); the liver needs a 3D abdominal volume "
            "of at least 60 mm along every axis and 3 slices"
        )
    if not np.isfinite(image).all():
        raise InputError("the image holds NaN or infinite values; fix or re-export it")
    if float(np.ptp(image)) == 0.0:
        raise InputError("the image is constant (no contrast); nothing to segment")


def working_geometry(geometry: Geometry) -> Geometry:
    """Same orientation and extent, spacing at least :data:`WORK_SPACING_MM` on every axis."""
    spacing = np.asarray(geometry.spacing_ijk_mm)
    new_spacing = np.maximum(spacing, WORK_SPACING_MM)
    size_ijk = np.asarray(geometry.shape[::-1])
    new_size = np.maximum(1, np.round(size_ijk * spacing / new_spacing)).astype(int)
    shift_ijk_mm = (new_spacing - spacing) / 2.0
    origin = np.asarray(geometry.origin_lps_mm) + geometry.direction_matrix_lps @ shift_ijk_mm
    return Geometry(tuple(new_size[::-1]), tuple(new_spacing), tuple(origin), geometry.direction_lps)


def body_mask(image: np.ndarray, geometry: Geometry, *, is_ct: bool) -> np.ndarray:
    """Patient body: above an Otsu (MRI) or -500 HU (CT) threshold, largest part, holes filled."""
    if is_ct:
        threshold = -500.0
    else:
        sample = image[image > np.percentile(image, 1)]
        threshold = _otsu(np.log1p(np.clip(sample - sample.min(), 0, None)))
        threshold = float(np.expm1(threshold) + sample.min())
    mask = image > threshold
    mask = morph.open_mm(mask, geometry, 4.0)
    mask = morph.largest_component(mask, geometry)
    mask = morph.close_mm(mask, geometry, 6.0)
    return morph.fill_holes_2d(mask, geometry.axial_axis())


def _otsu(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of a 1D sample."""
    hist, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(hist).astype(float)
    total = weight[-1]
    mean = np.cumsum(hist * centres)
    between = (mean[-1] * weight / total - mean) ** 2 / np.maximum(weight * (total - weight), 1e-9)
    return float(centres[int(np.argmax(between[:-1]))])


def n4_correct(
    image: np.ndarray, geometry: Geometry, body: np.ndarray, n4_spacing_mm: float = N4_SPACING_MM
) -> np.ndarray:
    """Divide out a smooth multiplicative bias field estimated by N4 on a copy shrunk to about
    ``n4_spacing_mm`` voxels (the field is smooth, so this loses nothing and is fast)."""
    positive = np.clip(image, 0, None).astype(np.float32) + 1.0
    itk = morph.to_sitk(positive, geometry)
    mask = morph.to_sitk(body.astype(np.uint8), geometry)
    factors = [max(1, min(int(n4_spacing_mm // s), n // 8)) for s, n in zip(itk.GetSpacing(), itk.GetSize())]
    small = sitk.Shrink(itk, factors)
    small_mask = sitk.Shrink(mask, factors)
    corrector = sitk.N4BiasFieldCorrectionImageFilter()
    corrector.SetConvergenceThreshold(1e-4)
    corrector.SetMaximumNumberOfIterations([15, 15])
    corrector.Execute(small, small_mask)
    log_field = corrector.GetLogBiasFieldAsImage(itk)
    field_array = np.exp(sitk.GetArrayFromImage(log_field)).astype(np.float32)
    inside = field_array[body] if body.any() else field_array
    field_array /= float(np.median(inside))
    return (positive / field_array).astype(np.float32)


def _smooth(image: np.ndarray, geometry: Geometry, sigma_mm: float) -> np.ndarray:
    itk = morph.to_sitk(image.astype(np.float32), geometry)
    sigmas = [sigma_mm if s < 2 * sigma_mm else 0.0 for s in geometry.spacing_ijk_mm]
    for axis, sigma in enumerate(sigmas):
        if sigma > 0:
            itk = sitk.RecursiveGaussian(itk, sigma, False, sitk.RecursiveGaussianImageFilter.ZeroOrder, axis)
    return sitk.GetArrayFromImage(itk)


def _local_sd(image: np.ndarray, geometry: Geometry, radius_mm: float) -> np.ndarray:
    """Standard deviation in an in-plane box of about ``radius_mm`` (thick axes excluded)."""
    itk = morph.to_sitk(image.astype(np.float32), geometry)
    radius = [int(round(radius_mm / s)) if s <= radius_mm else 0 for s in geometry.spacing_ijk_mm]
    mean = sitk.GetArrayFromImage(sitk.BoxMean(itk, radius))
    square = sitk.GetArrayFromImage(sitk.BoxMean(itk * itk, radius))
    return np.sqrt(np.clip(square - mean * mean, 0, None))


def _histogram_modes(
    values: np.ndarray, low: float, high: float, *, bins: int = 160, max_modes: int = 4
) -> list[tuple[float, float, float]]:
    """Peaks and shoulders of the smoothed histogram of ``values``: ``(centre, sigma_low,
    sigma_high)`` each.

    A shoulder is a tissue too close to a more frequent one to make a maximum of its own: a
    maximum of the histogram's downward curvature more than :data:`SHOULDER_BINS` bins from every
    peak. Half widths are measured down to half the height or to the next valley (or rise),
    whichever comes first, and converted to Gaussian sigmas (HWHM / 1.1774). Modes lower than
    10 % of the highest peak are ignored; the peaks come first, highest first, then the shoulders.
    """
    hist, edges = np.histogram(values, bins=bins, range=(low, high))
    kernel = np.exp(-0.5 * (np.arange(-6, 7) / 2.0) ** 2)
    hist = np.convolve(hist.astype(float), kernel / kernel.sum(), mode="same")
    width = edges[1] - edges[0]
    peaks = [
        b
        for b in range(1, bins - 1)
        if hist[b] >= hist[b - 1] and hist[b] > hist[b + 1] and hist[b] >= 0.1 * hist.max()
    ]
    curvature = np.zeros_like(hist)
    curvature[1:-1] = 2 * hist[1:-1] - hist[:-2] - hist[2:]
    shoulders = [
        b
        for b in range(2, bins - 2)
        if curvature[b] > 0 and curvature[b] >= curvature[b - 1] and curvature[b] > curvature[b + 1]
        and hist[b] >= 0.1 * hist.max() and all(abs(b - p) > SHOULDER_BINS for p in peaks)
    ]
    modes = []
    for peak in (sorted(peaks, key=lambda b: -hist[b]) + sorted(shoulders, key=lambda b: -hist[b]))[:max_modes]:
        half = hist[peak] / 2.0
        left = peak
        while left > 0 and hist[left - 1] > half and hist[left - 1] <= hist[left]:
            left -= 1
        right = peak
        while right < bins - 1 and hist[right + 1] > half and hist[right + 1] <= hist[right]:
            right += 1
        sigma_low = max((peak - left + 0.5) * width / 1.1774, 1.5 * width)
        sigma_high = max((right - peak + 0.5) * width / 1.1774, 1.5 * width)
        modes.append((float((edges[peak] + edges[peak + 1]) / 2), float(sigma_low), float(sigma_high)))
    return modes


@dataclass(frozen=True)
class Hypothesis:
    """One liver intensity hypothesis of step 5: the organ it grew on the working grid, its mode
    and spreads (input units), band half width (spreads) and liver-likeness score."""

    organ: np.ndarray
    mode: float
    spread_below: float
    spread_above: float
    band_width: float
    score: float


@dataclass
class IntensityModel:
    """The liver's intensity on one image, found without a trained model (steps 1-5).

    ``work`` is the image on ``work_geometry`` (for MRI: ``(input - offset) * gain``, see
    :func:`mri_scaling`, then bias-corrected), ``body`` the patient's outline and ``organ`` the
    region the winning intensity hypothesis grew there (all ``[k, j, i]``); ``mode`` is the
    liver's intensity and ``spread_below`` / ``spread_above`` the widths of its histogram peak, in
    ``work``'s units; ``band_width`` is the band half width in those spreads; ``runners_up`` are
    the next most liver-like hypotheses, best first (the network checks them).
    """

    work: np.ndarray
    work_geometry: Geometry
    body: np.ndarray
    smooth: np.ndarray
    organ: np.ndarray
    mode: float
    spread_below: float
    spread_above: float
    band_width: float
    runners_up: tuple[Hypothesis, ...] = ()
    offset: float = 0.0
    gain: float = 1.0

    def alternatives(self) -> list[IntensityModel]:
        """The same image with each runner-up hypothesis in place of the winning one, best first."""
        return [replace(self, organ=h.organ, mode=h.mode, spread_below=h.spread_below, spread_above=h.spread_above,
                        band_width=h.band_width, runners_up=()) for h in self.runners_up]

    def contrast_spread(self) -> float:
        """Median absolute difference between the body's voxels and the liver mode: the unit in
        which the network sees intensities (independent of scanner scaling and polarity)."""
        return max(float(np.median(np.abs(self.smooth[self.body] - self.mode))), 1e-6)

    def background(self) -> float:
        """An intensity of what lies outside the patient (fills space beyond the image)."""
        return float(np.percentile(self.work, 0.5))


def intensity_model(
    image: np.ndarray,
    geometry: Geometry,
    *,
    sequence: Optional[str] = None,
    progress: Optional[ProgressCallback] = None,
) -> IntensityModel:
    """Steps 1-5 of the module's method: working grid, body, bias correction and the most
    liver-like intensity hypothesis.

    Raises :class:`InputError` for unusable images and :class:`NoLiverFoundError` when no
    liver-sized region of liver-like position exists.
    """
    image = np.asarray(image)
    check_image(image, geometry)
    is_ct = sequence == "ct" if sequence is not None else bool(np.percentile(image, 1) < -500)
    report(progress, 0.0, "liver: preparing working grid")
    work_geometry = working_geometry(geometry)
    source = morph.to_sitk(image.astype(np.float32), geometry)
    work = sitk.GetArrayFromImage(
        morph.resample_to(source, work_geometry, default=float(np.percentile(image, 0.5)))
    )
    offset, gain = 0.0, 1.0
    if not is_ct:  # the same numbers whatever the scanner's or converter's scaling
        offset, gain = mri_scaling(work)
        work = (work - offset) * gain
    body = body_mask(work, work_geometry, is_ct=is_ct)
    body_ml = float(body.sum()) * work_geometry.voxel_volume_ml
    if body_ml < MIN_LIVER_ML * 2:
        raise NoLiverFoundError(
            f"no liver found: the body in this image is only {body_ml:.0f} ml; "
            "an abdominal scan covering the liver is expected"
        )
    if not is_ct:
        report(progress, 0.1, "liver: bias-field correction (N4)")
        work = n4_correct(work, work_geometry, body)
    report(progress, 0.25, "liver: intensity model")
    smooth = _smooth(work, work_geometry, 1.5)
    hypotheses = _hypotheses(smooth, work_geometry, body, is_ct=is_ct, progress=scaled(progress, 0.25, 0.5))
    if not hypotheses:
        raise NoLiverFoundError(
            "no liver found: no region of liver-like size "
            f"({MIN_LIVER_ML:.0f}-{MAX_LIVER_ML:.0f} ml) and position (right upper "
            "abdomen) was found; is this an abdominal scan covering the liver?"
        )
    best = hypotheses[0]
    if not is_ct:
        _check_signal_above_air(work, body, best.mode)
    return IntensityModel(work, work_geometry, body, smooth, best.organ, best.mode, best.spread_below,
                          best.spread_above, best.band_width, tuple(hypotheses[1:MAX_HYPOTHESES]), offset, gain)


def mri_scaling(image: np.ndarray) -> tuple[float, float]:
    """``(offset, gain)`` that bring an MRI to the working units: ``(image - offset) * gain`` has
    its minimum at 0 (a magnitude image's background; N4's multiplicative bias acts on the
    signal above it) and its 99th percentile (its maximum if that is no higher) at
    :data:`MRI_LEVEL`. Steps with a fixed offset (the body's Otsu threshold on log(1 + value), N4
    on value + 1) then act alike on images stored 0-1, 0-4095, shifted or as converter floats."""
    offset = float(np.min(image))
    level = float(np.percentile(image, 99)) - offset
    if level <= 0.0:
        level = float(np.max(image)) - offset
    return offset, MRI_LEVEL / level if level > 0.0 else 1.0


def _check_signal_above_air(work: np.ndarray, body: np.ndarray, liver_level: float) -> None:
    """``NoLiverFoundError`` when the intensity taken for the liver's is hardly above the air
    outside the body (on MRI the lungs of a chest-only scan are the largest region of one
    intensity in the right upper part of the body); nothing to check without air in the image."""
    outside = work[~body]
    if outside.size < 1000:
        return
    air, air_noise = filters.robust_center_spread(outside)
    share = (liver_level - air) / max(float(np.percentile(work[body], 99)) - air, 1e-6)
    if share < MIN_SIGNAL_SHARE or liver_level - air < MIN_SIGNAL_NOISES * air_noise:
        raise NoLiverFoundError(
            "no liver found: the region most like a liver is as dark as the air outside the body "
            "(lungs?); is this an abdominal scan covering the liver?"
        )


def network_input(model: IntensityModel, multiple: int = 8) -> tuple[Geometry, np.ndarray]:
    """The canonical grid (plane size a multiple of ``multiple``) and the network's input planes
    ``(K, C, H, W)`` for ``model``'s image."""
    grid = liver_net.canonical_grid(model.work_geometry, model.body, multiple=multiple)
    planes = liver_net.network_planes(
        morph.to_sitk(model.work.astype(np.float32), model.work_geometry),
        grid,
        liver_level=model.mode,
        spread=model.contrast_spread(),
        outside=model.background(),
    )
    return grid, planes


def network_probability(model: IntensityModel, network: Optional[liver_net.LiverNet] = None) -> np.ndarray:
    """The network's liver probability (float32 0..1) on ``model.work_geometry``."""
    network = network or liver_net.shipped_network()
    grid, planes = network_input(model, 2 ** network.downsamplings)
    probability = network.probability(planes)
    return sitk.GetArrayFromImage(morph.resample_to(morph.to_sitk(probability, grid), model.work_geometry))


def _network_on_consistent_level(
    model: IntensityModel, network: Optional[liver_net.LiverNet]
) -> tuple[IntensityModel, np.ndarray, np.ndarray]:
    """The network's probability and liver, with ``model`` or, when the network does not find
    the organ of ``model``'s hypothesis, with the runner-up hypothesis whose organ it finds best.

    The network sees intensities in units of the liver mode the intensity model chose: if that
    mode is another tissue's (a brighter spleen or kidney on T2), the network fails with it. A
    network liver agreeing with a hypothesis's organ (Dice >= ``MIN_AGREEMENT``) confirms it;
    otherwise each runner-up is tried, and the best-agreeing hypothesis wins if it agrees better.
    When the network's liver then has a median intensity more than :data:`MAX_LEVEL_SHIFT`
    spreads from the kept mode, no hypothesis had the liver's level: the network runs once more
    with its own liver's median as the level, and that result is returned with the kept model.
    Returns (the model with the kept hypothesis, probability, network liver)."""
    probability = network_probability(model, network)
    by_network = network_organ(probability, model.work_geometry)
    best = (_dice(by_network, model.organ), model, probability, by_network)
    if best[0] < MIN_AGREEMENT:
        for alternative in model.alternatives():
            probability = network_probability(alternative, network)
            by_network = network_organ(probability, alternative.work_geometry)
            agreement = _dice(by_network, alternative.organ)
            if agreement > best[0]:
                best = (agreement, alternative, probability, by_network)
    _, kept, probability, by_network = best
    if by_network.any():
        level = float(np.median(kept.smooth[by_network]))
        spread = kept.spread_above if level > kept.mode else kept.spread_below
        if abs(level - kept.mode) > MAX_LEVEL_SHIFT * spread:
            probability = network_probability(replace(kept, mode=level), network)
            by_network = network_organ(probability, kept.work_geometry)
    return kept, probability, by_network


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.count_nonzero(a & b) / max(np.count_nonzero(a) + np.count_nonzero(b), 1)


def network_organ(probability: np.ndarray, geometry: Geometry) -> np.ndarray:
    """The network's whole liver from its ``probability`` on ``geometry``: >= 0.5, largest
    component, holes filled (2D along the axial axis, then 3D)."""
    organ = morph.largest_component(probability >= 0.5, geometry)
    return morph.fill_holes_3d(morph.fill_holes_2d(organ, geometry.axial_axis()))


def intensity_organ(model: IntensityModel, level_set_pixel_mm: Optional[float] = None) -> np.ndarray:
    """Steps 6-7 on ``model.work_geometry``: band widened to the organ's interior, level set
    (on in-plane pixels of ``level_set_pixel_mm`` if given, else on the working grid), enclosed
    vessels and lesions put back, sideways leaks removed."""
    geometry, smooth = model.work_geometry, model.smooth
    lower, upper = _widen_band(
        smooth,
        geometry,
        model.organ,
        model.mode - model.band_width * model.spread_below,
        model.mode + model.band_width * model.spread_above,
    )
    liver = _level_set(smooth, geometry, model.organ, lower, upper, level_set_pixel_mm)
    return _propagate_footprint(_whole_organ(liver, geometry), geometry)


def combine(by_intensity: np.ndarray, by_network: np.ndarray, probability: np.ndarray,
            geometry: Geometry) -> tuple[np.ndarray, float]:
    """Fuse the intensity model's liver with the network's (its :func:`network_organ` and its
    ``probability``, all on ``geometry``) and return it with the Dice agreement of the two livers.

    When they agree (Dice >= ``MIN_AGREEMENT``), the intensity outline, which follows the image's
    edges, cuts the network's liver where the network is unsure (probability below
    ``SURE_PROBABILITY``); it adds nothing, since what it adds beyond the network's outline is
    mostly partial volume with the neighbours (on the phantoms those voxels made lesion false
    positives at the capsule). On CHAOS MRI with cross-validation networks that never saw the case
    this gave median Dice 0.856, against 0.847 for the intensity outline kept within 8 mm of the
    network's liver (which let it drop lobes the network was sure of) and 0.850 for the network
    alone. When they disagree, the intensity model has most likely lost part of the organ or
    followed a neighbour of the same intensity (on CHAOS, the three cases it fails worst on agreed
    0.53-0.67 with the network, three it segments well 0.80-0.88), and the network's liver is
    returned.
    """
    agreement = _dice(by_intensity, by_network)
    if agreement < MIN_AGREEMENT:
        return by_network, agreement
    fused = morph.largest_component(by_network & (by_intensity | (probability >= SURE_PROBABILITY)), geometry)
    return _whole_organ(fused, geometry), agreement


def segment_liver(
    image: np.ndarray,
    geometry: Geometry,
    *,
    sequence: Optional[str] = None,
    method: str = "combined",
    network: Optional[liver_net.LiverNet] = None,
    progress: Optional[ProgressCallback] = None,
) -> LiverResult:
    """Segment the whole liver (parenchyma, enclosed vessels and lesions) automatically.

    Parameters
    ----------
    image : (K, J, I) array
        One MRI or CT volume indexed ``[k, j, i]``; CT in Hounsfield units.
    geometry : Geometry
        Grid of ``image`` (any orientation, anisotropic spacing allowed).
    sequence : str, optional
        Canonical sequence name (``livermets.sequences``); only ``"ct"`` changes the method
        (HU body threshold, no bias correction). ``None`` is treated as MRI unless the image
        looks like CT (air near -1000).
    method : {"combined", "network", "intensity"}
        ``"intensity"``: the intensity model's organ refined by a level set (no trained weights);
        ``"network"``: the liver of :mod:`~livermets.segmentation.liver_net`; ``"combined"``
        (default): both, fused when they agree (see :func:`combine`), the network's alone with a
        warning when they do not, the intensity model's with a warning when the network finds no
        liver-sized organ.
    network : LiverNet, optional
        Weights to use instead of the shipped ones (evaluation of held-out folds).

    Returns
    -------
    LiverResult
        ``mask`` on the input grid (uint8 0/1).

    Raises
    ------
    InputError
        The image is not a usable 3D volume (too small, absurd spacing, NaN, constant), or an
        unknown ``method``.
    NoLiverFoundError
        No liver-sized, liver-shaped region was found.
    """
    if method not in LIVER_METHODS:
        raise InputError(f"unknown liver method {method!r}; use one of {', '.join(LIVER_METHODS)}")
    model = intensity_model(image, geometry, sequence=sequence, progress=scaled(progress, 0.0, 0.5))
    work_geometry = model.work_geometry
    warnings: list[str] = []
    # the level set (one thread in ITK, which releases Python's GIL) runs beside the network; there
    # it only trims the network's unsure edge, and coarser pixels do (LEVEL_SET_BESIDE_NETWORK_MM)
    beside = None if method == "intensity" else LEVEL_SET_BESIDE_NETWORK_MM
    with ThreadPoolExecutor(max_workers=1) as pool:
        outline = pool.submit(intensity_organ, model, beside) if method != "network" else None
        if method != "intensity":
            report(progress, 0.5, "liver: network")
            chosen, probability, by_network = _network_on_consistent_level(model, network)
        else:
            chosen = model
        if method != "network":
            report(progress, 0.7, "liver: level-set refinement")
            by_intensity = outline.result()
            if chosen is not model:  # the network chose a runner-up hypothesis: refine that one
                by_intensity = intensity_organ(chosen, beside)
    model = chosen
    if method == "combined" and np.count_nonzero(by_network) * work_geometry.voxel_volume_ml < MIN_LIVER_ML:
        liver = intensity_organ(model)  # alone, on the working grid
        warnings.append(
            "the network found no liver-sized organ; the intensity model's liver is used: please review it"
        )
    elif method == "combined":
        liver, agreement = combine(by_intensity, by_network, probability, work_geometry)
        if agreement < MIN_AGREEMENT:
            warnings.append(
                f"the network and the intensity model disagree on the liver (Dice {agreement:.2f}); "
                "the network's outline is used: please review it"
            )
    else:
        liver = by_network if method == "network" else by_intensity
    report(progress, 0.9, "liver: back to the input grid")
    smoothed = _smooth(liver.astype(np.float32), work_geometry, 2.0)
    back = morph.resample_to(morph.to_sitk(smoothed, work_geometry), geometry)
    mask = morph.largest_component(sitk.GetArrayFromImage(back) >= 0.5, geometry)
    mask = mask.astype(np.uint8)
    volume_ml = float(mask.sum()) * geometry.voxel_volume_ml
    if volume_ml < MIN_LIVER_ML:
        raise NoLiverFoundError(
            f"no liver found: the liver-like region is only {volume_ml:.0f} ml; "
            "is this an abdominal scan covering the liver?"
        )
    warnings += _plausibility(mask, geometry, volume_ml)
    centre = geometry.kji_to_ras(np.argwhere(mask).mean(axis=0))
    report(progress, 1.0, "liver: done")
    return LiverResult(
        mask=mask,
        volume_ml=volume_ml,
        centre_ras_mm=tuple(float(c) for c in centre),
        intensity_mean=float(model.mode / model.gain + model.offset),
        intensity_sd=float((model.spread_below + model.spread_above) / 2 / model.gain),
        warnings=warnings,
    )


@dataclass
class _Priors:
    """Position priors on the working grid, all relative to the body outline."""

    right: np.ndarray  # patient's right of the body's mid-sagittal plane (RAS x > median)
    deep: np.ndarray  # more than 10 mm inside the body outline
    seed_zone: np.ndarray  # deep inside the right half, where the liver model is sampled


def _priors(geometry: Geometry, body: np.ndarray) -> _Priors:
    """Body-relative zones; the seed zone is deeper than 20 mm (or a quarter of the body's
    half thickness) and right of the mid-sagittal plane by 15 % of the half width."""
    x_ras = np.broadcast_to(morph.ras_axis_grids(geometry)[0], body.shape)
    depth = morph.distance_inside_mm(body, geometry)
    body_x = x_ras[body]
    centre_x, right_x = float(np.median(body_x)), float(np.percentile(body_x, 99))
    seed_zone = (
        body
        & (depth > min(20.0, 0.25 * float(depth.max())))
        & (x_ras > centre_x + 0.15 * (right_x - centre_x))
    )
    return _Priors(right=x_ras > centre_x, deep=depth > 10.0, seed_zone=seed_zone)


def _hypotheses(
    smooth: np.ndarray,
    geometry: Geometry,
    body: np.ndarray,
    *,
    is_ct: bool,
    progress: Optional[ProgressCallback],
) -> list[Hypothesis]:
    """Try each intensity mode of homogeneous right-sided tissue; the plausible ones, most
    liver-like first (empty when none is).

    Score = volume (ml) x (fraction on the patient's right)^4 x (fraction deeper than 10 mm)^4,
    zero outside the plausible volume range, when less than :data:`MIN_RIGHT_SHARE` lies right
    or more than :data:`MAX_BODY_SHARE` of the body is taken: the liver is the largest deep
    organ of the right upper abdomen, while bands catching muscle, bowel or fat spread
    symmetrically along the body wall. A hypothesis whose surroundings lie mostly in its own
    band (:data:`MAX_SHELL_IN_BAND`) is no organ either: the opening carved it out of a larger
    tissue (a uniform head-sized object made 160-330 ml "livers" so).
    """
    priors = _priors(geometry, body)
    low, high = np.percentile(smooth[body], [1, 99.5])
    if is_ct:
        tissue = (smooth > -100) & (smooth < 300)
    else:
        tissue = smooth > np.percentile(smooth[body], 10)
    candidates = priors.seed_zone & tissue
    if candidates.sum() < 100:
        raise NoLiverFoundError(
            "no liver found: the right half of the body has too little soft tissue; "
            "is this an abdominal scan covering the liver?"
        )
    local_sd = _local_sd(smooth, geometry, 4.0)
    homogeneous = candidates & (local_sd <= np.percentile(local_sd[candidates], 40))
    sample = smooth[homogeneous]
    modes = _histogram_modes(sample, float(low), float(high))
    noise_sd = float(np.median(local_sd[homogeneous]))
    report(progress, 0.0, f"liver: testing {len(modes)} intensity models")

    # a spread cut short by a neighbouring peak is never narrower than the image noise
    spreads = [(mu, max(sd_low, noise_sd), max(sd_high, noise_sd)) for mu, sd_low, sd_high in modes]
    seeds = [homogeneous & (np.abs(smooth - mu) <= min(sd_low, sd_high)) for mu, sd_low, sd_high in spreads]
    plausible_at: dict[int, int] = {}  # mode -> earliest separation step known to give a plausible organ
    lock = threading.Lock()

    def test(task: tuple[int, int]) -> Optional[Hypothesis]:
        mode, step = task
        with lock:
            if plausible_at.get(mode, step) < step:
                return None  # an earlier step already gave this mode's organ
        mu, sd_low, sd_high = spreads[mode]
        width, radius_mm = SEPARATION_STEPS[step]
        band = (smooth >= mu - width * sd_low) & (smooth <= mu + width * sd_high) & body
        organ = _select_organ(band, seeds[mode], geometry, radius_mm)
        volume_ml = float(organ.sum()) * geometry.voxel_volume_ml
        right_share = float(priors.right[organ].mean()) if organ.any() else 0.0
        body_share = float(organ.sum()) / float(body.sum())
        if not (MIN_LIVER_ML <= volume_ml <= MAX_LIVER_ML and right_share >= MIN_RIGHT_SHARE
                and body_share <= MAX_BODY_SHARE):
            return None
        shell = morph.dilate_mm(organ, geometry, EDGE_SHELL_MM) & ~organ & body
        if shell.any() and float(band[shell].mean()) > MAX_SHELL_IN_BAND:
            return None  # where it ends, the band goes on: the opening's reach, not an edge, bounded it
        with lock:
            plausible_at[mode] = min(plausible_at.get(mode, step), step)
        score = volume_ml * right_share**4 * float(priors.deep[organ].mean())**4
        return Hypothesis(organ, float(mu), float(sd_low), float(sd_high), float(width), float(score))

    # each mode's organ comes from the first of SEPARATION_STEPS (weakest first: the separation
    # is made stronger only while the organ is implausible) that makes it plausible. The steps
    # are independent, so all are queued in that order for every mode, and a step is skipped once
    # an earlier one of its mode has succeeded: a mode that fails its first steps tries the next
    # ones on cores the other modes have freed.
    tasks = [(mode, step) for step in range(len(SEPARATION_STEPS)) for mode in range(len(modes))]
    outcomes = dict(zip(tasks, parallel.thread_map(test, tasks)))
    tested = [next((outcomes[mode, step] for step in range(len(SEPARATION_STEPS)) if outcomes[mode, step] is not None),
                   None)
              for mode in range(len(modes))]
    found = [hypothesis for hypothesis in tested if hypothesis is not None and hypothesis.score > 0]
    return sorted(found, key=lambda hypothesis: -hypothesis.score)  # stable: ties keep the histogram's order


def _select_organ(band: np.ndarray, seed: np.ndarray, geometry: Geometry, radius_mm: float) -> np.ndarray:
    """Find the organ core, then regrow it inside the band by a bounded distance.

    The core is the band opened with a ``radius_mm`` ball (bridges thinner than
    twice that are cut); the component holding most ``seed`` voxels is kept. It is then
    grown back within the band by at most ``radius_mm``, so a leak through a narrow
    bridge can reach no further than that.
    """
    opened = morph.open_mm(band, geometry, radius_mm)
    labels, count = morph.components(opened, geometry)
    if count == 0:
        return np.zeros(band.shape, dtype=bool)
    votes = np.bincount(labels[seed], minlength=count + 1)
    votes[0] = 0
    best = int(np.argmax(votes)) if votes.max() > 0 else 1
    organ = labels == best
    grown = organ
    step_mm = max(min(geometry.spacing_ijk_mm), radius_mm / 3)
    for _ in range(int(round(radius_mm / step_mm))):
        grown = morph.dilate_mm(grown, geometry, step_mm) & band
    return morph.largest_component(grown | organ, geometry)


def _widen_band(
    smooth: np.ndarray, geometry: Geometry, organ: np.ndarray, lower: float, upper: float
) -> tuple[float, float]:
    """Widen ``lower..upper`` to the central range of the organ's filled interior.

    The organ was found inside one histogram mode; a liver with two intensity populations
    (zonal enhancement, fat, iron, residual bias) holds voxels outside that band. Its interior
    (closed, holes filled, eroded away from the outline) samples them.
    """
    interior = morph.fill_holes_2d(morph.close_mm(organ, geometry, 8.0), geometry.axial_axis())
    interior = morph.erode_mm(interior, geometry, INTERIOR_MARGIN_MM)
    if interior.sum() < 100:
        return lower, upper
    low, high = np.percentile(smooth[interior], INTERIOR_PERCENTILES)
    return min(lower, float(low)), max(upper, float(high))


def _level_set(
    smooth: np.ndarray, geometry: Geometry, organ: np.ndarray, lower: float, upper: float,
    plane_pixel_mm: Optional[float] = None,
) -> np.ndarray:
    """Regrow the organ from its core with a threshold level set (Lefohn et al. 2003,
    doi:10.1007/978-3-540-39899-8_69): the front advances inside ``lower..upper`` and its
    curvature term keeps it from squeezing through thin bridges into neighbours. With
    ``plane_pixel_mm`` it runs on axial pixels that size (the slices kept), its front interpolated
    back onto ``geometry``."""
    band = (smooth >= lower) & (smooth <= upper)
    core = organ
    for radius_mm in LEVEL_SET_START_MM:  # the strongest opening that keeps most of the organ
        opened = morph.largest_component(morph.open_mm(organ & band, geometry, radius_mm), geometry)
        if opened.sum() >= CORE_KEEP_SHARE * organ.sum():
            core = opened
            break
    spacing = [float(s) for s in geometry.spacing_mm]
    grid = spacing
    if plane_pixel_mm is not None:
        grid = [s if axis == geometry.axial_axis() else max(s, plane_pixel_mm) for axis, s in enumerate(spacing)]
        core = filters.resample_spacing(core, spacing, grid, linear=False)
        smooth = filters.resample_spacing(smooth, spacing, grid, linear=True, antialias=False)  # smooth already
    start = sitk.SignedMaurerDistanceMap(
        filters.image_from_array(core.astype(np.uint8), grid),
        insideIsPositive=True,
        squaredDistance=False,
        useImageSpacing=True,
    )
    level_set = sitk.ThresholdSegmentationLevelSetImageFilter()
    level_set.SetLowerThreshold(float(lower))
    level_set.SetUpperThreshold(float(upper))
    level_set.SetMaximumRMSError(0.01)
    level_set.SetNumberOfIterations(LEVEL_SET_ITERATIONS)
    level_set.SetCurvatureScaling(LEVEL_SET_CURVATURE)
    level_set.SetPropagationScaling(1.0)
    level_set.ReverseExpansionDirectionOn()
    front = level_set.Execute(start, filters.image_from_array(smooth.astype(np.float32), grid))
    if grid != spacing:  # the front (signed distance) interpolated back onto the working grid
        work = sitk.Image([int(n) for n in geometry.shape[::-1]], sitk.sitkFloat32)
        work.SetSpacing(spacing[::-1])
        front = sitk.Resample(sitk.Cast(front, sitk.sitkFloat32), work, sitk.Transform(), sitk.sitkLinear, -1.0)
    grown = sitk.GetArrayFromImage(front) > 0
    return morph.largest_component(grown, geometry)


def _propagate_footprint(mask: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Remove leaks that appear from one axial slice to the next.

    Starting at the slice with the largest cross-section and walking up and down, a slice
    keeps only what lies within :func:`_footprint_margin_mm` of the previous slice's mask
    (the organ's outline moves little between neighbouring slices; a leak into bowel or
    muscle spreads sideways) and only its 2D parts that touch the previous slice's mask.
    """
    axis = geometry.axial_axis()
    moved = np.moveaxis(mask, axis, 0).copy()
    plane_spacing = [s for n, s in enumerate(geometry.spacing_mm) if n != axis]
    slice_mm = geometry.spacing_mm[axis]
    margin_mm = _footprint_margin_mm(slice_mm)
    radius = [int(round(margin_mm / s)) for s in plane_spacing[::-1]]
    areas = moved.reshape(moved.shape[0], -1).sum(axis=1)
    start = int(np.argmax(areas))
    for direction in (1, -1):
        previous = moved[start]
        index = start + direction
        while 0 <= index < moved.shape[0]:
            current = moved[index]
            if not current.any() or not previous.any():
                moved[index] = False
                previous = moved[index]
                index += direction
                continue
            reach = sitk.GetArrayFromImage(
                sitk.BinaryDilate(
                    sitk.GetImageFromArray(previous.astype(np.uint8)), radius, sitk.sitkBall, 0, 1
                )
            ).astype(bool)
            kept = current & reach
            parts = sitk.GetArrayFromImage(
                sitk.ConnectedComponent(sitk.GetImageFromArray(kept.astype(np.uint8)), True)
            )
            touching = np.unique(parts[kept & previous])
            kept = np.isin(parts, touching[touching > 0])
            moved[index] = kept
            previous = kept
            index += direction
    return np.moveaxis(moved, 0, axis)


def _footprint_margin_mm(slice_mm: float) -> float:
    """How far the outline may move between adjacent slices: a 45 degree surface plus 4 mm."""
    return slice_mm + 4.0


def _whole_organ(liver: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Put back enclosed vessels and lesions: closing, 2D and 3D hole filling."""
    closed = morph.close_mm(liver, geometry, 8.0)
    filled = morph.fill_holes_2d(closed, geometry.axial_axis())
    return morph.fill_holes_3d(filled)


def _plausibility(mask: np.ndarray, geometry: Geometry, volume_ml: float) -> list[str]:
    warnings = []
    if volume_ml > MAX_LIVER_ML:
        warnings.append(
            f"liver volume {volume_ml:.0f} ml is above {MAX_LIVER_ML:.0f} ml: "
            "the mask may include neighbouring organs; please review"
        )
    axial = geometry.axial_axis()
    touching = [np.take(mask, index, axis=axial).sum() for index in (0, mask.shape[axial] - 1)]
    areas = mask.sum(axis=tuple(a for a in range(3) if a != axial))
    if max(touching) > 0.5 * areas.max():
        warnings.append(
            "the liver reaches the first or last slice with a large cross-section: "
            "it is probably cut off by the field of view, so its volume is underestimated"
        )
    return warnings
