"""The quick update: a model corrected by the analysts' reviews in seconds, not retrained.

Why this design:
- Only what the reviews touch changes: the techniques accepted, added or rejected somewhere.
  For each, a small L2-regularised logistic regression learns a correction of the model's
  weights on the reviewed passages, with the model's own calibrated window log-odds as a fixed
  offset: where the model already agrees with the analysts the correction stays near zero,
  and the corrected scores stay on the scale the calibration was fitted for ("their
  calibration"). Everything else in the model is kept, so the result is an ordinary model.
- A passage is evidence for its accepted (or added) techniques and against the others,
  except a technique's relatives (a sub-technique accepted says nothing against its parent);
  a passage where techniques were only rejected is evidence against those only.
- Passages the model already scores as certainly not a technique add nothing to its gradient
  and are left out of its fit, which keeps a day's reviews to seconds on two cores.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse
from scipy.optimize import minimize

from mitremap.errors import ModelError

if TYPE_CHECKING:
    from mitremap.classify.linear import LinearModel
    from mitremap.training.corpus import LabelledText


@dataclass(frozen=True)
class AdaptSettings:
    """How strongly the reviews may move a technique's weights."""

    l2: float = 1.0  # on the weight corrections
    l2_bias: float = 10.0  # on the bias correction: a shift for every text, so held back
    floor: float = -6.0  # negatives the model scores below this log-odds are left out
    max_iter: int = 100
    prune: float = 1e-3  # corrections smaller than this (in log-odds) are dropped


@dataclass(frozen=True)
class Example:
    """One reviewed passage: the techniques it describes, and what it is evidence against
    (None: every technique but those and their relatives)."""

    text: str
    positives: frozenset[str]
    negatives: frozenset[str] | None


def examples(passages: Sequence[LabelledText]) -> list[Example]:
    """The reviewed passages (`web.workspace.reviews.reviewed_passages`) as examples."""
    out = []
    for p in passages:
        refused = (p.meta or {}).get("rejected") or ()
        if p.labels:
            out.append(Example(p.text, frozenset(p.labels), None))
        elif refused:
            out.append(Example(p.text, frozenset(), frozenset(refused)))
    return out


def adapt_linear(
    model: LinearModel,
    passages: Sequence[LabelledText],
    settings: AdaptSettings | None = None,
) -> LinearModel:
    """A copy of `model` whose weights for the reviewed techniques are corrected by the
    reviewed passages (see the module docstring)."""
    settings = settings or AdaptSettings()
    started = time.perf_counter()
    found = examples(passages)
    if not found:
        raise ModelError("there are no reviewed passages to learn from yet")
    index = {x: j for j, x in enumerate(model.labels)}
    X = model.features.transform([e.text for e in found]).tocsr().astype(np.float64)
    a, b = model.calibration.window_a, model.calibration.window_b
    logits = a * model.decision_function(X) + b
    touched = sorted({x for e in found for x in (*e.positives, *(e.negatives or ())) if x in index})
    gram = (X @ X.T).toarray()  # every pair of passages, once for all techniques
    Xt = X.T.tocsr()
    corrections, bias = [], model.bias.astype(np.float64).copy()
    for label in touched:
        j = index[label]
        rows, y = _rows(found, label, logits[:, j], settings.floor)
        if not len(y):
            continue
        alpha, shift = _fit(gram[np.ix_(rows, rows)], logits[rows, j], y, settings)
        spread = np.zeros(len(found))
        spread[rows] = alpha
        weights = Xt @ spread  # v = Xᵀα over the passages
        columns = np.flatnonzero(weights)
        weights = weights[columns]
        keep = np.abs(weights) >= settings.prune
        corrections.append((columns[keep], weights[keep] / a, j))
        bias[j] += shift / a
    updated = copy.copy(model)
    updated.weights = _with_corrections(model.weights, corrections)
    updated.bias = bias.astype(np.float32)
    updated._by_label = None
    updated.card = copy.deepcopy(model.card)
    updated.card.recipe["quick_update"] = {
        "from_model_trained_at": model.card.trained_at,
        "reviewed_passages": len(found),
        "techniques": len(touched),
        "seconds": round(time.perf_counter() - started, 1),
    }
    updated.card.trained_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return updated


def _rows(
    found: Sequence[Example], label: str, logits: np.ndarray, floor: float
) -> tuple[np.ndarray, np.ndarray]:
    """The examples that speak about `label` (and its target), minus negatives the model
    already scores below `floor`."""
    family = label.split(".")[0]
    rows, y = [], []
    for i, e in enumerate(found):
        if label in e.positives:
            rows.append(i)
            y.append(True)
        elif e.negatives is None:
            if any(p.split(".")[0] == family for p in e.positives) or logits[i] < floor:
                continue
            rows.append(i)
            y.append(False)
        elif label in e.negatives and logits[i] >= floor:
            rows.append(i)
            y.append(False)
    return np.array(rows, dtype=np.int64), np.array(y, dtype=bool)


def _fit(
    K: np.ndarray, offset: np.ndarray, y: np.ndarray, settings: AdaptSettings
) -> tuple[np.ndarray, float]:
    """min Σ softplus(−s·(offset + X·v + d)) + l2/2·|v|² + l2_bias/2·d², positives weighed up
    to balance the negatives, for rows X whose Gram matrix is `K`. Solved over one
    coefficient per row (v = Xᵀα: the solution of an L2-regularised linear model lies in the
    span of its rows), so the cost follows the hundreds of reviewed passages, not the hundreds
    of thousands of features. Answers (α, d)."""
    sign = np.where(y, 1.0, -1.0)
    positives, negatives = int(y.sum()), int((~y).sum())
    weight = np.where(y, max(1.0, negatives / max(positives, 1)) ** 0.5, 1.0)

    def parts(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        alpha, d = theta[:-1], theta[-1]
        Ka = K @ alpha
        margin = -sign * (offset + Ka + d)
        return Ka, margin, 1.0 / (1.0 + np.exp(-margin))

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        alpha, d = theta[:-1], theta[-1]
        Ka, margin, p = parts(theta)
        g = -sign * weight * p
        value = float(weight @ np.logaddexp(0.0, margin))
        value += 0.5 * settings.l2 * float(alpha @ Ka) + 0.5 * settings.l2_bias * d * d
        grad = np.concatenate([K @ (g + settings.l2 * alpha), [g.sum() + settings.l2_bias * d]])
        return value, grad

    def curvature(theta: np.ndarray, step: np.ndarray) -> np.ndarray:
        """The Hessian times `step` (Newton-CG needs no Hessian matrix)."""
        _, _, p = parts(theta)
        h = weight * p * (1.0 - p)
        inner = h * (K @ step[:-1] + step[-1])
        return np.concatenate(
            [
                K @ (inner + settings.l2 * step[:-1]),
                [inner.sum() + settings.l2_bias * step[-1]],
            ]
        )

    result = minimize(
        loss,
        np.zeros(len(y) + 1),
        jac=True,
        hessp=curvature,
        method="Newton-CG",
        options={"maxiter": settings.max_iter, "xtol": 1e-4},
    )
    return result.x[:-1], float(result.x[-1])


def _with_corrections(
    weights: sparse.csr_matrix, corrections: list[tuple[np.ndarray, np.ndarray, int]]
) -> sparse.csr_matrix:
    if not corrections:
        return weights.copy()
    rows = np.concatenate([c for c, _, _ in corrections])
    values = np.concatenate([v for _, v, _ in corrections])
    cols = np.concatenate([np.full(len(c), j) for c, _, j in corrections])
    delta = sparse.csr_matrix((values, (rows, cols)), shape=weights.shape, dtype=np.float64)
    return (weights.astype(np.float64) + delta).tocsr().astype(np.float32)
