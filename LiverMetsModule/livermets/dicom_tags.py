"""DICOM tags LiverMets reads, and the sequence hint guessed from them.

Tags are named by DICOM keyword (``"SeriesDescription"``); SimpleITK / GDCM keys such as
``"0008|103e"`` are translated with :data:`TAG_KEYWORDS`. The hint only suggests a canonical
sequence (:mod:`livermets.sequences`); the user can always override it.
"""

from __future__ import annotations

import re
from typing import Mapping, Optional

from livermets.sequences import ARTERIAL, CT, DWI, HBP, PORTAL_VENOUS, T1, T2

# GDCM key ("gggg|eeee", lower case) -> DICOM keyword. Private b-value tags: Siemens (0019,100C), GE (0043,1039).
TAG_KEYWORDS: dict[str, str] = {
    "0008|0008": "ImageType",
    "0008|0016": "SOPClassUID",
    "0008|0031": "SeriesTime",
    "0008|0032": "AcquisitionTime",
    "0008|0060": "Modality",
    "0008|103e": "SeriesDescription",
    "0018|0010": "ContrastBolusAgent",
    "0018|0020": "ScanningSequence",
    "0018|0024": "SequenceName",
    "0018|0080": "RepetitionTime",
    "0018|0081": "EchoTime",
    "0018|1030": "ProtocolName",
    "0018|1042": "ContrastBolusStartTime",
    "0018|9087": "DiffusionBValue",
    "0019|100c": "SiemensBValue",
    "0043|1039": "GEBValue",
    "0020|000d": "StudyInstanceUID",
    "0020|000e": "SeriesInstanceUID",
    "0020|0011": "SeriesNumber",
    "0020|0052": "FrameOfReferenceUID",
}

_GADOXETATE = re.compile(r"primovist|eovist|gadoxet|eob")
_B_IN_TEXT = re.compile(r"(?<![a-z])b ?=? ?(\d{2,4})(?![0-9])")
_B_IN_SEQUENCE_NAME = re.compile(r"ep_b(\d+)")

# (canonical name, pattern on the lower-cased description + protocol name); first match wins.
_T2_WORDS = [r"(?<![a-z0-9])t2(?![0-9*])", r"haste", r"ssfse", r"single.?shot"]
_HBP_WORDS = [r"(?<![a-z])hbp(?![a-z])", r"hepatobil", r"hepatocyt", r"(?<![0-9])(15|20) ?min"]
_ARTERIAL_WORDS = [r"arterial", r"(?<![a-z])art(?![a-z])", r"(?<![a-z])hap(?![a-z])"]
_PORTAL_WORDS = [r"portal", r"venous", r"(?<![a-z])pvp?(?![a-z])", r"(?<![0-9])[67]0 ?s(?![a-z])"]
_T1_MARKERS = r"(?<![a-z0-9])t1|vibe|lava|thrive|flash|gre(?![a-z])"
_PRECONTRAST = r"(?<![a-z])(pre|native|nativ|unenhanced|precontrast|plain)(?![a-z])"
_DELAYED = r"delay|equilibrium"
_BALANCED_SSFP = r"fiesta|trufi|true ?fisp|b-?ffe|balanced"  # T2/T1 mixed contrast: neither rule applies

# Weighting from the acquisition when no word names it (ms): spin-echo T2 of the liver uses
# TE 70-120 and TR of seconds; the T1 gradient echoes (VIBE, LAVA, THRIVE, FLASH) TE of 1-5 and TR below 300
T2_MIN_ECHO_MS = 60.0
T2_MIN_REPETITION_MS = 1000.0
T1_MAX_ECHO_MS = 10.0
T1_MAX_REPETITION_MS = 300.0


def keyword_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """Tags keyed by DICOM keyword, values stripped; accepts keyword or ``gggg|eeee`` keys."""
    result: dict[str, str] = {}
    for key, value in tags.items():
        name = TAG_KEYWORDS.get(key.lower(), key)
        result[name] = str(value).strip().strip("\x00").strip()
    return result


def _first_number(text: str) -> Optional[float]:
    match = re.search(r"[-+]?\d+(\.\d+)?", text or "")
    return float(match.group()) if match else None


def _b_value(tags: dict[str, str]) -> tuple[Optional[float], str]:
    """Diffusion b-value (s/mm2) and where it came from, from the standard or a private tag."""
    for keyword, label in (("DiffusionBValue", "(0018,9087)"), ("SiemensBValue", "Siemens (0019,100C)"),
                           ("GEBValue", "GE (0043,1039)")):
        value = _first_number(tags.get(keyword, ""))
        if value is not None:
            return value % 1e9, label  # GE adds 1e9 to flag the b-value field
    match = _B_IN_SEQUENCE_NAME.search(tags.get("SequenceName", "").lower())
    if match:
        return float(match.group(1)), f"sequence name '{tags['SequenceName']}'"
    return None, ""


def _seconds_of_day(text: str) -> Optional[float]:
    match = re.fullmatch(r"(\d{2})(\d{2})(\d{2}(?:\.\d+)?)", (text or "").replace(":", ""))
    if not match:
        return None
    return int(match.group(1)) * 3600 + int(match.group(2)) * 60 + float(match.group(3))


def _first_match(patterns: list[str], text: str) -> Optional[str]:
    for pattern in patterns:
        match = re.search(pattern, text)
        if match:
            return match.group()
    return None


def sequence_hint_from_tags(tags: Mapping[str, str], *,
                            text_source: str = "series description") -> tuple[Optional[str], str]:
    """Guess the canonical sequence of a series and say why.

    Looks, in this order, at the modality (CT -> ``"ct"``; without a modality, the word "ct"), an ADC map (never DWI: ``None``),
    the diffusion b-value (0018,9087 or private) or DWI words, then words in SeriesDescription /
    ProtocolName (T2, hepatobiliary, arterial, portal venous), the delay between
    ContrastBolusStartTime (0018,1042) and AcquisitionTime, and unenhanced T1 words.
    ``"delayed"`` counts as hepatobiliary only with a gadoxetate agent (Primovist / Eovist) in
    ContrastBolusAgent (0018,0010) or the description.

    Parameters
    ----------
    tags : mapping
        DICOM keyword (or ``gggg|eeee``) -> value as text.
    text_source : str
        How to name the description in the reason, e.g. ``"file name"``.

    Returns
    -------
    (name or None, reason) : the canonical name from :mod:`livermets.sequences`, and the tag or word used.
    """
    tags = keyword_tags(tags)
    modality = tags.get("Modality", "").upper()
    if modality == "CT":
        return CT, "modality CT (0008,0060)"
    if modality and modality != "MR":
        return None, f"modality {modality} is neither MR nor CT"
    description = tags.get("SeriesDescription", "")
    text = " ".join(filter(None, [description, tags.get("ProtocolName", "")])).lower()
    quoted = f"{text_source} '{description}'" if description else text_source
    if not modality and re.search(r"(?<![a-z])ct(?![a-z])", text):
        return CT, f"{quoted} contains 'ct'"
    agent = tags.get("ContrastBolusAgent", "")
    gadoxetate = bool(_GADOXETATE.search(agent.lower()) or _GADOXETATE.search(text))
    image_type = tags.get("ImageType", "").upper().split("\\")

    if "ADC" in image_type or re.search(r"(?<![a-z])adc(?![a-z])|apparent diff", text):
        return None, f"{quoted} or image type marks an ADC map, which is not a DWI image; use the high-b DWI series"
    b_value, b_source = _b_value(tags)
    if b_value is not None and b_value > 0:
        return DWI, f"diffusion b-value {b_value:g} s/mm2 in {b_source}"
    word = _first_match([r"dwi", r"diffusion", r"ep2d_diff", _B_IN_TEXT.pattern], text)
    if word:
        return DWI, f"{quoted} contains '{word}'"
    if re.search(r"t2 ?\*|t2star", text):
        return None, f"{quoted} is a T2* (susceptibility) series, not a T2 liver contrast"
    word = _first_match(_T2_WORDS, text)
    if word is None and "spair" in text and not re.search(_T1_MARKERS, text):
        word = "spair"
    if word:
        return T2, f"{quoted} contains '{word}'"
    word = _first_match(_HBP_WORDS, text)
    if word:
        return HBP, f"{quoted} contains '{word}'"
    word = _first_match(_ARTERIAL_WORDS, text)
    if word:
        return ARTERIAL, f"{quoted} contains '{word}'"
    word = _first_match(_PORTAL_WORDS, text)
    if word:
        return PORTAL_VENOUS, f"{quoted} contains '{word}'"
    delayed = re.search(_DELAYED, text)
    if delayed and gadoxetate:
        return HBP, f"{quoted} contains '{delayed.group()}' with a gadoxetate agent ('{agent or description}')"
    if delayed:
        return None, (f"{quoted} says '{delayed.group()}' but the contrast agent is not gadoxetate "
                      "(Primovist/Eovist), so it is not a hepatobiliary phase")
    start = _seconds_of_day(tags.get("ContrastBolusStartTime", ""))
    acquired = _seconds_of_day(tags.get("AcquisitionTime", "") or tags.get("SeriesTime", ""))
    if start is not None and acquired is not None:
        delay_s = (acquired - start) % 86400
        timing = f"acquired {delay_s:.0f} s after the contrast start time (0018,1042)"
        if 15 <= delay_s <= 45:
            return ARTERIAL, timing
        if 50 <= delay_s <= 120:
            return PORTAL_VENOUS, timing
        if delay_s >= 600 and gadoxetate:
            return HBP, timing + " with a gadoxetate agent"
    pre = re.search(_PRECONTRAST, text)
    if pre and (re.search(_T1_MARKERS, text) or not agent):
        return T1, f"{quoted} contains '{pre.group()}'"
    if re.search(_T1_MARKERS, text):
        if agent:
            return None, f"contrast-enhanced T1 ('{agent}') but {quoted} does not name the phase"
        return T1, f"{quoted} names a T1 sequence and no contrast agent is recorded"
    return _hint_from_timing(tags, text, agent, quoted)


def _hint_from_timing(tags: dict[str, str], text: str, agent: str, quoted: str) -> tuple[Optional[str], str]:
    """T2 or T1 from the echo and repetition times (ms) when no word names the sequence."""
    echo_ms = _first_number(tags.get("EchoTime", ""))
    repetition_ms = _first_number(tags.get("RepetitionTime", ""))
    if echo_ms is None or repetition_ms is None:
        return None, f"no sequence or phase keyword in {quoted}"
    timing = f"echo time {echo_ms:g} ms, repetition time {repetition_ms:g} ms (0018,0081 / 0018,0080)"
    balanced = re.search(_BALANCED_SSFP, text) or "tfi" in tags.get("SequenceName", "").lower()
    if echo_ms >= T2_MIN_ECHO_MS and repetition_ms >= T2_MIN_REPETITION_MS:
        return T2, f"{timing}: T2-weighted"
    if balanced:
        return None, f"{quoted} is a balanced steady-state sequence (T2/T1 contrast); name its contrast"
    if echo_ms <= T1_MAX_ECHO_MS and repetition_ms <= T1_MAX_REPETITION_MS:
        if agent:
            return None, f"{timing}: a T1 gradient echo after contrast ('{agent}'), but no phase is named"
        return T1, f"{timing}: a T1 gradient echo, and no contrast agent is recorded"
    return None, f"no sequence or phase keyword in {quoted}, and {timing} do not settle the weighting"
