"""The document contracts: a text with its origin, and spans (sentences, windows) into it."""

from __future__ import annotations

from dataclasses import dataclass

TITLE_CHARS = 120


@dataclass(frozen=True)
class Document:
    """A report as MitreMap reads it. Every offset in every result points into `text`.

    `warnings` says what a reader had to guess or leave out (a legacy encoding, PDF pages
    without text), for front ends to show. `date` (ISO 8601, "" when unknown) is when the
    report says it was published; never a file's modification time (that is when a copy was
    made), so exports fall back to the time of the analysis.
    """

    text: str
    title: str = ""
    origin: str = "<text>"
    media_type: str = "text/plain"
    warnings: tuple[str, ...] = ()
    date: str = ""

    @classmethod
    def from_text(
        cls,
        text: str,
        title: str | None = None,
        origin: str = "<text>",
        media_type: str = "text/plain",
    ) -> Document:
        """A document from a string, titled by its first line unless `title` is given."""
        return cls(text, first_line(text) if title is None else title, origin, media_type)

    def to_dict(self) -> dict[str, object]:
        info: dict[str, object] = {
            "title": self.title,
            "origin": self.origin,
            "media_type": self.media_type,
            "length": len(self.text),
        }
        if self.warnings:
            info["warnings"] = list(self.warnings)
        if self.date:
            info["date"] = self.date
        return info


def first_line(text: str) -> str:
    """The first non-blank line, without Markdown heading marks, cut to TITLE_CHARS."""
    for line in text[:10_000].splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"
    return ""


@dataclass(frozen=True)
class Sentence:
    """A sentence as character offsets [start, end) into its document's text."""

    start: int
    end: int

    def text(self, document_text: str) -> str:
        return document_text[self.start : self.end]


@dataclass(frozen=True)
class Window:
    """Consecutive sentences read together by the model; [start, end) covers them all."""

    start: int
    end: int
    sentences: tuple[Sentence, ...]

    def text(self, document_text: str) -> str:
        return document_text[self.start : self.end]
