"""What the workspace learns from, and what a retrained model learned, in numbers.

`review_set` gathers everything the analysts said: the decided passages (training text), the
reports marked reviewed (to calibrate on) and each report's outcome (the label priors).
`learning_report` says, on the workspace's own reviewed reports, whether a new model is
better than what the analysts were shown: per-report precision, recall and F1 before (the
first analysis of each report, the one they reviewed) and after (the new model's confidence
from a model that never saw the report: a fold model of the retraining's calibration, or a
quick update fitted without it; with the label priors of the *other* reports), the techniques
whose confidence moved most, and how many reviewed passages it used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mitremap.classify.memory import LabelPriors
from mitremap.training.evaluate import compare_reports
from mitremap.web.workspace.memory import priors
from mitremap.web.workspace.reports import SUGGESTION_FLOOR
from mitremap.web.workspace.reviews import ReportReview, report_key

if TYPE_CHECKING:
    from mitremap.analysis import MitreMap
    from mitremap.training.corpus import LabelledText
    from mitremap.web.workspace.store import Store

FOLDS = 3
"""A quick update is judged by fitting it this many times, each without a third of the
reviewed reports."""


@dataclass
class ReviewSet:
    """Everything the analysts decided, as learning reads it."""

    passages: list[LabelledText]
    reports: list[LabelledText]  # the reports marked reviewed, with their passages
    reviews: list[ReportReview]  # every report with decisions
    # filled by a trainer that can: report key → confidence per label from a fold model
    out_of_fold: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def reviewed(self) -> list[ReportReview]:
        """The reviews of the reports marked reviewed (those a model is judged on)."""
        keys = {r.id for r in self.reports}
        return [r for r in self.reviews if report_key(r.report) in keys]


def review_set(store: Store) -> ReviewSet:
    reviews = list(store.report_reviews())
    passages = [p for r in reviews for p in r.passages]
    texts = store.report_texts([r.report for r in reviews if r.status == "reviewed"])
    reports = [
        r.as_report(texts[r.report])
        for r in reviews
        if r.status == "reviewed" and r.accepted and r.report in texts
    ]
    return ReviewSet(passages, reports, reviews)


def without(reviews: Sequence[ReportReview], report: int) -> LabelPriors:
    """The label priors of every review but one report's (to judge that report fairly)."""
    return priors([r for r in reviews if r.report != report])


def learning_report(
    store: Store,
    data: ReviewSet,
    after: Mapping[int, Mapping[str, float]],
    *,
    mode: str,
    threshold: float,
) -> dict[str, Any]:
    """Before/after on the reviewed reports that `after` covers (see the module docstring)."""
    judged = [r for r in data.reviewed if r.report in after]
    before = store.first_confidences([r.report for r in judged])
    revised = [without(data.reviews, r.report).revise(after[r.report]) for r in judged]
    out = compare_reports(
        [before.get(r.report, {}) for r in judged],
        revised,
        [set(r.accepted) for r in judged],
        threshold,
        floor=SUGGESTION_FLOOR,  # what a stored analysis keeps
    )
    return {
        "mode": mode,
        "reviewed_passages": len(data.passages),
        "reviewed_reports": len(data.reports),
        "judged_on": "reports marked reviewed; after: a model that never saw each report, "
        "with the label priors of the other reports",
        **out,
    }


def out_of_fold_confidences(data: ReviewSet, labels: Sequence[str]) -> dict[int, dict[str, float]]:
    """A full retraining's fold-model confidences, by report id."""
    out: dict[int, dict[str, float]] = {}
    for review in data.reviewed:
        found = data.out_of_fold.get(report_key(review.report))
        if found is not None:
            hot = np.flatnonzero(found >= 0.01).tolist()
            out[review.report] = {labels[j]: float(found[j]) for j in hot}
    return out


def cross_fitted_confidences(
    data: ReviewSet,
    base: MitreMap,
    update: Callable[[Sequence[LabelledText]], MitreMap],
    texts: Mapping[int, str],
) -> dict[int, dict[str, float]]:
    """A quick update judged fairly: fitted `FOLDS` times, each without a fold of the
    reviewed reports' passages, and each fold's reports read by the update that never saw
    them."""
    reviewed = data.reviewed
    if len(reviewed) < 2:
        return {}
    out: dict[int, dict[str, float]] = {}
    folds = min(FOLDS, len(reviewed))
    for f in range(folds):
        held = {r.report for i, r in enumerate(reviewed) if i % folds == f}
        rest = [p for p in data.passages if (p.meta or {}).get("report") not in held]
        model = update(rest) if rest else base
        for report in held:
            analysis = model.analyze(texts[report], threshold=0.01)
            out[report] = {h.id: h.confidence for h in analysis.techniques}
    return out
