"""Sentence splitting and windowing. (A first, simple splitter: to be replaced by one made for
threat reports.)"""

from __future__ import annotations

import re

from mitremap.documents.model import Sentence, Window

_BOUNDARY = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(\[])|\n\s*\n|\n(?=\s*[-*•]\s)")


def split_sentences(text: str) -> list[Sentence]:
    """Sentences of `text` as offsets, whitespace trimmed, empty ones dropped."""
    sentences = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        sentences.extend(_trimmed(text, start, match.start()))
        start = match.end()
    sentences.extend(_trimmed(text, start, len(text)))
    return sentences


def _trimmed(text: str, start: int, end: int) -> list[Sentence]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return [Sentence(start, end)] if end > start else []


def make_windows(sentences: list[Sentence], size: int = 3, stride: int | None = None) -> list[Window]:
    """Windows of `size` consecutive sentences, every `stride` sentences (default: `size`)."""
    if size < 1:
        raise ValueError("window size must be at least 1")
    stride = size if stride is None else stride
    if stride < 1:
        raise ValueError("window stride must be at least 1")
    windows = []
    for first in range(0, max(len(sentences), 1), stride):
        group = tuple(sentences[first:first + size])
        if not group:
            break
        windows.append(Window(group[0].start, group[-1].end, group))
        if first + size >= len(sentences):
            break
    return windows
