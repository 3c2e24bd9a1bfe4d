"""How much work reading one document may take, counted by its shape as it is read.

Bytes and characters are capped where a document arrives; what a small file can still cost
is in its shape: millions of empty paragraphs, one table row of a million cells, elements
nested a million deep, a thousand PDF pages sharing one 5 MB content stream. Every reader
counts what it walks (elements, depth, pages, content-stream operations) against a `Budget`
and stops when one runs out, keeping what it read: the document then says so in a note
(`Document.warnings`). The defaults keep any document within about 10 s of reading and a few
hundred MB on one core (`benchmarks/bench_hostile.py`), far above what real reports need.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    """Limits on reading one document; each reader uses the ones that fit its format."""

    text_chars: int = 5_000_000
    """Text kept from one PDF, Word or HTML document (~1,500 pages of prose)."""
    elements: int = 2_000_000
    """XML or HTML elements walked (a 300-page Word report has ~200,000)."""
    depth: int = 256
    """Elements nested in one another (Word's text boxes in tables reach ~30)."""
    xml_bytes: int = 64 * 1024 * 1024
    """XML of a Word document's main part (a 1.5 MB zip can hold 480 MB of markup)."""
    pages: int = 1000
    """PDF pages read."""
    operations: int = 1_000_000
    """PDF content-stream operations run, a stream shared by pages counted on each page."""
    text_operations: int = 250_000
    """Of those, the ones that show text (the costly ones: ~25 µs each in pypdf). A real
    1,000-page report has ~100,000 of them and ~400,000 operations in all."""
    content_bytes: int = 16 * 1024 * 1024
    """Decoded PDF content streams parsed, shared ones counted on each page (~0.4 s a MB;
    real reports have ~8 KB a page)."""
    page_chars: int = 100_000
    """Text of one PDF page (a dense page has ~5,000 characters; pypdf's time grows with the
    square of a page's text, so the rest of a page past this is left out)."""
    rich_html_elements: int = 50_000
    """HTML pages up to this many elements have their main text found by trafilatura
    (~60 µs an element); larger ones are read as plain text, with a note."""
    child_memory_bytes: int = 1024 * 1024 * 1024
    """Address space of the child process a PDF is read in."""
    child_cpu_s: float = 120.0
    """CPU seconds of that child process when the caller gave no time limit."""


DEFAULT = Budget()


class BudgetSpent(Exception):
    """A reader ran out of one of its budgets; `str()` says which, as the end of a note."""


def size_text(size: int) -> str:
    """A budget's size in a note: "16 MB", or "20,000 bytes" below a MB."""
    return f"{size / 2**20:.0f} MB" if size >= 2**20 else f"{size:,} bytes"
