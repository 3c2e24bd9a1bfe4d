"""PDF text, read in a child process that can be stopped.

pypdf cannot be stopped from inside: one call to `extract_text` on a page can run for minutes
(a thousand pages sharing one 5 MB content stream cost ten seconds each). So the PDF is read in
a child process (`python -c`, data in on stdin, JSON out on stdout: no pickle), which sets
its own CPU-time and address-space limits before it reads a byte, and is killed when the
caller's deadline comes. Inside, the child counts pages, decoded content-stream bytes (before
a page is parsed) and operations (as they run, through pypdf's operator visitor), a stream
shared by many pages counted on each, and stops when a `Budget` runs out, keeping the pages
it read and saying so in a note.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mitremap.deadline import Deadline
from mitremap.documents.budget import DEFAULT, Budget, BudgetSpent, size_text
from mitremap.documents.formats import DocumentError, clean_pdf_text, one_line
from mitremap.errors import MissingExtraError

_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from mitremap.documents.pdf import child; child(sys.argv[2])"
)
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
_TEXT_OPERATORS = frozenset((b"Tj", b"TJ", b"'", b'"'))


def pdf_text(
    data: bytes, origin: str, *, deadline: Deadline | None = None, budget: Budget = DEFAULT
) -> tuple[str, str, list[str]]:
    """Text, title and notes of a PDF, read in a child process bounded by `budget` and killed
    at `deadline` (`TimeLimitError`)."""
    if importlib.util.find_spec("pypdf") is None:
        raise MissingExtraError("pypdf", "pdf", "Reading PDF files")
    deadline = deadline or Deadline.none()
    deadline.check("reading the PDF")
    cpu_s = max(1, math.ceil(min(budget.child_cpu_s, deadline.left())))
    answer = _answer(_run_child(data, {**asdict(budget), "cpu_s": cpu_s}, deadline))
    if answer is None:
        deadline.check("reading the PDF")
        memory = size_text(budget.child_memory_bytes)
        raise DocumentError(
            origin,
            f"reading the PDF took more than {cpu_s} s of CPU time or {memory} of memory: refused",
        )
    if "error" in answer:
        raise DocumentError(origin, str(answer["error"]))
    return _document_text(answer, origin)


def _run_child(data: bytes, request: dict[str, Any], deadline: Deadline) -> bytes:
    """What the child wrote, given `data` to read within the request's budget and limits; it
    is killed at the deadline (`TimeLimitError`) or on any error here, never left behind."""
    with subprocess.Popen(  # leaving the block closes the pipes, also when the child is killed
        [sys.executable, "-c", _BOOT, _PACKAGE_ROOT, json.dumps(request)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    ) as process:
        try:
            timeout = deadline.left() if deadline.limited else None
            out, _ = process.communicate(data, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise deadline.error("reading the PDF") from None
        finally:
            if process.poll() is None:  # the deadline, Ctrl-C, or any error here: no orphan
                process.kill()
                process.wait()
    return out


def _document_text(answer: dict[str, Any], origin: str) -> tuple[str, str, list[str]]:
    """The child's pages as one text (cleaned, a blank line between pages), the title, and the
    notes: the pages without text first (scans need OCR), then the child's own."""
    pages = [clean_pdf_text(page) for page in answer["pages"]]
    empty = [number for number, page in enumerate(pages, 1) if not page]
    if len(empty) == len(pages):
        raise DocumentError(
            origin,
            "the PDF has no extractable text (scanned images? run OCR first)"
            + "".join(f"; {note}" for note in answer["notes"]),
        )
    notes = [f"no text on PDF page(s) {_ranges(empty)} (scanned images?)"] if empty else []
    notes += answer["notes"]
    return "\n\n".join(page for page in pages if page), answer["title"], notes


def _answer(out: bytes) -> dict[str, Any] | None:
    """The child's answer, None when it gave none (killed at a limit) or not in its shape."""
    try:
        answer = json.loads(out)
    except ValueError:
        return None
    if isinstance(answer, dict) and isinstance(answer.get("error"), str):
        return answer
    shaped = (
        isinstance(answer, dict)
        and isinstance(answer.get("title"), str)
        and all(isinstance(answer.get(key), list) for key in ("pages", "notes"))
        and all(isinstance(item, str) for item in (*answer["pages"], *answer["notes"]))
    )
    return answer if shaped else None


def child(request_json: str) -> None:
    """The child process: limits first, then the PDF from stdin, its text as JSON on stdout."""
    request = json.loads(request_json)
    cpu_s = int(request.pop("cpu_s"))
    budget = Budget(**request)
    try:
        import resource
    except ImportError:  # not on POSIX: the parent's kill at the deadline still holds
        pass
    else:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
        memory = budget.child_memory_bytes
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    data = sys.stdin.buffer.read()
    try:
        answer = _read(data, budget)
    except MemoryError:
        limit = size_text(budget.child_memory_bytes)
        answer = {"error": f"reading the PDF needs more than {limit} of memory: refused"}
    except _Refused as refused:
        answer = {"error": str(refused)}
    except Exception as error:  # pypdf raises many kinds on corrupt input
        answer = {"error": f"not a readable PDF (corrupt or truncated): {one_line(error)}"}
    sys.stdout.write(json.dumps(answer))


class _Refused(Exception):
    """A PDF that cannot be read at all (a password)."""


class _Count:
    """Operations run on every page so far (pypdf's `visitor_operand_before`), and the text
    of the page being read as pypdf gives it out (`visitor_text`): a page stopped half-way
    keeps what it showed."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.operations = 0
        self.text_operations = 0
        self.page: list[str] = []
        self.page_chars = 0

    def operation(self, operator: bytes, *_: Any) -> None:
        self.operations += 1
        if operator in _TEXT_OPERATORS:
            self.text_operations += 1
            if self.text_operations > self.budget.text_operations:
                raise BudgetSpent(
                    f"its pages show text more than {self.budget.text_operations:,} times"
                )
        if self.operations > self.budget.operations:
            raise BudgetSpent(f"its pages run more than {self.budget.operations:,} operations")

    def text(self, text: str, *_: Any) -> None:
        self.page.append(text)
        self.page_chars += len(text)
        if self.page_chars > self.budget.page_chars:
            raise _PageFull


class _PageFull(Exception):
    """A page's text passed `Budget.page_chars`."""


def _read(data: bytes, budget: Budget) -> dict[str, Any]:
    import io
    import logging
    import warnings

    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.CRITICAL + 1)
    warnings.simplefilter("ignore")
    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted and not reader.decrypt(""):
        raise _Refused("the PDF is password-protected")
    read = _read_pages(reader.pages, budget)
    title = str(reader.metadata.title or "").strip() if reader.metadata else ""
    return {"pages": read.pages, "title": title[:1000], "notes": read.notes(len(reader.pages))}


@dataclass
class _Pages:
    """The text of the pages read, the pages cut at `Budget.page_chars`, and why the reading
    stopped before the last page ("" when it did not)."""

    budget: Budget
    pages: list[str] = field(default_factory=list)
    full: list[int] = field(default_factory=list)
    stop: str = ""

    def notes(self, total: int) -> list[str]:
        """What the document's notes say was left out."""
        notes = []
        if self.full:
            notes.append(
                f"PDF page(s) {_ranges(self.full)} hold more than {self.budget.page_chars:,} "
                "characters each: the rest of those pages was left out"
            )
        if self.stop == "the page limit":
            notes.append(f"only the first {len(self.pages):,} of {total:,} PDF pages were read")
        elif self.stop:
            notes.append(f"only {len(self.pages):,} of {total:,} PDF pages were read: {self.stop}")
        return notes


def _read_pages(pages: Any, budget: Budget) -> _Pages:
    """The pages' text, page by page, until the budget's pages, content bytes, operations or
    characters run out."""
    count = _Count(budget)
    read = _Pages(budget)
    chars = content = 0
    for number, page in enumerate(pages, 1):
        if len(read.pages) >= budget.pages:
            read.stop = "the page limit"
            break
        content += _content_bytes(page)
        if content > budget.content_bytes:
            read.stop = (
                f"its content streams pass {size_text(budget.content_bytes)} "
                "(a stream shared by pages counted on each)"
            )
            break
        text = _page_text(page, number, count, read)
        if text is None:
            break
        chars += len(text)
        if chars > budget.text_chars:
            read.pages.append(text[: len(text) - (chars - budget.text_chars)])
            read.stop = f"its text passes {budget.text_chars:,} characters"
            break
        read.pages.append(text)
    return read


def _page_text(page: Any, number: int, count: _Count, read: _Pages) -> str | None:
    """One page's text as pypdf gives it out, cut at `Budget.page_chars` (the page noted in
    `read.full`); None when the budget ran out on it (what it showed is kept, and
    `read.stop` says why)."""
    count.page, count.page_chars = [], 0
    try:
        text = page.extract_text(visitor_operand_before=count.operation, visitor_text=count.text)
    except _PageFull:
        read.full.append(number)
        return "".join(count.page)[: count.budget.page_chars]
    except BudgetSpent as spent:
        read.pages.append("".join(count.page))
        read.stop = str(spent)
        return None
    return str(text or "")


def _content_bytes(page: Any) -> int:
    """Decoded bytes of a page's content streams (pypdf keeps a decoded stream, so a shared
    one is decoded once however many pages count it)."""
    contents = page.get("/Contents")
    if contents is None:
        return 0
    contents = contents.get_object()
    streams = contents if isinstance(contents, list) else [contents]
    return sum(len(stream.get_object().get_data()) for stream in streams)


def _ranges(values: list[int]) -> str:
    """Page numbers as "1, 3-7" (a 1,000-page scan is one short note, not 1,000 numbers)."""
    parts: list[str] = []
    start = previous = values[0]
    for value in [*values[1:], -1]:
        if value != previous + 1:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
            start = value
        previous = value
    return ", ".join(parts)
