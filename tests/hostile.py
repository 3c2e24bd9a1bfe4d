"""Hostile documents whose cost is in their shape, not their size (issue 22's table), made on
demand at any scale: the tests use small ones (seconds), `benchmarks/bench_hostile.py` the
full-size ones. Each is written in pieces, so the big ones never sit in memory whole.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
HEAD = f'<w:document xmlns:w="{W_NS}"><w:body>'.encode()
TAIL = b"</w:body></w:document>"
CHUNK = 1 << 20


def _repeat(unit: bytes, total: int) -> Iterator[bytes]:
    """`unit` repeated to about `total` bytes, in pieces of about a MB."""
    piece = unit * max(1, min(CHUNK, total) // len(unit))
    for _ in range(max(1, total // len(piece))):
        yield piece


def write_docx(path: Path, parts: Callable[[], Iterator[bytes]]) -> Path:
    """A DOCX whose `word/document.xml` is the bytes `parts()` yields, streamed into the zip."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as part:
            for chunk in parts():
                part.write(chunk)
    return path


def _body(middle: Callable[[], Iterator[bytes]]) -> Callable[[], Iterator[bytes]]:
    def parts() -> Iterator[bytes]:
        yield HEAD
        yield from middle()
        yield TAIL

    return parts


def docx_tiny_paragraphs(path: Path, xml_bytes: int) -> Path:
    """Millions of one-letter paragraphs (480 MB of XML in a 1.5 MB file at full size)."""
    unit = b"<w:p><w:r><w:t>a</w:t></w:r></w:p>"
    return write_docx(path, _body(lambda: _repeat(unit, xml_bytes)))


def docx_empty_paragraphs(path: Path, xml_bytes: int) -> Path:
    """Nothing but empty `<w:p/>` (107 KB at full size)."""
    return write_docx(path, _body(lambda: _repeat(b"<w:p/>", xml_bytes)))


def docx_unknown_elements(path: Path, xml_bytes: int) -> Path:
    """Elements Word does not have, at body level, with one paragraph of text after them."""
    unit = b"<w:zz><w:yy/></w:zz>"
    last = b"<w:p><w:r><w:t>The end.</w:t></w:r></w:p>"
    return write_docx(path, _body(lambda: iter([*_repeat(unit, xml_bytes), last])))


def docx_huge_table_row(path: Path, xml_bytes: int) -> Path:
    """One table row of a million cells (184 KB at full size)."""
    cell = b"<w:tc><w:p><w:r><w:t>a</w:t></w:r></w:p></w:tc>"

    def middle() -> Iterator[bytes]:
        yield b"<w:tbl><w:tr>"
        yield from _repeat(cell, xml_bytes)
        yield b"</w:tr></w:tbl>"

    return write_docx(path, _body(middle))


def docx_deep_nesting(path: Path, depth: int) -> Path:
    """One character inside `depth` nested elements."""

    def middle() -> Iterator[bytes]:
        yield from _repeat(b"<w:sdt>", depth * 7)
        yield b"<w:p><w:r><w:t>a</w:t></w:r></w:p>"
        yield from _repeat(b"</w:sdt>", depth * 8)

    return write_docx(path, _body(middle))


def html_table(path: Path, html_bytes: int) -> Path:
    """A page that is one big table of short cells (10 MB at full size)."""
    row = b"<tr><td>cell</td><td>1</td><td>x</td></tr>\n"
    with path.open("wb") as out:
        out.write(b"<!DOCTYPE html><html><head><title>t</title></head><body><table>\n")
        for chunk in _repeat(row, html_bytes):
            out.write(chunk)
        out.write(b"</table></body></html>\n")
    return path


def pdf_shared_stream(path: Path, pages: int, stream_bytes: int) -> Path:
    """`pages` pages whose content is one shared, compressed stream of `stream_bytes` of text
    operators (1,000 pages and 5 MB at full size: a 220 KB file)."""
    from pypdf import PdfWriter
    from pypdf.generic import (
        DecodedStreamObject,
        DictionaryObject,
        NameObject,
    )

    operators = b"(abcdefgh ijklmnop) Tj T* "
    content = b"BT /F1 9 Tf 12 TL 20 780 Td " + operators * (stream_bytes // len(operators)) + b"ET"
    writer = PdfWriter()
    stream = DecodedStreamObject()
    stream.set_data(content)
    shared = writer._add_object(stream.flate_encode())
    font = writer._add_object(
        DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
            }
        )
    )
    for _ in range(pages):
        page = writer.add_blank_page(612, 792)
        page[NameObject("/Contents")] = shared
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
    with path.open("wb") as out:
        writer.write(out)
    return path


def tiny_sentences(path: Path, text_bytes: int) -> Path:
    """Text of nothing but one-letter lines (millions of sentences at full size)."""
    with path.open("wb") as out:
        for chunk in _repeat(b"a\n\n", text_bytes):
            out.write(chunk)
    return path


def named_mentions(path: Path, text_bytes: int) -> Path:
    """Text that is nothing but an ATT&CK software name (millions of mentions at full size)."""
    with path.open("wb") as out:
        for chunk in _repeat(b"cmd ", text_bytes):
            out.write(chunk)
    return path


def many_indicators(path: Path, text_bytes: int) -> Path:
    """Text that is nothing but IP addresses, one a line (a million at full size)."""
    with path.open("wb") as out:
        for chunk in _repeat(b"10.1.2.3\n", text_bytes):
            out.write(chunk)
    return path
