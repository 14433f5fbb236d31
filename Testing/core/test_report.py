"""Reports of a phantom case: the numbers shown are the numbers in results.json, the page is valid HTML,
patient text is escaped, de-identification removes every identifier, the PDF is sound.

The result folder is the phantom's ground truth (``truth/``) measured by ``livermets.measure`` and
planned by ``livermets.planning`` (a right posterior sectionectomy, segments 6 + 7); lesion ids and
the liver volume are checked against the label maps themselves.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from livermets.cli import main
from livermets.dicom import write_series
from livermets.geometry import Volume
from livermets.imageio import read_image
from livermets.measure import measure_result_dir
from livermets.planning.plan import plan_result_dir
from livermets.report.build import build_report
from livermets.report.results import build_results, validate
from livermets.report.tables import lesion_rows, liver_lines
from phantom_result import truth_result_folder

SCRIPT_NAME = "<script>alert(1)</script>"
PATIENT = {"PatientName": "Muster^Erika", "PatientID": "PID-0042", "PatientBirthDate": "19580317",
           "PatientSex": "F", "0010|1010": "068Y", "StudyDescription": "MRI liver Primovist",
           "AccessionNumber": "ACC991", "StudyDate": "20260105"}
LESION_KEYS = ("id", "center_ras_mm", "volume_ml", "longest_axial_diameter_mm")  # what segment writes
IDENTIFIERS = ("Muster", "Erika", "PID-0042", "19580317", "1958-03-17", "ACC991", "20260105", "2026-01-05")

# Lesion table column -> where the value lives in a results lesion (independent of the report code).
COLUMNS = {"Lesion": ("id",), "Volume (ml)": ("volume_ml",), "RECIST long (mm)": ("recist_long_mm",),
           "RECIST short (mm)": ("recist_short_mm",), "Max 3D (mm)": ("max_diameter_3d_mm",),
           "Sphericity": ("sphericity",), "To portal (mm)": ("nearest", "portal"),
           "To hepatic (mm)": ("nearest", "hepatic"), "To IVC (mm)": ("nearest", "ivc"),
           "To capsule (mm)": ("nearest", "capsule"), "Margin (mm)": ("plan", "margin_mm")}


def write_dicom(image: Volume, folder: Path, patient: dict) -> Path:
    volume = Volume(np.rint(image.array * 10).astype(np.int16), image.geometry)  # scanner-like integers
    write_series(volume, folder, tags=patient, series_number=5, series_description="t1_vibe_fs_tra_hbp_20min")
    return folder


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("report")
    result, legend = truth_result_folder(root, lesion_keys=LESION_KEYS, timings_s={"segment": 12.5})
    measure_result_dir(result)
    plan_result_dir(result, segments=[6, 7])
    image = read_image(root / "phantom" / "hbp.nii.gz")
    return {"root": root, "result": result, "legend": legend,
            "dicom": write_dicom(image, root / "dicom", PATIENT),
            "dicom_script": write_dicom(image, root / "dicom_script", dict(PATIENT, PatientName=SCRIPT_NAME))}


class TagChecker(HTMLParser):
    """Collects tag-balance errors and the cells of the lesion table."""

    VOID = {"meta", "img", "br", "hr", "link", "input", "source"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}
        self.table_id = None
        self.cell = None
        self.doctype = False

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl.lower() == "doctype html"

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append(tag)
        attributes = dict(attrs)
        if tag == "table":
            self.table_id = attributes.get("id")
            self.tables.setdefault(self.table_id, [])
        elif tag == "tr" and self.table_id:
            self.tables[self.table_id].append([])
        elif tag in ("td", "th") and self.table_id:
            self.cell = ""

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()
        if tag in ("td", "th") and self.table_id and self.cell is not None:
            self.tables[self.table_id][-1].append(self.cell.strip())
            self.cell = None
        elif tag == "table":
            self.table_id = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def parse(html_text: str) -> TagChecker:
    checker = TagChecker()
    checker.feed(html_text)
    checker.close()
    return checker


def value_at(lesion: dict, path: tuple[str, ...]):
    for key in path:
        lesion = (lesion or {}).get(key)
    return lesion


def pdf_text(path: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, encoding="utf-8",
                          check=True).stdout


def test_report_shows_every_number_of_the_results_file(case, tmp_path):
    files = build_report(case["result"], tmp_path, pdf=True, dicom_dir=case["dicom"])
    document = json.loads(files.results_json.read_text(encoding="utf-8"))
    assert validate(document) == []

    lesion_ids = [int(v) for v in np.unique(read_image(case["result"] / "lesions.nii.gz").array) if v]
    truth_ids = [lesion["id"] for lesion in case["legend"]["lesions"]]
    assert [lesion["id"] for lesion in document["lesions"]] == lesion_ids == truth_ids
    liver = read_image(case["result"] / "liver.nii.gz")
    liver_ml = np.count_nonzero(liver.array) * liver.geometry.voxel_volume_ml
    assert document["liver"]["volume_ml"] == pytest.approx(liver_ml, abs=0.01)
    assert document["plan"]["flr_pct"] > 0 and all("plan" in lesion for lesion in document["lesions"])

    html_text = files.html.read_text(encoding="utf-8")
    page = parse(html_text)
    assert page.doctype and page.errors == [] and page.stack == []
    header, *rows = page.tables["lesions"]
    assert len(rows) == len(lesion_ids)
    checked = 0
    for row, lesion in zip(rows, document["lesions"]):
        cells = dict(zip(header, row))
        for column, path in COLUMNS.items():
            expected = value_at(lesion, path)
            if column not in cells:  # a column is left out only when no lesion has a value
                assert all(value_at(other, path) is None for other in document["lesions"]), column
                continue
            if expected is None:
                assert cells[column] == "\u2013"
                continue
            decimals = len(cells[column].partition(".")[2])
            assert float(cells[column]) == pytest.approx(expected, abs=0.5 * 10 ** -decimals + 1e-9), column
            checked += 1
        assert cells["R1 risk"] == ("yes" if lesion["plan"]["r1"] else "no")
        assert cells["Plan"] == lesion["plan"]["status"]
    assert checked >= 9 * len(rows)
    assert "Score" not in header  # the phantom's lesions.json has no score: no empty column
    assert f"{document['liver']['volume_ml']:.1f} ml" in html_text
    assert f"{document['plan']['flr_pct']:.1f} %" in html_text and "Resection plan" in html_text
    assert "Muster, Erika" in html_text and "PID-0042" in html_text and "1958-03-17" in html_text
    assert "For research and teaching use only" in html_text

    pictures = re.findall(r'src="data:image/png;base64,([^"]+)"', html_text)
    assert len(pictures) == len(lesion_ids) + 2  # a key image per lesion and two 3D views
    assert all(base64.b64decode(picture)[:8] == b"\x89PNG\r\n\x1a\n" for picture in pictures)
    assert {path.name for path in (tmp_path / "images").iterdir()} == (
        {f"lesion_{n:03d}.png" for n in lesion_ids} | {"3d_anterior.png", "3d_posterior.png"})

    text = pdf_text(files.pdf)
    assert f"Lesions ({len(lesion_ids)})" in text and "Muster, Erika" in text
    for lesion in document["lesions"]:
        assert f"{lesion['recist_long_mm']:.1f}" in text
        assert f"Lesion {lesion['id']}" in text


def test_the_likely_cyst_flag_is_a_column_when_the_detector_gave_it():
    flagged = {"lesions": [{"id": 1, "volume_ml": 2.0, "likely_cyst": True},
                           {"id": 2, "volume_ml": 1.0, "likely_cyst": False}]}
    header, rows = lesion_rows(flagged)
    column = header.index("Likely cyst")
    assert [row[column] for row in rows] == ["yes", "no"]
    assert "Likely cyst" not in lesion_rows({"lesions": [{"id": 1, "volume_ml": 2.0}]})[0]


def test_likely_cysts_are_counted_apart_when_the_detector_flagged_them(case, tmp_path):
    result = tmp_path / "result"
    shutil.copytree(case["result"], result)
    segmentation = json.loads((result / "lesions.json").read_text())
    assert len(segmentation["lesions"]) >= 2
    for index, lesion in enumerate(segmentation["lesions"]):
        lesion["likely_cyst"] = index == 0
    (result / "lesions.json").write_text(json.dumps(segmentation))

    document = build_results(result)
    assert validate(document) == []
    liver = document["liver"]
    cyst = next(lesion for lesion in document["lesions"] if lesion["id"] == segmentation["lesions"][0]["id"])
    assert liver["lesion_count"] == len(segmentation["lesions"])  # a flag is not a removal
    assert liver["likely_cyst_count"] == 1
    assert liver["tumour_volume_without_likely_cysts_ml"] == pytest.approx(
        liver["tumour_volume_ml"] - cyst["volume_ml"], abs=1e-3)
    assert ("Lesions", f"{liver['lesion_count']} (1 likely cyst)") in liver_lines(liver)

    unflagged = build_results(case["result"])["liver"]
    assert "likely_cyst_count" not in unflagged and "tumour_volume_without_likely_cysts_ml" not in unflagged
    assert ("Lesions", str(unflagged["lesion_count"])) in liver_lines(unflagged)


def test_the_couinaud_landmarks_stay_in_the_results_file():
    # the anatomical points the segments were built from are for software; the report's liver
    # table shows the lesions per segment instead
    liver = {"volume_ml": 1500.0, "tumour_volume_ml": 10.0, "tumour_burden_pct": 0.67, "lesion_count": 2,
             "lesions_per_segment": {"7": 2}}
    landmarks = dict(liver, couinaud_landmarks={"ivc_point_ras": [20.8, -29.9, -0.9]})
    assert liver_lines(landmarks) == liver_lines(liver)
    assert ("Lesions per segment", "7: 2") in liver_lines(liver)


def test_patient_name_with_markup_is_shown_as_text(case, tmp_path):
    files = build_report(case["result"], tmp_path, pdf=True, dicom_dir=case["dicom_script"], pictures=False)
    html_text = files.html.read_text(encoding="utf-8")
    assert "<script" not in html_text.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_text
    assert parse(html_text).errors == []
    assert SCRIPT_NAME in pdf_text(files.pdf)  # shown literally in the PDF too


def test_deidentified_report_carries_no_identifier(case, tmp_path):
    files = build_report(case["result"], tmp_path, pdf=True, deidentify=True, dicom_dir=case["dicom"])
    outputs = {"html": files.html.read_text(encoding="utf-8"), "json": files.results_json.read_text(encoding="utf-8"),
               "pdf bytes": files.pdf.read_bytes().decode("latin-1"), "pdf text": pdf_text(files.pdf)}
    for name, text in outputs.items():
        for identifier in IDENTIFIERS + ("hbp.nii.gz",):
            assert identifier not in text, f"{identifier} found in the {name}"
    assert "de-identified" in outputs["html"] and "de-identified" in outputs["pdf text"]
    case_block = json.loads(outputs["json"])["case"]
    assert case_block["deidentified"] is True and case_block["patient_sex"] == "F"


def test_pdf_is_sound_and_renders(case, tmp_path):
    files = build_report(case["result"], tmp_path, pdf=True)
    data = files.pdf.read_bytes()
    assert data.startswith(b"%PDF-1.4") and data.rstrip().endswith(b"%%EOF")
    xref = int(data.rsplit(b"startxref", 1)[1].split()[0])
    entries = data[xref:].split(b"\n")[3:]
    offsets = [int(line[:10]) for line in entries if line.endswith(b" n ")]
    for number, offset in enumerate(offsets, start=1):
        assert data[offset:].startswith(b"%d 0 obj" % number)
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(files.pdf), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) == data.count(b"/Type /Page ") >= 2
    assert "page 1 of" in pdf_text(files.pdf)


def test_same_input_gives_the_same_files(case, tmp_path):
    first = build_report(case["result"], tmp_path / "a", pdf=True, pictures=False)
    second = build_report(case["result"], tmp_path / "b", pdf=True, pictures=False)
    for name in ("results.json", "report.html", "report.pdf"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert first.html.name == second.html.name == "report.html"


def test_validator_names_what_is_wrong(case):
    document = build_results(case["result"])
    assert validate(document) == []
    broken = json.loads(json.dumps(document))
    del broken["disclaimer"]
    broken["lesions"][0]["volume_ml"] = -1.0
    broken["lesions"][1]["center_ras_mm"] = [1.0, 2.0]
    broken["liver"]["lesion_count"] = "eight"
    broken["surprise"] = 1
    errors = validate(broken)
    for expected in ("missing 'disclaimer'", "lesions[0].volume_ml: -1.0 is below 0",
                     "lesions[1].center_ras_mm: fewer than 3 items", "liver.lesion_count: expected integer",
                     "unexpected 'surprise'"):
        assert any(expected in error for error in errors), expected


def test_report_without_plan_or_lesions_json(case, tmp_path):
    result = tmp_path / "result"
    shutil.copytree(case["result"], result)
    (result / "plan.json").unlink()
    document = build_results(result)
    assert document["plan"] is None and "plan" not in document["lesions"][0]
    files = build_report(result, tmp_path / "out", pictures=False)
    html_text = files.html.read_text(encoding="utf-8")
    assert "Resection plan" not in html_text and "Margin (mm)" not in html_text
    (result / "lesions.json").unlink()
    assert main(["--quiet", "report", str(result)]) == 2


def test_command_line_report(case, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["--quiet", "report", str(case["result"]), "--out", str(out), "--pdf", "--deidentify",
                 "--source", str(case["dicom"])]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(out / "report.html"), str(out / "report.pdf"), str(out / "results.json")]
    assert "PID-0042" not in (out / "report.html").read_text(encoding="utf-8")


def rotation_lps(z_deg: float, x_deg: float) -> tuple[float, ...]:
    z, x = np.radians(z_deg), np.radians(x_deg)
    about_z = np.array([[np.cos(z), -np.sin(z), 0], [np.sin(z), np.cos(z), 0], [0, 0, 1]])
    about_x = np.array([[1, 0, 0], [0, np.cos(x), -np.sin(x)], [0, np.sin(x), np.cos(x)]])
    return tuple((about_z @ about_x).ravel())


def test_key_images_centre_each_lesion_on_an_oblique_grid(case, tmp_path):
    """The phantom's arrays put on an oblique grid: every key image must still show its lesion
    (yellow contour) around the picture's centre, with the RECIST long axis (red) drawn."""
    import SimpleITK as sitk
    from livermets.report.keyimages import LESION_RGB, LONG_AXIS_RGB, SIZE_PX, write_key_images

    result = tmp_path / "oblique"
    result.mkdir()
    source = {name: read_image(case["result"] / f"{name}.nii.gz") for name in ("liver", "labels", "lesions")}
    source["hbp"] = read_image(case["root"] / "phantom" / "hbp.nii.gz")
    plain = source["liver"].geometry
    oblique = type(plain)(plain.shape, plain.spacing_ijk_mm, plain.origin_lps_mm, rotation_lps(25.0, 12.0))
    for name, volume in source.items():
        sitk.WriteImage(Volume(volume.array, oblique).to_sitk(), str(result / f"{name}.nii.gz"))
    lesions = source["lesions"].array
    ids = [int(n) for n in np.unique(lesions) if n]
    (result / "lesions.json").write_text(json.dumps({
        "lesions": [{"id": n, "center_ras_mm": oblique.kji_to_ras(np.argwhere(lesions == n).mean(axis=0)).tolist(),
                     "volume_ml": float(np.count_nonzero(lesions == n) * oblique.voxel_volume_ml)} for n in ids],
        "sequences": {"hbp": "hbp.nii.gz"}}))
    document = build_results(result)  # measures the oblique folder on the way
    written = write_key_images(result / "hbp.nii.gz", result, document["lesions"], tmp_path / "images")
    assert [key_image.lesion_id for key_image in written] == ids
    for key_image, lesion in zip(written, document["lesions"]):
        rgb = sitk.GetArrayFromImage(sitk.ReadImage(str(key_image.path)))
        assert rgb.shape == (SIZE_PX, SIZE_PX, 3)
        yellow = np.argwhere(np.all(rgb == LESION_RGB, axis=2))
        if lesion["volume_ml"] < 0.1:  # a lesion of a few voxels may not cut the chosen slice widely
            continue
        assert len(yellow) > 20, f"lesion {lesion['id']} has no contour"
        assert np.allclose(yellow.mean(axis=0), (SIZE_PX - 1) / 2, atol=0.12 * SIZE_PX), lesion["id"]
        assert np.all(rgb == LONG_AXIS_RGB, axis=2).sum() > 10, f"lesion {lesion['id']} lacks its RECIST line"
