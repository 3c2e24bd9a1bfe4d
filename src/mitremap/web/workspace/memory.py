"""The workspace's review memory: every decision in the database, consulted by each analysis.

`mitremap.classify.memory.ReviewMemory` does the reading (closeness with the model's word
features, the calibrated fade, the label priors); this module keeps one in step with the
database. Before an analysis, `current` asks the store which reports' reviews changed (a
cheap grouped count of decisions and analyses) and re-reads only those; a new active model
(whose features differ) rebuilds it. A decision therefore counts at the very next analysis,
with no retraining.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from mitremap.classify.memory import (
    LabelPriors,
    ReviewedDocument,
    ReviewedPassage,
    ReviewMemory,
)

if TYPE_CHECKING:
    from mitremap.analysis import MitreMap
    from mitremap.web.workspace.reviews import ReportReview
    from mitremap.web.workspace.store import Store

REFIT_GROWTH = 1.2
"""The memory's curve is refitted when it holds this many times the passages it was fitted on."""


class WorkspaceMemory:
    """One `ReviewMemory` for the workspace's general model (`ModelRegistry.general`: the active
    model, or the one it was learned from), refreshed from the store when reviews change."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._memory: ReviewMemory | None = None
        self._reviews: dict[int, ReportReview] = {}
        self._signatures: dict[int, tuple[Any, ...]] = {}
        self._fitted_on = 0

    def current(self, mitremap: MitreMap) -> ReviewMemory | None:
        """The memory for `mitremap`'s model, up to date with the database (None for a
        backend without word features, or before any decision). It is rebuilt only for a
        model that reads words differently."""
        features = getattr(getattr(mitremap, "model", None), "features", None)
        if features is None or not getattr(features, "blocks", None):
            return None
        with self._lock:
            signatures = self.store.review_signatures()
            block = features.blocks[0]
            if self._memory is None or not _same_words(self._memory.block, block):
                self._memory = ReviewMemory(block)
                self._signatures, self._fitted_on = {}, 0
            changed = [r for r, sig in signatures.items() if self._signatures.get(r) != sig]
            for report in set(self._signatures) - set(signatures):  # deleted, or cleared
                self._reviews.pop(report, None)
                self._memory.remove(report)
            texts = self.store.report_texts(changed)
            for review in self.store.report_reviews(changed):
                self._reviews[review.report] = review
                self._memory.update(
                    review.report, passages(review), document(review, texts[review.report])
                )
            self._signatures = signatures
            if changed:
                self._memory.priors = priors(self._reviews.values())
            if len(self._memory) >= max(1, self._fitted_on) * REFIT_GROWTH:
                self._memory.fit_curve()
                self._fitted_on = len(self._memory)
            return self._memory if self._reviews else None


def _same_words(a: Any, b: Any) -> bool:
    """Whether two word feature blocks read text the same way (a model and its quick
    updates share theirs: the memory need not be rebuilt)."""
    return a is b or (a.size == b.size and a.ngram_range == b.ngram_range and a.terms == b.terms)


def passages(review: ReportReview) -> list[ReviewedPassage]:
    """A report's decided passages as the memory keeps them, with where they come from."""
    out = []
    for item in review.passages:
        meta = item.meta or {}
        origin = {
            "report": review.report,
            "title": str(meta.get("title") or ""),
            "user": str(meta.get("user") or ""),
            "at": str(meta.get("at") or ""),
        }
        out.append(
            ReviewedPassage(
                item.text, tuple(item.labels), tuple(meta.get("rejected") or ()), origin
            )
        )
    return out


def document(review: ReportReview, text: str) -> ReviewedDocument:
    """The reviewed report as a whole: a copy of it gets the same answer."""
    return ReviewedDocument(
        text,
        tuple(sorted(review.accepted)),
        tuple(sorted(review.rejected)),
        {"report": review.report},
    )


def priors(reviews: Any) -> LabelPriors:
    """Each technique's outcomes over the reviewed reports: accepted or added, rejected."""
    accepted: dict[str, int] = {}
    rejected: dict[str, int] = {}
    for review in reviews:
        for technique in review.accepted:
            accepted[technique] = accepted.get(technique, 0) + 1
        for technique in review.rejected:
            rejected[technique] = rejected.get(technique, 0) + 1
    return LabelPriors(accepted, rejected)
