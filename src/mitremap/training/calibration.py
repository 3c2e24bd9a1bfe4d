"""Fitting the calibration (`classify.calibration.Calibration`) on out-of-fold evidence.

Why this design:
- Calibration only learns from evidence that can say yes *and* no for a technique. TRAM's
  annotators use about 75 techniques: a technique they never use is unannotated there, not
  absent, so TRAM reports judge only those labels (`Judged`). Held-out sentences of every
  other source, read as short reports of a few sentences (`snippet_reports`), judge every
  label, so the long tail of ATT&CK is calibrated on text that names it.
- Each kind of evidence weighs the same in total (`HeldOut.fit`): thousands of short snippets
  must not drown a hundred long annotated reports.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from mitremap.classify.calibration import REPORT_FLOOR, Calibration, report_features
from mitremap.classify.trees import TreeEnsemble

if TYPE_CHECKING:
    from mitremap.training.corpus import LabelledText


@dataclass(frozen=True)
class Judged:
    """The labels a piece of held-out evidence can say yes or no to (None: every label)."""

    labels: np.ndarray | None = None  # bool per label

    def mask(self, n_labels: int) -> np.ndarray:
        return np.ones(n_labels, dtype=bool) if self.labels is None else self.labels


@dataclass
class HeldOut:
    """Out-of-fold evidence for calibration: (window score, described?) pairs and per-report
    (features, listed?) rows, only where the evidence judges the label."""

    window_scores: list[np.ndarray] = field(default_factory=list)
    window_targets: list[np.ndarray] = field(default_factory=list)
    window_kinds: list[str] = field(default_factory=list)
    report_rows: list[np.ndarray] = field(default_factory=list)
    report_targets: list[np.ndarray] = field(default_factory=list)
    report_kinds: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def add(
        self,
        raw: np.ndarray,
        window_targets: np.ndarray | None,
        gold: np.ndarray,
        judged: Judged,
        kind: str,
        sentence_raw: np.ndarray | None = None,
        named: np.ndarray | None = None,
    ) -> None:
        """One held-out report: its windows' raw scores (windows × labels), which labels each
        window describes (None: not known), the report's labels (bool per label), what it
        judges."""
        if len(raw) == 0:
            return
        mask = judged.mask(raw.shape[1])
        hot = (raw > REPORT_FLOOR) & mask[None, :]  # lower pairs are certain negatives
        if window_targets is not None:
            self.window_scores.append(raw[hot])
            self.window_targets.append(window_targets[hot])
            self.window_kinds.append(kind)
        feats = report_features(raw, sentence_scores=sentence_raw, named=named)
        keep = (feats[:, 0] > REPORT_FLOOR) & mask
        self.report_rows.append(feats[keep])
        self.report_targets.append(gold[keep])
        self.report_kinds.append(kind)
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def fit(self, seed: int = 0, stages: int = 150) -> Calibration:
        """Each kind of evidence (TRAM reports, AnnoCTR reports, snippets) weighs the same in
        total: thousands of short snippets must not drown a hundred long annotated reports,
        whose confidence the trees tell apart by the report's length. `stages`: the trees'
        boosting stages."""
        from sklearn.linear_model import LogisticRegression

        scores = np.concatenate(self.window_scores)[:, None]
        targets = np.concatenate(self.window_targets)
        platt = LogisticRegression(C=100.0, max_iter=1000).fit(
            scores, targets, sample_weight=_balanced(self.window_scores, self.window_kinds)
        )
        rows = np.concatenate(self.report_rows)
        gold = np.concatenate(self.report_targets)
        trees = TreeEnsemble()
        if gold.sum() >= 50 and (~gold).sum() >= 50:
            weights = _balanced(self.report_rows, self.report_kinds)
            trees = TreeEnsemble.fit(
                rows, gold, seed=seed, sample_weight=weights, n_estimators=stages
            )
        return Calibration(
            window_a=float(platt.coef_[0, 0]),
            window_b=float(platt.intercept_[0]),
            report_trees=trees.to_dict() if trees.trees else {},
            evidence=dict(self.counts),
        )


def _balanced(parts: Sequence[np.ndarray], kinds: Sequence[str]) -> np.ndarray:
    """Row weights that give every kind the same total weight (mean weight 1)."""
    totals: dict[str, int] = {}
    for part, kind in zip(parts, kinds, strict=True):
        totals[kind] = totals.get(kind, 0) + len(part)
    rows = sum(totals.values())
    weights = [
        np.full(len(part), rows / (len(totals) * totals[kind]))
        for part, kind in zip(parts, kinds, strict=True)
    ]
    return np.concatenate(weights)


def snippet_reports(
    items: Sequence[LabelledText],
    filler: Sequence[LabelledText],
    seed: int,
    limit: int,
    sizes: Sequence[int] = (1, 2, 3, 4, 6, 8, 12),
) -> list[tuple[str, list[tuple[int, int, tuple[str, ...]]]]]:
    """Short reports made of held-out labelled texts (and a few "no technique" sentences):
    (text, [(start, end, labels) of each labelled part]). They judge every label: the texts
    come from sources that label what they describe, whatever the technique."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(items))
    out: list[tuple[str, list[tuple[int, int, tuple[str, ...]]]]] = []
    at = 0
    while at < len(order) and len(out) < limit:
        size = int(rng.choice(sizes))
        parts: list[tuple[str, tuple[str, ...]]] = [
            (items[i].text.strip(), items[i].labels) for i in order[at : at + size]
        ]
        at += size
        for _ in range(int(rng.integers(0, 3)) if filler else 0):
            pick = filler[int(rng.integers(len(filler)))]
            parts.insert(int(rng.integers(len(parts) + 1)), (pick.text.strip(), ()))
        text = ""
        spans: list[tuple[int, int, tuple[str, ...]]] = []
        for part, labels in parts:
            part = part if part.endswith((".", "!", "?")) else part + "."
            start = len(text)
            text += part + " "
            if labels:
                spans.append((start, start + len(part), labels))
        out.append((text.strip(), spans))
    return out


def span_targets(
    chars: Sequence[tuple[int, int]],
    spans: Iterable[tuple[int, int, Iterable[str]]],
    label_index: dict[str, int],
) -> np.ndarray:
    """windows × labels: which labels each window (a character range) describes."""
    target = np.zeros((len(chars), len(label_index)), dtype=bool)
    for start, end, labels in spans:
        columns = [label_index[x] for x in labels if x in label_index]
        if not columns:
            continue
        for w, (a, b) in enumerate(chars):
            if a < end and start < b:
                target[w, columns] = True
    return target
