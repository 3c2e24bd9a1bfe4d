"""Sparse text features: word and character n-gram TF-IDF, stored as plain arrays.

Windows are scored from the counts of their sentences: every sentence is analysed once and a
window's counts are the sum of its sentences' counts, so overlapping windows cost a sparse sum
instead of a second pass over the text (character n-grams dominate prediction time).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

_TOKEN_PATTERN = r"(?u)\b\w\w+\b"


@dataclass
class FeatureBlock:
    """One n-gram family (word or char_wb): its vocabulary, idf weights and analyser settings."""

    analyzer: str  # "word" | "char_wb"
    ngram_range: tuple[int, int]
    terms: list[str]
    idf: np.ndarray  # float32, one per term
    weight: float = 1.0  # scale of this block in the concatenated vector
    _vectorizer: Any = field(default=None, repr=False, compare=False)

    @property
    def size(self) -> int:
        return len(self.terms)

    def vectorizer(self) -> Any:
        """A CountVectorizer with this vocabulary, built once (sklearn imported lazily)."""
        if self._vectorizer is None:
            from sklearn.feature_extraction.text import CountVectorizer

            self._vectorizer = CountVectorizer(
                analyzer=self.analyzer,
                ngram_range=self.ngram_range,
                vocabulary={t: i for i, t in enumerate(self.terms)},
                token_pattern=_TOKEN_PATTERN,
                lowercase=True,
                dtype=np.float32,
            )
        return self._vectorizer

    def counts(self, texts: Sequence[str]) -> sparse.csr_matrix:
        return self.vectorizer().transform(texts).tocsr()

    def tfidf(self, counts: sparse.csr_matrix) -> sparse.csr_matrix:
        """Sublinear tf × idf, each row scaled to unit length times the block weight."""
        x = counts.astype(np.float32, copy=True).tocsr()
        np.log(x.data, out=x.data)
        x.data += 1.0
        x = x @ sparse.diags(self.idf.astype(np.float32))
        x = x.tocsr()
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return (sparse.diags((self.weight / norms).astype(np.float32)) @ x).tocsr()

    def keep(self, mask: np.ndarray) -> FeatureBlock:
        """A copy with only the terms where `mask` is true (to drop features no label uses)."""
        index = np.flatnonzero(mask)
        return FeatureBlock(self.analyzer, self.ngram_range, [self.terms[i] for i in index],
                            self.idf[index].astype(np.float32), self.weight)


@dataclass
class TextFeatures:
    """The concatenation of feature blocks; turns texts into the model's input rows."""

    blocks: list[FeatureBlock]

    @property
    def size(self) -> int:
        return sum(b.size for b in self.blocks)

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
        return cls.fit_transform(texts, word_ngrams, char_ngrams, max_word_features,
                                 max_char_features, min_df, char_weight)[0]

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
            vec = TfidfVectorizer(analyzer=analyzer, ngram_range=ngrams, min_df=min_df,
                                  max_features=cap, sublinear_tf=True,
                                  token_pattern=_TOKEN_PATTERN, dtype=np.float32)
            parts.append(vec.fit_transform(texts) * np.float32(weight))
            order = sorted(vec.vocabulary_.items(), key=lambda kv: kv[1])
            blocks.append(FeatureBlock(analyzer, ngrams, [t for t, _ in order],
                                       vec.idf_.astype(np.float32), weight))
        return cls(blocks), sparse.hstack(parts, format="csr", dtype=np.float32)

    def counts(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """Raw n-gram counts of each text (rows can be summed to form windows)."""
        return sparse.hstack([b.counts(texts) for b in self.blocks], format="csr")

    def tfidf(self, counts: sparse.csr_matrix) -> sparse.csr_matrix:
        """Model input rows from raw counts."""
        parts, start = [], 0
        for b in self.blocks:
            parts.append(b.tfidf(counts[:, start:start + b.size]))
            start += b.size
        return sparse.hstack(parts, format="csr")

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        return self.tfidf(self.counts(texts))

    def keep(self, mask: np.ndarray) -> TextFeatures:
        blocks, start = [], 0
        for b in self.blocks:
            blocks.append(b.keep(mask[start:start + b.size]))
            start += b.size
        return TextFeatures(blocks)

    # ---- plain-array storage ----------------------------------------------------------
    def to_arrays(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON-able description, arrays) for saving without pickle."""
        meta, arrays = [], {}
        for i, b in enumerate(self.blocks):
            meta.append({"analyzer": b.analyzer, "ngram_range": list(b.ngram_range),
                         "weight": b.weight, "size": b.size})
            arrays[f"features_{i}_idf"] = b.idf.astype(np.float32)
            arrays[f"features_{i}_terms"] = np.array("\n".join(b.terms).encode("utf-8"))
        return {"blocks": meta}, arrays

    @classmethod
    def from_arrays(cls, meta: dict[str, Any], arrays: Any) -> TextFeatures:
        blocks = []
        for i, spec in enumerate(meta["blocks"]):
            raw = bytes(arrays[f"features_{i}_terms"]).decode("utf-8")
            terms = raw.split("\n") if raw else []
            idf = np.asarray(arrays[f"features_{i}_idf"], dtype=np.float32)
            if len(terms) != spec["size"] or len(idf) != spec["size"]:
                raise ValueError(f"feature block {i} has {len(terms)} terms, expected {spec['size']}")
            blocks.append(FeatureBlock(spec["analyzer"], tuple(spec["ngram_range"]), terms, idf,
                                       float(spec.get("weight", 1.0))))
        return cls(blocks)
