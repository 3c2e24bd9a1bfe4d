"""From raw decision scores to probabilities that mean what they say, for every technique.

Why this design:
- Raw one-vs-rest scores rank techniques well, but their scale says nothing about how often a
  hit is right. Calibration maps them to probabilities, fitted on text the scoring model never
  saw (out-of-fold: the model is trained k times without a fold, and the fold is scored).
- Calibration only learns from evidence that can say yes *and* no for a technique. TRAM's
  annotators use about 75 techniques: a technique they never use is unannotated there, not
  absent, so TRAM reports judge only those labels (`Judged`). Held-out sentences of every
  other source, read as short reports of a few sentences (`snippet_reports`), judge every
  label, so the long tail of ATT&CK is calibrated on text that names it.
- Nothing technique-specific enters the mapping from scores to probabilities (no per-label
  prior: an earlier prior of "how often TRAM reports list it" divided the odds of every
  technique TRAM never annotates by ~175). The same features for every label:
  - a window's probability: a Platt scaling of its score;
  - the report's probability: small boosted trees (`classify.trees`) over the label's best
    and second-best window scores, the best window's margin over the strongest other label
    in that window, the report's length (a long report has more chances of one stray high
    window), the same best score and margin over single sentences (a window that
    describes three techniques dilutes each; its sentences do not), and whether software
    named in the report is known to use the technique (`mitremap.names`; 1 / the number of
    techniques it uses, so a tool with five counts more than a framework with eighty).
- Per-technique probabilities stay independent (multi-label): two techniques in one passage
  both score.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mitremap.classify.trees import TreeEnsemble

if TYPE_CHECKING:
    from mitremap.corpus import LabelledText

REPORT_FEATURES = (
    "best",
    "second",
    "margin",
    "log_windows",
    "sentence_best",
    "sentence_margin",
    "named",
)
# a label whose best window scores at most this is certainly not in the report (report
# confidence 0): the tree model is fitted and evaluated only above it, which keeps both fast
REPORT_FLOOR = -0.8


@dataclass
class Calibration:
    """Maps raw decision scores to probabilities (see the module docstring)."""

    window_a: float = 4.0
    window_b: float = -2.5
    report_trees: dict[str, Any] = field(default_factory=dict)  # a TreeEnsemble's numbers
    report_features: list[str] = field(default_factory=lambda: list(REPORT_FEATURES))
    evidence: dict[str, int] = field(default_factory=dict)  # what it was fitted on (counts)

    def window_proba(self, scores: np.ndarray) -> np.ndarray:
        return _sigmoid(self.window_a * scores + self.window_b)

    def report_proba(
        self,
        window_scores: np.ndarray,
        sentence_scores: np.ndarray | None = None,
        named: np.ndarray | None = None,
    ) -> np.ndarray:
        """P(label is among the report's techniques) from its windows' (and sentences') raw
        scores."""
        if len(window_scores) == 0:
            return np.zeros(window_scores.shape[1], dtype=np.float32)
        if not self.report_trees:
            return self.window_proba(window_scores.max(axis=0))
        feats = report_features(window_scores, self.report_features, sentence_scores, named)
        out = np.zeros(len(feats), dtype=np.float32)
        hot = feats[:, 0] > REPORT_FLOOR
        out[hot] = self._trees().proba(feats[hot])
        return out

    def _trees(self) -> TreeEnsemble:
        cached = getattr(self, "_tree_cache", None)
        if cached is None:
            cached = TreeEnsemble.from_dict(self.report_trees, len(self.report_features))
            self._tree_cache = cached
        return cached

    def check(self) -> None:
        """Fail now, not at the first report, when the stored numbers are damaged."""
        for name in ("window_a", "window_b"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"calibration {name} is not a number")
            if not np.isfinite(value):
                raise ValueError(f"calibration {name} is not finite")
        if not isinstance(self.report_features, list) or not all(
            isinstance(x, str) for x in self.report_features
        ):
            raise ValueError("calibration report_features is not a list of names")
        unknown = set(self.report_features) - set(REPORT_FEATURES)
        if unknown:
            raise ValueError(f"unknown report features {sorted(unknown)}")
        if not isinstance(self.report_trees, dict) or not isinstance(self.evidence, dict):
            raise ValueError("calibration trees or evidence are not objects")
        if self.report_trees:
            self._trees()


def report_features(
    window_scores: np.ndarray,
    names: Sequence[str] = REPORT_FEATURES,
    sentence_scores: np.ndarray | None = None,
    named: np.ndarray | None = None,
) -> np.ndarray:
    """Per label, the named numbers (`REPORT_FEATURES`) computed from its windows' raw scores
    (and its sentences'; without them, the windows stand in)."""
    best, margin = _best_and_margin(window_scores)
    columns: dict[str, np.ndarray] = {"best": best, "margin": margin}
    n = len(window_scores)
    if "second" in names:
        columns["second"] = np.partition(window_scores, n - 2, axis=0)[n - 2] if n > 1 else best
    if "log_windows" in names:
        columns["log_windows"] = np.full_like(best, np.log(n + 1.0))
    if "sentence_best" in names or "sentence_margin" in names:
        if sentence_scores is None or len(sentence_scores) == 0:
            columns["sentence_best"], columns["sentence_margin"] = best, margin
        else:
            columns["sentence_best"], columns["sentence_margin"] = _best_and_margin(sentence_scores)
    if "named" in names:
        columns["named"] = np.zeros_like(best) if named is None else named.astype(best.dtype)
    return np.column_stack([columns[name] for name in names]).astype(np.float32)


def _best_and_margin(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each label's best score over the rows, and its margin over the strongest other label
    in that same row."""
    best_row = scores.argmax(axis=0)
    best = scores[best_row, np.arange(scores.shape[1])]
    if scores.shape[1] < 2:
        return best, best + 1.0
    top2 = np.partition(scores, -2, axis=1)[:, -2:]
    first, runner = top2[:, 1][best_row], top2[:, 0][best_row]
    return best, best - np.where(best >= first, runner, first)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))).astype(np.float32)


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

    def fit(self, seed: int = 0) -> Calibration:
        """Each kind of evidence (TRAM reports, AnnoCTR reports, snippets) weighs the same in
        total: thousands of short snippets must not drown a hundred long annotated reports,
        whose confidence the trees tell apart by the report's length."""
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
            trees = TreeEnsemble.fit(rows, gold, seed=seed, sample_weight=weights)
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
