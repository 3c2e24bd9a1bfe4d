"""A Word report (`.docx`, python-docx): what TRAM's users hand on to people who read reports.

Title and source, the techniques table (id, name, tactics, confidence, best evidence), the
ATT&CK matrix with its cells shaded by confidence, every evidence passage under its technique,
and the indicators table. Text from the document is cleaned of what XML cannot hold; long
passages and very long indicator lists are cut, and the document says so.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from mitremap import __version__
from mitremap.errors import MissingExtraError
from mitremap.export._base import (
    Exportable,
    best_evidence_text,
    colour,
    dark,
    matrix,
    origin,
    read,
    report_time,
    tactic_names,
    title,
    xml_text,
)

MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
MAX_PASSAGE = 2_000  # characters of one evidence passage
MAX_INDICATORS = 2_000  # rows of the indicators table


def to_docx(analysis: Exportable) -> bytes:
    """The analysis as a Word document (see the module docstring)."""
    try:
        import docx
        from docx.shared import Pt, RGBColor
    except ImportError:
        raise MissingExtraError("python-docx", "docx", "Word export") from None
    data, _ = read(analysis)
    name = xml_text(title(data))
    threshold = data.get("threshold", 0.6)
    hits = data.get("techniques", ())
    document = docx.Document()
    properties = document.core_properties
    properties.title, properties.author = f"MitreMap: {name}"[:255], "MitreMap"
    properties.created = properties.modified = report_time(data).replace(tzinfo=None)
    document.add_heading(f"MitreMap: {name}", level=0)
    document.add_paragraph(
        xml_text(f"Source: {origin(data) or 'text'} · MitreMap {__version__} · ")
        + f"techniques at or above a confidence of {threshold}"
    )

    document.add_heading("ATT&CK techniques", level=1)
    if hits:
        techniques = [
            (
                t["technique"],
                t.get("technique_name", ""),
                ", ".join(tactic_names(t)),
                f"{float(t.get('confidence_score', 0)):.2f}",
                best_evidence_text(t)[:300],
            )
            for t in hits
        ]
        _table(document, ("technique", "name", "tactics", "confidence", "evidence"), techniques)

        document.add_heading("ATT&CK matrix", level=1)
        columns = matrix(list(hits))
        grid = document.add_table(rows=1 + max(len(f) for _, f in columns), cols=len(columns))
        grid.style = "Table Grid"
        for c, (tactic, found) in enumerate(columns):
            head = grid.cell(0, c).paragraphs[0].add_run(xml_text(tactic))
            head.bold, head.font.size = True, Pt(7)
            for r, t in enumerate(found, start=1):
                confidence = float(t.get("confidence_score", 0))
                cell = grid.cell(r, c)
                _shade(cell, colour(confidence))
                run = cell.paragraphs[0].add_run(
                    xml_text(f"{t['technique']} {t.get('technique_name', '')}")
                )
                run.font.size = Pt(7)
                if dark(confidence):
                    run.font.color.rgb = RGBColor(0xFF, 0xFF, 0xFF)

        document.add_heading("Evidence", level=1)
        for t in hits:
            document.add_heading(
                xml_text(
                    f"{t['technique']} {t.get('technique_name', '')} "
                    f"({float(t.get('confidence_score', 0)):.2f})"
                ),
                level=2,
            )
            for e in t.get("evidence", ()):
                passage = " ".join(e.get("text", "").split())
                cut = "…" if len(passage) > MAX_PASSAGE else ""
                paragraph = document.add_paragraph(style="Quote")
                paragraph.add_run(f"{float(e.get('confidence', 0)):.2f}  ").bold = True
                paragraph.add_run(xml_text(passage[:MAX_PASSAGE]) + cut)
    else:
        document.add_paragraph(f"No technique reached the threshold of {threshold}.")

    indicators = data.get("indicators")
    if indicators is not None:
        document.add_heading("Indicators of compromise", level=1)
        if indicators:
            rows = [
                (i["type"], i["value"], i["raw"], str(int(i["start"])))
                for i in indicators[:MAX_INDICATORS]
            ]
            _table(document, ("type", "value", "as written", "offset"), rows)
            if len(indicators) > MAX_INDICATORS:
                document.add_paragraph(
                    f"{len(indicators) - MAX_INDICATORS} more indicators: see the JSON export."
                )
        else:
            document.add_paragraph("No indicator found.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _table(document: Any, header: tuple[str, ...], rows: Sequence[Sequence[Any]]) -> None:
    table = document.add_table(rows=1, cols=len(header))
    table.style = "Light Grid Accent 1"
    for cell, text in zip(table.rows[0].cells, header, strict=True):
        cell.text = text
    for row in rows:
        for cell, text in zip(table.add_row().cells, row, strict=True):
            cell.text = xml_text(text)


def _shade(cell: Any, fill: str) -> None:
    """Fill a table cell with a `#rrggbb` colour (python-docx has no API for it)."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    shading = OxmlElement("w:shd")
    shading.set(qn("w:val"), "clear")
    shading.set(qn("w:color"), "auto")
    shading.set(qn("w:fill"), fill.lstrip("#"))
    cell._tc.get_or_add_tcPr().append(shading)
