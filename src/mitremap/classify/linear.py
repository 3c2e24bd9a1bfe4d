"""The default backend: word + character n-gram TF-IDF and one linear SVM per technique.

Why this design:
- Linear models on sparse n-grams train in minutes on two cores, predict a report in
  milliseconds, and are exactly explainable (a score is a sum of per-feature contributions).
- One-vs-rest, one label per technique: a window can describe several techniques. Each label
  is trained on its positives and a fixed-size sample of the rest, which keeps training time
  flat in the number of texts; calibration afterwards corrects the scale.
- Labels are the most specific technique of a text (a sub-technique's text is not also parent
  text); a parent label learns from text that names only the parent.
- Calibration is learned on reports the model did not see: when whole annotated reports are
  given, the model is trained k times without a fold of them (and without any text that occurs
  in them), and the held-out reports' window scores fit (1) a Platt scaling of window scores and
  (2) a small model for "is this technique among the report's techniques" from the best and
  second-best window scores, the report's length and how often annotators report the
  technique: boosted trees (`classify.trees`, stored as plain numbers) when there are enough
  annotated reports, else a logistic model. On TRAM (5-fold CV by report) the trees raised
  per-report F1 at 0.6 from 0.47 to 0.53 and cut the calibration error from 0.057 to 0.024.
- Weights are pruned and stored sparse. The vocabulary is kept whole even where no weight
  uses a term, because every term counts in a row's length normalisation.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from mitremap.classify.base import DocumentScores, ModelCard, Progress, write_model
from mitremap.classify.features import TextFeatures
from mitremap.classify.trees import TreeEnsemble
from mitremap.errors import ModelError

REPORT_FEATURES = ("best", "second", "log_prior", "unseen")
# the boosted-tree report model also sees the report's length (log number of windows)
REPORT_TREE_FEATURES = ("best", "second", "log_windows", "log_prior", "unseen")
# a label whose best window scores at most this is certainly not in the report (report
# confidence 0): the tree model is fitted and evaluated only above it, which keeps both fast
REPORT_FLOOR = -0.8


@dataclass
class LinearSettings:
    """Training settings, recorded in the model card."""

    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] | None = (3, 5)
    max_word_features: int = 150_000
    max_char_features: int = 150_000
    min_df: int = 2
    C: float = 0.5
    negatives_per_label: int = 6000
    prune: float = 0.05  # |weight| below this is dropped: same accuracy, 5× smaller, faster
    calibration_folds: int = 3
    report_negatives: bool = True
    sentence_calibration: bool = False  # softmax for single sentences: not yet better (ECE)
    window: int = 3
    n_jobs: int = 2
    seed: int = 0


@dataclass
class Calibration:
    """Maps raw decision scores to probabilities (see the module docstring)."""

    window_a: float = 4.0
    window_b: float = -2.5
    window_prior: list[float] = field(default_factory=list)  # over (log_prior, unseen)
    # softmax over labels and "no technique": temperature, log_prior, unseen, none logit
    sentence: list[float] = field(default_factory=list)
    report_coef: list[float] = field(default_factory=list)  # over REPORT_FEATURES
    report_intercept: float = 0.0
    report_trees: dict[str, Any] = field(default_factory=dict)  # TreeEnsemble, preferred
    reports: int = 0  # annotated reports the prior counts come from

    def window_proba(self, scores: np.ndarray, prior: np.ndarray | None = None) -> np.ndarray:
        z = self.window_a * scores + self.window_b
        if self.window_prior and prior is not None:
            z = z + prior_features(prior, self.reports) @ np.asarray(self.window_prior)
        return _sigmoid(z)

    def sentence_proba(self, scores: np.ndarray, prior: np.ndarray | None = None) -> np.ndarray:
        """Single sentences: a softmax over the labels and "no technique" (a sentence usually
        describes one technique), fitted on held-out annotated sentences when available."""
        if not self.sentence or prior is None:
            return self.window_proba(scores, prior)
        return sentence_softmax(self.sentence, scores, prior_features(prior, self.reports))

    def report_proba(self, window_scores: np.ndarray, prior: np.ndarray) -> np.ndarray:
        if len(window_scores) == 0:
            return np.zeros(window_scores.shape[1], dtype=np.float32)
        if self.report_trees:
            feats = report_tree_features(window_scores, prior, self.reports)
            out = np.zeros(len(feats), dtype=np.float32)
            hot = feats[:, 0] > REPORT_FLOOR
            out[hot] = self._trees().proba(feats[hot])
            return out
        if not self.report_coef:
            return self.window_proba(window_scores.max(axis=0), prior)
        feats = report_features(window_scores, prior, self.reports)
        return _sigmoid(feats @ np.asarray(self.report_coef) + self.report_intercept)

    def _trees(self) -> TreeEnsemble:
        cached = getattr(self, "_tree_cache", None)
        if cached is None:
            cached = TreeEnsemble.from_dict(self.report_trees)
            self._tree_cache = cached
        return cached


def sentence_softmax(
    params: Sequence[float], scores: np.ndarray, prior_rows: np.ndarray
) -> np.ndarray:
    """P(label) per row from a softmax over labels plus a "no technique" logit."""
    temperature, c_prior, c_unseen, none = params
    z = temperature * scores + prior_rows @ np.array([c_prior, c_unseen])
    top = np.maximum(z.max(axis=1, keepdims=True), none)
    e = np.exp(z - top)
    total = e.sum(axis=1, keepdims=True) + np.exp(none - top)
    return (e / total).astype(np.float32)


def fit_sentence_softmax(
    groups: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> list[float]:
    """Maximum likelihood of each sentence's label (index len(labels): no technique), over
    groups of (raw scores, gold indices, prior rows of the model that scored them)."""
    from scipy.optimize import minimize

    def loss(params: np.ndarray) -> float:
        total = 0.0
        for scores, gold, prior_rows in groups:
            p = sentence_softmax(params, scores, prior_rows).astype(np.float64)
            p = np.column_stack([p, 1.0 - p.sum(axis=1)])
            total -= float(np.log(np.clip(p[np.arange(len(gold)), gold], 1e-9, 1.0)).sum())
        return total

    result = minimize(
        loss,
        np.array([4.0, 0.5, -3.0, 0.0]),
        method="Nelder-Mead",
        options={"maxiter": 600, "xatol": 1e-3, "fatol": 1e-2},
    )
    return [float(x) for x in result.x]


def prior_features(prior: np.ndarray, reports: int) -> np.ndarray:
    """Per label: log share of annotated reports that list it (smoothed), and "never listed"."""
    share = (prior + 0.5) / (reports + 1.0)
    return np.stack([np.log(share), (prior == 0).astype(np.float32)], axis=1)


def report_features(window_scores: np.ndarray, prior: np.ndarray, reports: int) -> np.ndarray:
    """Per label: best window score, second best, log prior share of reports, never reported."""
    if len(window_scores) > 1:
        top = np.partition(window_scores, len(window_scores) - 2, axis=0)[-2:]
        best, second = top[1], top[0]
    else:
        best = second = window_scores[0]
    return np.column_stack([best, second, prior_features(prior, reports)])


def report_tree_features(window_scores: np.ndarray, prior: np.ndarray, reports: int) -> np.ndarray:
    """REPORT_TREE_FEATURES per label: a long report has more chances of one stray high window,
    so the tree model learns to ask more of the best window there."""
    base = report_features(window_scores, prior, reports)
    windows = np.full(len(base), np.log(len(window_scores) + 1.0), dtype=base.dtype)
    return np.column_stack([base[:, :2], windows, base[:, 2:]])


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))).astype(np.float32)


def most_specific(labels: Sequence[str]) -> tuple[str, ...]:
    """Drop a parent when one of its sub-techniques is also a label of the same text."""
    return tuple(x for x in labels if not any(o.startswith(x + ".") for o in labels))


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
        prior: np.ndarray,
        card: ModelCard,
    ) -> None:
        self.features = features
        self.weights = weights  # n_features × n_labels
        self.bias = bias.astype(np.float32)
        self.labels = labels
        self.calibration = calibration
        self.prior = prior.astype(np.float32)
        self.card = card
        self._index = {label: i for i, label in enumerate(labels)}

    # ---- training ---------------------------------------------------------------------
    @classmethod
    def train(
        cls,
        items: Sequence[Any],
        reports: Sequence[Any] = (),
        settings: LinearSettings | None = None,
        card: ModelCard | None = None,
        progress: Progress | None = None,
    ) -> LinearModel:
        """Train on `items` (LabelledText-like: .text, .labels, .meta); calibrate on `reports`.

        `reports` are whole annotated reports (.text, .labels, .id); items whose
        `meta["doc_title"]` names a report are that report's sentences.
        """
        settings = settings or LinearSettings()
        started = time.perf_counter()
        report = _reporter(progress)
        usable = [r for r in reports if r.labels]
        negatives = []
        if settings.report_negatives and usable:
            negatives = report_negatives(usable, {item.text for item in items})
            items = [*items, *negatives]
        texts = [item.text for item in items]
        label_sets = [most_specific(item.labels) for item in items]
        labels = sorted({x for ls in label_sets for x in ls})
        if not labels:
            raise ModelError("the training texts have no labels")
        Y = _label_matrix(label_sets, labels)

        report("features", 0, 1)
        features, X = TextFeatures.fit_transform(
            texts,
            settings.word_ngrams,
            settings.char_ngrams,
            settings.max_word_features,
            settings.max_char_features,
            settings.min_df,
        )
        report("features", 1, 1)

        calibration = Calibration()
        prior = np.zeros(len(labels), dtype=np.float32)
        if usable and settings.calibration_folds >= 2:
            calibration, prior = _calibrate(features, X, Y, items, usable, labels, settings, report)

        weights, bias = _fit_weights(X, Y, settings, lambda d, t: report("train", d, t))
        model = cls(
            features,
            weights,
            bias,
            labels,
            calibration,
            prior,
            card or ModelCard(backend="linear", attack_version="", package_version=""),
        )
        model.card.backend = "linear"
        if negatives:
            model.card.sources["report-negatives"] = len(negatives)
        model.card.labels = len(labels)
        model.card.training_texts = len(items)
        model.card.settings = {
            k: list(v) if isinstance(v, tuple) else v for k, v in asdict(settings).items()
        }
        model.card.train_seconds = round(time.perf_counter() - started, 1)
        return model

    # ---- prediction -------------------------------------------------------------------
    def decision_function(self, rows: sparse.csr_matrix) -> np.ndarray:
        """Raw scores of feature rows."""
        out = (rows @ self.weights).toarray()
        out += self.bias
        return out

    def raw_scores(self, texts: Sequence[str]) -> np.ndarray:
        return self.decision_function(self.features.transform(texts))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.calibration.sentence_proba(self.raw_scores(texts), self.prior)

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
        self, sentences: Sequence[str], windows: Sequence[tuple[int, int]]
    ) -> DocumentScores:
        if not windows:
            empty = np.zeros((0, len(self.labels)), dtype=np.float32)
            return DocumentScores(empty, np.zeros(len(self.labels), dtype=np.float32))
        counts = self.features.counts(sentences)
        raw = self.decision_function(self._window_rows(counts, windows))

        def sentence_proba(indices: Sequence[int]) -> np.ndarray:
            rows = self.features.tfidf(counts[np.asarray(indices, dtype=np.int64)])
            return self.calibration.sentence_proba(self.decision_function(rows), self.prior)

        return DocumentScores(
            self.calibration.window_proba(raw, self.prior),
            self.calibration.report_proba(raw, self.prior),
            sentence_proba,
        )

    def label_weights(self, label: str) -> tuple[np.ndarray, float]:
        """(dense weight vector over the feature columns, bias) of one label: for explanations."""
        j = self._index[label]
        column = self.weights[:, j].toarray().ravel()
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
            prior=self.prior,
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

    @classmethod
    def from_saved(cls, manifest: dict[str, Any], arrays: dict[str, np.ndarray]) -> LinearModel:
        try:
            features = TextFeatures.from_arrays(manifest["features"], arrays)
            labels = bytes(arrays["labels"]).decode("ascii").split("\n")
            shape = tuple(manifest["weights_shape"])
            weights = sparse.csr_matrix(
                (arrays["weights_data"], arrays["weights_indices"], arrays["weights_indptr"]),
                shape=shape,
            )
            if shape != (features.size, len(labels)):
                raise ValueError(
                    f"weights are {shape}, features × labels {features.size} × {len(labels)}"
                )
            calibration = Calibration(**manifest["calibration"])
            if calibration.report_trees:
                calibration._trees()  # a damaged tree fails here, not at the first report
            card = ModelCard.from_dict(manifest.get("card", {}))
            return cls(
                features, weights, arrays["bias"], labels, calibration, arrays["prior"], card
            )
        except (KeyError, ValueError, TypeError, UnicodeDecodeError) as exc:
            raise ModelError(
                f"the model is corrupt or incompatible ({exc}); run `mitremap train`"
            ) from exc


# ---- training internals -----------------------------------------------------------------


def _reporter(progress: Progress | None):
    def report(stage: str, done: int, total: int) -> None:
        if progress is not None:
            progress(stage, done, total)

    return report


def _label_matrix(label_sets: Sequence[Sequence[str]], labels: list[str]) -> sparse.csc_matrix:
    """Items × labels as a bool CSC matrix (never int8: see scikit-learn's >128-column bug)."""
    index = {x: i for i, x in enumerate(labels)}
    rows, cols = [], []
    for i, ls in enumerate(label_sets):
        for x in ls:
            if x in index:
                rows.append(i)
                cols.append(index[x])
    data = np.ones(len(rows), dtype=bool)
    return sparse.csc_matrix((data, (rows, cols)), shape=(len(label_sets), len(labels)), dtype=bool)


def _fit_label(
    X: sparse.csr_matrix,
    positives: np.ndarray,
    n_neg: int,
    C: float,
    seed: int,
    prune: float,
) -> tuple[np.ndarray, np.ndarray, float]:
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(seed)
    n = X.shape[0]
    mask = np.ones(n, dtype=bool)
    mask[positives] = False
    negatives = np.flatnonzero(mask)
    if len(negatives) > n_neg:
        negatives = rng.choice(negatives, n_neg, replace=False)
    rows = np.concatenate([positives, np.sort(negatives)])
    y = np.zeros(len(rows), dtype=np.int32)
    y[: len(positives)] = 1
    if len(negatives) == 0:
        return np.zeros(0, np.int32), np.zeros(0, np.float32), 1.0
    svm = LinearSVC(C=C, random_state=seed).fit(X[rows], y)
    coef = svm.coef_.ravel()
    keep = np.flatnonzero(np.abs(coef) >= prune)
    return keep.astype(np.int32), coef[keep].astype(np.float32), float(svm.intercept_[0])


def _fit_weights(
    X: sparse.csr_matrix,
    Y: sparse.csc_matrix,
    settings: LinearSettings,
    progress: Any,
) -> tuple[sparse.csr_matrix, np.ndarray]:
    from joblib import Parallel, delayed

    n_labels = Y.shape[1]
    jobs = (
        delayed(_fit_label)(
            X,
            Y.indices[Y.indptr[j] : Y.indptr[j + 1]],
            settings.negatives_per_label,
            settings.C,
            settings.seed + j,
            settings.prune,
        )
        for j in range(n_labels)
    )
    indices, values, bias = [], [], np.zeros(n_labels, dtype=np.float32)
    progress(0, n_labels)
    results = Parallel(n_jobs=settings.n_jobs, batch_size=8, return_as="generator")(jobs)
    for j, (idx, val, b) in enumerate(results):
        indices.append(idx)
        values.append(val)
        bias[j] = b
        if j % 8 == 7 or j == n_labels - 1:
            progress(j + 1, n_labels)
    indptr = np.concatenate([[0], np.cumsum([len(i) for i in indices])])
    weights = sparse.csc_matrix(
        (np.concatenate(values), np.concatenate(indices), indptr), shape=(X.shape[1], n_labels)
    ).tocsr()
    return weights, bias


def _windows(n_sentences: int, size: int) -> list[tuple[int, int]]:
    """Overlapping windows (stride 1) of `size` sentences; one window for short texts."""
    if n_sentences <= size:
        return [(0, n_sentences)] if n_sentences else []
    return [(i, i + size) for i in range(n_sentences - size + 1)]


def document_windows(
    text: str, size: int
) -> tuple[list[str], list[tuple[int, int]], list[tuple[int, int]]]:
    """Sentences, windows as sentence ranges, and windows as character spans."""
    from mitremap.documents import split_sentences

    spans = [(s.start, s.end) for s in split_sentences(text)]
    windows = _windows(len(spans), size)
    chars = [(spans[a][0], spans[b - 1][1]) for a, b in windows]
    return [text[a:b] for a, b in spans], windows, chars


def _window_targets(
    report: Any,
    chars: list[tuple[int, int]],
    gold: np.ndarray,
    raw: np.ndarray,
    label_index: dict[str, int],
) -> np.ndarray:
    """Which labels each window describes: from annotated spans when the report has them,
    else the report's labels where they are the window's best-scoring label."""
    spans = (report.meta or {}).get("spans") or []
    if not spans:
        return gold[None, :] & (raw >= raw.max(axis=1, keepdims=True))
    target = np.zeros(raw.shape, dtype=bool)
    for span in spans:
        j = label_index.get(span.get("label", ""))
        if j is None:
            continue
        for w, (a, b) in enumerate(chars):
            if a < span["end"] and span["start"] < b:
                target[w, j] = True
    return target


@dataclass
class HeldOut:
    """Out-of-fold evidence for calibration: window (score, target) pairs, report features."""

    window_scores: list[np.ndarray] = field(default_factory=list)  # (score, log_prior, unseen)
    window_targets: list[np.ndarray] = field(default_factory=list)
    report_features: list[np.ndarray] = field(default_factory=list)
    report_targets: list[np.ndarray] = field(default_factory=list)
    report_tree_features: list[np.ndarray] = field(default_factory=list)
    sentence_scores: list[np.ndarray] = field(default_factory=list)
    sentence_targets: list[np.ndarray] = field(default_factory=list)
    sentence_priors: list[np.ndarray] = field(default_factory=list)  # per add: labels × 2

    def add(
        self,
        model: LinearModel,
        held: Sequence[Any],
        seen: Sequence[Any],
        window: int = 3,
        sentences: Sequence[Any] = (),
    ) -> None:
        """Score `held` reports (and their annotated `sentences`) with `model`, which never
        saw them; `seen` reports give the prior."""
        label_index = {x: i for i, x in enumerate(model.labels)}
        prior = _prior(seen, label_index)
        prior_rows = prior_features(prior, len(seen))
        if sentences:
            # annotated sentences (their first label) and "no technique" sentences of the
            # held-out reports; the prior of the labels as seen without these reports
            texts = [s.text for s in sentences]
            gold = [
                label_index.get(s.labels[0], -1) if s.labels else len(model.labels)
                for s in sentences
            ]
            negatives = report_negatives(held, set(texts))
            texts += [n.text for n in negatives]
            gold += [len(model.labels)] * len(negatives)
            keep = np.array(gold) >= 0
            raw = model.raw_scores(texts)[keep]
            self.sentence_scores.append(raw.astype(np.float32))
            self.sentence_targets.append(np.array(gold)[keep])
            self.sentence_priors.append(prior_rows)
        for r in held:
            sentences, windows, chars = document_windows(r.text, window)
            if not windows:
                continue
            raw = model.decision_function(model.window_rows(sentences, windows))
            gold = np.zeros(len(model.labels), dtype=bool)
            for x in r.labels:
                if x in label_index:
                    gold[label_index[x]] = True
            self.report_features.append(report_features(raw, prior, len(seen)))
            self.report_tree_features.append(report_tree_features(raw, prior, len(seen)))
            self.report_targets.append(gold)
            hot = raw > -0.8  # pairs below are certain negatives: keep the fit small
            columns = np.nonzero(hot)[1]
            self.window_scores.append(np.column_stack([raw[hot], prior_rows[columns]]))
            self.window_targets.append(_window_targets(r, chars, gold, raw, label_index)[hot])

    def fit(self, reports: int) -> Calibration:
        from sklearn.linear_model import LogisticRegression

        scores = np.concatenate(self.window_scores)
        targets = np.concatenate(self.window_targets)
        platt = LogisticRegression(C=100.0, max_iter=1000).fit(scores, targets)
        feats = np.concatenate(self.report_features)
        gold = np.concatenate(self.report_targets)
        logistic = LogisticRegression(C=10.0, max_iter=1000).fit(feats, gold)
        trees = TreeEnsemble()
        if self.report_tree_features and gold.sum() >= 50:
            tree_feats = np.concatenate(self.report_tree_features)
            hot = tree_feats[:, 0] > REPORT_FLOOR
            trees = TreeEnsemble.fit(tree_feats[hot], gold[hot])
        sentence: list[float] = []
        if self.sentence_scores:
            sentence = fit_sentence_softmax(
                list(
                    zip(
                        self.sentence_scores,
                        self.sentence_targets,
                        self.sentence_priors,
                        strict=True,
                    )
                )
            )
        return Calibration(
            window_a=float(platt.coef_[0, 0]),
            window_b=float(platt.intercept_[0]),
            window_prior=[float(c) for c in platt.coef_[0, 1:]],
            report_coef=[float(c) for c in logistic.coef_[0]],
            report_intercept=float(logistic.intercept_[0]),
            report_trees=trees.to_dict() if trees.trees else {},
            reports=reports,
            sentence=sentence,
        )


def report_negatives(reports: Sequence[Any], known: set[str]) -> list[Any]:
    """Sentences of annotated reports that no annotated span touches: "no technique" text
    written the way reports are (dates, victims, marketing, background)."""
    from mitremap.corpus import LabelledText

    out = []
    for r in reports:
        spans = (r.meta or {}).get("spans") or []
        if not spans:
            continue
        sentences, _, chars = document_windows(r.text, 1)
        for text, (a, b) in zip(sentences, chars, strict=True):
            if len(text) < 25 or text in known:
                continue
            if any(span["start"] < b and a < span["end"] for span in spans):
                continue
            known.add(text)
            out.append(
                LabelledText(text, (), "report-negatives", f"{r.id}:{a}", {"doc_title": r.id})
            )
    return out


def held_out_mask(items: Sequence[Any], held: Sequence[Any]) -> np.ndarray:
    """True for the items that are neither sentences of `held` reports nor text found in them."""
    from mitremap.classify.overlap import TextOverlap

    held_ids = {r.id for r in held}
    overlap = TextOverlap(r.text for r in held)
    return np.array(
        [
            (item.meta or {}).get("doc_title") not in held_ids and item.text not in overlap
            for item in items
        ],
        dtype=bool,
    )


def _calibrate(features, X, Y, items, reports, labels, settings, report):
    """Train k times without a fold of reports; fit the calibration on their scores."""
    k = min(settings.calibration_folds, len(reports))
    order = np.random.default_rng(settings.seed).permutation(len(reports))
    folds = [set(order[i::k].tolist()) for i in range(k)]
    held_out = HeldOut()
    for f, fold in enumerate(folds):
        held = [reports[i] for i in sorted(fold)]
        seen = [reports[i] for i in range(len(reports)) if i not in fold]
        keep = held_out_mask(items, held)
        stage = f"calibrate {f + 1}/{k}"
        weights, bias = _fit_weights(
            X[keep], Y[keep], settings, lambda d, t, s=stage: report(s, d, t)
        )
        probe = LinearModel(
            features,
            weights,
            bias,
            labels,
            Calibration(),
            np.zeros(len(labels)),
            ModelCard("linear", "", ""),
        )
        sentences = []
        if settings.sentence_calibration:
            held_ids = {r.id for r in held}
            sentences = [
                i for i in items if i.labels and (i.meta or {}).get("doc_title") in held_ids
            ]
        held_out.add(probe, held, seen, settings.window, sentences)
    label_index = {x: i for i, x in enumerate(labels)}
    return held_out.fit(len(reports)), _prior(reports, label_index)


def _prior(reports: Sequence[Any], label_index: dict[str, int]) -> np.ndarray:
    counts: Counter[str] = Counter(x for r in reports for x in set(r.labels))
    prior = np.zeros(len(label_index), dtype=np.float32)
    for x, n in counts.items():
        if x in label_index:
            prior[label_index[x]] = n
    return prior
