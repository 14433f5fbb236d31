"""Which contrast is this image? From the user, from DICOM text, or guessed from intensities.

The order of trust is: an explicit argument (confidence 1), a hint from DICOM tags or the
file name (0.8, see :mod:`livermets.dicom_tags`), then the image itself. From the image, CT
is recognised by Hounsfield units (air near -1000 HU and a fat mode near -100 HU). MRI
contrasts are told apart only once a liver mask is known, from measures relative to the liver
median (no absolute MR intensity is meaningful), :class:`ContrastFacts`:

* the spinal canal against the bone and muscle around it: CSF is bright on T2 only, so this
  decides whether lesions are looked for brighter or darker than the liver;
* the subcutaneous fat (bright where fat is not suppressed: in- / opposed-phase T1);
* the 99th percentile of the body (spleen and kidneys far brighter than liver on DWI, the
  aorta on the arterial phase; the liver among the brightest tissues on HBP);
* thin bright minus thin dark structures in the liver (enhanced veins on the portal-venous
  phase), and the liver's noise (high-b DWI is noisy).

These are heuristics; the confidence says how clear-cut the decision was.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import numpy as np

from livermets import sequences as seq
from livermets.errors import InputError
from livermets.geometry import Geometry
from livermets.segmentation import morphology as morph
from livermets.segmentation.liver import body_mask, mri_scaling

FAT_CEILING_HU = -50.0  # every abdominal CT holds fat (-150 to -50 HU) or air below this

# the spinal canal is looked for in a strip this wide about the body's midline, this deep from
# its back (share of the body's front-back depth: the aorta lies deeper, in front of the spine)
CANAL_STRIP_HALF_WIDTH_MM = 6.0
CANAL_DEPTH_SHARE = (0.08, 0.40)
CANAL_WINDOW_MM = 12  # the canal's front-back extent, compared with as much on either side
FLUID_BRIGHT = 0.45  # canal minus its neighbours, in liver medians, above which CSF is bright (T2)
FLUID_SHARE = 0.6  # ... on at least this share of the liver's slices
FAT_BRIGHT = 1.5  # subcutaneous layer / liver above which fat is not suppressed
GUESS_PIXEL_MM = 2.0  # images with finer pixels are judged on every n-th one in-plane
NOISY_CV = 0.12  # robust liver spread / median above which an image is as noisy as high-b diffusion
SPLEEN_BRIGHT = 2.0  # body p99 / liver above which, on a noisy image, spleen and kidneys stand out (DWI)
THIN_BRIGHT = 0.005  # share of the liver core on thin bright, less thin dark, structures: enhanced veins
AORTA_BRIGHT = 2.5  # body p99 / liver from which the brightest tissue is the arterial phase's aorta
LIVER_BRIGHTEST = 1.5  # body p99 / liver below which the liver is among the brightest tissues (HBP)


@dataclass(frozen=True)
class SequenceGuess:
    """A canonical sequence name with where it came from (``argument``, ``dicom``, ``image``)."""

    sequence: str
    confidence: float
    source: str
    reason: str

    def as_dict(self) -> dict:
        return {
            "sequence": self.sequence,
            "confidence": round(self.confidence, 2),
            "source": self.source,
            "reason": self.reason,
        }


def looks_like_ct(image: np.ndarray) -> tuple[bool, float, str]:
    """``(is_ct, confidence, reason)`` from the Hounsfield-unit signature."""
    sample = np.asarray(image)[::2, ::4, ::4].astype(np.float32).ravel()
    p1, p50 = np.percentile(sample, [1, 50])
    if p1 >= -200:
        return False, 0.9 if p1 >= -5 else 0.6, f"no air below -200 (1st percentile {p1:.0f})"
    air_ok = -1100 <= p1 <= -850
    fat = np.count_nonzero((sample > -150) & (sample < -50)) / max(sample.size, 1)
    soft = np.count_nonzero((sample > -20) & (sample < 120)) / max(sample.size, 1)
    if air_ok and fat > 0.02 and soft > 0.05:
        return (
            True,
            0.95,
            f"air at {p1:.0f} HU, fat {100 * fat:.0f} %, soft tissue {100 * soft:.0f} % of voxels",
        )
    return True, 0.6, f"negative values down to {p1:.0f} (CT-like, but no clear fat / soft-tissue modes)"


def check_hounsfield(image: np.ndarray, name: str) -> None:
    """``InputError`` when an image taken as CT cannot be in Hounsfield units: its 0.1st
    percentile is above :data:`FAT_CEILING_HU`, so it holds neither air nor fat (stored values
    without the scanner's rescale, about HU + 1024, or an MRI named CT); ``name`` says which."""
    sample = np.ravel(image)[::16].astype(np.float32)  # every 16th voxel, no full-size copy
    lowest = float(np.percentile(sample, 0.1)) if sample.size else FAT_CEILING_HU
    if lowest > FAT_CEILING_HU:
        raise InputError(
            f"{name} is taken as CT, but 99.9 % of its values are above {lowest:.0f}: it shows no air or fat, so "
            "they are not Hounsfield units; apply the scanner's rescale (DICOM Rescale Slope and Intercept, "
            "often value - 1024) or read the series with a DICOM reader that does, or name its real contrast"
        )


@dataclass(frozen=True)
class ContrastFacts:
    """Relative intensity measures of one MRI, all in units of its liver median (no unit)."""

    bright_ratio: float  # 99th percentile of body and liver
    thin_balance: float  # share of the liver core on thin bright minus thin dark structures (vessels)
    noise_cv: float  # robust spread of the liver core / its median
    in_plane_mm: float
    fluid: Optional[float] = None  # spinal canal minus its neighbours (CSF: > 0 on T2, < 0 on T1)
    fluid_share: Optional[float] = None  # share of the liver's slices where the canal is the brighter
    fat_ratio: Optional[float] = None  # subcutaneous layer 2-10 mm inside the body outline

    def describe(self) -> str:
        words = [f"body p99 / liver {self.bright_ratio:.2f}",
                 f"thin bright - dark liver structures {100 * self.thin_balance:+.1f} %",
                 f"in-plane {self.in_plane_mm:.1f} mm", f"liver CV {self.noise_cv:.2f}"]
        if self.fluid is not None:
            words.append(f"spinal canal {self.fluid:+.2f} liver medians from its neighbours "
                         f"(brighter on {100 * self.fluid_share:.0f} % of slices)")
        if self.fat_ratio is not None:
            words.append(f"subcutaneous layer / liver {self.fat_ratio:.2f}")
        return ", ".join(words)


def contrast_facts(image: np.ndarray, geometry: Geometry, liver: np.ndarray, body: np.ndarray) -> ContrastFacts:
    """The measures :func:`mri_contrast` decides on, for ``image`` with its ``liver`` and ``body``
    masks (all ``[k, j, i]`` on ``geometry``)."""
    core = morph.erode_mm(liver, geometry, 3.0)  # away from partial volume with the neighbours
    core = core if np.count_nonzero(core) >= 100 else liver
    values = image[core]
    median = max(float(np.median(values)), 1e-6)
    spread = 1.4826 * float(np.median(np.abs(values - median)))
    thin = []
    for structure in (core & (image > median + 3 * spread), core & (image < median - 3 * spread)):
        thin.append(np.count_nonzero(structure & ~morph.open_mm(structure, geometry, 3.0)) / values.size)
    fluid = _spinal_canal(image, geometry, liver, body, median)
    depth_mm = morph.distance_inside_mm(body, geometry)
    shell = (depth_mm > 2.0) & (depth_mm <= 10.0)
    return ContrastFacts(
        bright_ratio=float(np.percentile(image[body | liver], 99)) / median,
        thin_balance=thin[0] - thin[1],
        noise_cv=spread / median,
        in_plane_mm=float(np.mean(sorted(geometry.spacing_ijk_mm)[:2])),
        fluid=None if fluid is None else fluid[0],
        fluid_share=None if fluid is None else fluid[1],
        fat_ratio=float(np.median(image[shell])) / median if shell.any() else None,
    )


def _spinal_canal(
    image: np.ndarray, geometry: Geometry, liver: np.ndarray, body: np.ndarray, liver_median: float
) -> Optional[tuple[float, float]]:
    """(median contrast, share of slices where it is positive) of the spinal canal against the
    tissue just behind and in front of it, in liver medians, over the liver's axial slices.

    On each slice the intensity profile of a thin strip along the body's midline (RAS x of the
    body's median) is followed from the body's back: the canal is the 12 mm window, within
    :data:`CANAL_DEPTH_SHARE` of the body's depth, that differs most from the 12 mm on either
    side (the spine's bone, muscle, fat). CSF is bright on T2 and dark on T1 and diffusion, so
    the sign tells the two apart. ``None`` when the slices are not axial or too few are usable."""
    step_k = geometry.axis_vectors_ras()[0]
    if geometry.axial_axis() != 0 or abs(step_k[2]) < 0.9 * np.linalg.norm(step_k):
        return None
    matrix = geometry.ijk_to_ras()
    nj, ni = image.shape[1:]
    j, i = np.mgrid[0:nj, 0:ni].astype(np.float32)
    x = matrix[0, 0] * i + matrix[0, 1] * j
    y = matrix[1, 0] * i + matrix[1, 1] * j  # plus a constant per slice, irrelevant to depths
    w = CANAL_WINDOW_MM
    contrasts = []
    for k in np.flatnonzero(liver.any(axis=(1, 2))):
        inside = body[k]
        if np.count_nonzero(inside) < 100:
            continue
        back, front = float(y[inside].min()), float(y[inside].max())
        depth_mm = front - back
        strip = inside & (np.abs(x - np.median(x[inside])) <= CANAL_STRIP_HALF_WIDTH_MM)
        bins = np.floor(y[strip] - back).astype(int)  # 1 mm bins from the back
        keep = bins < int(0.5 * depth_mm)
        if depth_mm < 5 * w or np.count_nonzero(keep) < 10:
            continue
        sums = np.bincount(bins[keep], image[k][strip][keep], minlength=int(0.5 * depth_mm))
        counts = np.bincount(bins[keep], minlength=sums.size)
        filled = np.flatnonzero(counts)
        profile = np.interp(np.arange(sums.size), filled, sums[filled] / counts[filled]) / liver_median
        mean = np.convolve(profile, np.ones(w) / w, mode="valid")  # mean[s]: of the 1 mm bins [s, s + w)
        starts = np.arange(w, mean.size - w)
        centres = starts + w / 2
        starts = starts[(centres >= CANAL_DEPTH_SHARE[0] * depth_mm) & (centres <= CANAL_DEPTH_SHARE[1] * depth_mm)]
        if starts.size == 0:
            continue
        contrast = mean[starts] - 0.5 * (mean[starts - w] + mean[starts + w])
        contrasts.append(float(contrast[np.argmax(np.abs(contrast))]))
    if len(contrasts) < 3:
        return None
    return float(np.median(contrasts)), float(np.mean(np.asarray(contrasts) > 0))


def mri_contrast(
    image: np.ndarray, geometry: Geometry, liver: np.ndarray, body: Optional[np.ndarray] = None
) -> SequenceGuess:
    """Guess the MRI contrast from the intensities of the spinal canal, the subcutaneous fat,
    the body's brightest tissues and the intrahepatic vessels relative to the liver.

    In order: CSF brighter than its surroundings is T2; fat not suppressed, with dark CSF, an
    unenhanced T1 (in- / opposed-phase); a noisy liver with brighter spleen and kidneys, high-b
    diffusion; thin bright structures in the liver (enhanced veins), the portal-venous phase (the
    arterial one when the brightest tissue is :data:`AORTA_BRIGHT` liver medians or more); the
    liver among the brightest tissues, the hepatobiliary phase; much brighter tissue (the aorta)
    with veins not bright, the arterial phase; otherwise T1. ``image``, ``liver`` and ``body``
    (optional: else found here) are ``[k, j, i]`` arrays on ``geometry``.
    """
    liver = np.asarray(liver, dtype=bool)
    if np.count_nonzero(liver) < 100:
        return SequenceGuess(seq.T1, 0.2, "image", "liver too small to judge the contrast; assumed T1")
    # every measure holds on pixels of about GUESS_PIXEL_MM: take every n-th one in-plane (voxels
    # kept whole, so the noise is the image's own)
    step = max(1, int(GUESS_PIXEL_MM // min(geometry.spacing_ijk_mm[:2])))
    pixels = (slice(None), slice(None, None, step), slice(None, None, step))
    image, liver = np.asarray(np.asarray(image)[pixels], dtype=np.float32), liver[pixels]
    offset, gain = mri_scaling(image)  # ratios to the liver hold above the background, whatever the storage
    image = (image - offset) * gain
    spacing = geometry.spacing_ijk_mm
    geometry = replace(geometry, shape=image.shape, spacing_ijk_mm=(spacing[0] * step, spacing[1] * step, spacing[2]))
    body = body_mask(image, geometry, is_ct=False) if body is None else np.asarray(body, dtype=bool)[pixels]
    facts = contrast_facts(image, geometry, liver, body)
    why = facts.describe()
    coarse_noisy = facts.in_plane_mm >= 2.5 and facts.noise_cv > NOISY_CV
    if facts.fluid is not None and facts.fluid >= FLUID_BRIGHT and facts.fluid_share >= FLUID_SHARE:
        if coarse_noisy:
            return SequenceGuess(seq.DWI, 0.5, "image", "coarse and noisy, CSF bright (low b): " + why)
        confidence = min(0.9, 0.5 + 0.4 * (facts.fluid - FLUID_BRIGHT))
        return SequenceGuess(seq.T2, confidence, "image", "CSF in the spinal canal bright: " + why)
    if facts.fat_ratio is not None and facts.fat_ratio >= FAT_BRIGHT:
        return SequenceGuess(seq.T1, 0.5, "image", "fat not suppressed, CSF not bright: " + why)
    if facts.noise_cv > NOISY_CV and facts.bright_ratio > SPLEEN_BRIGHT:
        return SequenceGuess(seq.DWI, 0.5, "image", "noisy, spleen and kidneys bright, CSF not: " + why)
    if facts.thin_balance > THIN_BRIGHT:
        arterial = facts.bright_ratio >= AORTA_BRIGHT
        return SequenceGuess(seq.ARTERIAL if arterial else seq.PORTAL_VENOUS, 0.35 if arterial else 0.5,
                             "image", "bright intrahepatic vessels: " + why)
    if facts.bright_ratio < LIVER_BRIGHTEST:
        return SequenceGuess(seq.HBP, 0.5, "image", "liver among the brightest tissues: " + why)
    if facts.bright_ratio >= AORTA_BRIGHT:
        return SequenceGuess(seq.ARTERIAL, 0.35, "image", "much brighter tissue, veins not bright: " + why)
    return SequenceGuess(seq.T1, 0.35, "image", "CSF not bright, moderate contrast: " + why)


def resolve(
    image: np.ndarray, *, given: Optional[str] = None, hint: Optional[str] = None, hint_reason: str = ""
) -> SequenceGuess:
    """First decision before any segmentation: argument, then file hint, then CT vs MRI.

    ``hint`` is a canonical name guessed from DICOM tags or the file name by
    :func:`livermets.dicom_tags.sequence_hint_from_tags` (as in ``ImageInfo.sequence_hint``).

    An MRI image without argument or hint comes back as ``t1`` with low confidence and
    source ``image``; :func:`mri_contrast` refines it once a liver mask exists.
    """
    if given:
        return SequenceGuess(seq.check(given), 1.0, "argument", "given by the user")
    if hint:
        return SequenceGuess(seq.check(hint), 0.8, "dicom", hint_reason or "from the image's tags or name")
    is_ct, confidence, reason = looks_like_ct(image)
    if is_ct:
        return SequenceGuess(seq.CT, confidence, "image", reason)
    return SequenceGuess(seq.T1, 0.2, "image", "MRI (" + reason + "); contrast not yet judged")
