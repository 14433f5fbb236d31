"""What the HTML and PDF reports show, as plain text: number formats, the lesion table, case lines.

Both renderers take their rows from here, so the two documents always show the same values.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from livermets.labels import COUINAUD_NAMES
from livermets.report.deidentify import DEIDENTIFIED_LABEL

MISSING = "\u2013"  # en dash


def format_number(value: Any, digits: int) -> str:
    """``value`` with ``digits`` decimals; integers as they are; ``None`` as a dash."""
    if value is None or value == "":
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def format_value(value: Any) -> str:
    """Any results value as short text: numbers 2 decimals, points ``(x, y, z)``, dicts ``k: v``."""
    if isinstance(value, dict):
        return ", ".join(f"{key}: {format_value(item)}" for key, item in value.items()) or MISSING
    if isinstance(value, (list, tuple)):
        if len(value) == 3 and all(isinstance(item, float) for item in value):
            return "(" + ", ".join(format_number(item, 1) for item in value) + ")"  # a point, mm
        return ", ".join(format_value(item) for item in value) or MISSING
    return format_number(value, 2)


def couinaud_text(fractions: Optional[dict]) -> str:
    """``{"8": 0.75, "7": 0.25}`` -> ``"VIII 75%, VII 25%"`` (largest share first)."""
    if not fractions:
        return MISSING
    parts = []
    for segment, fraction in sorted(fractions.items(), key=lambda item: -float(item[1])):
        name = COUINAUD_NAMES.get(int(segment), f"Segment {segment}").replace("Segment ", "")
        parts.append(f"{name} {100 * float(fraction):.0f}%")
    return ", ".join(parts)


def _nearest(key: str) -> Callable[[dict], Any]:
    return lambda lesion: (lesion.get("nearest") or {}).get(key)


def _plan(key: str) -> Callable[[dict], Any]:
    return lambda lesion: (lesion.get("plan") or {}).get(key)


# (column title, unit, value getter, decimals). Values come from the results file unchanged.
LESION_COLUMNS: list[tuple[str, str, Callable[[dict], Any], int]] = [
    ("Lesion", "", lambda lesion: lesion["id"], 0),
    ("Couinaud", "", lambda lesion: couinaud_text(lesion.get("couinaud")), 0),
    ("Volume", "ml", lambda lesion: lesion.get("volume_ml"), 2),
    ("RECIST long", "mm", lambda lesion: lesion.get("recist_long_mm"), 1),
    ("RECIST short", "mm", lambda lesion: lesion.get("recist_short_mm"), 1),
    ("Max 3D", "mm", lambda lesion: lesion.get("max_diameter_3d_mm"), 1),
    ("Sphericity", "", lambda lesion: lesion.get("sphericity"), 2),
    ("To portal", "mm", _nearest("portal"), 1),
    ("To hepatic", "mm", _nearest("hepatic"), 1),
    ("To IVC", "mm", _nearest("ivc"), 1),
    ("To capsule", "mm", _nearest("capsule"), 1),
    ("Score", "", lambda lesion: lesion.get("score"), 2),
    ("Likely cyst", "", lambda lesion: lesion.get("likely_cyst"), 0),
]
PLAN_COLUMNS: list[tuple[str, str, Callable[[dict], Any], int]] = [
    ("Plan", "", _plan("status"), 0),
    ("Margin", "mm", _plan("margin_mm"), 1),
    ("R1 risk", "", _plan("r1"), 0),
]


def lesion_columns(document: dict) -> list[tuple[str, str, Callable[[dict], Any], int]]:
    """Table columns for this document: plan columns only when a plan exists."""
    return LESION_COLUMNS + (PLAN_COLUMNS if document.get("plan") is not None else [])


def lesion_rows(document: dict) -> tuple[list[str], list[list[str]]]:
    """Header cells (title with unit) and one row of text cells per lesion.

    Columns without any value (e.g. no score from the segmentation) are left out.
    """
    columns = [column for column in lesion_columns(document)
               if any(column[2](lesion) is not None for lesion in document["lesions"])]
    header = [f"{title} ({unit})" if unit else title for title, unit, _, _ in columns]
    rows = [[format_number(getter(lesion), digits) for _, _, getter, digits in columns]
            for lesion in document["lesions"]]
    return header, rows


def lesion_details(lesion: dict) -> list[tuple[str, str]]:
    """Every field of a results lesion as (name, text), nested fields named ``a.b``."""
    lines: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value and not prefix.endswith(("couinaud", "nearest")):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        else:
            lines.append((prefix, format_value(value)))

    walk("", lesion)
    return lines


def dicom_date(value: Optional[str]) -> str:
    """DICOM DA ``"19580317"`` as ``"1958-03-17"``; anything else as given."""
    text = (value or "").strip()
    if len(text) == 8 and text.isdigit():
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return text or MISSING


def person_name(value: Optional[str]) -> str:
    """DICOM PN ``"Family^Given^Middle"`` as ``"Family, Given Middle"``."""
    family, _, rest = (value or "").partition("^")
    rest = " ".join(part for part in rest.split("^") if part)
    return (f"{family}, {rest}" if rest else family) or MISSING


def case_lines(case: dict) -> list[tuple[str, str]]:
    """Patient and study lines of the header; de-identified or file-based cases say so."""
    if case.get("deidentified"):
        lines = [("Patient", DEIDENTIFIED_LABEL)]
    elif case.get("source") != "dicom":
        lines = [("Patient", "not recorded (image files carry no patient data)")]
    else:
        lines = [("Patient name", person_name(case.get("patient_name"))),
                 ("Patient ID", case.get("patient_id") or MISSING),
                 ("Birth date", dicom_date(case.get("patient_birth_date")))]
    extra = [("Sex", "patient_sex"), ("Age", "patient_age"), ("Study date", "study_date"),
             ("Study", "study_description"), ("Accession", "accession_number"),
             ("Institution", "institution_name"), ("Referring physician", "referring_physician_name"),
             ("Modality", "modality")]
    for title, key in extra:
        if case.get(key):
            text = str(case[key])
            text = dicom_date(text) if key == "study_date" else text
            text = person_name(text) if key == "referring_physician_name" else text
            lines.append((title, text))
    return lines


_UNIT_SUFFIXES = (("_ml", "ml"), ("_mm", "mm"), ("_pct", "%"), ("_mm2", "mm\u00b2"), ("_m2", "m\u00b2"),
                  ("_s", "s"))


def field_line(key: str, value: Any) -> tuple[str, str]:
    """(label, text) of a results field: ``tumour_volume_ml`` -> ("Tumour volume", "... ml")."""
    for suffix, unit in _UNIT_SUFFIXES:
        if key.endswith(suffix) and isinstance(value, (int, float)) and not isinstance(value, bool):
            return key[: -len(suffix)].replace("_", " ").capitalize(), f"{format_value(value)} {unit}"
    return key.replace("_", " ").capitalize(), format_value(value)


# results.json fields kept for software, not for the reader: the anatomical points (RAS mm) the
# Couinaud segments were built from
NOT_FOR_READING = {"couinaud_landmarks"}


def liver_lines(liver: dict) -> list[tuple[str, str]]:
    """Whole-liver figures: volume, tumour volume and burden, lesion count, then any other field."""
    lines = [("Liver volume", f"{format_number(liver['volume_ml'], 1)} ml"),
             ("Tumour volume", f"{format_number(liver['tumour_volume_ml'], 2)} ml"),
             ("Tumour burden", f"{format_number(liver['tumour_burden_pct'], 2)} %"),
             ("Lesions", _lesion_count_text(liver))]
    shown = {"volume_ml", "tumour_volume_ml", "tumour_burden_pct", "lesion_count", "likely_cyst_count"}
    lines.extend(field_line(key, value) for key, value in liver.items() if key not in shown | NOT_FOR_READING)
    return lines


def _lesion_count_text(liver: dict) -> str:
    """"6", or "6 (1 likely cyst)" when the detector flagged cysts among them."""
    count, cysts = liver["lesion_count"], liver.get("likely_cyst_count")
    if not cysts:
        return str(count)
    return f"{count} ({cysts} likely cyst{'s' if cysts > 1 else ''})"


def plan_lines(plan: Optional[dict]) -> list[tuple[str, str]]:
    """Resection plan summary (FLR first), or nothing without a plan."""
    if plan is None:
        return []
    lines = [("Future liver remnant", f"{format_number(plan.get('flr_pct'), 1)} %"),
             ("Remnant volume", f"{format_number(plan.get('remnant_volume_ml'), 1)} ml"),
             ("Resected volume", f"{format_number(plan.get('resected_volume_ml'), 1)} ml")]
    shown = {"flr_pct", "remnant_volume_ml", "resected_volume_ml"}
    lines.extend(field_line(key, value) for key, value in plan.items() if key not in shown)
    return lines


def sequence_lines(sequences: list[dict]) -> list[str]:
    """One line per sequence: canonical name, then series description / file when known."""
    lines = []
    for entry in sequences:
        details = [str(entry[key]) for key in ("series_description", "file") if entry.get(key)]
        lines.append(entry["name"] + (f" ({'; '.join(details)})" if details else ""))
    return lines


METHOD_TEXT = ("Liver, lesions and vessels were segmented automatically; sizes follow RECIST 1.1 "
               "(Eisenhauer et al., Eur J Cancer 2009;45:228-247); Couinaud segments are approximated "
               "from the vessel anatomy.")


def method_lines(document: dict) -> list[tuple[str, str]]:
    """Software and version, results schema, segmentation method (when recorded) and run times."""
    method = document["method"]
    lines = [("Software", f"{method['name']} {method['version']}"),
             ("Results schema", document["schema_version"])]
    if method.get("segmentation"):
        lines.append(("Segmentation", format_value(method["segmentation"])))
    lines.extend((f"Time: {step}", f"{format_value(seconds)} s")
                 for step, seconds in (method.get("timings_s") or {}).items())
    return lines
