"""The review memory: what analysts decided about passages, consulted when a report is analysed.

Why this design:
- A decision should count at once, not after a retrain: a passage close to a reviewed one gets
  the reviewed answer. Closeness is the cosine of the model's own word features (its TF-IDF of
  words and word pairs), so the memory needs no model of its own and no new dependency. Words
  that most passages share are left out of the comparison (`COMMON_SHARE`): they say little
  about closeness and would make a lookup in a large memory a dense product. The same wording
  (case and spacing aside) is a match at similarity 1 whatever its words: a heading, a host
  name or one common word ("Ransomware") may have no word the comparison keeps.
- The effect fades with distance through a calibrated curve: P(the reviewed technique applies
  to a passage | its similarity s to the reviewed one) = σ(a·s + b), fitted leave-one-report-out
  on the memory's own passages once it holds enough of them (`fit_curve`), and before that the
  curve measured on simulated reviews of annotated reports (`DEFAULT_CURVE`).
- Accepted or added at a passage: a close passage's report confidence for that technique is at
  least the curve's value, and the span is evidence, shown with who decided it in which
  report. Rejected at a passage means "not this technique here", never "no technique": the
  windows that contain the matched sentences stop counting for that technique, and the rest of
  the report can still find it.
- The decisions also say which techniques the workspace's analysts use (`LabelPriors`): each
  technique's accepted and rejected counts over the reviewed reports shift its report
  confidence by a share of their smoothed log-odds — a prior for the workspace's own source.
  It applies to reports that read like the reviewed ones (their closeness to the reviewed
  reports, `CLOSE_AS`): a text of another kind (a short textbook description, say) keeps the
  model's own confidence. `benchmarks/bench_learning.py` measures both sides: per-report F1
  on unseen reports of the reviewed source, and on other sources.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

COMMON_SHARE = 0.05
"""Word features found in more than this share of the memory's passages are not compared."""
MIN_SIMILARITY = 0.35
"""Closer than this, or the match is ignored (the curve is near zero below it)."""
DEFAULT_CURVE = (8.6, -6.0)
"""(a, b) of σ(a·s + b) before the memory holds enough reviewed passages to fit its own."""
PRIOR_WEIGHT = 0.6
"""The share of a technique's smoothed accept/reject log-odds added to its report log-odds."""
CLOSE_AS = 0.17
"""How close (mean cosine to its three closest reviewed reports) a report must be to get the
whole of the priors, until ten reports are reviewed: then the closeness of the least typical
tenth of them to the others sets it. Half as close gets none."""
MIN_CURVE_PAIRS = 40


@dataclass(frozen=True)
class ReviewedPassage:
    """A passage an analyst decided on: the techniques accepted (or added) and rejected there,
    and where the decision comes from (report, title, user, time) to show beside a match."""

    text: str
    accepted: tuple[str, ...] = ()
    rejected: tuple[str, ...] = ()
    origin: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class ReviewedDocument:
    """A reviewed report as a whole: the techniques found to be in it (accepted or added) and
    those rejected as a whole. A copy of the report, or a lightly edited one, gets the same
    answer."""

    text: str
    accepted: tuple[str, ...] = ()
    rejected: tuple[str, ...] = ()
    origin: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Recall:
    """Sentences [first, last) of the analysed text close to a reviewed passage."""

    first: int
    last: int
    similarity: float
    confidence: float  # the curve's value: P(the reviewed answer holds here)
    action: str  # "accepted" or "rejected"
    passage: ReviewedPassage


@dataclass
class Revision:
    """The report confidence after the memory, and the matches behind each changed label."""

    report: np.ndarray
    recalls: dict[int, list[Recall]]


@dataclass
class LabelPriors:
    """How often each technique was accepted (or added) and rejected in reviewed reports."""

    accepted: Mapping[str, int] = field(default_factory=dict)
    rejected: Mapping[str, int] = field(default_factory=dict)
    weight: float = PRIOR_WEIGHT

    def shift(self, labels: Sequence[str]) -> np.ndarray:
        """Per label, the log-odds to add: weight × log((accepted + 1) / (rejected + 1)); a
        sub-technique borrows half its parent's counts."""
        out = np.zeros(len(labels), dtype=np.float64)
        if not self.accepted and not self.rejected:
            return out
        for j, label in enumerate(labels):
            a = float(self.accepted.get(label, 0))
            r = float(self.rejected.get(label, 0))
            if "." in label:
                parent = label.split(".")[0]
                a += 0.5 * self.accepted.get(parent, 0)
                r += 0.5 * self.rejected.get(parent, 0)
            if a or r:
                out[j] = self.weight * np.log((a + 1.0) / (r + 1.0))
        return out

    def revise(self, confidences: Mapping[str, float]) -> dict[str, float]:
        """Report confidences (technique → confidence) after the priors."""
        labels = list(confidences)
        values = np.array([confidences[x] for x in labels], dtype=np.float64)
        return dict(zip(labels, _shifted(values, self.shift(labels)).tolist(), strict=True))


@dataclass(frozen=True)
class _Snapshot:
    """What one analysis reads, built at once from the memory's groups: passages and their
    rows (over the kept columns), reviewed reports and theirs. Analyses in other threads keep
    the snapshot they took while the memory changes (it is never changed in place)."""

    passages: list[ReviewedPassage]
    matrix: sparse.csr_matrix  # passages × words, unit rows over the kept columns
    kept: np.ndarray  # bool per word column
    documents: list[ReviewedDocument]
    document_matrix: sparse.csr_matrix | None  # reviewed reports × words, unit rows
    typical: float  # the closeness that gets the whole of the priors (`CLOSE_AS`)
    version: int = 0  # the memory's version it was built from
    wording: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # → passage indices


class ReviewMemory:
    """Reviewed passages and reports read with a model's word features, and the workspace's
    label priors.

    Build it once per model (`ReviewMemory(block, passages, priors)`, where `block` is the
    model's word feature block) and `update` a report's group as analysts decide. Updates
    replace the groups' dictionaries (under a lock) rather than change them, and each analysis
    reads one snapshot built from one version of them, so several threads can read and update
    a memory at once."""

    def __init__(
        self,
        block: Any,
        passages: Iterable[ReviewedPassage] = (),
        priors: LabelPriors | None = None,
        curve: tuple[float, float] | None = None,
    ) -> None:
        self.block = block
        self.priors = priors or LabelPriors()
        self.curve = curve or DEFAULT_CURVE
        self._groups: dict[Hashable, tuple[list[ReviewedPassage], sparse.csr_matrix]] = {}
        self._documents: dict[Hashable, tuple[ReviewedDocument, sparse.csr_matrix]] = {}
        self._built: _Snapshot | None = None
        self._version = 0
        self._lock = threading.Lock()
        self.update(None, passages)

    @property
    def passages(self) -> list[ReviewedPassage]:
        return self._snapshot().passages

    def __len__(self) -> int:
        return len(self.passages)

    def update(
        self,
        key: Hashable,
        passages: Iterable[ReviewedPassage],
        document: ReviewedDocument | None = None,
    ) -> None:
        """Remember `passages` (and the `document` they come from) as the group `key` (a
        report), replacing what the group held: a decision counts at the next analysis, and a
        withdrawn one stops counting."""
        kept = [p for p in passages if p.text.strip() and (p.accepted or p.rejected)]
        rows = self.block.tfidf(self.block.counts([p.text for p in kept])).tocsr() if kept else None
        whole = self._document_row(document)
        with self._lock:
            groups = {k: v for k, v in self._groups.items() if k != key}
            documents = {k: v for k, v in self._documents.items() if k != key}
            if rows is not None:
                groups[key] = (kept, rows)
            if whole is not None:
                documents[key] = whole
            self._groups, self._documents = groups, documents
            self._version += 1

    def _document_row(
        self, document: ReviewedDocument | None
    ) -> tuple[ReviewedDocument, sparse.csr_matrix] | None:
        """A reviewed report that decided something, with its text's unit TF-IDF row."""
        if document is None or not (document.accepted or document.rejected):
            return None
        return document, _unit(self.block.tfidf(self.block.counts([document.text])))

    def remove(self, key: Hashable) -> None:
        self.update(key, ())

    def _snapshot(self) -> _Snapshot:
        """The snapshot of the current version (built outside the lock, kept if no update
        came meanwhile)."""
        with self._lock:
            built, version = self._built, self._version
            groups, documents = self._groups, self._documents
        if built is not None and built.version == version:
            return built
        built = _build(self.block, groups, documents, version)
        with self._lock:
            if version == self._version:
                self._built = built
        return built

    def similarities(self, rows: sparse.csr_matrix, snap: _Snapshot | None = None) -> Any:
        """Cosine of each row (the block's TF-IDF) with every passage, kept where it is at
        least `MIN_SIMILARITY` (rows × passages)."""
        snap = snap or self._snapshot()
        query = _unit(rows.tocsr() @ sparse.diags(snap.kept.astype(np.float32)))
        found = (query @ snap.matrix.T).tocsr()
        found.data[found.data < MIN_SIMILARITY] = 0.0
        found.eliminate_zeros()
        return found

    def confidence(self, similarity: np.ndarray | float) -> np.ndarray:
        a, b = self.curve
        return 1.0 / (1.0 + np.exp(-(a * np.asarray(similarity, dtype=np.float64) + b)))

    def revise(
        self,
        labels: Sequence[str],
        sentences: Sequence[str],
        windows: Sequence[tuple[int, int]],
        report: np.ndarray,
        window: np.ndarray,
    ) -> Revision:
        """The report confidence (per label) after the priors, the reviewed reports close to
        this text as a whole, and the passages close to its sentences and windows ([first,
        last) sentence ranges; `window`: each window's confidence per label)."""
        revised = report.astype(np.float64)
        recalls: dict[int, list[Recall]] = {}
        if not sentences:
            return Revision(revised.astype(np.float32), recalls)
        snap, priors = self._snapshot(), self.priors
        index = {x: i for i, x in enumerate(labels)}
        counts = self.block.counts(sentences)
        query = _unit(self.block.tfidf(sparse.csr_matrix(counts.sum(axis=0))))
        revised = _shifted(revised, priors.shift(labels) * _gate(query, snap))
        self._revise_by_documents(revised, query, index, snap)
        if snap.passages:
            for (j, action), hit in self._recalls(sentences, counts, windows, index, snap).items():
                if action == "accepted":
                    revised[j] = max(revised[j], hit.confidence)
                else:
                    revised[j] = min(revised[j], _rest(window, windows, j, hit, revised[j]))
                recalls.setdefault(j, []).append(hit)
        return Revision(revised.astype(np.float32), recalls)

    def gate_text(self, text: str) -> float:
        """How much of the priors a text gets (0–1), from its closeness to the reviewed
        reports (see `CLOSE_AS`); all of them while no report is reviewed as a whole."""
        return _gate(_unit(self.block.tfidf(self.block.counts([text]))), self._snapshot())

    def _revise_by_documents(
        self,
        revised: np.ndarray,
        query: sparse.csr_matrix,
        index: Mapping[str, int],
        snap: _Snapshot,
    ) -> None:
        """A report close to a reviewed one as a whole gets its answer (in place)."""
        if snap.document_matrix is None:
            return
        similarity = (query @ snap.document_matrix.T).toarray()[0]
        for document, s in zip(snap.documents, similarity, strict=True):
            if s < MIN_SIMILARITY:
                continue
            strength = float(self.confidence(float(s)))
            for label in document.accepted:
                if label in index:
                    revised[index[label]] = max(revised[index[label]], strength)
            for label in document.rejected:
                if label in index:
                    revised[index[label]] = min(revised[index[label]], 1.0 - strength)

    def _recalls(
        self,
        sentences: Sequence[str],
        counts: sparse.csr_matrix,
        windows: Sequence[tuple[int, int]],
        index: Mapping[str, int],
        snap: _Snapshot,
    ) -> dict[tuple[int, str], Recall]:
        """Per (label, accepted|rejected): the closest reviewed passage to a sentence or a
        window of this text."""
        n = counts.shape[0]
        spans = [(i, i + 1) for i in range(n)] + [(a, b) for a, b in windows if b - a > 1]
        found = self.similarities(self.block.tfidf(_ranges_matrix(spans, n) @ counts), snap)
        best: dict[tuple[int, str], Recall] = {}
        for row in range(found.shape[0]):
            lo, hi = found.indptr[row], found.indptr[row + 1]
            pairs = list(
                zip(found.indices[lo:hi].tolist(), found.data[lo:hi].tolist(), strict=True)
            )
            if snap.wording:
                first, last = spans[row]
                same = snap.wording.get(same_wording(" ".join(sentences[first:last])), ())
                pairs += [(p, 1.0) for p in same]
            for p, s in pairs:
                passage = snap.passages[int(p)]
                first, last = spans[row]
                for action, members in (
                    ("accepted", passage.accepted),
                    ("rejected", passage.rejected),
                ):
                    for label in members:
                        j = index.get(label)
                        if j is None:
                            continue
                        hit = Recall(
                            first, last, float(s), float(self.confidence(s)), action, passage
                        )
                        if (j, action) not in best or _better(hit, best[j, action]):
                            best[j, action] = hit
        return best

    def fit_curve(self) -> tuple[float, float]:
        """Refit the curve on the memory's own passages, leave-one-report-out, the way
        `revise` reads it: for each decided passage and each technique accepted at a passage
        of another report at least `MIN_SIMILARITY` close, the best such similarity, and
        whether the technique was accepted at this passage too. Keeps the current curve while
        there are fewer than `MIN_CURVE_PAIRS` outcomes of each kind."""
        snap = self._snapshot()
        passages = snap.passages
        if len(passages) < 2:
            return self.curve
        reports = np.array([str(p.origin.get("report", i)) for i, p in enumerate(passages)])
        sims = (snap.matrix @ snap.matrix.T).tocsr()
        xs: list[float] = []
        ys: list[bool] = []
        for i, p in enumerate(passages):
            lo, hi = sims.indptr[i], sims.indptr[i + 1]
            best: dict[str, float] = {}
            for k, value in zip(sims.indices[lo:hi], sims.data[lo:hi], strict=True):
                if value < MIN_SIMILARITY or reports[k] == reports[i]:
                    continue
                for label in passages[int(k)].accepted:
                    best[label] = max(best.get(label, 0.0), float(value))
            for label, value in best.items():
                xs.append(value)
                ys.append(label in p.accepted)
        if sum(ys) < MIN_CURVE_PAIRS or len(ys) - sum(ys) < MIN_CURVE_PAIRS:
            return self.curve
        from sklearn.linear_model import LogisticRegression

        # a passage read again gets the answer it was given: each accepted passage with itself
        # (similarity 1) anchors the top of the curve, where other reports rarely reach
        anchors = sum(1 for p in passages if p.accepted)
        xs += [1.0] * anchors
        ys += [True] * anchors
        fit = LogisticRegression(C=10.0).fit(np.array(xs)[:, None], np.array(ys))
        a, b = float(fit.coef_[0, 0]), float(fit.intercept_[0])
        if a > 0:  # closer must mean more likely; otherwise the evidence is too thin to use
            self.curve = (a, b)
        return self.curve


def _build(
    block: Any,
    groups: Mapping[Hashable, tuple[list[ReviewedPassage], sparse.csr_matrix]],
    documents: Mapping[Hashable, tuple[ReviewedDocument, sparse.csr_matrix]],
    version: int,
) -> _Snapshot:
    """A snapshot of the groups: the words most passages share are left out of the passages'
    rows (`COMMON_SHARE`), and the reviewed reports' typical closeness is measured once."""
    parts = [rows for _, rows in groups.values()]
    rows = (
        sparse.vstack(parts, format="csr")
        if parts
        else sparse.csr_matrix((0, block.size), dtype=np.float32)
    )
    df = np.bincount(rows.indices, minlength=rows.shape[1])
    kept = df <= max(2, COMMON_SHARE * rows.shape[0])
    matrix = _unit(rows @ sparse.diags(kept.astype(np.float32)))
    reviewed = [d for d, _ in documents.values()]
    document_matrix = (
        sparse.vstack([row for _, row in documents.values()]).tocsr() if documents else None
    )
    typical = CLOSE_AS
    if document_matrix is not None and document_matrix.shape[0] >= 10:
        pairs = (document_matrix @ document_matrix.T).toarray()
        np.fill_diagonal(pairs, -1.0)
        typical = float(np.quantile(np.sort(pairs, axis=1)[:, -3:].mean(axis=1), 0.1))
    passages = [p for group, _ in groups.values() for p in group]
    wording: dict[str, list[int]] = {}
    for i, p in enumerate(passages):
        wording.setdefault(same_wording(p.text), []).append(i)
    same = {key: tuple(found) for key, found in wording.items()}
    return _Snapshot(passages, matrix, kept, reviewed, document_matrix, typical, version, same)


def same_wording(text: str) -> str:
    """A text's wording with case and spacing left aside: two texts with the same key say
    the same thing in the same words."""
    return " ".join(text.casefold().split())


def _gate(query: sparse.csr_matrix, snap: _Snapshot) -> float:
    """How much of the priors a text gets: all at the closeness of the least typical tenth
    of the reviewed reports to the others, none at half of it (all while none is reviewed)."""
    if snap.document_matrix is None:
        return 1.0
    close = _closeness(query, snap.document_matrix)[0]
    full = snap.typical
    return float(np.clip((close - full / 2) / (full / 2), 0.0, 1.0))


def _shifted(confidence: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Confidences with `shift` added to their log-odds (where it is not zero)."""
    out = confidence.copy()
    hot = shift != 0
    if hot.any():
        p = np.clip(out[hot], 1e-6, 1 - 1e-6)
        out[hot] = 1.0 / (1.0 + np.exp(-(np.log(p / (1 - p)) + shift[hot])))
    return out


def _better(new: Recall, old: Recall) -> bool:
    """The closer match wins; at equal closeness, the later decision."""
    if new.similarity != old.similarity:
        return new.similarity > old.similarity
    return str(new.passage.origin.get("at", "")) > str(old.passage.origin.get("at", ""))


def _rest(
    window: np.ndarray, windows: Sequence[tuple[int, int]], j: int, hit: Recall, current: float
) -> float:
    """A label's confidence once the windows touching the rejected match stop counting: the
    best other window, but never below what the curve leaves (1 − its confidence)."""
    others = [w for w, (a, b) in enumerate(windows) if not (a < hit.last and hit.first < b)]
    elsewhere = float(window[others, j].max()) if others else 0.0
    return min(current, max(elsewhere, 1.0 - hit.confidence))


def _closeness(query: sparse.csr_matrix, documents: sparse.csr_matrix) -> np.ndarray:
    """Each query row's mean cosine with its three closest documents (unit rows)."""
    pairs = (query @ documents.T).toarray()
    k = min(3, pairs.shape[1])
    closeness: np.ndarray = np.sort(pairs, axis=1)[:, -k:].mean(axis=1)
    return closeness


def _ranges_matrix(spans: Sequence[tuple[int, int]], n: int) -> sparse.csr_matrix:
    rows = np.repeat(np.arange(len(spans)), [b - a for a, b in spans])
    cols = np.concatenate([np.arange(a, b) for a, b in spans]) if spans else np.zeros(0, int)
    return sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(spans), n)
    )


def _unit(rows: sparse.csr_matrix) -> sparse.csr_matrix:
    rows = rows.tocsr().astype(np.float32)
    norms = np.sqrt(np.asarray(rows.multiply(rows).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return (sparse.diags((1.0 / norms).astype(np.float32)) @ rows).tocsr()
