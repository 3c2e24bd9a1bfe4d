"""Exports an analysis in the formats analysts' tools read as they are.

JSON (the CLI schema), CSV, an ATT&CK Navigator layer (format 4.5), a STIX 2.1 bundle, a MISP
event, Markdown, a standalone HTML report and a Word document. Each is checked in the tests by
its consumer's own library (mitreattack-python, stix2-validator --strict, PyMISP, pandas,
python-docx). Every exporter reads the analysis through its stable JSON form
(`Analysis.to_dict()`) plus the document text, so they stay independent of the model's classes.
Everything that comes from the document is escaped: a report is data, never markup. What a
user decides about an export — the local path, defanged or live indicators, known-benign values,
TLP, MISP's distribution and threat level — is one `ExportOptions`, which every format takes.

`EXPORT_FORMATS` is the one list of formats: the CLI and the server offer what it holds.
"""

from __future__ import annotations

from mitremap.export._base import Exportable, ExportOptions, public_origin
from mitremap.export._defend import html_section, markdown_section
from mitremap.export._docx import to_docx
from mitremap.export._html import html_fragment, to_html
from mitremap.export._markdown import to_markdown
from mitremap.export._misp import galaxy_tag, to_misp
from mitremap.export._navigator import (
    DIFF_COLOURS,
    LAYER_FORMAT,
    NAVIGATOR_VERSION,
    diff_layer,
    layer_name,
    sheet_title,
    to_navigator,
)
from mitremap.export._registry import EXPORT_FORMATS, FORMATS, ExportFormat, export_format, render
from mitremap.export._stix import stix_pattern, to_stix
from mitremap.export._tables import CSV_COLUMNS, SafeWriter, to_csv, to_json

__all__ = [
    "CSV_COLUMNS",
    "DIFF_COLOURS",
    "EXPORT_FORMATS",
    "FORMATS",
    "LAYER_FORMAT",
    "NAVIGATOR_VERSION",
    "ExportFormat",
    "ExportOptions",
    "Exportable",
    "SafeWriter",
    "diff_layer",
    "export_format",
    "galaxy_tag",
    "html_fragment",
    "html_section",
    "layer_name",
    "markdown_section",
    "public_origin",
    "render",
    "sheet_title",
    "stix_pattern",
    "to_csv",
    "to_docx",
    "to_html",
    "to_json",
    "to_markdown",
    "to_misp",
    "to_navigator",
    "to_stix",
]
