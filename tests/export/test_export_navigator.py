"""The Navigator layer, read by MITRE's own layer library: `mitreattack-python` loads it and
exports it to SVG and to Excel, against the ATT&CK bundle of the data mirror (never downloaded).
Sub-techniques found must be visible in both, coloured by their score."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from mitremap import export
from tests.conftest import coverage_paused
from tests.fakes import make_analysis

navlayers = pytest.importorskip("mitreattack.navlayers")
openpyxl = pytest.importorskip("openpyxl")

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WHITE = "rgb(255, 255, 255)"


# what a matrix is drawn from: the rest of the bundle (20,000 relationships, software,
# groups, detections) only made each exporter's start 6 s slower
MATRIX_TYPES = {
    "attack-pattern",
    "x-mitre-tactic",
    "x-mitre-matrix",
    "identity",
    "marking-definition",
}


@pytest.fixture(scope="module")
def exporters(shared_data, tmp_path_factory):
    """MITRE's SVG and Excel exporters over the mirror's ATT&CK 18.1, its matrix part."""
    full = json.loads((shared_data / "attack" / "enterprise-attack-18.1.json").read_bytes())
    full["objects"] = [
        o
        for o in full["objects"]
        if o["type"] in MATRIX_TYPES
        or (o["type"] == "relationship" and o.get("relationship_type") == "subtechnique-of")
    ]
    bundle = tmp_path_factory.mktemp("attack") / "enterprise-attack-matrix.json"
    bundle.write_text(json.dumps(full), encoding="utf-8")
    with coverage_paused():  # mitreattack-python reading the bundle: nothing of ours runs
        return (
            navlayers.ToSvg(domain="enterprise-attack", source="local", resource=str(bundle)),
            navlayers.ToExcel(domain="enterprise-attack", source="local", resource=str(bundle)),
        )


def _layer(analysis):
    layer = navlayers.Layer()
    layer.from_dict(export.to_navigator(analysis))
    return layer


def _fills(svg_path) -> dict[str, set[str]]:
    """Each technique cell's fill colours in the SVG (a technique shows once per tactic)."""
    fills: dict[str, set[str]] = {}
    for rect in ET.parse(svg_path).getroot().iter("{http://www.w3.org/2000/svg}rect"):
        style, ident = rect.get("style", ""), rect.get("class", "")
        if ident.startswith("T") and "fill:" in style:
            fills.setdefault(ident, set()).add(style.split("fill:")[1].strip(" ;"))
    return fills


def _cells(xlsx_path) -> tuple[list[str], dict[str, set[str]]]:
    """The workbook's sheet names, and each technique cell's fill colours."""
    book = openpyxl.load_workbook(xlsx_path)
    cells: dict[str, set[str]] = {}
    for row in book.active.iter_rows():
        for cell in row:
            if isinstance(cell.value, str) and cell.value.startswith("T"):
                ident = cell.value.split(":")[0]
                cells.setdefault(ident, set()).add(str(cell.fill.fgColor.rgb))
    return book.sheetnames, cells


def test_layer_loads_and_exports_with_sub_techniques_visible(exporters, tmp_path):
    svg, excel = exporters
    layer = _layer(make_analysis())
    assert layer.layer.name == "MitreMap - Report <b>one</b>"  # whole: Navigator allows 255
    layer.layer.name = export.sheet_title(layer.layer.name)  # Excel's sheet name: cut
    svg.to_svg(layer, filepath=str(tmp_path / "layer.svg"))
    fills = _fills(tmp_path / "layer.svg")
    assert "T1053.005" in fills  # the sub-technique is drawn: its parent is expanded
    assert WHITE not in fills["T1053.005"] and WHITE not in fills["T1566"]  # scored: coloured
    assert fills["T1053"] == {WHITE} and fills["T1003"] == {WHITE}  # listed or absent: blank
    excel.to_xlsx(layer, filepath=str(tmp_path / "layer.xlsx"))
    sheets, cells = _cells(tmp_path / "layer.xlsx")
    assert sheets == ["MitreMap - Report <b>one<-b>"]  # a valid sheet title
    assert cells["T1053.005"] == {"00E54428"} and cells["T1566"] == {"00F48554"}
    assert cells["T1003"] == {"00000000"}


def test_a_real_analysis_loads_and_exports(exporters, real_mm, tmp_path):
    from mitremap.documents import read_document
    from tests.conftest import REPO

    result = real_mm.analyze(read_document(REPO / "examples" / "apt-report.md"))
    subs = [h.id for h in result.techniques if "." in h.id]
    assert subs, "the sample report should yield sub-techniques"
    layer = _layer(result)
    assert layer.layer.name == (
        "MitreMap - Operation Glass Harbor: a spear-phishing campaign against logistics firms"
    )  # the whole title, not cut at 31 characters
    layer.layer.name = export.sheet_title(layer.layer.name)  # only the Excel sheet name is
    assert len(layer.layer.name) <= 31 and ":" not in layer.layer.name
    svg, excel = exporters
    svg.to_svg(layer, filepath=str(tmp_path / "real.svg"))
    fills = _fills(tmp_path / "real.svg")
    for ident in subs:
        assert ident in fills and WHITE not in fills[ident], ident
    excel.to_xlsx(layer, filepath=str(tmp_path / "real.xlsx"))
    _, cells = _cells(tmp_path / "real.xlsx")
    for ident in subs:
        assert "00000000" not in cells[ident], ident
