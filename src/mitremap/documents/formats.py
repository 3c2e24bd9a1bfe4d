"""Turning the bytes of a report into text: format detection by content, decoding, extraction.

Formats are recognised by their bytes first (`%PDF`, a ZIP holding `word/document.xml`,
`<html`/`<!doctype`), the file name only breaking ties, so a PDF saved as `.txt` still reads.
The heavy extractors (pypdf, python-docx, trafilatura) are optional extras imported only when
a file needs them. Every failure is a `DocumentError`: one line naming the input and the problem.

Text that is not UTF-8: a byte-order mark (UTF-8/16/32) is honoured; otherwise text that is
mostly ASCII is read as Windows-1252 (a superset of Latin-1, what old Western reports use) and
the document says so in its warnings; anything else (e.g. Shift-JIS or KOI8 text, where most
bytes are not ASCII) is refused rather than turned into mojibake.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import itertools
import logging
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import PurePath
from typing import Any

from mitremap.errors import InputError, MissingExtraError, TooLargeInputError

TEXT = "text/plain"
MARKDOWN = "text/markdown"
HTML = "text/html"
PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
SUPPORTED = (TEXT, MARKDOWN, HTML, PDF, DOCX)

MAX_PDF_PAGES = 1000
"""Pages read from one PDF: text extraction costs ~10-50 ms a page, and reports are shorter."""
MAX_UNZIPPED_BYTES = 512 * 1024 * 1024
"""A DOCX whose parts expand beyond this is refused (a zip bomb would exhaust memory)."""

_MARKDOWN_SUFFIXES = {".md", ".markdown", ".mdown", ".mkd"}
_HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
_HTML_START = re.compile(r"<(?:!doctype\s+html|html|head|body)\b", re.IGNORECASE)
_HTML_TAG = re.compile(r"<(?:html|head|body|div|p|article|table|a\s)\b", re.IGNORECASE)
_HIGH_BYTES = bytes(range(128, 256))
_CONTROL_BYTES = bytes(byte for byte in range(32) if byte not in b"\t\n\r\f\v\x1b")
_META_CHARSET = re.compile(rb"<meta[^>]{0,300}?charset\s*=\s*[\"']?([\w.:-]{1,40})", re.IGNORECASE)
_HYPHEN_BREAK = re.compile(r"(\w)-\n[ \t]*(?=[a-z])")
_MANY_BLANK_LINES = re.compile(r"\n{3,}")
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Binary formats worth naming in the error (the rest are "a binary file").
_MAGIC = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"MZ", "a Windows executable"),
    (b"\x7fELF", "an ELF executable"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"\xd0\xcf\x11\xe0", "a legacy Office file (.doc/.xls): save it as DOCX or PDF"),
    (b"{\\rtf", "an RTF document: save it as DOCX, PDF or text"),
)


class DocumentError(InputError):
    """An input that cannot be read; `str()` is "ORIGIN: REASON", one line."""

    def __init__(self, origin: str, reason: str) -> None:
        super().__init__(f"{origin}: {reason}")
        self.origin = origin
        self.reason = reason


class TooLargeDocumentError(DocumentError, TooLargeInputError):
    """An input past the size limit it is read under."""


def detect(data: bytes, name: str = "", origin: str = "<bytes>") -> str:
    """PDF, DOCX or TEXT (then `text_kind` tells which text) for `data`; other kinds of file
    raise DocumentError."""
    if data[:1024].lstrip().startswith(b"%PDF-"):
        return PDF
    if data.startswith(b"PK\x03\x04"):
        if PurePath(name).suffix.lower() == ".docx" or _is_docx(data):
            return DOCX
        raise DocumentError(origin, "this is a ZIP archive, not a Word document (unpack it first)")
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            raise DocumentError(origin, f"this is {kind}, not a report")
    if not _has_bom(data) and _looks_binary(data[:8192]):
        raise DocumentError(
            origin, "this is a binary file, not text (or UTF-16 text without a byte-order mark)"
        )
    return TEXT


def text_kind(text: str, name: str = "") -> str:
    """HTML, MARKDOWN or TEXT: by the text's start, then by the file name."""
    suffix = PurePath(name).suffix.lower()
    head = text[:4096]
    if _starts_like_html(head) or (suffix in _HTML_SUFFIXES and _HTML_TAG.search(head)):
        return HTML
    if suffix in _MARKDOWN_SUFFIXES or head.lstrip().startswith("# "):
        return MARKDOWN
    return TEXT


def decode(data: bytes, origin: str, charset: str | None = None) -> tuple[str, list[str]]:
    """`data` as text and any warning about how it was decoded (see the module docstring)."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), []
            except UnicodeDecodeError:
                raise DocumentError(
                    origin, f"not valid {encoding.upper()} text despite its byte-order mark"
                ) from None
    for label in ("utf-8", charset):  # UTF-8 first: pages often mislabel it as Latin-1
        if label:
            try:
                return data.decode(label), []
            except (UnicodeDecodeError, LookupError):
                pass
    non_ascii = len(data) - len(data.translate(None, _HIGH_BYTES))
    if non_ascii <= 0.1 * len(data):
        try:
            return data.decode("cp1252"), ["not UTF-8: read as Windows-1252"]
        except UnicodeDecodeError:
            pass
    raise DocumentError(
        origin, "not UTF-8 text (and not Windows-1252): convert it to UTF-8, e.g. with iconv"
    )


def html_charset(data: bytes) -> str | None:
    """The charset a page declares in a <meta> tag, if any."""
    match = _META_CHARSET.search(data[:4096])
    return match.group(1).decode("ascii") if match else None


def html_text(markup: str, origin: str) -> tuple[str, str]:
    """Main text (no navigation, footers, scripts) and title of an HTML page, via trafilatura."""
    try:
        import trafilatura
    except ImportError:
        raise MissingExtraError("trafilatura", "html", "Reading HTML") from None
    with _quiet("trafilatura", "htmldate", "courlan"):
        try:
            result = trafilatura.bare_extraction(
                markup, with_metadata=True, include_comments=False, include_tables=True
            )
        except Exception as error:  # a third-party parser on untrusted input: any failure
            raise DocumentError(origin, f"cannot parse the HTML: {one_line(error)}") from None
    text = getattr(result, "text", None) or ""
    paragraphs = [line.strip() for line in text.splitlines() if line.strip()]
    if not paragraphs:
        raise DocumentError(origin, "the HTML page has no readable text (only scripts or markup)")
    # trafilatura gives one paragraph a line; a blank line between them keeps them apart.
    return "\n\n".join(paragraphs), (getattr(result, "title", None) or "").strip()


def pdf_text(data: bytes, origin: str) -> tuple[str, str, list[str]]:
    """Text, title and warnings of a PDF, hyphenated line breaks joined, via pypdf."""
    try:
        from pypdf import PdfReader
    except ImportError:
        raise MissingExtraError("pypdf", "pdf", "Reading PDF files") from None
    with _quiet("pypdf"):
        try:
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted and not reader.decrypt(""):
                raise DocumentError(origin, "the PDF is password-protected")
            pages = [
                page.extract_text() or "" for page in itertools.islice(reader.pages, MAX_PDF_PAGES)
            ]
            title = str(reader.metadata.title or "").strip() if reader.metadata else ""
            page_count = len(reader.pages)
        except DocumentError:
            raise
        except Exception as error:  # pypdf raises many kinds on corrupt input
            raise DocumentError(
                origin, f"not a readable PDF (corrupt or truncated): {one_line(error)}"
            ) from None
    pages = [_clean_pdf_text(page) for page in pages]
    empty = [str(number) for number, page in enumerate(pages, 1) if not page]
    if len(empty) == len(pages):
        raise DocumentError(
            origin, "the PDF has no extractable text (scanned images? run OCR first)"
        )
    notes = [f"no text on PDF page(s) {', '.join(empty)} (scanned images?)"] if empty else []
    if page_count > MAX_PDF_PAGES:
        notes.append(f"only the first {MAX_PDF_PAGES} of {page_count} PDF pages were read")
    return "\n\n".join(page for page in pages if page), title, notes


_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_DC_TITLE = "{http://purl.org/dc/elements/1.1/}title"
MAX_DOCX_TEXT_CHARS = 20_000_000
"""Text read from one DOCX at most: past it the rest is left out, with a note (a small file can
hold hundreds of MB of XML, so the XML is streamed and only its text is kept)."""
MAX_DOCX_XML_BYTES = 64 * 1024 * 1024
"""XML of the main part read at most (about 10 s of parsing on one core); the rest is left out,
with a note. Real reports are far below it; a 1.5 MB zip can hold 480 MB of markup."""


def docx_text(data: bytes, origin: str) -> tuple[str, str, list[str]]:
    """Text (paragraphs and table rows, in order), title and notes of a Word document.

    The main part is streamed (`iterparse`, each paragraph dropped once read): memory follows
    the extracted text, capped at `MAX_DOCX_TEXT_CHARS`, not the XML; inflating stops at
    `MAX_UNZIPPED_BYTES` whatever the zip's headers claim.
    """
    import xml.etree.ElementTree as ET
    import zipfile

    _check_unzipped_size(data, origin)
    notes: list[str] = []
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            if "word/document.xml" not in names:
                raise DocumentError(origin, "not a readable Word document (corrupt DOCX)")
            blocks: list[str] = []
            with archive.open("word/document.xml") as part:
                try:
                    cut = _docx_blocks(_Capped(part, MAX_DOCX_XML_BYTES), blocks)
                except _TooLong:
                    cut = True
            title = ""
            if "docProps/core.xml" in names:
                with (
                    archive.open("docProps/core.xml") as part,
                    contextlib.suppress(_TooLong, ET.ParseError),
                ):
                    core = ET.parse(_Capped(part, 1 << 20))
                    title = (core.findtext(_DC_TITLE) or "").strip()
    except DocumentError:
        raise
    except Exception as error:  # zip, inflate and XML errors on corrupt input
        raise DocumentError(
            origin, f"not a readable Word document (corrupt DOCX): {one_line(error)}"
        ) from None
    if cut:
        notes.append(
            f"the Word document is very long: only its first {MAX_DOCX_TEXT_CHARS:,} characters "
            f"of text (or {MAX_DOCX_XML_BYTES // 2**20} MB of XML) were read"
        )
    text = "\n\n".join(block for block in blocks if block)
    if not text.strip():
        raise DocumentError(origin, "the Word document has no text")
    return text, title, notes


def _docx_blocks(stream: Any, blocks: list[str]) -> bool:
    """Paragraphs outside tables, and table rows as "cell | cell", in document order, into
    `blocks` (kept when the stream stops early); True when the text cap cut it short."""
    import xml.etree.ElementTree as ET

    total = 0
    depth = 0  # table nesting
    for event, element in ET.iterparse(stream, events=("start", "end")):
        tag = element.tag
        if tag == f"{_W}tbl":
            depth += 1 if event == "start" else -1
        if event != "end":
            continue
        if tag == f"{_W}p" and depth == 0:
            block = _paragraph_text(element).strip()
        elif tag == f"{_W}tr" and depth == 1:
            cells = [
                "\n".join(_paragraph_text(p).strip() for p in cell.iter(f"{_W}p")).strip()
                for cell in element.iter(f"{_W}tc")
            ]
            block = " | ".join(c for c in dict.fromkeys(cells) if c)
        else:
            continue
        element.clear()
        if block:
            total += len(block)
            if total > MAX_DOCX_TEXT_CHARS:
                return True
            blocks.append(block)
    return False


def _paragraph_text(paragraph: Any) -> str:
    parts = []
    for node in paragraph.iter():
        if node.tag == f"{_W}t":
            parts.append(node.text or "")
        elif node.tag == f"{_W}tab":
            parts.append("\t")
        elif node.tag in (f"{_W}br", f"{_W}cr"):
            parts.append("\n")
    return "".join(parts)


class _TooLong(Exception):
    """A zip member inflated past what is read of it."""


class _Capped(io.RawIOBase):
    """A zip member read through a counter: reading stops at `limit` inflated bytes, whatever
    sizes the archive declares."""

    def __init__(self, stream: Any, limit: int) -> None:
        self._stream, self._left = stream, limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._stream.read(min(len(buffer), 1 << 16))
        self._left -= len(chunk)
        if self._left < 0:
            raise _TooLong
        buffer[: len(chunk)] = chunk
        return len(chunk)


def _clean_pdf_text(text: str) -> str:
    """Join words hyphenated across lines; drop trailing spaces and runs of blank lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    text = _HYPHEN_BREAK.sub(r"\1", text)
    return _MANY_BLANK_LINES.sub("\n\n", text).strip()


def _is_docx(data: bytes) -> bool:
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "word/document.xml" in archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def _check_unzipped_size(data: bytes, origin: str) -> None:
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            size = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise DocumentError(
            origin, f"not a readable Word document (corrupt DOCX): {one_line(error)}"
        ) from None
    if size > MAX_UNZIPPED_BYTES:
        raise DocumentError(
            origin, f"the DOCX expands to {size / 2**20:.0f} MB: refused (a zip bomb?)"
        )


def _has_bom(data: bytes) -> bool:
    return any(data.startswith(bom) for bom, _ in _BOMS)


def _looks_binary(head: bytes) -> bool:
    """NUL bytes, or many control characters that text never has."""
    if b"\x00" in head:
        return True
    controls = len(head) - len(head.translate(None, _CONTROL_BYTES))
    return controls > 0.05 * len(head)


def _starts_like_html(head: str) -> bool:
    """`<!doctype html`, `<html`, `<head` or `<body` first, after an XML declaration or comments."""
    head = head.lstrip()
    if head.startswith("<?xml"):
        head = head[head.find(">") + 1 :].lstrip()
    while head.startswith("<!--"):
        end = head.find("-->")
        if end < 0:
            return False
        head = head[end + 3 :].lstrip()
    return _HTML_START.match(head) is not None


def one_line(error: object) -> str:
    """An exception (or any reason) as one short line."""
    message = " ".join(str(error).split()) or type(error).__name__
    return message if len(message) <= 160 else message[:159] + "…"


@contextmanager
def _quiet(*loggers: str) -> Iterator[None]:
    """Silence a third-party parser's log records and warnings while it runs: the library never
    prints, and Python's last-resort handler would put them on stderr."""
    saved = [(logging.getLogger(name), logging.getLogger(name).level) for name in loggers]
    for logger, _ in saved:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in saved:
            logger.setLevel(level)
