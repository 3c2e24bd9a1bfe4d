"""Small gradient-boosted tree ensembles kept as plain arrays.

Why: the report-level confidence is a non-linear function of a few per-label numbers (best
window score, second best, report length, how often annotators report the technique); boosted
trees fit it better than a logistic model and stay calibrated. Models are stored without
pickle, so the fitted trees are copied out of scikit-learn into lists of numbers that JSON can
hold, and evaluated here with numpy (a few microseconds per label).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class TreeEnsemble:
    """Sum of regression trees plus a constant, on the log-odds scale.

    Each tree is (feature, threshold, left, right, value) over its nodes; a leaf has left = -1.
    A row goes left when its feature value, rounded to float32 as scikit-learn does, is <=
    the threshold.
    """

    init: float = 0.0
    rate: float = 1.0
    trees: list[list[list[float]]] = field(default_factory=list)

    @classmethod
    def fit(
        cls,
        X: np.ndarray,
        y: np.ndarray,
        seed: int = 0,
        sample_weight: np.ndarray | None = None,
        **params: Any,
    ) -> TreeEnsemble:
        """Fit scikit-learn's GradientBoostingClassifier and copy its trees out."""
        from sklearn.ensemble import GradientBoostingClassifier

        settings = dict(
            n_estimators=150,
            learning_rate=0.05,
            max_depth=3,
            min_samples_leaf=40,
            subsample=0.8,
            random_state=seed,
        )
        settings.update(params)
        gb = GradientBoostingClassifier(**settings).fit(X, y, sample_weight=sample_weight)
        return cls.from_sklearn(gb)

    @classmethod
    def from_sklearn(cls, gb: Any) -> TreeEnsemble:
        prior = float(gb.init_.class_prior_[1])
        prior = min(max(prior, 1e-9), 1 - 1e-9)
        trees = []
        for (estimator,) in gb.estimators_:
            t = estimator.tree_
            trees.append(
                [
                    t.feature.astype(float).tolist(),
                    t.threshold.astype(float).tolist(),
                    t.children_left.astype(float).tolist(),
                    t.children_right.astype(float).tolist(),
                    t.value[:, 0, 0].astype(float).tolist(),
                ]
            )
        return cls(float(np.log(prior / (1 - prior))), float(gb.learning_rate), trees)

    def decision(self, X: np.ndarray) -> np.ndarray:
        """Log-odds per row. All trees are walked at once, one level per step: the nodes of
        every tree sit in one flat array, so a step is a few numpy gathers."""
        X = np.asarray(X, dtype=np.float32)
        if not self.trees:
            return np.full(len(X), self.init)
        feature, threshold, left, right, value, roots = self._flat()
        node = np.broadcast_to(roots, (len(X), len(roots))).copy()
        rows = np.arange(len(X))[:, None]
        while True:
            inner = left[node] >= 0
            if not inner.any():
                break
            go_left = X[rows, feature[node]] <= threshold[node]
            node = np.where(inner, np.where(go_left, left[node], right[node]), node)
        log_odds: np.ndarray = self.init + self.rate * value[node].sum(axis=1)
        return log_odds

    def proba(self, X: np.ndarray) -> np.ndarray:
        odds: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(self.decision(X), -30, 30)))
        return odds.astype(np.float32)

    def _flat(self) -> tuple[np.ndarray, ...]:
        """The trees' nodes in one array each; children as indices into those arrays."""
        cached = getattr(self, "_cache", None)
        if cached is None:
            sizes = [len(tree[0]) for tree in self.trees]
            roots = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
            parts: list[Any] = list(zip(*self.trees, strict=True)) if self.trees else [[]] * 5

            def flat(i: int, dtype: type) -> np.ndarray:
                return np.concatenate([np.asarray(x, dtype=dtype) for x in parts[i]] or [[]])

            feature = np.maximum(flat(0, np.int64), 0)
            left, right = flat(2, np.int64), flat(3, np.int64)
            offsets = np.repeat(roots, sizes)
            left = np.where(left >= 0, left + offsets, -1)
            right = np.where(right >= 0, right + offsets, -1)
            cached = (feature, flat(1, np.float64), left, right, flat(4, np.float64), roots)
            self._cache = cached
        return cached

    def to_dict(self) -> dict[str, Any]:
        return {"init": self.init, "rate": self.rate, "trees": self.trees}

    @classmethod
    def from_dict(cls, data: dict[str, Any], n_features: int | None = None) -> TreeEnsemble:
        """Trees from plain data, checked so that walking them always ends: every child comes
        after its parent (scikit-learn's order), every index and feature is in range."""
        trees = data.get("trees") or []
        if not isinstance(trees, list):
            raise ValueError("stored trees are not a list")
        for tree in trees:
            _check_tree(tree, n_features)
        return cls(float(data["init"]), float(data["rate"]), trees)


def _check_tree(tree: Any, n_features: int | None) -> None:
    """One stored tree, checked: five lists of one length (feature, threshold, left, right,
    value), finite numbers, children that point forward inside the tree, features in range."""
    if not isinstance(tree, list) or len(tree) != 5:
        raise ValueError("a stored tree is not five lists")
    if any(not isinstance(part, list) for part in tree) or len({len(p) for p in tree}) != 1:
        raise ValueError("a stored tree has parts of different lengths")
    feature, threshold, left, right, value = (np.asarray(p, dtype=np.float64) for p in tree)
    if len(feature) == 0 or not (np.isfinite(threshold).all() and np.isfinite(value).all()):
        raise ValueError("a stored tree is empty or holds non-finite numbers")
    _check_children(left, right)
    inner = left >= 0
    limit = n_features if n_features is not None else np.inf
    used = feature[inner]
    if ((used < 0) | (used >= limit) | (used != np.round(used))).any():
        raise ValueError("a stored tree reads a feature that does not exist")


def _check_children(left: np.ndarray, right: np.ndarray) -> None:
    """Every child index is whole, -1 (a leaf) or a later node of the tree (so a walk always
    ends), and a node has both children or none."""
    n = len(left)
    nodes = np.arange(n)
    for child in (left, right):
        if (child != np.round(child)).any():
            raise ValueError("a stored tree's child index is not a whole number")
        leaf = child == -1
        if not ((leaf | ((child > nodes) & (child < n))).all()):
            raise ValueError("a stored tree points outside itself or backwards (a cycle)")
    if ((left == -1) != (right == -1)).any():
        raise ValueError("a stored tree has a node with one child")
