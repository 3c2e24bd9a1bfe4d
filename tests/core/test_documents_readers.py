"""Readers: every input kind on files the tests make, and every bad input as a one-line error."""

from __future__ import annotations

import http.server
import io
import socket
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from mitremap.documents import (
    DOCX,
    HTML,
    MARKDOWN,
    PDF,
    TEXT,
    Budget,
    Document,
    DocumentError,
    read_bytes,
    read_document,
    read_folder,
    read_url,
    split_sentences,
)
from mitremap.errors import InputError, MissingExtraError

REPORT = (
    "APT99 targets banks\n\n"
    "The actor sent spearphishing emails to bank employees. The attachment dropped "
    "invoice.pdf.exe, which beaconed to 192.168.10.5 every hour.\n"
)


def make_pdf(pages: list[list[str]], title: str = "") -> bytes:
    """A minimal valid PDF: one Helvetica text line per string, pages in order."""
    objects: list[bytes] = []
    page_ids = [3 + 2 * index for index in range(len(pages))]
    font_id = 3 + 2 * len(pages)
    info_id = font_id + 1
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{pid} 0 R" for pid in page_ids).encode()
    objects.append(b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % len(pages))
    for pid, lines in zip(page_ids, pages, strict=True):
        body = b"BT /F1 11 Tf 14 TL 50 750 Td "
        for line in lines:
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            body += b"(" + escaped.encode("latin-1") + b") Tj T* "
        body += b"ET"
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>" % (font_id, pid + 1)
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(body) + body + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    objects.append(b"<< /Title (" + title.encode("latin-1") + b") >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\n" % (len(objects) + 1, info_id)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


PDF_PAGES = [
    [
        "Technical Analysis",
        "The loader decrypts the payload with a custom decryp-",
        "tion routine and injects it into explorer.exe using",
        "process hollowing. It then deletes itself.",
    ],
    ["Persistence is achieved with a Run key named WindowsUpdate."],
]


def make_docx(title: str = "Quarterly threat report") -> bytes:
    docx = pytest.importorskip("docx")
    document = docx.Document()
    document.core_properties.title = title
    document.add_heading("Initial Access", level=1)
    document.add_paragraph("The actor sent spearphishing emails with ISO attachments.")
    document.add_paragraph("Collects system information", style="List Bullet")
    table = document.add_table(rows=2, cols=2)
    for row, (left, right) in enumerate([("Indicator", "Type"), ("192.168.10.5", "IPv4")]):
        table.cell(row, 0).text, table.cell(row, 1).text = left, right
    document.add_paragraph("The implant then contacted its server.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


HTML_PAGE = b"""<!DOCTYPE html>
<html><head><title>APT99 targets banks | Example Security Blog</title>
<script>var analytics = "tracking-code";</script><style>body { color: red }</style></head>
<body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/blog">Blog</a></li>
<li><a href="/contact">Contact us</a></li></ul></nav>
<header><div class="logo">Example Security Blog</div></header>
<main><article>
<h1>APT99 targets banks</h1>
<p>The actor sent spearphishing emails with malicious attachments to bank employees in March.</p>
<p>The attachment dropped invoice.pdf.exe, which beaconed to 192.168.10.5 over HTTPS.</p>
<ul><li>Collects system information</li><li>Takes screenshots</li></ul>
</article></main>
<footer><p>Copyright 2024 Example Corp. All rights reserved.</p><a href="/privacy">Privacy</a>
</footer>
<script>document.write("more-tracking")</script>
</body></html>"""


def error_of(call, *args, **kwargs) -> InputError:
    """The InputError a call raises, checked to be one line."""
    with pytest.raises(InputError) as raised:
        call(*args, **kwargs)
    message = str(raised.value)
    assert "\n" not in message and len(message) < 300, message
    return raised.value


# --- plain text, Markdown, stdin -------------------------------------------------------------


def test_text_file_keeps_its_text_exactly(tmp_path: Path) -> None:
    path = tmp_path / "report.txt"
    path.write_text(REPORT + "Windows line\r\nends too.\r\n", encoding="utf-8", newline="")
    document = read_document(path)
    assert document.text == path.read_bytes().decode("utf-8")
    assert (document.title, document.origin, document.media_type) == (
        "APT99 targets banks",
        str(path),
        TEXT,
    )
    assert document.warnings == ()
    sentence = split_sentences(document.text)[2]
    assert document.text[sentence.start : sentence.end].startswith("The attachment dropped")


def test_markdown_by_extension_and_by_content(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("Report\n\nText.", encoding="utf-8")
    (tmp_path / "b.txt").write_text("# APT99 report\n\nText.", encoding="utf-8")
    assert read_document(tmp_path / "a.md").media_type == MARKDOWN
    document = read_document(str(tmp_path / "b.txt"))
    assert (document.media_type, document.title) == (MARKDOWN, "APT99 report")
    assert document.text == "# APT99 report\n\nText."


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(REPORT.encode())))
    document = read_document("-")
    assert (document.text, document.origin) == (REPORT, "<stdin>")


def test_stdin_can_carry_a_pdf(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pypdf")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(make_pdf(PDF_PAGES))))
    assert read_document("-").media_type == PDF


def test_document_from_text() -> None:
    document = Document.from_text("\n  ## Lazarus update\nbody")
    assert (document.title, document.origin, document.media_type) == (
        "Lazarus update",
        "<text>",
        TEXT,
    )
    assert Document.from_text("x", title="Given").title == "Given"
    assert Document.from_text("y" * 500).title.endswith("…")


# --- HTML, PDF, DOCX -------------------------------------------------------------------------


def test_html_main_text_without_navigation_footer_or_script(tmp_path: Path) -> None:
    pytest.importorskip("trafilatura")
    path = tmp_path / "page.html"
    path.write_bytes(HTML_PAGE)
    document = read_document(path)
    assert document.media_type == HTML
    assert document.title.startswith("APT99 targets banks")
    for kept in ("spearphishing emails", "invoice.pdf.exe", "192.168.10.5", "Takes screenshots"):
        assert kept in document.text
    for dropped in ("Contact us", "All rights reserved", "tracking", "color: red", "<p>"):
        assert dropped not in document.text
    texts = [document.text[s.start : s.end] for s in split_sentences(document.text)]
    assert "- Collects system information" in texts


def test_html_detected_by_content_and_its_charset(tmp_path: Path) -> None:
    pytest.importorskip("trafilatura")
    page = (
        "<html><head><meta charset='windows-1252'></head><body><p>The caf\u00e9 was breached "
        "by the actor using stolen credentials from a phishing site.</p></body></html>"
    ).encode("cp1252")
    path = tmp_path / "saved-page.txt"
    path.write_bytes(page)
    document = read_document(path)
    assert document.media_type == HTML
    assert "caf\u00e9" in document.text


def test_pdf_text_with_hyphens_and_line_breaks_joined(tmp_path: Path) -> None:
    pytest.importorskip("pypdf")
    path = tmp_path / "report.pdf"
    path.write_bytes(make_pdf(PDF_PAGES, title="Loader analysis"))
    document = read_document(path)
    assert (document.media_type, document.title) == (PDF, "Loader analysis")
    assert "custom decryption routine" in document.text
    texts = [
        " ".join(document.text[s.start : s.end].split()) for s in split_sentences(document.text)
    ]
    assert texts == [
        "Technical Analysis",
        "The loader decrypts the payload with a custom decryption routine and injects it into "
        "explorer.exe using process hollowing.",
        "It then deletes itself.",
        "Persistence is achieved with a Run key named WindowsUpdate.",
    ]


def test_pdf_detected_by_content_whatever_its_name(tmp_path: Path) -> None:
    pytest.importorskip("pypdf")
    path = tmp_path / "report.txt"
    path.write_bytes(make_pdf(PDF_PAGES))
    document = read_document(path)
    assert document.media_type == PDF
    assert document.title == "Technical Analysis"  # no metadata title: the first line


def test_text_that_mentions_a_pdf_header_is_text(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("The lure starts with %PDF-1.7 but is an HTA file.", encoding="utf-8")
    assert read_document(path).media_type == TEXT


def test_pdf_pages_without_text_are_reported(tmp_path: Path) -> None:
    pytest.importorskip("pypdf")
    path = tmp_path / "scan.pdf"
    path.write_bytes(make_pdf([["Readable page text."], []]))
    assert read_document(path).warnings == ("no text on PDF page(s) 2 (scanned images?)",)
    path.write_bytes(make_pdf([[], []]))
    assert "no extractable text" in str(error_of(read_document, path))


def test_pdf_page_cap_and_password(tmp_path: Path) -> None:
    pypdf = pytest.importorskip("pypdf")
    path = tmp_path / "long.pdf"
    path.write_bytes(make_pdf(PDF_PAGES))
    document = read_document(path, budget=Budget(pages=1))
    assert "Persistence" not in document.text
    assert document.warnings == ("only the first 1 of 2 PDF pages were read",)
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(path))
    writer.encrypt("secret", algorithm="RC4-128")
    with (tmp_path / "locked.pdf").open("wb") as file:
        writer.write(file)
    assert "password-protected" in str(error_of(read_document, tmp_path / "locked.pdf"))


def test_docx_paragraphs_lists_and_tables_in_order(tmp_path: Path) -> None:
    path = tmp_path / "report.bin"  # detected by content, not by name
    path.write_bytes(make_docx())
    document = read_document(path)
    assert (document.media_type, document.title) == (DOCX, "Quarterly threat report")
    assert document.text == (
        "Initial Access\n\nThe actor sent spearphishing emails with ISO attachments.\n\n"
        "Collects system information\n\nIndicator | Type\n\n192.168.10.5 | IPv4\n\n"
        "The implant then contacted its server."
    )


# --- URL -------------------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, tuple[int, str, bytes]]] = {}
    requested: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).requested.append(self.path)
        if self.path.startswith("/chain/"):  # /chain/N: N redirects, then the report
            left = int(self.path.rsplit("/", 1)[1])
            self.send_response(302)
            self.send_header("Location", f"/chain/{left - 1}" if left > 1 else "/report.txt")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/to-ftp":
            self.send_response(302)
            self.send_header("Location", "ftp://127.0.0.1/report.txt")  # urllib follows ftp
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/slow":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            for _ in range(20):  # drips bytes, each read within the timeout, for 4 s in all
                self.wfile.write(b"x" * 10)
                self.wfile.flush()
                time.sleep(0.2)
            return
        status, media_type, body = self.routes.get(self.path, (404, "text/plain", b"missing"))
        self.send_response(status)
        self.send_header("Content-Type", media_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    _Handler.routes = {
        "/report.html": (200, "text/html; charset=utf-8", HTML_PAGE),
        "/report.txt": (200, "text/plain", REPORT.encode()),
        "/image.png": (200, "image/png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100),
        "/big.txt": (200, "text/plain", b"word " * 1000),
        "/empty.txt": (200, "text/plain", b""),
        "/app.js": (200, "text/javascript", b"alert(1)"),
    }
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_url_text_and_html(server: str) -> None:
    document = read_document(f"{server}/report.txt")
    assert (document.text, document.origin) == (REPORT, f"{server}/report.txt")
    pytest.importorskip("trafilatura")
    assert "invoice.pdf.exe" in read_document(f"{server}/report.html").text


def test_url_refusals(server: str) -> None:
    assert "image/png, not a report" in str(error_of(read_document, f"{server}/image.png"))
    assert "text/javascript, not a report" in str(error_of(read_document, f"{server}/app.js"))
    assert "HTTP 404" in str(error_of(read_document, f"{server}/nothing-here"))
    assert "too large" in str(error_of(read_document, f"{server}/big.txt", max_bytes=1000))
    assert "empty" in str(error_of(read_document, f"{server}/empty.txt"))
    message = str(error_of(read_document, f"{server}/slow", timeout=1))
    assert "more than 1 s" in message or "no answer" in message


def test_redirects_are_capped_and_each_target_checked(server: str) -> None:
    seen: list[str] = []
    document = read_url(f"{server}/chain/5", check=seen.append)
    assert document.origin == f"{server}/report.txt" and document.text == REPORT
    assert seen == [f"{server}/chain/{n}" for n in (5, 4, 3, 2, 1)] + [f"{server}/report.txt"]
    assert "more than 5 redirects" in str(error_of(read_url, f"{server}/chain/6"))
    assert "not http(s)" in str(error_of(read_url, f"{server}/to-ftp"))

    def refuse_the_report(url: str) -> None:
        if url.endswith("/report.txt"):
            raise DocumentError(url, "refused by the policy")

    _Handler.requested.clear()
    refused = error_of(read_url, f"{server}/chain/1", check=refuse_the_report)
    assert "refused by the policy" in str(refused)
    assert _Handler.requested == ["/chain/1"]  # the refused target was never requested


def test_every_connection_goes_to_an_address_the_check_allowed(server: str) -> None:
    shown: list[tuple[str, str]] = []

    def loopback_only_by_number(host: str, address: object) -> None:
        shown.append((host, str(address)))
        if host != "127.0.0.1":
            raise DocumentError(host, "not an allowed address")

    document = read_url(f"{server}/chain/1", check_address=loopback_only_by_number)
    assert document.text == REPORT and shown == [("127.0.0.1", "127.0.0.1")] * 2
    port = server.rsplit(":", 1)[1]
    _Handler.requested.clear()
    refused = error_of(
        read_url, f"http://localhost:{port}/report.txt", check_address=loopback_only_by_number
    )
    assert "not an allowed address" in str(refused) and _Handler.requested == []


def test_unreachable_url_fails_at_once() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = error_of(read_document, f"http://127.0.0.1:{port}/report.html", timeout=5)
    assert str(error).startswith(f"http://127.0.0.1:{port}/report.html: cannot connect")


# --- folders ---------------------------------------------------------------------------------


def test_folder_reads_what_it_can_and_says_why_it_skipped_the_rest(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(REPORT, encoding="utf-8")
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "b.md").write_text("# B\n\nText.", encoding="utf-8")
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / ".hidden.txt").write_text("ignored", encoding="utf-8")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("ignored", encoding="utf-8")
    calls: list[tuple[int, int, str]] = []
    result = read_folder(
        tmp_path, progress=lambda done, total, path: calls.append((done, total, path.name))
    )
    assert [Path(d.origin).name for d in result.documents] == ["a.txt", "b.md"]
    assert [(path.name, reason) for path, reason in result.skipped] == [
        ("empty.txt", "the input is empty"),
        ("image.png", "this is a PNG image, not a report"),
    ]
    assert calls == [(1, 4, "a.txt"), (2, 4, "empty.txt"), (3, 4, "image.png"), (4, 4, "b.md")]


def test_folder_with_a_missing_reader_skips_those_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.txt").write_text(REPORT, encoding="utf-8")
    (tmp_path / "b.pdf").write_bytes(make_pdf(PDF_PAGES))
    monkeypatch.setitem(sys.modules, "pypdf", None)
    result = read_folder(tmp_path)
    assert len(result.documents) == 1
    assert "pip install 'mitremap[pdf]'" in result.skipped[0][1]


def test_folder_with_nothing_readable(tmp_path: Path) -> None:
    assert "has no files" in str(error_of(read_folder, tmp_path))
    (tmp_path / "x.bin").write_bytes(b"\x00\x01\x02" * 100)
    (tmp_path / "y.txt").write_bytes(b"   \n")
    message = str(error_of(read_folder, tmp_path))
    assert message.startswith(f"{tmp_path}: none of its 2 files could be read")
    assert "no such folder" in str(error_of(read_folder, tmp_path / "nope"))


# --- bad inputs ------------------------------------------------------------------------------


def test_missing_path_and_folder_given_as_a_file(tmp_path: Path) -> None:
    assert (
        str(error_of(read_document, tmp_path / "nope.txt")) == f"{tmp_path}/nope.txt: no such file"
    )
    assert "this is a folder" in str(error_of(read_document, tmp_path))


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(b"", "the input is empty", id="empty"),
        pytest.param(b" \n\t\r\n ", "the input is empty", id="whitespace"),
        pytest.param(bytes(range(256)) * 40, "binary file", id="binary"),
        pytest.param(b"\x7fELF\x02\x01\x01" + b"\x00" * 50, "ELF executable", id="elf"),
        pytest.param(b"MZ\x90\x00" + b"\x00" * 50, "Windows executable", id="exe"),
        pytest.param(
            b"%PDF-1.7\n1 0 obj << /Type /Catalog", "not a readable PDF", id="corrupt-pdf"
        ),
        pytest.param("Привет, это отчёт об атаке.".encode("koi8-r"), "not UTF-8", id="koi8-r"),
        pytest.param(
            "攻撃者はフィッシングを使った。".encode("shift_jis"), "not UTF-8", id="shift-jis"
        ),
        pytest.param(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 50, "legacy Office", id="doc"),
    ],
)
def test_bad_files(tmp_path: Path, content: bytes, expected: str) -> None:
    if "PDF" in expected:
        pytest.importorskip("pypdf")
    path = tmp_path / "input.txt"
    path.write_bytes(content)
    message = str(error_of(read_document, path))
    assert message.startswith(f"{path}: ") and expected in message


def test_truncated_pdf(tmp_path: Path) -> None:
    pytest.importorskip("pypdf")
    path = tmp_path / "cut.pdf"
    path.write_bytes(make_pdf(PDF_PAGES)[:300])
    assert "not a readable PDF" in str(error_of(read_document, path))


def test_corrupt_docx(tmp_path: Path) -> None:
    pytest.importorskip("docx")
    path = tmp_path / "cut.docx"
    path.write_bytes(make_docx()[:2000])
    assert "corrupt DOCX" in str(error_of(read_document, path))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<not-xml")
        archive.writestr("word/document.xml", "<w:document>broken")
    path.write_bytes(buffer.getvalue())
    assert "corrupt DOCX" in str(error_of(read_document, path))


def test_zip_that_is_not_a_word_document(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("report.txt", REPORT)
    path = tmp_path / "reports.zip"
    path.write_bytes(buffer.getvalue())
    assert "ZIP archive, not a Word document" in str(error_of(read_document, path))


def test_html_that_is_only_script(tmp_path: Path) -> None:
    pytest.importorskip("trafilatura")
    path = tmp_path / "page.html"
    path.write_text(
        "<!doctype html><html><head><script>var a = 'The actor used PowerShell.';</script>"
        "</head><body><script>document.write(a)</script></body></html>",
        encoding="utf-8",
    )
    assert "no readable text" in str(error_of(read_document, path))


def test_a_200_megabyte_file_fails_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "huge.txt"
    with path.open("wb") as file:
        file.truncate(200 * 1024 * 1024)  # sparse: no disk used

    def no_reading(*args: object, **kwargs: object) -> None:
        raise AssertionError("the file was opened")

    monkeypatch.setattr(Path, "open", no_reading)
    message = str(error_of(read_document, path))
    assert message == f"{path}: too large (200.0 MB; the limit is 50.0 MB)"


def test_size_limit_applies_to_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"x" * 2000)))
    assert "too large" in str(error_of(read_document, "-", max_bytes=1000))


def test_windows_1252_text_reads_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "old.txt"
    path.write_bytes("The caf\u00e9\u2019s network was breached \u2013 badly.".encode("cp1252"))
    document = read_document(path)
    assert document.text == "The caf\u00e9\u2019s network was breached \u2013 badly."
    assert document.warnings == ("not UTF-8: read as Windows-1252",)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-8-sig", "utf-32"])
def test_byte_order_marks(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "bom.txt"
    data = REPORT.encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data
    path.write_bytes(data)
    assert read_document(path).text == REPORT


def test_missing_extras_say_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    for module, extra, data in [
        ("pypdf", "pdf", make_pdf(PDF_PAGES)),
        ("trafilatura", "html", HTML_PAGE),
    ]:
        monkeypatch.setitem(sys.modules, module, None)
        with pytest.raises(MissingExtraError, match=rf"pip install 'mitremap\[{extra}\]'"):
            read_bytes(data)


def test_docx_is_read_without_python_docx(monkeypatch: pytest.MonkeyPatch) -> None:
    data = make_docx()
    monkeypatch.setitem(sys.modules, "docx", None)
    assert "spearphishing emails" in read_bytes(data).text


def _big_docx(paragraphs: int) -> bytes:
    body = "".join(
        f"<w:p><w:r><w:t>Paragraph {i} says the actor ran schtasks.</w:t></w:r></w:p>"
        for i in range(paragraphs)
    )
    xml = (
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        f"<w:body>{body}</w:body></w:document>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", xml)
    return buffer.getvalue()


def test_docx_text_is_capped_and_said_so() -> None:
    document = read_bytes(_big_docx(1_000), name="big.docx", budget=Budget(text_chars=2_000))
    assert len(document.text) <= 2_000 + 200
    assert document.text.startswith("Paragraph 0 says")
    assert document.warnings == (
        "only the start of the Word document was read: its text passes 2,000 characters",
    )


def test_a_docx_that_lies_about_its_sizes_stops_while_inflating(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mitremap.documents import docx

    monkeypatch.setattr(docx, "_check_unzipped_size", lambda data, origin: None)  # the lie
    budget = Budget(xml_bytes=20_000)
    document = read_bytes(_big_docx(5_000), name="bomb.docx", budget=budget)
    assert 0 < len(document.text) < 20_000  # what was read before the cap, with a note
    assert document.warnings == (
        "only the start of the Word document was read: its XML passes 20,000 bytes",
    )


def test_document_error_is_an_input_error() -> None:
    error = DocumentError("x.txt", "the input is empty")
    assert isinstance(error, InputError)
    assert (str(error), error.origin, error.reason) == (
        "x.txt: the input is empty",
        "x.txt",
        "the input is empty",
    )


def test_a_files_modification_time_is_never_the_report_date(tmp_path):
    import os

    from mitremap.documents import read_file

    report = tmp_path / "r.txt"
    report.write_text("The actor used PowerShell.")
    os.utime(report, (1_700_000_000, 1_700_000_000))
    document = read_file(report)
    assert (
        document.date == "" and "date" not in document.to_dict()
    )  # a copy's time, not the report's


def test_the_date_a_report_states_is_its_date_never_the_files(tmp_path: Path) -> None:
    dated = tmp_path / "dated.md"
    dated.write_text("# Operation Glass Harbor\n\n**Published:** March 3, 2024\n\n" + REPORT)
    assert read_document(dated).date == "2024-03-03"
    undated = tmp_path / "undated.txt"
    undated.write_text(REPORT)  # the file has a modification time, the report no date
    assert read_document(undated).date == ""
