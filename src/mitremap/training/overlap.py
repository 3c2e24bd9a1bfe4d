"""Near-duplicate detection between training texts and held-out reports.

Cross-validation by document is only honest if no sentence of a held-out report is trained on.
TRAM's bootstrap set (and other report-derived sets) contain report sentences, sometimes with
names removed, so exact matching is not enough: a text counts as inside the held-out reports
when half of its word 4-grams occur there (or, for texts under four words, when it occurs there
as a phrase).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_NON_WORD = re.compile(r"[^a-z0-9]+")
SHINGLE = 4


def _words(text: str) -> list[str]:
    return _NON_WORD.sub(" ", text.lower()).split()


def _shingles(words: list[str]) -> set[str]:
    return {" ".join(words[i : i + SHINGLE]) for i in range(max(1, len(words) - SHINGLE + 1))}


class TextOverlap:
    """Answers "does this text occur (nearly) in these documents?"."""

    def __init__(self, documents: Iterable[str], min_share: float = 0.5) -> None:
        self.min_share = min_share
        self._shingles: set[str] = set()
        joined = []
        for document in documents:
            words = _words(document)
            self._shingles |= _shingles(words)
            joined.append(" ".join(words))
        self._joined = " " + " | ".join(joined) + " "

    def __contains__(self, text: object) -> bool:
        if not isinstance(text, str):
            return False
        words = _words(text)
        if not words:
            return False
        if len(words) < SHINGLE:
            return f" {' '.join(words)} " in self._joined
        shingles = _shingles(words)
        inside = sum(1 for s in shingles if s in self._shingles)
        return inside >= self.min_share * len(shingles)
