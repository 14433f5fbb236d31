"""Build the whole report of a result folder: results.json, key images, 3D views, HTML, optional PDF.

Output folder layout (default ``<result folder>/report``)::

    results.json          versioned results file (results.schema.json)
    report.html           self-contained page (pictures embedded as base64)
    report.pdf            with --pdf
    images/lesion_001.png key image per lesion
    images/3d_anterior.png, images/3d_posterior.png
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

from livermets.errors import InputError
from livermets.progress import ProgressCallback, report, scaled
from livermets.report.keyimages import KeyImage

LOG = logging.getLogger(__name__)


@dataclass
class ReportFiles:
    """Files written by :func:`build_report` and the time it took (s)."""

    results_json: Path
    html: Path
    pdf: Optional[Path]
    key_images: dict[int, KeyImage] = field(default_factory=dict)
    views: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0


def source_image(result_dir: Path, images: Optional[Mapping[str, Path]] = None) -> tuple[Optional[str], Path]:
    """(sequence name, path) of the image to draw key images on.

    ``images`` (sequence name -> file, e.g. from ``--image``) wins; otherwise the first sequence
    of ``lesions.json`` whose file exists, relative to the result folder or absolute.
    """
    from livermets.report.results import read_json, sequence_entries

    if images:
        name, path = next(iter(images.items()))
        if not Path(path).is_file():
            raise InputError(f"image {path} does not exist; check the --image argument")
        return name, Path(path)
    for entry in sequence_entries(read_json(Path(result_dir) / "lesions.json")):
        if entry["file"]:
            path = Path(result_dir) / entry["file"]  # an absolute file name stays as it is
            if path.is_file():
                return entry["name"], path
    raise InputError(f"lesions.json in {result_dir} names no source image that exists; "
                     "give it with --image NAME=PATH")


def case_from_source(dicom_dir: Path, result_dir: Path, *, sequence: Optional[str] = None,
                     series: Optional[str] = None) -> dict:
    """Patient and study tags from the DICOM series the result was computed on (``case`` block).

    The series is chosen as for DICOM SEG export (:func:`livermets.dicom_seg.choose_source_series`).
    """
    from livermets.dicom_seg import choose_source_series, source_datasets
    from livermets.models import read_label_volume
    from livermets.report.results import case_from_dicom

    geometry = read_label_volume(Path(result_dir) / "liver.nii.gz").geometry
    info = choose_source_series(Path(dicom_dir), geometry, sequence=sequence, series=series)
    return case_from_dicom(source_datasets(info)[0])


def build_report(result_dir: Path, out_dir: Optional[Path] = None, *, pdf: bool = False,
                 deidentify: bool = False, dicom_dir: Optional[Path] = None, series: Optional[str] = None,
                 images: Optional[Mapping[str, Path]] = None, pictures: bool = True,
                 progress: Optional[ProgressCallback] = None) -> ReportFiles:
    """Write the report of ``result_dir`` into ``out_dir`` (default ``result_dir/report``).

    ``dicom_dir`` gives patient and study tags (dropped again with ``deidentify``); ``images``
    overrides the key-image source; ``pictures=False`` skips key images and 3D views.
    """
    from livermets.report.html import write_html
    from livermets.report.results import build_results, write_results

    start = time.perf_counter()
    result_dir = Path(result_dir)
    out_dir = Path(out_dir) if out_dir is not None else result_dir / "report"
    out_dir.mkdir(parents=True, exist_ok=True)
    report(progress, 0.0, "collecting results")
    sequence, image_path = source_image(result_dir, images) if pictures else (None, None)
    case = None
    if dicom_dir is not None:
        case = case_from_source(Path(dicom_dir), result_dir, sequence=sequence, series=series)
    document = build_results(result_dir, case=case, deidentify=deidentify)
    results_path = write_results(document, out_dir / "results.json")

    key_images: dict[int, KeyImage] = {}
    views: dict[str, Path] = {}
    if pictures:
        from livermets.report.keyimages import write_key_images
        from livermets.report.render3d import render_views

        written = write_key_images(image_path, result_dir, document["lesions"], out_dir / "images",
                                   progress=scaled(progress, 0.1, 0.4))
        key_images = {key_image.lesion_id: key_image for key_image in written}
        views = render_views(result_dir, out_dir / "images", progress=scaled(progress, 0.4, 0.85))
    report(progress, 0.85, "writing HTML")
    html_path = write_html(document, out_dir / "report.html", key_images=key_images, views=views)
    pdf_path = None
    if pdf:
        from livermets.report.pdf import write_pdf

        report(progress, 0.92, "writing PDF")
        pdf_path = write_pdf(document, out_dir / "report.pdf", key_images=key_images, views=views)
    seconds = time.perf_counter() - start
    LOG.info("report of %s written to %s in %.1f s", result_dir, out_dir, seconds)
    report(progress, 1.0, "report written")
    return ReportFiles(results_path, html_path, pdf_path, key_images, views, seconds)
