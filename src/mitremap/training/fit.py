"""Fitting the default backend (`classify.linear.LinearModel`): one linear SVM per technique
on TF-IDF n-grams, then its calibration on out-of-fold evidence.

Why this design:
- One-vs-rest, one label per technique: a window can describe several techniques. Each label
  is trained on its positives and a fixed-size sample of the rest, which keeps training time
  flat in the number of texts; calibration afterwards corrects the scale.
- Labels are the most specific technique of a text (a sub-technique's text is not also parent
  text); a parent label learns from text that names only the parent.
- Unannotated sentences of annotated reports ("report negatives") are negatives only for the
  techniques their annotators use (`Silence`): TRAM is silent, not negative, on the rest.
- Calibration (`training.calibration`) is learned out-of-fold on annotated reports and on
  short reports made of held-out labelled text of every source, the same way for every
  technique, so the long tail of ATT&CK keeps its scores.
- Weights are pruned and stored sparse (`LinearSettings.prune`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse

from mitremap.classify.base import ModelCard
from mitremap.classify.calibration import Calibration
from mitremap.classify.features import TextFeatures
from mitremap.classify.linear import LinearModel
from mitremap.errors import ModelError
from mitremap.names import Gazetteer
from mitremap.training.calibration import HeldOut, Judged, snippet_reports, span_targets

if TYPE_CHECKING:
    from mitremap.training.corpus import LabelledText

Progress = Callable[[str, int, int], None]
"""Called with (stage, done, total) while a model trains."""


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
    # positives weigh (negatives / positives) ** balance: rare techniques are not drowned
    balance: float = 0.5
    # a source's texts count this much in training (1 when not named): the analysts' reviewed
    # passages twice (`bench_learning.py`: weight 2 with the reviewed reports calibrating
    # raised per-report F1 on unseen reports of the reviewed source)
    source_weights: dict[str, float] = field(default_factory=lambda: {"reviews": 2.0})
    calibration_folds: int = 3
    # boosting stages of the report-confidence trees (fewer: a faster, rougher fit; the tests'
    # session model takes 60)
    calibration_trees: int = 150
    report_negatives: bool = True
    # sources whose annotators label a fixed set of techniques, in families that share one:
    # their text is evidence (positive or negative) only for those techniques
    partial_label_families: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {
            "tram": ("tram-reports", "tram-bootstrap", "tram-single", "tram-spans"),
            "tram-v1": ("text2ttp-tramv1",),
            # a workspace's analysts decide on the techniques they were shown or added
            "reviews": ("reviews",),
        }
    )
    # sources whose annotators label parent techniques only (AnnoCTR: 98% of its labels): a
    # text labelled T1059 says nothing about which of T1059's sub-techniques it describes
    parent_level_sources: tuple[str, ...] = ("annoctr-train", "annoctr-reports")
    snippet_reports: int = 3000  # short reports of held-out labelled text, over all folds
    filler_sources: tuple[str, ...] = ("tram-negative",)  # "no technique" text among them
    # detection rules and technique descriptions read unlike reports: not used for snippets
    no_snippet_sources: tuple[str, ...] = (
        "sigma",
        "splunk",
        "car",
        "chronicle",
        "kql",
        "panther",
        "elastic",
        "capec",
        "attack-descriptions",
    )
    window: int = 3
    n_jobs: int = 2
    seed: int = 0


def most_specific(labels: Sequence[str]) -> tuple[str, ...]:
    """Drop a parent when one of its sub-techniques is also a label of the same text."""
    return tuple(x for x in labels if not any(o.startswith(x + ".") for o in labels))


def train_linear(
    items: Sequence[LabelledText],
    reports: Sequence[LabelledText] = (),
    settings: LinearSettings | None = None,
    card: ModelCard | None = None,
    progress: Progress | None = None,
    out_of_fold: dict[str, np.ndarray] | None = None,
) -> LinearModel:
    """Train the linear model on `items` (LabelledText-like: .text, .labels, .meta); calibrate
    it on `reports`.

    `reports` are whole annotated reports (.text, .labels, .id); items whose
    `meta["doc_title"]` names a report are that report's sentences. `out_of_fold`, when
    given, receives each report's calibrated report confidence (per label) from the fold
    model that never saw it: how the model does on reports it was not trained on.
    """
    settings = settings or LinearSettings()
    started, began = time.perf_counter(), time.time()
    report = _reporter(progress)
    usable = [r for r in reports if r.labels]
    items, negatives = _with_report_negatives(items, usable, settings)
    label_sets = [most_specific(item.labels) for item in items]
    labels = sorted({x for ls in label_sets for x in ls})
    if not labels:
        raise ModelError("the training texts have no labels")
    Y = _label_matrix(label_sets, labels)
    features, X = _features([item.text for item in items], settings, report)

    silent = _silence(items, usable, labels, settings)
    calibration = Calibration()
    names = Gazetteer.from_dict(card.names) if card is not None and card.names else None
    if settings.calibration_folds >= 2:
        calibration = _calibrate(
            features, X, Y, items, usable, labels, settings, report, silent, names, out_of_fold
        )

    row_weights = _row_weights(items, settings)
    weights, bias = _fit_weights(
        X, Y, settings, lambda d, t: report("train", d, t), silent, row_weights
    )
    model = LinearModel(
        features,
        weights,
        bias,
        labels,
        calibration,
        card or ModelCard(backend="linear", attack_version="", package_version=""),
    )
    _record_training(model.card, settings, len(labels), len(items), len(negatives), began)
    model.card.train_seconds = round(time.perf_counter() - started, 1)
    return model


def _with_report_negatives(
    items: Sequence[LabelledText], reports: list[LabelledText], settings: LinearSettings
) -> tuple[Sequence[LabelledText], list[LabelledText]]:
    """The training texts with the annotated reports' untouched sentences added as "no
    technique" text (unless the settings say not), and those sentences."""
    if not (settings.report_negatives and reports):
        return items, []
    negatives = report_negatives(reports, {item.text for item in items})
    return [*items, *negatives], negatives


def _features(
    texts: list[str], settings: LinearSettings, report: Progress
) -> tuple[TextFeatures, sparse.csr_matrix]:
    """The TF-IDF features fitted on the training texts, and the texts' rows."""
    report("features", 0, 1)
    try:
        features, X = TextFeatures.fit_transform(
            texts,
            settings.word_ngrams,
            settings.char_ngrams,
            settings.max_word_features,
            settings.max_char_features,
            settings.min_df,
        )
    except ValueError as exc:  # scikit-learn: no term occurs in min_df texts
        raise ModelError(
            f"too little training text to learn from ({len(texts)} texts: {exc})"
        ) from exc
    report("features", 1, 1)
    return features, X


def _record_training(
    card: ModelCard,
    settings: LinearSettings,
    labels: int,
    texts: int,
    negatives: int,
    began: float,
) -> None:
    """What the model card says about the training: the backend, the labels and texts
    counted, the settings, and when it started (unless `train_model` recorded it)."""
    card.backend = "linear"
    if negatives:
        card.sources["report-negatives"] = negatives
    card.labels = labels
    card.training_texts = texts
    card.settings = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(settings).items()}
    if not card.trained_at:  # when training started, as `train_model` records it
        card.trained_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(began))


def _reporter(progress: Progress | None) -> Progress:
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
    excluded: np.ndarray | None = None,
    balance: float = 0.0,
    row_weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """One label's SVM on its positives and a sample of the rest (minus `excluded` rows: text
    whose source cannot say "no" for this label)."""
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(seed)
    n = X.shape[0]
    mask = np.ones(n, dtype=bool)
    mask[positives] = False
    if excluded is not None:
        mask[excluded] = False
    negatives = np.flatnonzero(mask)
    if len(negatives) > n_neg:
        negatives = rng.choice(negatives, n_neg, replace=False)
    rows = np.concatenate([positives, np.sort(negatives)])
    y = np.zeros(len(rows), dtype=np.int32)
    y[: len(positives)] = 1
    if len(negatives) == 0:
        return np.zeros(0, np.int32), np.zeros(0, np.float32), 1.0
    if len(positives) == 0:  # every positive held out (a calibration fold): never predicted
        return np.zeros(0, np.int32), np.zeros(0, np.float32), -2.0
    weight = float(np.clip((len(negatives) / max(len(positives), 1)) ** balance, 1.0, 100.0))
    svm = LinearSVC(C=C, class_weight={0: 1.0, 1: weight}, random_state=seed)
    svm.fit(X[rows], y, sample_weight=None if row_weights is None else row_weights[rows])
    coef = svm.coef_.ravel()
    keep = np.flatnonzero(np.abs(coef) >= prune)
    return keep.astype(np.int32), coef[keep].astype(np.float32), float(svm.intercept_[0])


@dataclass
class Silence:
    """Rows that are evidence only for some labels: text of a source whose annotators use a
    fixed set of techniques (TRAM's ~75) says nothing, yes or no, about the others."""

    groups: list[tuple[np.ndarray, np.ndarray]]  # (row indices, bool per label: judged)

    def excluded(self, label: int) -> np.ndarray | None:
        """The rows that must not be negatives of `label`."""
        rows = [r for r, judged in self.groups if not judged[label]]
        return np.concatenate(rows) if rows else None

    def subset(self, keep: np.ndarray) -> Silence:
        """The same rows after `X[keep]`."""
        position = np.cumsum(keep) - 1
        return Silence([(position[r[keep[r]]], judged) for r, judged in self.groups])


def _fit_weights(
    X: sparse.csr_matrix,
    Y: sparse.csc_matrix,
    settings: LinearSettings,
    progress: Any,
    silent: Silence | None = None,
    row_weights: np.ndarray | None = None,
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
            silent.excluded(j) if silent is not None else None,
            settings.balance,
            row_weights,
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


def document_windows(
    text: str, size: int
) -> tuple[list[str], list[tuple[int, int]], list[tuple[int, int]]]:
    """Sentences, windows as sentence ranges, and windows as character spans."""
    from mitremap.documents import split_sentences, window_ranges

    spans = [(s.start, s.end) for s in split_sentences(text)]
    windows = window_ranges(len(spans), size)
    chars = [(spans[a][0], spans[b - 1][1]) for a, b in windows]
    return [text[a:b] for a, b in spans], windows, chars


def report_negatives(reports: Sequence[LabelledText], known: set[str]) -> list[LabelledText]:
    """Sentences of annotated reports that no annotated span touches: "no technique" text
    written the way reports are (dates, victims, marketing, background)."""
    from mitremap.training.corpus import LabelledText

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
                LabelledText(
                    text,
                    (),
                    "report-negatives",
                    f"{r.id}:{a}",
                    {"doc_title": r.id, "report_source": r.source},
                )
            )
    return out


def _row_weights(items: Sequence[LabelledText], settings: LinearSettings) -> np.ndarray | None:
    if not settings.source_weights:
        return None
    return np.array(
        [settings.source_weights.get(item.source, 1.0) for item in items], dtype=np.float64
    )


def _family_of(item: LabelledText, settings: LinearSettings) -> str | None:
    source: str | None = item.source
    if source == "report-negatives":  # judged like the report they come from
        source = (item.meta or {}).get("report_source")
    for name, members in settings.partial_label_families.items():
        if source in members:
            return name
    return None


def _family_labels(
    items: Sequence[LabelledText], reports: Sequence[LabelledText], settings: LinearSettings
) -> dict[str, set[str]]:
    """The techniques each family of partially labelled sources uses."""
    used: dict[str, set[str]] = {name: set() for name in settings.partial_label_families}
    for item in (*items, *reports):
        family = _family_of(item, settings)
        if family is not None:
            used[family].update(item.labels)
    return used


def _silence(
    items: Sequence[LabelledText],
    reports: Sequence[LabelledText],
    labels: list[str],
    settings: LinearSettings,
) -> Silence | None:
    """Rows that must not be negatives of some labels.

    A family of partially labelled sources: its texts (and its reports' unannotated sentences)
    are evidence only for the labels the family uses. A parent-level source: a text labelled
    with a parent is no evidence against that parent's sub-techniques. A text with no label
    but `meta["rejected"]` (an analyst rejected those techniques there) is evidence against
    those techniques only: "not this technique here", never "no technique".
    """
    used = _family_labels(items, reports, settings)
    rows: dict[str, list[int]] = {name: [] for name in used}
    parent_rows: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        family = _family_of(item, settings)
        if family is not None:
            rows[family].append(i)
        if item.source in settings.parent_level_sources:
            for label in item.labels:
                if "." not in label:
                    parent_rows.setdefault(label, []).append(i)
    groups = [
        (np.array(rows[name]), np.isin(labels, sorted(used[name])))
        for name in used
        if rows[name] and used[name]
    ]
    for parent, members in sorted(parent_rows.items()):
        children = np.array([x.startswith(parent + ".") for x in labels])
        if children.any():
            groups.append((np.array(members), ~children))
    for refused, members in sorted(_rejected_only(items).items()):
        groups.append((np.array(members), np.isin(labels, sorted(refused))))
    return Silence(groups) if groups else None


def _rejected_only(items: Sequence[LabelledText]) -> dict[frozenset[str], list[int]]:
    """Rows of unlabelled texts that are evidence against some techniques only, by those."""
    out: dict[frozenset[str], list[int]] = {}
    for i, item in enumerate(items):
        refused = (item.meta or {}).get("rejected")
        if refused and not item.labels:
            out.setdefault(frozenset(refused), []).append(i)
    return out


def parent_level_gold(report_labels: Iterable[str], labels: Sequence[str]) -> np.ndarray:
    """Bool per label: listed, or a sub-technique whose parent is listed (for sources that
    annotate parents only, a found sub-technique of a listed parent is right)."""
    listed = set(report_labels)
    return np.array([x in listed or x.split(".")[0] in listed for x in labels], dtype=bool)


def held_out_mask(items: Sequence[LabelledText], held: Sequence[LabelledText]) -> np.ndarray:
    """True for the items that are neither sentences of `held` reports nor text found in them."""
    from mitremap.training.overlap import TextOverlap

    held_ids = {r.id for r in held}
    overlap = TextOverlap(r.text for r in held)
    return np.array(
        [
            (item.meta or {}).get("doc_title") not in held_ids and item.text not in overlap
            for item in items
        ],
        dtype=bool,
    )


def _calibrate(
    features: TextFeatures,
    X: sparse.csr_matrix,
    Y: sparse.csc_matrix,
    items: Sequence[LabelledText],
    reports: Sequence[LabelledText],
    labels: list[str],
    settings: LinearSettings,
    report: Any,
    silent: Silence | None,
    names: Gazetteer | None = None,
    out_of_fold: dict[str, np.ndarray] | None = None,
) -> Calibration:
    """Train k times without a fold of reports and labelled texts; fit the calibration on how
    the fold models score what they did not see (see `classify.calibration`)."""
    folds = _Folds.assign(items, reports, settings)
    evidence = _HeldOutEvidence(
        labels, settings, _judged(items, reports, labels, settings), names, out_of_fold is not None
    )
    filler = [item for item in items if not item.labels and item.source in settings.filler_sources]
    row_weights = _row_weights(items, settings)  # the same for every fold
    for f in range(folds.k):
        held = [r for r in reports if folds.report[r.id] == f]
        keep = (folds.item != f) & held_out_mask(items, held)
        stage = f"calibrate {f + 1}/{folds.k}"
        weights, bias = _fit_weights(
            X[keep],
            Y[keep],
            settings,
            lambda d, t, s=stage: report(s, d, t),
            silent.subset(keep) if silent is not None else None,
            None if row_weights is None else row_weights[keep],
        )
        probe = LinearModel(
            features, weights, bias, labels, Calibration(), ModelCard("linear", "", "")
        )
        for r in held:
            evidence.add_report(probe, r)
        texts = [
            item
            for item, fold in zip(items, folds.item, strict=True)
            if fold == f and item.labels and item.source not in settings.no_snippet_sources
        ]
        evidence.add_snippets(
            probe, texts, filler, settings.seed + f, settings.snippet_reports // folds.k
        )
    return evidence.fit(settings.seed, out_of_fold, settings.calibration_trees)


@dataclass(frozen=True)
class _Folds:
    """The calibration folds: each report's, and each labelled text's (a report's sentences
    go with their report, so no fold model has seen the report it is scored on)."""

    k: int
    report: dict[str, int]
    item: np.ndarray

    @classmethod
    def assign(
        cls,
        items: Sequence[LabelledText],
        reports: Sequence[LabelledText],
        settings: LinearSettings,
    ) -> _Folds:
        """Reports dealt into k folds at random (seeded); a text that is no report's sentence
        gets a random fold."""
        k = max(2, settings.calibration_folds)
        rng = np.random.default_rng(settings.seed)
        report_fold = {
            r.id: int(f) for r, f in zip(reports, rng.permutation(len(reports)) % k, strict=True)
        }
        item_fold = np.array(
            [
                report_fold.get(str((item.meta or {}).get("doc_title")), int(rng.integers(k)))
                for item in items
            ]
        )
        return cls(k, report_fold, item_fold)


@dataclass
class _HeldOutEvidence:
    """How the fold models score what they did not see, collected fold by fold for the
    calibration fit (`training.calibration.HeldOut`). With `keep_scores`, each held-out
    report's scores are kept too, for its out-of-fold report confidence."""

    labels: list[str]
    settings: LinearSettings
    judged: dict[str, Judged]
    names: Gazetteer | None
    keep_scores: bool
    held_out: HeldOut = field(default_factory=HeldOut)
    seen: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.label_index = {x: i for i, x in enumerate(self.labels)}

    def add_report(self, probe: LinearModel, r: LabelledText) -> None:
        """A held-out annotated report, read as the model reads one: its windows' raw scores
        against its labels (parent-level for sources that annotate parents only), its
        annotated spans' labels where it has them, and the ATT&CK software it names."""
        sentences, windows, chars = document_windows(r.text, self.settings.window)
        raw = probe.decision_function(probe.window_rows(sentences, windows))
        gold = (
            parent_level_gold(r.labels, self.labels)
            if r.source in self.settings.parent_level_sources
            else np.isin(self.labels, list(r.labels))
        )
        spans: list[tuple[int, int, tuple[str, ...]]] = [
            (s["start"], s["end"], (s.get("label", ""),)) for s in (r.meta or {}).get("spans") or []
        ]
        targets = span_targets(chars, spans, self.label_index) if spans else None
        sentence_raw, named = probe.sentence_scores(sentences), self._named(r.text)
        self.held_out.add(raw, targets, gold, self.judged[r.source], r.source, sentence_raw, named)
        if self.keep_scores:
            self.seen[r.id] = (raw, sentence_raw, named)

    def add_snippets(
        self,
        probe: LinearModel,
        texts: list[LabelledText],
        filler: list[LabelledText],
        seed: int,
        limit: int,
    ) -> None:
        """Short reports made of held-out labelled texts (and "no technique" filler): every
        source's text, known sentence by sentence, scored the way reports are."""
        for text, spans in snippet_reports(texts, filler, seed, limit):
            sentences, windows, chars = document_windows(text, self.settings.window)
            raw = probe.decision_function(probe.window_rows(sentences, windows))
            gold = np.isin(self.labels, [x for _, _, ls in spans for x in ls])
            targets = span_targets(chars, spans, self.label_index)
            self.held_out.add(
                raw, targets, gold, Judged(), "snippets", probe.sentence_scores(sentences)
            )

    def fit(
        self, seed: int, out_of_fold: dict[str, np.ndarray] | None, stages: int = 150
    ) -> Calibration:
        """The calibration fitted on the evidence; `out_of_fold` gets each held-out report's
        calibrated report confidence."""
        calibration = self.held_out.fit(seed, stages)
        if out_of_fold is not None:
            for key, (raw, sentence_raw, named) in self.seen.items():
                out_of_fold[key] = calibration.report_proba(raw, sentence_raw, named)
        return calibration

    def _named(self, text: str) -> np.ndarray | None:
        """The ATT&CK software a text names, as the report calibration's feature."""
        if self.names is None:
            return None
        return self.names.label_evidence(self.names.find(text), self.labels)


def _judged(
    items: Sequence[LabelledText],
    reports: Sequence[LabelledText],
    labels: list[str],
    settings: LinearSettings,
) -> dict[str, Judged]:
    """Per report source: the labels its reports can say yes or no to."""
    used = _family_labels(items, reports, settings)
    out: dict[str, Judged] = {}
    for report in reports:
        family = _family_of(report, settings)
        out[report.source] = Judged(np.isin(labels, sorted(used[family])) if family else None)
    return out
