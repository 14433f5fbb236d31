"""The results file (``results.json``): one versioned document per case, built from a result folder.

It gathers ``lesions.json`` (segmentation), ``measurements.json`` (``livermets measure``; computed
with :func:`livermets.measure.measure_result_dir` when absent, which also writes it) and
``plan.json`` (optional), plus patient and study tags when a DICOM source is given. Lengths are
mm, volumes ml, points RAS mm.
The layout is described by ``results.schema.json`` beside this file; :func:`validate` checks a
document against it without any extra package.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Optional

from livermets import __version__
from livermets.errors import InputError
from livermets.report.deidentify import deidentify_case, deidentify_sequences
from livermets.files import write_atomically

SCHEMA_VERSION = "1.0"
# Keys of measurements.json / plan.json about files and run time, not about the liver or the plan.
BOOKKEEPING_KEYS = ("result_dir", "units", "couinaud_file", "remnant_file", "resected_file", "seconds")
SCHEMA_PATH = Path(__file__).with_name("results.schema.json")
DISCLAIMER = ("For research and teaching use only. Not a medical device: LiverMets has not been cleared or "
              "approved for clinical use. Every contour and measurement must be checked by a qualified "
              "reader before it informs any decision about a patient.")

# results ``case`` field -> DICOM keyword.
CASE_TAGS: dict[str, str] = {
    "patient_name": "PatientName", "patient_id": "PatientID", "patient_birth_date": "PatientBirthDate",
    "patient_sex": "PatientSex", "patient_age": "PatientAge", "study_date": "StudyDate",
    "study_description": "StudyDescription", "accession_number": "AccessionNumber",
    "institution_name": "InstitutionName", "referring_physician_name": "ReferringPhysicianName",
    "modality": "Modality",
}


def read_json(path: Path) -> Any:
    """Parse a JSON file; a clear :class:`InputError` when it is unreadable."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read {path}: {error}") from error


def case_from_dicom(tags: Mapping[str, Any]) -> dict:
    """The ``case`` block from DICOM tags given by keyword (a pydicom Dataset works too)."""
    case: dict[str, Any] = {"deidentified": False, "source": "dicom"}
    for field, keyword in CASE_TAGS.items():
        value = tags.get(keyword) if isinstance(tags, Mapping) else getattr(tags, keyword, None)
        text = str(value).strip() if value not in (None, "") else ""
        case[field] = text or None
    return case


def _by_id(entries: Any) -> dict[int, dict]:
    """Lesion entries from a list of dicts with ``id`` or a dict keyed by id."""
    if isinstance(entries, Mapping):
        return {int(key): dict(value, id=int(key)) for key, value in entries.items()}
    return {int(entry["id"]): dict(entry) for entry in entries or []}


def sequence_entries(segmentation: Mapping) -> list[dict]:
    """``lesions.json`` ``sequences`` as ``{name, file, series_description, series_number}`` dicts.

    Accepts a list of names, a mapping name -> file, or a list of dicts naming the sequence by
    ``name`` or ``sequence`` and the image by ``file``, ``path`` or ``image`` (kept as written).
    """
    raw = segmentation.get("sequences") or []
    if isinstance(raw, Mapping):
        raw = [{"name": name, "file": value if isinstance(value, str) else None}
               for name, value in raw.items()]
    entries = []
    for item in raw:
        entry = {"name": item} if isinstance(item, str) else dict(item)
        file = entry.get("file") or entry.get("path") or entry.get("image")
        entries.append({"name": str(entry.get("name") or entry.get("sequence") or "unknown"),
                        "file": file if isinstance(file, str) else None,
                        "series_description": entry.get("series_description"),
                        "series_number": entry.get("series_number")})
    return entries


def _sequences(segmentation: Mapping) -> list[dict]:
    """Sequence entries for the results file: file names only, never folders."""
    return [dict(entry, file=Path(entry["file"]).name if entry["file"] else None)
            for entry in sequence_entries(segmentation)]


def _finite(value: Any) -> Any:
    """JSON has no NaN / inf: replace them by ``None`` (recursively)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(key): _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def load_measurements(result_dir: Path) -> Optional[dict]:
    """``measurements.json`` of the folder, else measured now, else ``None`` (measure not installed)."""
    path = Path(result_dir) / "measurements.json"
    if path.is_file():
        return read_json(path)
    try:
        from livermets.measure import measure_result_dir
    except ImportError:
        return None
    return measure_result_dir(Path(result_dir))


def liver_volume_ml(result_dir: Path) -> float:
    """Volume of ``liver.nii.gz`` (voxel count x voxel volume), ml."""
    import numpy as np

    from livermets.models import read_label_volume

    liver = read_label_volume(Path(result_dir) / "liver.nii.gz")
    return float(np.count_nonzero(liver.array)) * liver.geometry.voxel_volume_ml


def build_results(result_dir: Path, *, case: Optional[dict] = None, measurements: Optional[dict] = None,
                  plan: Optional[dict] = None, deidentify: bool = False) -> dict:
    """The results document of a result folder (see ``results.schema.json``).

    ``measurements`` and ``plan`` default to the folder's ``measurements.json`` / ``plan.json``;
    ``case`` to "no patient data" (files). With ``deidentify`` every identifier is dropped
    (:mod:`livermets.report.deidentify`).
    """
    result_dir = Path(result_dir)
    segmentation_path = result_dir / "lesions.json"
    if not segmentation_path.is_file():
        raise InputError(f"{result_dir} has no lesions.json; give a folder written by 'livermets segment'")
    segmentation = read_json(segmentation_path)
    if measurements is None:
        measurements = load_measurements(result_dir) or {}
    if plan is None and (result_dir / "plan.json").is_file():
        plan = read_json(result_dir / "plan.json")

    seg_lesions = _by_id(segmentation.get("lesions", []))
    measured = _by_id(measurements.get("lesions", []))
    planned = _by_id((plan or {}).get("lesions", []))
    lesions = []
    for lesion_id in sorted(set(seg_lesions) | set(measured)):
        lesion = {**seg_lesions.get(lesion_id, {}), **measured.get(lesion_id, {})}
        lesion["id"] = lesion_id
        lesion.setdefault("center_ras_mm", lesion.get("centroid_ras_mm"))
        if lesion_id in planned:
            lesion["plan"] = {key: value for key, value in planned[lesion_id].items() if key != "id"}
        lesions.append(lesion)

    volume_ml = measurements.get("liver_volume_ml")
    if volume_ml is None:
        volume_ml = liver_volume_ml(result_dir)
    tumour_ml = measurements.get("tumour_volume_ml")
    if tumour_ml is None:
        tumour_ml = sum(float(lesion.get("volume_ml") or 0.0) for lesion in lesions)
    burden_pct = measurements.get("tumour_burden_pct")
    if burden_pct is None:
        burden_pct = 100.0 * tumour_ml / volume_ml if volume_ml > 0 else 0.0
    liver = {"volume_ml": round(float(volume_ml), 2), "tumour_volume_ml": round(float(tumour_ml), 3),
             "tumour_burden_pct": round(float(burden_pct), 2), "lesion_count": len(lesions)}
    liver.update(_likely_cyst_totals(lesions, float(tumour_ml)))
    for key, value in measurements.items():  # every other case-level measurement, as given
        if key not in ("lesions", "liver_volume_ml", *BOOKKEEPING_KEYS) and key not in liver:
            liver[key] = value

    sequences = _sequences(segmentation)
    case = dict(case) if case else {"deidentified": False, "source": "files"}
    if deidentify:
        case, sequences = deidentify_case(case), deidentify_sequences(sequences)
    plan_summary = None if plan is None else {key: value for key, value in plan.items()
                                              if key not in ("lesions", *BOOKKEEPING_KEYS)}
    timings = dict(segmentation.get("timings_s") or segmentation.get("timings") or {})
    for step, source in (("measure", measurements), ("plan", plan or {})):
        if isinstance(source.get("seconds"), (int, float)):
            timings[step] = source["seconds"]
    document = {
        "schema_version": SCHEMA_VERSION,
        "case": case,
        "sequences": sequences,
        "liver": liver,
        "lesions": lesions,
        "plan": plan_summary,
        "method": {"name": "LiverMets", "version": __version__,
                   "segmentation": segmentation.get("method"),
                   "timings_s": timings or None},
        "disclaimer": DISCLAIMER,
    }
    return _finite(document)


def _likely_cyst_totals(lesions: list[dict], tumour_ml: float) -> dict:
    """``likely_cyst_count`` and ``tumour_volume_without_likely_cysts_ml`` (ml) when the detector
    flagged lesions as likely cysts, else nothing: flagged lesions stay counted in ``lesion_count``
    and ``tumour_volume_ml`` until a reader removes them."""
    cysts = [lesion for lesion in lesions if lesion.get("likely_cyst") is True]
    if not cysts:
        return {}
    cyst_ml = sum(float(lesion.get("volume_ml") or 0.0) for lesion in cysts)
    return {"likely_cyst_count": len(cysts),
            "tumour_volume_without_likely_cysts_ml": round(max(tumour_ml - cyst_ml, 0.0), 3)}


def load_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def _type_ok(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _TYPES[name])


def validate(document: Any, schema: Optional[dict] = None) -> list[str]:
    """Errors of ``document`` against the results schema (empty list when valid).

    Supports the JSON Schema keywords the schema uses: type, const, enum, required, properties,
    additionalProperties (boolean), items, minItems, maxItems, minimum, maximum, minLength and
    local ``$ref`` (``#/$defs/...``).
    """
    root = schema if schema is not None else load_schema()
    errors: list[str] = []

    def check(value: Any, rule: dict, where: str) -> None:
        if "$ref" in rule:
            target = root
            for part in rule["$ref"].lstrip("#/").split("/"):
                target = target[part]
            check(value, target, where)
            return
        types = rule.get("type")
        if types is not None:
            names = [types] if isinstance(types, str) else types
            if not any(_type_ok(value, name) for name in names):
                errors.append(f"{where}: expected {' or '.join(names)}, got {type(value).__name__}")
                return
        if "const" in rule and value != rule["const"]:
            errors.append(f"{where}: must be {rule['const']!r}")
        if "enum" in rule and value not in rule["enum"]:
            errors.append(f"{where}: must be one of {rule['enum']}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if "minimum" in rule and value < rule["minimum"]:
                errors.append(f"{where}: {value} is below {rule['minimum']}")
            if "maximum" in rule and value > rule["maximum"]:
                errors.append(f"{where}: {value} is above {rule['maximum']}")
        if isinstance(value, str) and len(value) < rule.get("minLength", 0):
            errors.append(f"{where}: shorter than {rule['minLength']} characters")
        if isinstance(value, dict):
            for key in rule.get("required", []):
                if key not in value:
                    errors.append(f"{where}: missing {key!r}")
            properties = rule.get("properties", {})
            for key, item in value.items():
                if key in properties:
                    check(item, properties[key], f"{where}.{key}")
                elif rule.get("additionalProperties", True) is False:
                    errors.append(f"{where}: unexpected {key!r}")
        if isinstance(value, list):
            if len(value) < rule.get("minItems", 0):
                errors.append(f"{where}: fewer than {rule['minItems']} items")
            if len(value) > rule.get("maxItems", len(value)):
                errors.append(f"{where}: more than {rule['maxItems']} items")
            if "items" in rule:
                for index, item in enumerate(value):
                    check(item, rule["items"], f"{where}[{index}]")

    check(document, root, "results")
    return errors


def write_results(document: dict, path: Path) -> Path:
    """Validate and write ``document`` as indented UTF-8 JSON (temporary file, then rename)."""
    errors = validate(document)
    if errors:
        raise ValueError("results document does not match its schema: " + "; ".join(errors[:5]))
    data = (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    return write_atomically(Path(path), data)
