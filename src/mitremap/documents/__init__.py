"""Reading reports and cutting them into sentences and windows, keeping character offsets.

`Document.text` is the text every offset in MitreMap points into.

    doc = read_document("report.pdf")        # a path, an http(s) URL, or "-" for stdin
    doc = Document.from_text(text, title="Pasted report")
    windows = make_windows(split_sentences(doc.text), size=3)
"""

from __future__ import annotations

from mitremap.documents.budget import Budget
from mitremap.documents.formats import DOCX, HTML, MARKDOWN, PDF, TEXT, DocumentError
from mitremap.documents.model import Document, Sentence, Window
from mitremap.documents.readers import (
    DEFAULT_MAX_BYTES,
    DEFAULT_TIMEOUT,
    FolderProgress,
    FolderResult,
    read_bytes,
    read_document,
    read_file,
    read_folder,
    read_stdin,
    read_url,
)
from mitremap.documents.segment import (
    iter_sentences,
    make_windows,
    split_sentences,
    window_ranges,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_TIMEOUT",
    "DOCX",
    "HTML",
    "MARKDOWN",
    "PDF",
    "TEXT",
    "Budget",
    "Document",
    "DocumentError",
    "FolderProgress",
    "FolderResult",
    "Sentence",
    "Window",
    "iter_sentences",
    "make_windows",
    "read_bytes",
    "read_document",
    "read_file",
    "read_folder",
    "read_stdin",
    "read_url",
    "split_sentences",
    "window_ranges",
]
