"""Self-contained HTML report of a results document.

Pictures are embedded as base64 PNG data, so the report is one file that can be mailed or
archived without its folder. Every text that comes from DICOM, from files or from the user is
escaped with :func:`html.escape`; the page has no script, and its content security policy forbids
any (and any external resource).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Mapping, Sequence

from livermets.files import write_atomically
from livermets.report.keyimages import KeyImage
from livermets.report.tables import (METHOD_TEXT, MISSING, case_lines, format_number, lesion_details,
                                     lesion_rows, liver_lines, method_lines, plan_lines, sequence_lines)

# Defence in depth beside escaping: the page may load nothing and run no script.
CONTENT_POLICY = ('<meta http-equiv="Content-Security-Policy" '
                  "content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">")
STYLE = """
body { font-family: Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1100px; color: #1d1d1f; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; border-bottom: 1px solid #ccc; }
h3 { font-size: 15px; margin: 16px 0 4px; }
.disclaimer { background: #fff3cd; border: 1px solid #e0b800; padding: 8px 12px; font-weight: bold; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0; }
th, td { border: 1px solid #bbb; padding: 3px 6px; text-align: right; }
th { background: #eef1f5; } td.text, th.text { text-align: left; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 2px 14px; font-size: 14px; }
dl.facts dt { font-weight: bold; } dl.facts dd { margin: 0; }
.lesion { display: flex; gap: 18px; margin: 0 0 12px; align-items: flex-start; }
.lesion img { width: 256px; height: 256px; border: 1px solid #999; }
.lesion table { font-size: 12px; } .views img { width: 45%; margin-right: 2%; }
.caption { font-size: 12px; color: #444; max-width: 520px; }
"""


def _e(value) -> str:
    """Escape any text for HTML content and attributes."""
    return html.escape(str(value), quote=True)


def _facts(lines: Sequence[tuple[str, str]]) -> str:
    items = "".join(f"<dt>{_e(name)}</dt><dd>{_e(text)}</dd>" for name, text in lines)
    return f'<dl class="facts">{items}</dl>'


def _image(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}">'


def key_image_caption(lesion: dict, key_image: KeyImage) -> str:
    """Plain-text caption of a key image: slice, field of view and what the colours mean."""
    return (f"Lesion {lesion['id']}: axial slice at z = {key_image.slice_z_ras_mm:.1f} mm (RAS), "
            f"field of view {key_image.field_of_view_mm:.0f} mm, patient right on the left. Yellow: lesion "
            f"contour; red: RECIST long axis ({format_number(lesion.get('recist_long_mm'), 1)} mm); cyan: "
            f"short axis ({format_number(lesion.get('recist_short_mm'), 1)} mm); orange: other lesions; "
            "green: liver outline; white bar: 10 mm.")


def render_html(document: dict, *, key_images: Mapping[int, KeyImage] = {},
                views: Mapping[str, Path] = {}) -> str:
    """The report page as a string; ``key_images`` by lesion id, ``views`` 3D picture by view name."""
    case = document["case"]
    parts = ['<!DOCTYPE html>', '<html lang="en">', "<head>", '<meta charset="utf-8">', CONTENT_POLICY,
             "<title>LiverMets report</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
             "<h1>LiverMets report: liver metastases</h1>",
             f'<p class="disclaimer">{_e(document["disclaimer"])}</p>',
             "<h2>Patient and study</h2>", _facts(case_lines(case)),
             "<h2>Sequences used</h2>", "<ul>"]
    sequences = sequence_lines(document["sequences"]) or [MISSING]
    parts += [f"<li>{_e(line)}</li>" for line in sequences]
    parts += ["</ul>", "<h2>Liver</h2>", _facts(liver_lines(document["liver"]))]

    header, rows = lesion_rows(document)
    parts.append(f"<h2>Lesions ({len(rows)})</h2>")
    if rows:
        parts.append('<table id="lesions"><thead><tr>'
                     + "".join(f'<th class="{"text" if i == 1 else "num"}">{_e(cell)}</th>'
                               for i, cell in enumerate(header))
                     + "</tr></thead><tbody>")
        for row in rows:
            parts.append("<tr>" + "".join(f'<td class="{"text" if i == 1 else "num"}">{_e(cell)}</td>'
                                          for i, cell in enumerate(row)) + "</tr>")
        parts.append("</tbody></table>")
    else:
        parts.append("<p>No lesion was found.</p>")

    if document.get("plan") is not None:
        parts += ["<h2>Resection plan</h2>", _facts(plan_lines(document["plan"]))]

    if views:
        parts += ["<h2>3D views</h2>", '<div class="views">']
        parts += [_image(path, f"{name} 3D view") for name, path in views.items()]
        parts += ['<p class="caption">Liver semi-transparent, portal veins light blue, hepatic veins and IVC '
                  "dark blue, lesions yellow with their numbers.</p>", "</div>"]

    if document["lesions"]:
        parts.append("<h2>Lesion details</h2>")
    for lesion in document["lesions"]:
        number = int(lesion["id"])
        parts.append(f'<h3 id="lesion-{number}">Lesion {number}</h3><div class="lesion">')
        key_image = key_images.get(number)
        if key_image is not None:
            picture = _image(key_image.path, f"Lesion {number}")
            caption = _e(key_image_caption(lesion, key_image))
            parts.append(f'<figure>{picture}<figcaption class="caption">{caption}</figcaption></figure>')
        parts.append('<table class="details"><tbody>')
        parts += [f'<tr><th class="text">{_e(name)}</th><td class="text">{_e(text)}</td></tr>'
                  for name, text in lesion_details(lesion)]
        parts.append("</tbody></table></div>")

    parts += ["<h2>Method</h2>", _facts(method_lines(document)), f"<p>{_e(METHOD_TEXT)}</p>",
              f'<p class="disclaimer">{_e(document["disclaimer"])}</p>', "</body>", "</html>"]
    return "\n".join(parts) + "\n"


def write_html(document: dict, path: Path, *, key_images: Mapping[int, KeyImage] = {},
               views: Mapping[str, Path] = {}) -> Path:
    """Write the self-contained report page (temporary file, then rename)."""
    text = render_html(document, key_images=key_images, views=views)
    return write_atomically(Path(path), text.encode("utf-8"))
