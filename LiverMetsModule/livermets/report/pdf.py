"""PDF report, written by a small PDF 1.4 writer of our own (no extra dependency).

Why our own: the report needs only text in the standard Helvetica fonts, filled rectangles and
RGB pictures. Those are a few hundred bytes of PDF syntax each (ISO 32000-1: section 7 file
structure, 8.9 images, 9.6 standard Type 1 fonts), while reportlab or fpdf would be one more
package to install into Slicer's Python. Pictures are stored losslessly as Flate (zlib) streams.
Text is encoded WinAnsi (cp1252); characters outside it print as "?". No dates are written, so
the same results give the same bytes.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np

from livermets.files import write_atomically
from livermets.report.keyimages import KeyImage
from livermets.report.tables import (METHOD_TEXT, MISSING, case_lines, lesion_details, lesion_rows,
                                     liver_lines, method_lines, plan_lines, sequence_lines)

PAGE_WIDTH_PT, PAGE_HEIGHT_PT = 595.28, 841.89  # A4
MARGIN_PT = 40.0

# Advance widths (1/1000 em) of Helvetica for characters 32..126, from Adobe's core-14 font metrics.
_HELVETICA_WIDTHS = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584]
_BOLD_FACTOR = 1.08  # Helvetica-Bold is about 8 % wider; enough for line wrapping


def text_width_pt(text: str, size: float, bold: bool = False) -> float:
    """Width of ``text`` in points at font ``size`` (Helvetica metrics; unknown characters 556)."""
    units = sum(_HELVETICA_WIDTHS[ord(c) - 32] if 32 <= ord(c) <= 126 else 556 for c in text)
    return units * size / 1000.0 * (_BOLD_FACTOR if bold else 1.0)


def wrap(text: str, width_pt: float, size: float, bold: bool = False) -> list[str]:
    """Split ``text`` into lines no wider than ``width_pt`` (long words are cut)."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        while text_width_pt(word, size, bold) > width_pt and len(word) > 1:
            cut = len(word)
            while cut > 1 and text_width_pt(word[:cut], size, bold) > width_pt:
                cut -= 1
            if current:
                lines.append(current)
                current = ""
            lines.append(word[:cut])
            word = word[cut:]
        candidate = f"{current} {word}" if current else word
        if text_width_pt(candidate, size, bold) <= width_pt:
            current = candidate
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    return lines or [""]


def pdf_string(text: str) -> bytes:
    """A PDF literal string of ``text`` in WinAnsi encoding, with ``\\``, ``(`` and ``)`` escaped."""
    clean = "".join(c if c >= " " else " " for c in text)
    data = clean.encode("cp1252", errors="replace")
    return b"(" + data.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


class PdfWriter:
    """Pages of text, rectangles and RGB images; coordinates in points from the page's top-left."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.pages: list[list[bytes]] = []
        self.images: list[tuple[int, int, bytes]] = []  # (width, height, zlib RGB)

    def new_page(self) -> None:
        self.pages.append([])

    def text(self, x: float, y: float, text: str, size: float = 10.0, *, bold: bool = False,
             color: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> None:
        """``y`` is the baseline, measured down from the top of the page."""
        font = b"/F2" if bold else b"/F1"
        self.pages[-1].append(b"BT %s %.1f Tf %.3f %.3f %.3f rg %.2f %.2f Td %s Tj ET" % (
            font, size, *color, x, PAGE_HEIGHT_PT - y, pdf_string(text)))

    def rectangle(self, x: float, y: float, width: float, height: float, fill: tuple[float, float, float],
                  stroke: Optional[tuple[float, float, float]] = None) -> None:
        """Filled (and optionally outlined) rectangle whose top-left corner is (x, y)."""
        bottom = PAGE_HEIGHT_PT - y - height
        command = b"%.3f %.3f %.3f rg %.2f %.2f %.2f %.2f re " % (*fill, x, bottom, width, height)
        if stroke is not None:
            command = b"%.3f %.3f %.3f RG 0.5 w " % stroke + command + b"B"
        else:
            command += b"f"
        self.pages[-1].append(b"q " + command + b" Q")

    def image(self, rgb: np.ndarray, x: float, y: float, width: float, height: float) -> None:
        """Place an RGB uint8 (rows, columns, 3) picture in the box with top-left (x, y)."""
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        self.images.append((rgb.shape[1], rgb.shape[0], zlib.compress(rgb.tobytes(), 6)))
        name = b"/Im%d" % len(self.images)
        self.pages[-1].append(b"q %.2f 0 0 %.2f %.2f %.2f cm %s Do Q" % (
            width, height, x, PAGE_HEIGHT_PT - y - height, name))

    def to_bytes(self) -> bytes:
        """The whole file: catalog, page tree, two fonts, images, pages, info, xref, trailer."""
        objects: list[bytes] = []

        def add(body: bytes) -> int:
            objects.append(body)
            return len(objects)

        def stream(header: bytes, data: bytes) -> bytes:
            return b"<< %s /Length %d >>\nstream\n%s\nendstream" % (header, len(data), data)

        catalog = add(b"")  # filled in once the page tree number is known
        pages_id = add(b"")
        regular = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
        bold = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>")
        image_ids = [add(stream(b"/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB "
                                b"/BitsPerComponent 8 /Filter /FlateDecode" % (width, height), data))
                     for width, height, data in self.images]
        x_objects = b" ".join(b"/Im%d %d 0 R" % (n + 1, object_id) for n, object_id in enumerate(image_ids))
        resources = b"<< /Font << /F1 %d 0 R /F2 %d 0 R >> /XObject << %s >> >>" % (regular, bold, x_objects)
        page_ids = []
        for commands in self.pages:
            content = add(stream(b"", b"\n".join(commands)))
            page_ids.append(add(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %.2f %.2f] /Resources %s "
                                b"/Contents %d 0 R >>" % (pages_id, PAGE_WIDTH_PT, PAGE_HEIGHT_PT,
                                                          resources, content)))
        objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id
        objects[pages_id - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
            b" ".join(b"%d 0 R" % page for page in page_ids), len(page_ids))
        info = add(b"<< /Title %s /Producer (LiverMets) >>" % pdf_string(self.title))

        output = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
        offsets = []
        for number, body in enumerate(objects, start=1):
            offsets.append(len(output))
            output += b"%d 0 obj\n%s\nendobj\n" % (number, body)
        xref = len(output)
        output += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
        output += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
        output += b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
            len(objects) + 1, catalog, info, xref)
        return bytes(output)


class _Layout:
    """Top-to-bottom flow on A4 pages with a cursor ``y`` (points from the top)."""

    def __init__(self, writer: PdfWriter) -> None:
        self.writer = writer
        self.width = PAGE_WIDTH_PT - 2 * MARGIN_PT
        self.y = 0.0
        self.new_page()

    def new_page(self) -> None:
        self.writer.new_page()
        self.y = MARGIN_PT

    def need(self, height: float) -> None:
        if self.y + height > PAGE_HEIGHT_PT - MARGIN_PT - 14:
            self.new_page()

    def paragraph(self, text: str, size: float = 10.0, *, bold: bool = False, indent: float = 0.0,
                  color: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> None:
        for line in wrap(text, self.width - indent, size, bold):
            self.need(size * 1.3)
            self.y += size * 1.3
            self.writer.text(MARGIN_PT + indent, self.y, line, size, bold=bold, color=color)

    def heading(self, text: str) -> None:
        self.need(40)
        self.y += 8
        self.paragraph(text, 13, bold=True, color=(0.1, 0.2, 0.4))
        self.y += 3

    def facts(self, lines: Sequence[tuple[str, str]], size: float = 9.5) -> None:
        label_width = max([text_width_pt(name, size, True) for name, _ in lines] + [0]) + 12
        for name, text in lines:
            wrapped = wrap(text, self.width - label_width, size)
            self.need(size * 1.3 * len(wrapped))
            self.y += size * 1.3
            self.writer.text(MARGIN_PT, self.y, name, size, bold=True)
            for number, line in enumerate(wrapped):
                if number:
                    self.y += size * 1.3
                self.writer.text(MARGIN_PT + label_width, self.y, line, size)

    def disclaimer(self, text: str) -> None:
        lines = wrap(text, self.width - 16, 9.5, bold=True)
        height = 12 + 12.5 * len(lines)
        self.need(height + 6)
        self.y += 6
        self.writer.rectangle(MARGIN_PT, self.y, self.width, height, (1.0, 0.95, 0.8), (0.88, 0.72, 0.0))
        for number, line in enumerate(lines):
            self.writer.text(MARGIN_PT + 8, self.y + 16 + 12.5 * number, line, 9.5, bold=True)
        self.y += height

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        """A table whose columns are as wide as their content, shrunk to the page width when needed."""
        size = 7.5
        natural = []
        for index, title in enumerate(header):
            words = [text_width_pt(word, size, True) for word in title.split()]
            cells = [text_width_pt(row[index], size) for row in rows]
            natural.append(max(words + cells + [12.0]) + 6.0)
        scale = min(1.0, self.width / sum(natural))
        widths = [width * scale for width in natural]
        widths[-1] += self.width - sum(widths)
        header_lines = [wrap(cell, width - 4, size, True) for cell, width in zip(header, widths)]
        header_height = 4 + size * 1.25 * max(len(lines) for lines in header_lines)

        def draw_header() -> None:
            x = MARGIN_PT
            self.writer.rectangle(MARGIN_PT, self.y, self.width, header_height, (0.93, 0.94, 0.96))
            for lines, width in zip(header_lines, widths):
                for number, line in enumerate(lines):
                    self.writer.text(x + 2, self.y + size * 1.25 * (number + 1), line, size, bold=True)
                x += width
            self.y += header_height

        self.need(header_height + 14)
        draw_header()
        for row in rows:
            cell_lines = [wrap(cell, width - 4, size) for cell, width in zip(row, widths)]
            height = 4 + size * 1.25 * max(len(lines) for lines in cell_lines)
            if self.y + height > PAGE_HEIGHT_PT - MARGIN_PT - 14:
                self.new_page()
                draw_header()
            x = MARGIN_PT
            for lines, width in zip(cell_lines, widths):
                for number, line in enumerate(lines):
                    self.writer.text(x + 2, self.y + size * 1.25 * (number + 1), line, size)
                x += width
            self.y += height
            self.writer.rectangle(MARGIN_PT, self.y - 0.4, self.width, 0.4, (0.75, 0.75, 0.75))


def _read_png(path: Path) -> np.ndarray:
    import SimpleITK as sitk

    array = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    return array[..., :3] if array.ndim == 3 else np.repeat(array[..., None], 3, axis=2)


def render_pdf(document: dict, *, key_images: Mapping[int, KeyImage] = {},
               views: Mapping[str, Path] = {}) -> bytes:
    """The report as PDF bytes: the same content as the HTML report (:mod:`livermets.report.html`)."""
    from livermets.report.html import key_image_caption

    writer = PdfWriter("LiverMets report")
    layout = _Layout(writer)
    layout.paragraph("LiverMets report: liver metastases", 17, bold=True)
    layout.disclaimer(document["disclaimer"])
    layout.heading("Patient and study")
    layout.facts(case_lines(document["case"]))
    layout.heading("Sequences used")
    for line in sequence_lines(document["sequences"]) or [MISSING]:
        layout.paragraph(f"- {line}", 9.5)
    layout.heading("Liver")
    layout.facts(liver_lines(document["liver"]))
    header, rows = lesion_rows(document)
    layout.heading(f"Lesions ({len(rows)})")
    if rows:
        layout.table(header, rows)
    else:
        layout.paragraph("No lesion was found.")
    if document.get("plan") is not None:
        layout.heading("Resection plan")
        layout.facts(plan_lines(document["plan"]))
    if views:
        layout.heading("3D views")
        side = (layout.width - 10) / 2
        layout.need(side + 24)
        for number, path in enumerate(views.values()):
            writer.image(_read_png(path), MARGIN_PT + number * (side + 10), layout.y, side, side)
        layout.y += side
        layout.paragraph("Liver semi-transparent, portal veins light blue, hepatic veins and IVC dark blue, "
                         "lesions yellow with their numbers.", 8.5)
    if document["lesions"]:
        layout.heading("Lesion details")
    for lesion in document["lesions"]:
        picture = 170.0
        layout.need(picture + 40)
        layout.paragraph(f"Lesion {lesion['id']}", 11, bold=True)
        top = layout.y + 4
        key_image = key_images.get(int(lesion["id"]))
        if key_image is not None:
            writer.image(_read_png(key_image.path), MARGIN_PT, top, picture, picture)
            caption = wrap(key_image_caption(lesion, key_image), picture, 6.5)
            for number, line in enumerate(caption):
                writer.text(MARGIN_PT, top + picture + 9 + 8 * number, line, 6.5)
            bottom = top + picture + 12 + 8 * len(caption)
        else:
            bottom = top
        left = MARGIN_PT + picture + 14
        y = top
        for name, text in lesion_details(lesion):
            for line in wrap(f"{name}: {text}", PAGE_WIDTH_PT - MARGIN_PT - left, 7.5):
                y += 9.5
                if y > PAGE_HEIGHT_PT - MARGIN_PT - 14:
                    layout.new_page()
                    y, bottom = layout.y + 9.5, layout.y
                writer.text(left, y, line, 7.5)
        layout.y = max(y, bottom) + 8
    layout.heading("Method")
    layout.facts(method_lines(document))
    layout.paragraph(METHOD_TEXT, 9)
    layout.disclaimer(document["disclaimer"])
    total = len(writer.pages)
    version = document["method"]["version"]
    for number, page in enumerate(writer.pages, start=1):
        footer = f"LiverMets {version} - research use only - page {number} of {total}"
        page.append(b"BT /F1 7.5 Tf 0.4 0.4 0.4 rg %.2f %.2f Td %s Tj ET" % (MARGIN_PT, MARGIN_PT / 2,
                                                                           pdf_string(footer)))
    return writer.to_bytes()


def write_pdf(document: dict, path: Path, *, key_images: Mapping[int, KeyImage] = {},
              views: Mapping[str, Path] = {}) -> Path:
    """Write the PDF report (temporary file, then rename)."""
    return write_atomically(Path(path), render_pdf(document, key_images=key_images, views=views))
