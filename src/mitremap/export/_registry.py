"""The one list of export formats, as the CLI, the server and the batch runner offer them."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mitremap.errors import MitreMapError
from mitremap.export._base import DEFAULT_OPTIONS, Exportable, ExportOptions
from mitremap.export._docx import MEDIA_TYPE as DOCX_MEDIA_TYPE
from mitremap.export._docx import to_docx
from mitremap.export._html import to_html
from mitremap.export._markdown import to_markdown
from mitremap.export._misp import to_misp
from mitremap.export._navigator import to_navigator
from mitremap.export._stix import to_stix
from mitremap.export._tables import to_csv, to_json

Renderer = Callable[[Exportable, bool, ExportOptions], str | bytes]
"""(analysis, with indicators, options) → content."""


@dataclass(frozen=True)
class ExportFormat:
    """One export format. `binary` formats render bytes, which go to a file, never a terminal.
    `for_people`: a document people read (indicators defanged unless `refang`)."""

    name: str
    extension: str  # for files written per report, e.g. ``.layer.json``
    media_type: str  # for HTTP answers
    renderer: Renderer
    binary: bool = False
    for_people: bool = False

    def render(
        self, analysis: Exportable, iocs: bool = False, options: ExportOptions | None = None
    ) -> str | bytes:
        """The analysis in this format (with indicators where the format has a choice)."""
        return self.renderer(analysis, iocs, options or DEFAULT_OPTIONS)

    @property
    def content_type(self) -> str:
        """The HTTP Content-Type: text formats say their charset, binary ones have none."""
        return self.media_type if self.binary else self.media_type + "; charset=utf-8"


def _json_text(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


EXPORT_FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat("json", ".json", "application/json", lambda a, _, o: to_json(a, options=o)),
        ExportFormat("csv", ".csv", "text/csv", lambda a, iocs, o: to_csv(a, iocs=iocs, options=o)),
        ExportFormat(
            "navigator",
            ".layer.json",
            "application/json",
            lambda a, _, o: _json_text(to_navigator(a, options=o)),
        ),
        ExportFormat(
            "stix",
            ".stix.json",
            "application/json",
            lambda a, _, o: _json_text(to_stix(a, None, o)),
        ),
        ExportFormat(
            "misp", ".misp.json", "application/json", lambda a, _, o: _json_text(to_misp(a, o))
        ),
        ExportFormat(
            "markdown", ".md", "text/markdown", lambda a, _, o: to_markdown(a, o), False, True
        ),
        ExportFormat("html", ".html", "text/html", lambda a, _, o: to_html(a, o), False, True),
        ExportFormat("docx", ".docx", DOCX_MEDIA_TYPE, lambda a, _, o: to_docx(a, o), True, True),
    )
}
FORMATS = tuple(EXPORT_FORMATS)


def export_format(name: str) -> ExportFormat:
    """The registered format called `name`, or a user error listing the known ones."""
    try:
        return EXPORT_FORMATS[name]
    except KeyError:
        raise MitreMapError(f"Unknown format {name!r}; use one of: {', '.join(FORMATS)}") from None


def render(
    analysis: Exportable, fmt: str, iocs: bool = False, options: ExportOptions | None = None
) -> str | bytes:
    """The analysis in one of `FORMATS`: text, or bytes for a binary format (docx)."""
    return export_format(fmt).render(analysis, iocs, options)
