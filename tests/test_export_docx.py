"""The Word report, read back with python-docx; and binary formats through the CLI."""

from __future__ import annotations

import io

import pytest

from mitremap import export
from mitremap.documents import Document
from tests.fakes import TEXT, FakeAnalysis, make_analysis

docx = pytest.importorskip("docx")


def _read(content: bytes):
    return docx.Document(io.BytesIO(content))


def _rows(table) -> list[list[str]]:
    return [[cell.text for cell in row.cells] for row in table.rows]


def _fill(cell) -> str | None:
    shading = cell._tc.tcPr.find(docx.oxml.ns.qn("w:shd")) if cell._tc.tcPr is not None else None
    return None if shading is None else shading.get(docx.oxml.ns.qn("w:fill"))


def test_report_has_title_techniques_matrix_evidence_and_indicators():
    content = export.render(make_analysis(), "docx", iocs=True)
    assert isinstance(content, bytes) and export.EXPORT_FORMATS["docx"].binary
    document = _read(content)
    paragraphs = [(p.style.name, p.text) for p in document.paragraphs]
    assert paragraphs[0] == ("Title", "MitreMap: Report <b>one</b>")  # text, never markup
    assert ("Heading 1", "Evidence") in paragraphs
    assert ("Heading 2", "T1053.005 Scheduled Task (0.91)") in paragraphs
    assert (
        "Quote",
        "0.91  It created a scheduled task named Updater for persistence.",
    ) in paragraphs
    techniques, grid, indicators = document.tables
    assert _rows(techniques) == [
        ["technique", "name", "tactics", "confidence", "evidence"],
        [
            "T1053.005",
            "Scheduled Task",
            "Execution, Persistence, Privilege Escalation",
            "0.91",
            "It created a scheduled task named Updater for persistence.",
        ],
        [
            "T1566",
            "Phishing",
            "Initial Access",
            "0.70",
            "The actor sent <script>alert('x')</script> phishing mails.",
        ],
    ]
    assert _rows(grid)[0] == ["Initial Access", "Execution", "Persistence", "Privilege Escalation"]
    assert _rows(grid)[1][1] == "T1053.005 Scheduled Task"
    assert _fill(grid.cell(1, 1)) == "de4931" and _fill(grid.cell(1, 0)) == "ee835c"
    assert _rows(indicators) == [
        ["type", "value", "as written", "offset"],
        ["ipv4", "185.220.101.47", "185.220.101.47", str(TEXT.index("185.220.101.47"))],
    ]
    assert document.core_properties.author == "MitreMap"


def test_text_xml_cannot_hold_is_dropped_not_fatal():
    analysis = make_analysis()
    data = analysis.to_dict()
    data["techniques"][0]["evidence"][0]["text"] = "bell\x07 and NUL\x00 here"
    data["document"]["title"] = "form\x0cfeed"

    class Odd:
        document = analysis.document

        def to_dict(self):
            return data

    document = _read(export.to_docx(Odd()))
    assert document.paragraphs[0].text == "MitreMap: formfeed"
    assert any(p.text.endswith("bell and NUL here") for p in document.paragraphs)


def test_no_technique_and_no_indicator_says_so():
    empty = FakeAnalysis(Document("plain text", title="quiet"), techniques=[], indicators=[])
    texts = [p.text for p in _read(export.to_docx(empty)).paragraphs]
    assert "No technique reached the threshold of 0.6." in texts
    assert "No indicator found." in texts


def test_binary_format_needs_an_output_file(cli, tmp_path):
    report = tmp_path / "r.txt"
    report.write_text("The actor ran cmd.exe.")
    result = cli("analyze", str(report), "-f", "docx")
    assert result.code == 1 and "add --output FILE" in result.err
    assert "Traceback" not in result.err


@pytest.mark.integration
def test_cli_writes_the_document(cli, real_model_path, tmp_path):
    from tests.conftest import REPO

    out = tmp_path / "report.docx"
    sample = str(REPO / "examples" / "apt-report.md")
    result = cli(
        "analyze", sample, "--model", str(real_model_path), "--iocs", "-f", "docx", "-o", str(out)
    )
    assert result.code == 0, result.err
    document = docx.Document(str(out))
    assert document.paragraphs[0].text.startswith("MitreMap: Operation Glass Harbor")
    techniques, _, indicators = document.tables
    assert len(techniques.rows) > 3
    assert "185.220.101.47" in {row.cells[1].text for row in indicators.rows}
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "a.md").write_text((REPO / "examples" / "apt-report.md").read_text())
    result = cli(
        "analyze",
        str(folder),
        "--model",
        str(real_model_path),
        "-f",
        "docx",
        "-o",
        str(tmp_path / "out"),
    )
    assert result.code == 0, result.err
    assert docx.Document(str(tmp_path / "out" / "a.md.docx")).tables
