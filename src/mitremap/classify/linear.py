"""The default backend at inference: word + character n-gram TF-IDF and one linear SVM per
technique, loaded, scored and saved (fitting it is `mitremap.training.fit`).

Why this design:
- Linear models on sparse n-grams train in minutes on two cores, predict a report in
  milliseconds, and are exactly explainable (a score is a sum of per-feature contributions).
  A fine-tuned small transformer on the same corpus was measured no better away from TRAM.
- One-vs-rest, one label per technique, each score calibrated on its own
  (`classify.calibration`): a window can describe several techniques.
- Weights are stored sparse. The vocabulary is kept whole even where no weight uses a term,
  because every term counts in a row's length normalisation.
- A saved model is checked array by array before it is used (`from_saved`): a model from
  elsewhere can neither run code nor make the scoring read outside its arrays.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from mitremap.classify.base import DocumentScores, ModelCard, write_model
from mitremap.classify.calibration import Calibration
from mitremap.classify.features import TextFeatures
from mitremap.errors import ModelError


class LinearModel:
    """TF-IDF n-grams → one-vs-rest linear SVMs → calibrated probabilities."""

    backend = "linear"

    def __init__(
        self,
        features: TextFeatures,
        weights: sparse.csr_matrix,
        bias: np.ndarray,
        labels: list[str],
        calibration: Calibration,
        card: ModelCard,
    ) -> None:
        self.features = features
        self.weights = weights  # n_features × n_labels
        self.bias = bias.astype(np.float32)
        self.labels = labels
        self.calibration = calibration
        self.card = card
        self._index = {label: i for i, label in enumerate(labels)}
        self._by_label: sparse.csc_matrix | None = None  # weights by label, built when needed

    # ---- prediction -------------------------------------------------------------------
    def decision_function(self, rows: sparse.csr_matrix) -> np.ndarray:
        """Raw scores of feature rows."""
        out: np.ndarray = (rows @ self.weights).toarray()
        out += self.bias
        return out

    def raw_scores(self, texts: Sequence[str]) -> np.ndarray:
        return self.decision_function(self.features.transform(texts))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """P(label described in the text), each text read as one window."""
        return self.calibration.window_proba(self.raw_scores(texts))

    def sentence_scores(self, sentences: Sequence[str]) -> np.ndarray:
        """Raw scores of each sentence read alone."""
        return self.decision_function(self.features.tfidf(self.features.counts(sentences)))

    def window_rows(
        self, sentences: Sequence[str], windows: Sequence[tuple[int, int]]
    ) -> sparse.csr_matrix:
        """Feature rows of windows ([first, last) sentence ranges) from per-sentence counts."""
        return self._window_rows(self.features.counts(sentences), windows)

    def _window_rows(
        self, counts: sparse.csr_matrix, windows: Sequence[tuple[int, int]]
    ) -> sparse.csr_matrix:
        rows = np.repeat(np.arange(len(windows)), [b - a for a, b in windows])
        cols = np.concatenate([np.arange(a, b) for a, b in windows])
        indicator = sparse.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, cols)),
            shape=(len(windows), counts.shape[0]),
        )
        return self.features.tfidf(indicator @ counts)

    def score_document(
        self,
        sentences: Sequence[str],
        windows: Sequence[tuple[int, int]],
        named: np.ndarray | None = None,
    ) -> DocumentScores:
        if not windows:
            empty = np.zeros((0, len(self.labels)), dtype=np.float32)
            return DocumentScores(empty, np.zeros(len(self.labels), dtype=np.float32))
        counts = self.features.counts(sentences)
        raw = self.decision_function(self._window_rows(counts, windows))
        sentence_raw = self.decision_function(self.features.tfidf(counts))

        def sentence_proba(indices: Sequence[int]) -> np.ndarray:
            return self.calibration.window_proba(sentence_raw[np.asarray(indices, dtype=np.int64)])

        return DocumentScores(
            self.calibration.window_proba(raw),
            self.calibration.report_proba(raw, sentence_raw, named),
            sentence_proba,
        )

    def label_weights(self, label: str) -> tuple[np.ndarray, float]:
        """(dense weight vector over the feature columns, bias) of one label: for explanations."""
        j = self._index[label]
        if self._by_label is None:  # column slices of CSR are slow; explanations take dozens
            self._by_label = self.weights.tocsc()
        column = self._by_label[:, j].toarray().ravel()
        return column, float(self.bias[j])

    def index(self, label: str) -> int | None:
        return self._index.get(label)

    # ---- storage ----------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        meta, arrays = self.features.to_arrays()
        w = self.weights.tocsr()
        arrays.update(
            weights_data=w.data.astype(np.float32),
            weights_indices=w.indices.astype(np.int32),
            weights_indptr=w.indptr.astype(np.int64),
            bias=self.bias,
            labels=np.array("\n".join(self.labels).encode("ascii")),
        )
        manifest = {
            "backend": self.backend,
            "card": self.card.to_dict(),
            "features": meta,
            "weights_shape": list(w.shape),
            "calibration": asdict(self.calibration),
        }
        return write_model(path, manifest, arrays)

    @staticmethod
    def array_names(manifest: dict[str, Any]) -> set[str]:
        """The members `arrays.npz` must have, no more and no fewer."""
        blocks = (manifest.get("features") or {}).get("blocks") or []
        names = {"weights_data", "weights_indices", "weights_indptr", "bias", "labels"}
        for i in range(len(blocks) if isinstance(blocks, list) else 0):
            names |= {f"features_{i}_idf", f"features_{i}_terms"}
        return names

    @classmethod
    def from_saved(cls, manifest: dict[str, Any], arrays: dict[str, np.ndarray]) -> LinearModel:
        """A saved model, every array checked against the manifest first: a model from
        elsewhere can neither run code nor make the scoring read outside its arrays."""
        try:
            features = TextFeatures.from_arrays(manifest["features"], arrays)
            labels = _labels(arrays["labels"])
            shape = tuple(manifest["weights_shape"])
            if shape != (features.size, len(labels)):
                raise ValueError(
                    f"weights are {shape}, features × labels {features.size} × {len(labels)}"
                )
            weights = _checked_csr(arrays, shape)
            bias = _array(arrays["bias"], np.float32, (len(labels),), "bias")
            calibration = Calibration(**manifest["calibration"])
            calibration.check()
            card = ModelCard.from_dict(manifest.get("card", {}))
            return cls(features, weights, bias, labels, calibration, card)
        except (KeyError, ValueError, TypeError, UnicodeDecodeError, AttributeError) as exc:
            raise ModelError(
                f"the model is corrupt or incompatible ({exc}); run `mitremap train`"
            ) from exc


def _array(value: np.ndarray, dtype: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    if value.dtype != dtype or value.shape != shape:
        raise ValueError(
            f"{name} is {value.dtype} {value.shape}, expected {np.dtype(dtype)} {shape}"
        )
    if value.dtype.kind == "f" and not np.isfinite(value).all():
        raise ValueError(f"{name} holds non-finite numbers")
    return value


def _labels(value: np.ndarray) -> list[str]:
    import re

    if value.dtype.kind != "S" or value.shape != ():
        raise ValueError("labels are not one byte string")
    labels = bytes(value).decode("ascii").split("\n")
    if not all(re.fullmatch(r"T\d{4}(?:\.\d{3})?", x) for x in labels):
        raise ValueError("labels are not ATT&CK technique ids")
    return labels


def _checked_csr(arrays: dict[str, np.ndarray], shape: tuple[int, ...]) -> sparse.csr_matrix:
    """The weight matrix, after the checks scipy leaves to the caller (out-of-range indices
    would make a product read or write outside memory)."""
    rows, cols = (int(x) for x in shape)
    data, indices, indptr = (
        arrays["weights_data"],
        arrays["weights_indices"],
        arrays["weights_indptr"],
    )
    _array(data, np.float32, (len(data),), "weights_data")
    _array(indices, np.int32, (len(data),), "weights_indices")
    _array(indptr, np.int64, (rows + 1,), "weights_indptr")
    if indptr[0] != 0 or indptr[-1] != len(data) or (np.diff(indptr) < 0).any():
        raise ValueError("weights_indptr is not a monotone index into the weights")
    if len(indices) and (indices.min() < 0 or indices.max() >= cols):
        raise ValueError("weights_indices point outside the labels")
    return sparse.csr_matrix((data, indices, indptr), shape=(rows, cols))
