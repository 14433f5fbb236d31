"""De-identification rules for reports and results files.

What a de-identified report keeps and drops (after the HIPAA Safe Harbor list, 45 CFR 164.514(b)(2)):

* dropped: patient name, patient ID, birth date, accession number, institution, referring physician,
  every date (study date), source file names (they often carry names) and DICOM UIDs;
* kept: sex, age (ages of 90 and over become ``"90Y+"``), modality, study and series descriptions,
  canonical sequence names and every measurement.
"""

from __future__ import annotations

import re

IDENTIFYING_CASE_FIELDS = ("patient_name", "patient_id", "patient_birth_date", "accession_number",
                           "institution_name", "referring_physician_name", "study_date")
DEIDENTIFIED_LABEL = "de-identified"


def deidentify_age(age: str | None) -> str | None:
    """DICOM age string (``"065Y"``) with ages of 90 years and over grouped as ``"90Y+"``."""
    if not age:
        return age
    match = re.fullmatch(r"0*(\d+)Y", age.strip().upper())
    if match and int(match.group(1)) >= 90:
        return "90Y+"
    return age


def deidentify_case(case: dict) -> dict:
    """A copy of a results ``case`` block with every identifying field set to ``None``."""
    cleaned = dict(case)
    for field in IDENTIFYING_CASE_FIELDS:
        if field in cleaned:
            cleaned[field] = None
    if "patient_age" in cleaned:
        cleaned["patient_age"] = deidentify_age(cleaned["patient_age"])
    cleaned["deidentified"] = True
    return cleaned


def deidentify_sequences(sequences: list[dict]) -> list[dict]:
    """Sequence entries without their file names (paths often hold patient names)."""
    return [{**entry, "file": None} for entry in sequences]
