"""A Word report (`.docx`, python-docx): what TRAM's users hand on to people who read reports.

Title and source, the techniques table (id, name, tactics, confidence, best evidence), the
ATT&CK matrix with its cells shaded by confidence, every evidence passage under its technique,
and the indicators table. Made to be read: each table's columns are as wide as what they hold
(a technique id narrow, the evidence wide) in a small type, so the sample report's 14
techniques fit on about a page; technique ids link to their ATT&CK pages; indicators are
defanged (`hxxps://evil[.]com`; Word turns URLs into live links) unless `refang`. Text from the
document is cleaned of what XML cannot hold; long passages and very long indicator lists are
cut, and the document says so.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mitremap import __version__
from mitremap.attack import ATTACK_URL
from mitremap.errors import MissingExtraError
from mitremap.export._base import (
    DEFAULT_OPTIONS,
    Exportable,
    ExportOptions,
    best_evidence_text,
    colour,
    dark,
    for_people,
    matrix,
    origin,
    read,
    report_time,
    tactic_names,
    title,
    value_for_people,
    xml_text,
)

if TYPE_CHECKING:
    from mitremap.schema import IndicatorJSON, TechniqueJSON

MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
MAX_PASSAGE = 2_000  # characters of one evidence passage
MAX_INDICATORS = 2_000  # rows of the indicators table
EVIDENCE_CHARS = 220  # of the best passage, in the techniques table (all of them further on)
TABLE_POINTS = 8
TECHNIQUE_COLUMNS = (("technique", 0.14), ("name", 0.19), ("tactics", 0.16), ("conf.", 0.09))
"""The techniques table's columns and their shares of the text width (evidence: the rest)."""
INDICATOR_COLUMNS = (("type", 0.13), ("value", 0.42), ("as written", 0.37), ("offset", 0.08))


def to_docx(analysis: Exportable, options: ExportOptions = DEFAULT_OPTIONS) -> bytes:
    """The analysis as a Word document (see the module docstring)."""
    try:
        import docx
    except ImportError:
        raise MissingExtraError("python-docx", "docx", "Word export") from None
    data, _ = read(analysis, options)
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
        _techniques_table(document, hits, options)
        document.add_heading("ATT&CK matrix", level=1)
        _matrix(document, hits)
        document.add_heading("Evidence", level=1)
        _evidence(document, hits, options)
    else:
        document.add_paragraph(f"No technique reached the threshold of {threshold}.")

    indicators = data.get("indicators")
    if indicators is not None:
        document.add_heading("Indicators of compromise", level=1)
        _indicators(document, indicators, options)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _techniques_table(document: Any, hits: list[TechniqueJSON], options: ExportOptions) -> None:
    """One row a technique (its id a link to its ATT&CK page), with its best evidence cut."""
    techniques = [
        (
            t["technique"],
            t.get("technique_name", ""),
            ", ".join(tactic_names(t)),
            f"{float(t.get('confidence_score', 0)):.2f}",
            for_people(_cut(best_evidence_text(t), EVIDENCE_CHARS), options),
        )
        for t in hits
    ]
    widths = (*TECHNIQUE_COLUMNS, ("evidence", 1 - sum(w for _, w in TECHNIQUE_COLUMNS)))
    table = _table(document, widths, techniques)
    for row, t in zip(table.rows[1:], hits, strict=True):
        _link_cell(row.cells[0], t.get("webpage_link", ""), t["technique"])


def _matrix(document: Any, hits: list[TechniqueJSON]) -> None:
    """The techniques by tactic, each cell shaded by its confidence (white type on the dark)."""
    from docx.shared import Pt, RGBColor

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


def _evidence(document: Any, hits: list[TechniqueJSON], options: ExportOptions) -> None:
    """Every evidence passage (cut at `MAX_PASSAGE`) under its technique's heading."""
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
            paragraph.add_run(xml_text(for_people(passage[:MAX_PASSAGE], options)) + cut)


def _indicators(document: Any, indicators: list[IndicatorJSON], options: ExportOptions) -> None:
    """The indicators table (the first `MAX_INDICATORS`, the rest counted)."""
    if not indicators:
        document.add_paragraph("No indicator found.")
        return
    rows = [
        (
            i["type"],
            value_for_people(i["type"], i["value"], options),
            value_for_people(i["type"], i["raw"], options),
            str(int(i["start"])),
        )
        for i in indicators[:MAX_INDICATORS]
    ]
    _table(document, INDICATOR_COLUMNS, rows)
    if len(indicators) > MAX_INDICATORS:
        document.add_paragraph(
            f"{len(indicators) - MAX_INDICATORS} more indicators: see the JSON export."
        )


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _table(
    document: Any, columns: Sequence[tuple[str, float]], rows: Sequence[Sequence[Any]]
) -> Any:
    """A table in a small type whose columns take their share of the text width (Word and
    LibreOffice honour fixed widths; autofit would make every column alike)."""
    from docx.enum.table import WD_TABLE_ALIGNMENT
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    section = document.sections[-1]
    width = section.page_width - section.left_margin - section.right_margin
    widths = [int(width * share) for _, share in columns]
    table = document.add_table(rows=1, cols=len(columns))
    table.style = "Light Grid Accent 1"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    table.autofit = False
    layout = OxmlElement("w:tblLayout")
    layout.set(qn("w:type"), "fixed")
    table._tbl.tblPr.append(layout)
    for column, size in zip(table.columns, widths, strict=True):
        column.width = size
    _fill(table.rows[0], [name for name, _ in columns], widths)
    for values in rows:
        _fill(table.add_row(), values, widths)
    return table


def _fill(row: Any, values: Sequence[Any], widths: list[int]) -> None:
    from docx.shared import Pt

    for cell, text, size in zip(row.cells, values, widths, strict=True):
        cell.width = size
        paragraph = cell.paragraphs[0]
        paragraph.paragraph_format.space_after = Pt(0)
        paragraph.add_run(xml_text(text)).font.size = Pt(TABLE_POINTS)


def _link_cell(cell: Any, url: str, text: str) -> None:
    """Make a cell's text a link to an ATT&CK page (python-docx has no API for links)."""
    if not url.startswith(ATTACK_URL + "/"):
        return
    from docx.opc.constants import RELATIONSHIP_TYPE
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    paragraph = cell.paragraphs[0]
    for run in list(paragraph.runs):
        run._r.getparent().remove(run._r)
    link = OxmlElement("w:hyperlink")
    link.set(qn("r:id"), paragraph.part.relate_to(url, RELATIONSHIP_TYPE.HYPERLINK, True))
    run = OxmlElement("w:r")
    properties = OxmlElement("w:rPr")
    for tag, attribute, value in (
        ("w:color", "w:val", "0563C1"),
        ("w:u", "w:val", "single"),
        ("w:sz", "w:val", str(TABLE_POINTS * 2)),
    ):
        element = OxmlElement(tag)
        element.set(qn(attribute), value)
        properties.append(element)
    run.append(properties)
    label = OxmlElement("w:t")
    label.text = xml_text(text)
    run.append(label)
    link.append(run)
    paragraph._p.append(link)


def _shade(cell: Any, fill: str) -> None:
    """Fill a table cell with a `#rrggbb` colour (python-docx has no API for it)."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    shading = OxmlElement("w:shd")
    shading.set(qn("w:val"), "clear")
    shading.set(qn("w:color"), "auto")
    shading.set(qn("w:fill"), fill.lstrip("#"))
    cell._tc.get_or_add_tcPr().append(shading)
