"""The document contracts: a text with its origin, and spans (sentences, windows) into it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Document:
    """A report as MitreMap reads it. Every offset in every result points into `text`."""

    text: str
    title: str = ""
    origin: str = "<text>"
    media_type: str = "text/plain"

    def to_dict(self) -> dict[str, object]:
        return {"title": self.title, "origin": self.origin, "media_type": self.media_type,
                "length": len(self.text)}


@dataclass(frozen=True)
class Sentence:
    """A sentence as character offsets [start, end) into its document's text."""

    start: int
    end: int

    def text(self, document_text: str) -> str:
        return document_text[self.start:self.end]


@dataclass(frozen=True)
class Window:
    """Consecutive sentences read together by the model; [start, end) covers them all."""

    start: int
    end: int
    sentences: tuple[Sentence, ...]

    def text(self, document_text: str) -> str:
        return document_text[self.start:self.end]
