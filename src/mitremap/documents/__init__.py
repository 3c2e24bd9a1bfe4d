"""Reading reports and cutting them into sentences and windows, keeping character offsets.

`Document.text` is the text every offset in MitreMap points into.
"""

from __future__ import annotations

from mitremap.documents.model import Document, Sentence, Window
from mitremap.documents.segment import make_windows, split_sentences

__all__ = ["Document", "Sentence", "Window", "make_windows", "split_sentences"]
