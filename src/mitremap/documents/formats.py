"""Turning the bytes of a report into text: format detection by content, and decoding.

Formats are recognised by their bytes first (`%PDF`, a ZIP holding `word/document.xml`,
`<html`/`<!doctype`), the file name only breaking ties, so a PDF saved as `.txt` still reads.
Each rich format has its reader module (`pdf`, `docx`, `html`), bounded by a `budget.Budget`;
the third-party parsers (pypdf, trafilatura) are optional extras imported only when a file
needs them. Every failure is a `DocumentError`: one line naming the input and the problem.

Text that is not UTF-8: a byte-order mark (UTF-8/16/32) is honoured; otherwise text that is
mostly ASCII is read as Windows-1252 (a superset of Latin-1, what old Western reports use) and
the document says so in its warnings; anything else (e.g. Shift-JIS or KOI8 text, where most
bytes are not ASCII) is refused rather than turned into mojibake.
"""

from __future__ import annotations

import codecs
import io
import logging
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import PurePath

from mitremap.errors import InputError, TooLargeInputError

TEXT = "text/plain"
MARKDOWN = "text/markdown"
HTML = "text/html"
PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
SUPPORTED = (TEXT, MARKDOWN, HTML, PDF, DOCX)

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


def clean_pdf_text(text: str) -> str:
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
def quiet(*loggers: str) -> Iterator[None]:
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
