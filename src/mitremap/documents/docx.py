"""Word (DOCX) text, streamed from the XML with memory and work bounded by the document's shape.

A DOCX is a zip whose `word/document.xml` can inflate to hundreds of MB of markup from a
1.5 MB file. Its text is read straight from expat's events: no element tree is built, only
the open paragraphs and the current table row are held, so millions of empty paragraphs,
unknown elements, one row of a million cells or a million levels of nesting cost no memory.
Inflating stops at `Budget.xml_bytes` whatever the zip's headers claim, and the walk counts
elements, depth and characters against the `Budget`, stopping (text kept, a note added) when
one runs out. A DTD is refused: Word never writes one, and entities are how XML bombs work.
"""

from __future__ import annotations

import contextlib
import io
import zipfile
from typing import IO, Any

from mitremap.deadline import Deadline
from mitremap.documents.budget import DEFAULT, Budget, BudgetSpent, size_text
from mitremap.documents.formats import DocumentError, one_line
from mitremap.errors import MitreMapError

MAX_UNZIPPED_BYTES = 512 * 1024 * 1024
"""A DOCX whose parts claim to expand beyond this is refused (a zip bomb)."""

_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_P, _T, _TAB, _BR, _CR = (_W + name for name in ("p", "t", "tab", "br", "cr"))
_TBL, _TR, _TC = (_W + name for name in ("tbl", "tr", "tc"))
_DC_TITLE = "http://purl.org/dc/elements/1.1/}title"
_CHUNK = 1 << 16


def docx_text(
    data: bytes, origin: str, *, deadline: Deadline | None = None, budget: Budget = DEFAULT
) -> tuple[str, str, list[str]]:
    """Text (paragraphs, and table rows as "cell | cell", in order), title and notes."""
    deadline = deadline or Deadline.none()
    _check_unzipped_size(data, origin)
    walker = _Walker(budget)
    stop = ""
    title = ""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            if "word/document.xml" not in names:
                raise DocumentError(origin, "not a readable Word document (corrupt DOCX)")
            with archive.open("word/document.xml") as part:
                try:
                    _parse(part, walker, budget.xml_bytes, deadline)
                except BudgetSpent as spent:
                    stop = str(spent)
                    walker.keep_open()
            if "docProps/core.xml" in names:
                with archive.open("docProps/core.xml") as part:
                    title = _core_title(part)
    except MitreMapError:  # a DocumentError above, or the deadline
        raise
    except _DtdRefused:
        raise DocumentError(origin, "the Word document declares a DTD (Word never does)") from None
    except Exception as error:  # zip, inflate and XML errors on corrupt input
        raise DocumentError(
            origin, f"not a readable Word document (corrupt DOCX): {one_line(error)}"
        ) from None
    text = "\n\n".join(walker.blocks)
    notes = [f"only the start of the Word document was read: {stop}"] if stop else []
    if not text.strip():
        reason = f" (reading stopped early: {stop})" if stop else ""
        raise DocumentError(origin, f"the Word document has no text{reason}")
    return text, title, notes


class _DtdRefused(Exception):
    """The XML declares a document type."""


def _refuse_dtd(*_: Any) -> None:
    raise _DtdRefused


def _expat(namespaces: bool = True) -> Any:
    import pyexpat

    parser = pyexpat.ParserCreate(namespace_separator="}" if namespaces else None)
    parser.buffer_text = True
    parser.buffer_size = _CHUNK
    parser.StartDoctypeDeclHandler = _refuse_dtd
    return parser


def _parse(part: IO[bytes], walker: _Walker, limit: int, deadline: Deadline) -> None:
    """Feed the part to the walker in chunks, at most `limit` inflated bytes."""
    parser = _expat()
    parser.StartElementHandler = walker.start
    parser.EndElementHandler = walker.end
    parser.CharacterDataHandler = walker.text
    left = limit
    while chunk := part.read(min(_CHUNK, left + 1)):
        deadline.check("reading the Word document")
        if len(chunk) > left:
            parser.Parse(chunk[:left], False)
            raise BudgetSpent(f"its XML passes {size_text(limit)}")
        left -= len(chunk)
        parser.Parse(chunk, False)
    parser.Parse(b"", True)


class _Walker:
    """Paragraphs outside tables, and top-level table rows as "cell | cell", from expat's
    events; only the open paragraphs and the current row are held."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.blocks: list[str] = []
        self.paragraphs: list[list[str]] = []  # open paragraphs' pieces, innermost last
        self.cells: list[list[str]] = []  # open cells' paragraphs, innermost last
        self.row: dict[str, None] = {}  # the open top-level row's cells, each once (merges)
        self.tables = self.depth = self.elements = self.chars = self.in_text = 0

    def start(self, name: str, _: Any) -> None:
        self.elements += 1
        self.depth += 1
        if self.elements > self.budget.elements:
            raise BudgetSpent(f"it has more than {self.budget.elements:,} XML elements")
        if self.depth > self.budget.depth:
            raise BudgetSpent(f"it nests elements more than {self.budget.depth} deep")
        if name == _T:
            self.in_text += 1
        elif name == _P:
            self.paragraphs.append([])
        elif name == _TAB:
            self._piece("\t")
        elif name in (_BR, _CR):
            self._piece("\n")
        elif name == _TBL:
            self.tables += 1
        elif name == _TC:
            self.cells.append([])
        elif name == _TR and self.tables == 1:
            self.row = {}

    def end(self, name: str) -> None:
        self.depth -= 1
        if name == _T:
            self.in_text -= 1
        elif name == _P and self.paragraphs:
            self._close_paragraph()
        elif name == _TC and self.cells:
            self._close_cell()
        elif name == _TR and self.tables == 1 and not self.cells:
            if self.row:
                self.blocks.append(" | ".join(self.row))
            self.row = {}
        elif name == _TBL:
            self.tables = max(0, self.tables - 1)

    def _close_paragraph(self) -> None:
        """A paragraph ends: into its cell, or a block of its own outside tables."""
        text = "".join(self.paragraphs.pop()).strip()
        if self.cells:
            self.cells[-1].append(text)
        elif not self.tables and text:
            self.blocks.append(text)

    def _close_cell(self) -> None:
        """A cell ends: into the top-level row (each text once: merged cells repeat it), or,
        in a nested table, into the cell around it."""
        text = "\n".join(self.cells.pop()).strip()
        if self.cells:  # a nested table's cell: part of the cell around it
            self.cells[-1].append(text)
        elif text:
            self.row[text] = None

    def keep_open(self) -> None:
        """Reading stopped inside a paragraph or a row: keep what it had of them."""
        if self.row or (self.cells and self.tables == 1):
            cells = [*self.row, *("\n".join(cell).strip() for cell in self.cells[:1])]
            self.blocks.append(" | ".join(c for c in dict.fromkeys(cells) if c))
        elif self.paragraphs and not self.tables:
            self.blocks.append("".join(self.paragraphs[0]).strip())
        self.blocks = [block for block in self.blocks if block]

    def text(self, data: str) -> None:
        if self.in_text:
            self._piece(data)

    def _piece(self, data: str) -> None:
        if not self.paragraphs:
            return
        self.chars += len(data)
        if self.chars > self.budget.text_chars:
            raise BudgetSpent(f"its text passes {self.budget.text_chars:,} characters")
        self.paragraphs[-1].append(data)


def _core_title(part: IO[bytes]) -> str:
    """The title in `docProps/core.xml` (its first MB), or "" when it has none or is odd."""
    import pyexpat

    pieces: list[str] = []
    inside = [False]
    parser = _expat()

    def start(name: str, _: Any) -> None:
        inside[0] = name == _DC_TITLE

    def end(_: str) -> None:
        inside[0] = False

    def text(data: str) -> None:
        if inside[0] and sum(map(len, pieces)) < 1000:
            pieces.append(data)

    parser.StartElementHandler, parser.EndElementHandler = start, end
    parser.CharacterDataHandler = text
    with contextlib.suppress(pyexpat.ExpatError, _DtdRefused):
        parser.Parse(part.read(1 << 20), True)
    return "".join(pieces).strip()


def _check_unzipped_size(data: bytes, origin: str) -> None:
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
