"""Why the model said so: per-word attributions for each technique hit.

For the linear model the attributions are exact. A window's decision score for a technique is
`b + Σ_f w_f · x_f` over its n-gram features; each feature's share `w_f · x_f` is spread evenly
over the characters of its occurrences in the window (a word, a word pair, or a character
n-gram inside a word), and the characters' shares are summed per word. The words' weights add
up to the score minus the bias, so nothing is approximated and nothing is left out.

SHAP, as in the original notebook, is available too (`shap_values`, needs the `explain` extra):
real `shap.Explanation` objects from shap's text masker over the model's scoring function.
It is far slower — it scores hundreds of masked copies of each text — so it is opt-in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from mitremap.errors import MissingExtraError

_TOKEN = re.compile(r"(?u)\b\w\w+\b")  # the word analyser's tokens (scikit-learn's default)
_WORD = re.compile(r"\S+")  # the char_wb analyser's words, and the units attributions are given for
_EDGE_PUNCTUATION = "()[]{}<>\"'`“”‘’«».,;:!?"


@dataclass(frozen=True)
class Attribution:
    """How much the word at [start, end) of the document pushed a technique's score (+ up, − down)."""

    start: int
    end: int
    weight: float

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "weight": round(self.weight, 6)}


def _lowered(text: str) -> tuple[str, list[int] | None]:
    """`text.lower()` and, when lower-casing changed the length (a few Unicode letters lower to
    two characters), the original index of every lowered character."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered, None
    return lowered, [i for i, c in enumerate(text) for _ in c.lower()]


def _occurrences(
    text: str, offset: int, analyzer: str, ngram_range: tuple[int, int]
) -> Iterable[tuple[str, tuple[tuple[int, int], ...]]]:
    """Every n-gram the analyser sees in `text`, with the character spans of its pieces (the
    words of a word n-gram; the part of the word a character n-gram covers), shifted by `offset`.

    Mirrors scikit-learn's `word` and `char_wb` analysers (lower-cased), so the n-grams and
    their counts are exactly those the model was given.
    """
    lowered, origin = _lowered(text)

    def span(start: int, end: int) -> tuple[int, int]:
        if origin is None:
            return offset + start, offset + end
        return offset + origin[start], offset + origin[
            end - 1
        ] + 1 if end > start else offset + origin[start]

    low, high = ngram_range
    if analyzer == "word":
        tokens = [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(lowered)]
        for n in range(low, high + 1):
            for i in range(len(tokens) - n + 1):
                gram = tokens[i : i + n]
                yield " ".join(t[0] for t in gram), tuple(span(t[1], t[2]) for t in gram)
    elif analyzer == "char_wb":
        for match in _WORD.finditer(lowered):
            padded = f" {match.group()} "
            for n in range(low, high + 1):
                last = max(len(padded) - n, 0)
                for i in range(last + 1):
                    start = match.start() + max(i - 1, 0)
                    end = match.start() + min(i + n - 1, len(match.group()))
                    yield padded[i : i + n], (span(start, max(end, start + 1)),)
                if last == 0:  # a word shorter than n is counted once (as scikit-learn does)
                    break
    else:
        raise ValueError(f"cannot explain the {analyzer!r} analyser")


@dataclass
class Passage:
    """What attributions over one passage need whatever the technique: its input row and,
    per feature column, the places its n-grams occur. Built once, it explains every technique
    found in the passage (the review workspace explains dozens)."""

    text: str
    spans: Sequence[tuple[int, int]]
    row: Any  # the passage's tf-idf row (1 × features)
    places: dict[int, list[tuple[tuple[int, int], ...]]]  # column → occurrences

    @classmethod
    def read(cls, text: str, spans: Sequence[tuple[int, int]], features: Any) -> Passage:
        sentences = [text[s:e] for s, e in spans]
        row = features.tfidf(_summed(features, sentences)).tocsr()
        present = set(row.indices.tolist())
        places: dict[int, list[tuple[tuple[int, int], ...]]] = {}
        column = 0
        for block in features.blocks:
            vocabulary = block.vocabulary
            for (start, _end), sentence in zip(spans, sentences, strict=True):
                for gram, pieces in _occurrences(
                    sentence, start, block.analyzer, block.ngram_range
                ):
                    index = vocabulary.get(gram)
                    if index is not None and column + index in present:
                        places.setdefault(column + index, []).append(pieces)
            column += block.size
        return cls(text, spans, row, places)

    def attributions(self, weights: np.ndarray) -> list[Attribution]:
        """Per-word attributions of the linear score with these weights over the passage."""
        x = self.row
        contribution = np.zeros(x.shape[1], dtype=np.float64)
        contribution[x.indices] = x.data * np.asarray(weights, dtype=np.float64)[x.indices]
        per_char = np.zeros(len(self.text) + 1, dtype=np.float64)
        for column, places in self.places.items():
            if contribution[column] == 0.0:
                continue
            share = contribution[column] / len(places)
            for pieces in places:
                length = sum(e - s for s, e in pieces)
                for s, e in pieces:
                    per_char[s:e] += share / length
        return _per_word(self.text, self.spans, per_char)


def linear_attributions(
    text: str,
    spans: Sequence[tuple[int, int]],
    features: Any,
    weights: np.ndarray,
) -> list[Attribution]:
    """Exact per-word attributions of a linear score over the window made of `spans` of `text`.

    `features` is the model's `TextFeatures` (its blocks give analyser, n-gram range, vocabulary,
    idf and scaling); `weights` is the technique's weight vector over the same columns. The
    window's input row is built the way the model builds it — n-gram counts of each sentence,
    summed — so the attributions add up to the window's score minus the bias.
    """
    return Passage.read(text, spans, features).attributions(weights)


def _summed(features: Any, sentences: Sequence[str]) -> Any:
    from scipy import sparse

    counts = features.counts(sentences).tocoo()
    # one sparse row (duplicates summed): a dense sum would span every feature column
    rows = np.zeros_like(counts.col)
    return sparse.csr_matrix((counts.data, (rows, counts.col)), shape=(1, counts.shape[1]))


def _per_word(
    text: str, spans: Sequence[tuple[int, int]], per_char: np.ndarray
) -> list[Attribution]:
    out = []
    for start, end in spans:
        for match in _WORD.finditer(text, start, end):
            weight = float(per_char[match.start() : match.end()].sum())
            if weight == 0.0:
                continue
            s, e = match.start(), match.end()
            while s < e - 1 and text[s] in _EDGE_PUNCTUATION:
                s += 1
            while e > s + 1 and text[e - 1] in _EDGE_PUNCTUATION:
                e -= 1
            out.append(Attribution(s, e, weight))
    return out


def top_attributions(attributions: Sequence[Attribution], k: int = 10) -> list[Attribution]:
    """The `k` words with the largest absolute weight, strongest first."""
    return sorted(attributions, key=lambda a: -abs(a.weight))[:k]


def shap_values(
    score: Callable[[Sequence[str]], np.ndarray] | Any,
    texts: Sequence[str],
    technique: str | None = None,
    max_evals: int | None = None,
) -> Any:
    """SHAP values (a `shap.Explanation`) of one technique's score for each text.

    `score` is a `MitreMap` (with `technique`) or any function from texts to scores. Uses shap's
    text masker over words, as the original notebook did; plot with `shap.plots.text(result)`.
    """
    try:
        import shap
    except ImportError as exc:
        raise MissingExtraError("shap", "explain", "SHAP explanations") from exc
    if technique is None:
        if not callable(score):
            raise ValueError("name the technique to explain")
        function = score
        names = ["score"]
    else:
        function = cast(Any, score).technique_scorer(technique)  # a MitreMap
        names = [technique]

    def two_dimensional(batch: Sequence[str]) -> np.ndarray:
        scores = np.asarray(function(list(batch)), dtype=float)
        return scores.reshape(len(batch), -1)  # one column per output, as shap expects

    masker = shap.maskers.Text(r"\W+")
    explainer = shap.Explainer(two_dimensional, masker, output_names=names)
    kwargs = {"max_evals": max_evals} if max_evals else {}
    return explainer(list(texts), silent=True, **kwargs)
