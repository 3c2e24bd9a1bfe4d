"""The one list of export formats, as the CLI, the server and the batch runner offer them."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mitremap.errors import MitreMapError
from mitremap.export._base import Exportable
from mitremap.export._docx import MEDIA_TYPE as DOCX_MEDIA_TYPE
from mitremap.export._docx import to_docx
from mitremap.export._html import to_html
from mitremap.export._markdown import to_markdown
from mitremap.export._misp import to_misp
from mitremap.export._navigator import to_navigator
from mitremap.export._stix import to_stix
from mitremap.export._tables import to_csv, to_json


@dataclass(frozen=True)
class ExportFormat:
    """One export format. `binary` formats render bytes, which go to a file, never a terminal."""

    name: str
    extension: str  # for files written per report, e.g. ``.layer.json``
    media_type: str  # for HTTP answers
    render: Callable[[Exportable, bool], str | bytes]  # (analysis, with indicators) -> content
    binary: bool = False

    @property
    def content_type(self) -> str:
        """The HTTP Content-Type: text formats say their charset, binary ones have none."""
        return self.media_type if self.binary else self.media_type + "; charset=utf-8"


def _json_text(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


EXPORT_FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat("json", ".json", "application/json", lambda a, _: to_json(a)),
        ExportFormat("csv", ".csv", "text/csv", lambda a, iocs: to_csv(a, iocs=iocs)),
        ExportFormat(
            "navigator", ".layer.json", "application/json", lambda a, _: _json_text(to_navigator(a))
        ),
        ExportFormat("stix", ".stix.json", "application/json", lambda a, _: _json_text(to_stix(a))),
        ExportFormat("misp", ".misp.json", "application/json", lambda a, _: _json_text(to_misp(a))),
        ExportFormat("markdown", ".md", "text/markdown", lambda a, _: to_markdown(a)),
        ExportFormat("html", ".html", "text/html", lambda a, _: to_html(a)),
        ExportFormat("docx", ".docx", DOCX_MEDIA_TYPE, lambda a, _: to_docx(a), binary=True),
    )
}
FORMATS = tuple(EXPORT_FORMATS)


def export_format(name: str) -> ExportFormat:
    """The registered format called `name`, or a user error listing the known ones."""
    try:
        return EXPORT_FORMATS[name]
    except KeyError:
        raise MitreMapError(f"Unknown format {name!r}; use one of: {', '.join(FORMATS)}") from None


def render(analysis: Exportable, fmt: str, iocs: bool = False) -> str | bytes:
    """The analysis in one of `FORMATS`: text, or bytes for a binary format (docx)."""
    return export_format(fmt).render(analysis, iocs)
