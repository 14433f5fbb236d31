"""Which contrast is this image? From the user, from DICOM text, or guessed from intensities.

The order of trust is: an explicit argument (confidence 1), a hint from DICOM tags or the
file name (0.8, see :mod:`livermets.dicom_tags`), then the image itself. From the image, CT
is recognised by Hounsfield units (air near -1000 HU and a fat mode near -100 HU). MRI
contrasts are told apart only once a liver mask is known, from three relative measures (no
absolute MR intensity is meaningful):

* ``bright_ratio``: 99th percentile of the body / liver median (fluid, spleen and kidneys are
  far brighter than liver on T2 and DWI; the liver is among the brightest tissues on HBP);
* ``vessel_balance``: share of clearly bright minus clearly dark voxels inside the liver
  (enhanced vessels on portal-venous / arterial phases, flow voids or dark vessels otherwise);
* in-plane spacing and noise (DWI is coarse and noisy).

These are heuristics; the confidence says how clear-cut the decision was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from livermets import sequences as seq
from livermets.errors import InputError
from livermets.geometry import Geometry

FAT_CEILING_HU = -50.0  # every abdominal CT holds fat (-150 to -50 HU) or air below this


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


def mri_contrast(
    image: np.ndarray, geometry: Geometry, liver: np.ndarray, body: Optional[np.ndarray] = None
) -> SequenceGuess:
    """Guess the MRI contrast from relative intensities of liver, body and intrahepatic vessels."""
    image = np.asarray(image, dtype=np.float32)
    liver = np.asarray(liver, dtype=bool)
    if body is None:
        body = image > np.percentile(image, 50)
    liver_values = image[liver]
    if liver_values.size < 100:
        return SequenceGuess(seq.T1, 0.2, "image", "liver too small to judge the contrast; assumed T1")
    median = float(np.median(liver_values))
    mad = 1.4826 * float(np.median(np.abs(liver_values - median))) or 1.0
    bright_ratio = float(np.percentile(image[body | liver], 99)) / max(median, 1e-6)
    bright = np.count_nonzero(liver_values > median + 3 * mad) / liver_values.size
    dark = np.count_nonzero(liver_values < median - 3 * mad) / liver_values.size
    vessel_balance = bright - dark
    in_plane_mm = float(np.mean(sorted(geometry.spacing_ijk_mm)[:2]))
    noise = mad / max(median, 1e-6)
    facts = (
        f"body p99 / liver {bright_ratio:.2f}, bright-dark liver voxels {100 * vessel_balance:+.1f} %, "
        f"in-plane {in_plane_mm:.1f} mm, liver CV {noise:.2f}"
    )
    if in_plane_mm >= 2.5 and noise > 0.12 and bright_ratio > 2.0:
        return SequenceGuess(seq.DWI, 0.5, "image", "coarse, noisy, fluid bright: " + facts)
    if vessel_balance > 0.01:
        name = seq.ARTERIAL if bright_ratio > 3.0 else seq.PORTAL_VENOUS
        return SequenceGuess(
            name, 0.5 if name == seq.PORTAL_VENOUS else 0.35, "image", "bright intrahepatic vessels: " + facts
        )
    if bright_ratio >= 1.9:
        confidence = min(0.9, 0.4 + 0.25 * (bright_ratio - 1.9))
        return SequenceGuess(
            seq.T2, confidence, "image", "fluid and spleen much brighter than liver: " + facts
        )
    if bright_ratio < 1.5:
        return SequenceGuess(
            seq.HBP, 0.5, "image", "liver among the brightest tissues, dark vessels: " + facts
        )
    return SequenceGuess(seq.T1, 0.35, "image", "dark vessels, moderate contrast: " + facts)


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
