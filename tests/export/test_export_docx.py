"""The Word report, read back with python-docx; and binary formats through the CLI."""

from __future__ import annotations

import io

import pytest

from mitremap import export
from mitremap.documents import Document
from tests.fakes import TEXT, FakeAnalysis, make_analysis

docx = pytest.importorskip("docx")


def _read(content: str | bytes):
    assert isinstance(content, bytes)  # a binary format
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
        ["technique", "name", "tactics", "conf.", "evidence"],
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
        ["ipv4", "185[.]220[.]101[.]47", "185[.]220[.]101[.]47", str(TEXT.index("185.220.101.47"))],
    ]  # defanged: Word links what looks like an address
    assert document.core_properties.author == "MitreMap"


def test_columns_fit_their_content_and_ids_link_to_attack():
    document = _read(export.render(make_analysis(), "docx", iocs=True))
    techniques = document.tables[0]
    widths = [cell.width for cell in techniques.rows[1].cells]
    assert widths[0] < widths[3] * 2 and widths[4] == max(widths)  # id narrow, evidence wide
    assert widths[4] > 2.5 * widths[0]
    assert sum(widths) <= document.sections[0].page_width - document.sections[0].left_margin
    links = {r.target_ref for r in document.part.rels.values() if r.reltype.endswith("/hyperlink")}
    assert links == {
        "https://attack.mitre.org/techniques/T1053/005/",
        "https://attack.mitre.org/techniques/T1566/",
    }
    assert _rows(techniques)[1][0] == "T1053.005"  # the link keeps the id as its text


def test_refang_keeps_indicators_live():
    from mitremap.export import ExportOptions

    options = ExportOptions(refang=True)
    document = _read(export.render(make_analysis(), "docx", iocs=True, options=options))
    assert _rows(document.tables[2])[1][1] == "185.220.101.47"


def test_the_sample_reports_technique_table_fits_on_two_pages(tmp_path, real_mm):
    """LibreOffice lays the document out as Word would: the techniques table of the sample
    report (14 techniques) takes at most two pages."""
    import shutil
    import subprocess

    office = shutil.which("libreoffice") or shutil.which("soffice")
    if office is None:
        pytest.skip("libreoffice is not installed (apt-get install libreoffice-writer-nogui)")
    pypdf = pytest.importorskip("pypdf")
    from mitremap.documents import read_document
    from mitremap.export import to_docx
    from tests.conftest import REPO

    result = real_mm.analyze(read_document(REPO / "examples" / "apt-report.md"), iocs=True)
    data = result.to_dict()
    data.pop("indicators")  # the techniques table alone, then the matrix

    class TableOnly:
        document = result.document

        def to_dict(self):
            return data

    (tmp_path / "report.docx").write_bytes(to_docx(TableOnly()))
    subprocess.run(
        [office, "--headless", "--convert-to", "pdf", "--outdir", str(tmp_path),
         str(tmp_path / "report.docx")],
        check=True, capture_output=True, timeout=180,
        env={**__import__("os").environ, "HOME": str(tmp_path)},
    )  # fmt: skip
    pages = [page.extract_text() for page in pypdf.PdfReader(tmp_path / "report.pdf").pages]
    table_end = next(i for i, text in enumerate(pages) if "ATT&CK matrix" in text)
    assert table_end <= 1, f"the techniques table runs onto page {table_end + 1}"


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
    assert "185[.]220[.]101[.]47" in {row.cells[1].text for row in indicators.rows}  # defanged
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
