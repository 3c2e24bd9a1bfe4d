"""Sparse text features: word and character n-gram TF-IDF, stored as plain arrays.

Windows are scored from the counts of their sentences: every sentence is analysed once and a
window's counts are the sum of its sentences' counts, so overlapping windows cost a sparse sum
instead of a second pass over the text (character n-grams dominate prediction time).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

_TOKEN_PATTERN = r"(?u)\b\w\w+\b"
_TOKEN = re.compile(_TOKEN_PATTERN)
_WHITE_SPACES = re.compile(r"\s\s+")
_WORD_CACHE_SIZE = 100_000


def word_ngrams(text: str, low: int, high: int) -> list[str]:
    """scikit-learn's `word` analyser (lower-cased, default token pattern), without importing
    scikit-learn: the CLI's cold start cannot afford its import time."""
    tokens = _TOKEN.findall(text.lower())
    out = list(tokens) if low == 1 else []
    for n in range(max(low, 2), min(high, len(tokens)) + 1):
        out.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return out


def char_wb_ngrams(text: str, low: int, high: int) -> Iterator[str]:
    """scikit-learn's `char_wb` analyser: character n-grams inside space-padded words."""
    for word in char_wb_words(text):
        yield from word_char_ngrams(word, low, high)


def char_wb_words(text: str) -> list[str]:
    """The words `char_wb` pads and cuts into n-grams."""
    return _WHITE_SPACES.sub(" ", text.lower()).split()


def word_char_ngrams(word: str, low: int, high: int) -> Iterator[str]:
    """The `char_wb` n-grams of one word."""
    padded = f" {word} "
    length = len(padded)
    for n in range(low, high + 1):
        if length <= n:  # a short word is counted once, as a whole
            yield padded
            break
        for i in range(length - n + 1):
            yield padded[i : i + n]


@dataclass
class FeatureBlock:
    """One n-gram family (word or char_wb): its vocabulary, idf weights and analyser settings."""

    analyzer: str  # "word" | "char_wb"
    ngram_range: tuple[int, int]
    terms: list[str]
    idf: np.ndarray  # float32, one per term
    weight: float = 1.0  # scale of this block in the concatenated vector
    _vectorizer: Any = field(default=None, repr=False, compare=False)
    _vocabulary: dict[str, int] | None = field(default=None, repr=False, compare=False)
    # char_wb: word → its n-grams' columns. Words repeat (Zipf), so most words of a report
    # are looked up once instead of being cut into n-grams again; bounded, cleared when full.
    _word_columns: dict[str, list[int]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def size(self) -> int:
        return len(self.terms)

    @property
    def vocabulary(self) -> dict[str, int]:
        """Term → column within the block."""
        if self._vocabulary is None:
            self._vocabulary = {t: i for i, t in enumerate(self.terms)}
        return self._vocabulary

    def analyze(self, text: str) -> list[str] | Iterator[str]:
        low, high = self.ngram_range
        if self.analyzer == "word":
            return word_ngrams(text, low, high)
        if self.analyzer == "char_wb":
            return char_wb_ngrams(text, low, high)
        raise ValueError(f"unknown analyser {self.analyzer!r}")

    def vectorizer(self) -> Any:
        """The equivalent scikit-learn CountVectorizer (for tools that want one)."""
        if self._vectorizer is None:
            from sklearn.feature_extraction.text import CountVectorizer

            self._vectorizer = CountVectorizer(
                analyzer=self.analyzer,
                ngram_range=self.ngram_range,
                vocabulary=self.vocabulary,
                token_pattern=_TOKEN_PATTERN,
                lowercase=True,
                dtype=np.float32,
            )
            self._vectorizer._validate_vocabulary()
        return self._vectorizer

    def counts(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """N-gram counts per text, as scikit-learn would count them."""
        vocabulary = self.vocabulary
        get = vocabulary.get
        indices: list[int] = []
        indptr = [0]
        for text in texts:
            if self.analyzer == "char_wb":
                for word in char_wb_words(text):
                    indices.extend(self._columns_of_word(word))
            else:
                indices.extend(j for j in map(get, self.analyze(text)) if j is not None)
            indptr.append(len(indices))
        matrix = sparse.csr_matrix(
            (
                np.ones(len(indices), dtype=np.float32),
                np.asarray(indices, dtype=np.int32),
                np.asarray(indptr, dtype=np.int64),
            ),
            shape=(len(texts), self.size),
        )
        matrix.sum_duplicates()
        return matrix

    def _columns_of_word(self, word: str) -> list[int]:
        columns = self._word_columns.get(word)
        if columns is None:
            get = self.vocabulary.get
            low, high = self.ngram_range
            columns = [j for j in map(get, word_char_ngrams(word, low, high)) if j is not None]
            if len(self._word_columns) >= _WORD_CACHE_SIZE:
                self._word_columns.clear()
            self._word_columns[word] = columns
        return columns

    def tfidf(self, counts: sparse.csr_matrix) -> sparse.csr_matrix:
        """Sublinear tf × idf, each row scaled to unit length times the block weight."""
        x = counts.astype(np.float32, copy=True).tocsr()
        x.sum_duplicates()
        np.log(x.data, out=x.data)
        x.data += 1.0
        x.data *= self.idf.astype(np.float32, copy=False)[x.indices]  # in place: no diagonal
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())  # matrix per call
        norms[norms == 0] = 1.0
        x.data *= np.repeat((self.weight / norms).astype(np.float32), np.diff(x.indptr))
        return x

    def keep(self, mask: np.ndarray) -> FeatureBlock:
        """A copy with only the terms where `mask` is true (to drop features no label uses)."""
        index = np.flatnonzero(mask)
        return FeatureBlock(
            self.analyzer,
            self.ngram_range,
            [self.terms[i] for i in index],
            self.idf[index].astype(np.float32),
            self.weight,
        )


@dataclass
class TextFeatures:
    """The concatenation of feature blocks; turns texts into the model's input rows."""

    blocks: list[FeatureBlock]

    @property
    def size(self) -> int:
        return sum(b.size for b in self.blocks)

    def clear_cache(self) -> None:
        """Forget the per-word n-gram columns (benchmarks use it to time a first reading)."""
        for block in self.blocks:
            block._word_columns.clear()

    @property
    def terms(self) -> list[tuple[str, str]]:
        """(analyzer, term) for every column, in column order (for explanations)."""
        return [(b.analyzer, t) for b in self.blocks for t in b.terms]

    @classmethod
    def fit(
        cls,
        texts: Sequence[str],
        word_ngrams: tuple[int, int] = (1, 2),
        char_ngrams: tuple[int, int] | None = (3, 5),
        max_word_features: int = 150_000,
        max_char_features: int = 150_000,
        min_df: int = 2,
        char_weight: float = 1.0,
    ) -> TextFeatures:
        """Learn vocabularies (capped by document frequency) and idf from `texts`."""
        return cls.fit_transform(
            texts,
            word_ngrams,
            char_ngrams,
            max_word_features,
            max_char_features,
            min_df,
            char_weight,
        )[0]

    @classmethod
    def fit_transform(
        cls,
        texts: Sequence[str],
        word_ngrams: tuple[int, int] = (1, 2),
        char_ngrams: tuple[int, int] | None = (3, 5),
        max_word_features: int = 150_000,
        max_char_features: int = 150_000,
        min_df: int = 2,
        char_weight: float = 1.0,
    ) -> tuple[TextFeatures, sparse.csr_matrix]:
        """`fit`, and the rows of `texts` (reading them once, not twice)."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        specs = [("word", word_ngrams, max_word_features, 1.0)]
        if char_ngrams is not None:
            specs.append(("char_wb", char_ngrams, max_char_features, char_weight))
        blocks, parts = [], []
        for analyzer, ngrams, cap, weight in specs:
            vec = TfidfVectorizer(
                analyzer=analyzer,
                ngram_range=ngrams,
                min_df=min_df,
                max_features=cap,
                sublinear_tf=True,
                token_pattern=_TOKEN_PATTERN,
                dtype=np.float32,
            )
            parts.append(vec.fit_transform(texts) * np.float32(weight))
            order = sorted(vec.vocabulary_.items(), key=lambda kv: kv[1])
            blocks.append(
                FeatureBlock(
                    analyzer, ngrams, [t for t, _ in order], vec.idf_.astype(np.float32), weight
                )
            )
        return cls(blocks), sparse.hstack(parts, format="csr", dtype=np.float32)

    def counts(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """Raw n-gram counts of each text (rows can be summed to form windows)."""
        return sparse.hstack([b.counts(texts) for b in self.blocks], format="csr")

    def tfidf(self, counts: sparse.csr_matrix) -> sparse.csr_matrix:
        """Model input rows from raw counts."""
        parts, start = [], 0
        for b in self.blocks:
            parts.append(b.tfidf(counts[:, start : start + b.size]))
            start += b.size
        return sparse.hstack(parts, format="csr")

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        return self.tfidf(self.counts(texts))

    def keep(self, mask: np.ndarray) -> TextFeatures:
        blocks, start = [], 0
        for b in self.blocks:
            blocks.append(b.keep(mask[start : start + b.size]))
            start += b.size
        return TextFeatures(blocks)

    # ---- plain-array storage ----------------------------------------------------------
    def to_arrays(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON-able description, arrays) for saving without pickle."""
        meta, arrays = [], {}
        for i, b in enumerate(self.blocks):
            meta.append(
                {
                    "analyzer": b.analyzer,
                    "ngram_range": list(b.ngram_range),
                    "weight": b.weight,
                    "size": b.size,
                }
            )
            arrays[f"features_{i}_idf"] = b.idf.astype(np.float32)
            arrays[f"features_{i}_terms"] = np.array("\n".join(b.terms).encode("utf-8"))
        return {"blocks": meta}, arrays

    @classmethod
    def from_arrays(cls, meta: dict[str, Any], arrays: Any) -> TextFeatures:
        """Blocks from saved arrays, each checked against its description."""
        blocks = []
        for i, spec in enumerate(meta["blocks"]):
            if spec["analyzer"] not in ("word", "char_wb"):
                raise ValueError(f"feature block {i} has an unknown analyser")
            low, high = (int(x) for x in spec["ngram_range"])
            if not 1 <= low <= high <= 10:
                raise ValueError(f"feature block {i} has a bad n-gram range")
            terms_array = arrays[f"features_{i}_terms"]
            if terms_array.dtype.kind != "S" or terms_array.shape != ():
                raise ValueError(f"feature block {i}: terms are not one byte string")
            raw = bytes(terms_array).decode("utf-8")
            terms = raw.split("\n") if raw else []
            idf = arrays[f"features_{i}_idf"]
            if idf.dtype != np.float32 or idf.ndim != 1 or not np.isfinite(idf).all():
                raise ValueError(f"feature block {i}: idf is not finite float32")
            if len(terms) != spec["size"] or len(idf) != spec["size"]:
                raise ValueError(
                    f"feature block {i} has {len(terms)} terms, expected {spec['size']}"
                )
            blocks.append(
                FeatureBlock(
                    spec["analyzer"],
                    tuple(spec["ngram_range"]),
                    terms,
                    idf,
                    float(spec.get("weight", 1.0)),
                )
            )
        return cls(blocks)
