"""From raw decision scores to probabilities that mean what they say, for every technique.

Why this design:
- Raw one-vs-rest scores rank techniques well, but their scale says nothing about how often a
  hit is right. Calibration maps them to probabilities, fitted on text the scoring model never
  saw (out-of-fold: the model is trained k times without a fold, and the fold is scored).
- Calibration only learns from evidence that can say yes *and* no for a technique; how that
  evidence is gathered and the mapping fitted is `mitremap.training.calibration`'s job. This
  module only applies the fitted numbers.
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

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mitremap.classify.trees import TreeEnsemble

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
    odds: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
    return odds.astype(np.float32)
