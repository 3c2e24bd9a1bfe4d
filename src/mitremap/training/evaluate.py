"""Metrics on labelled text: sentence level (top-k, P/R/F1) and report level (technique sets).

Labels are normalised like training labels (revoked → replacement, newer ids mapped). Report
level compares the techniques at or above the threshold with the annotated set, exactly and
with sub-techniques rolled up to their parents. Calibration is measured as the expected
calibration error (ECE, 10 equal-width bins) of the confidence the user sees.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from mitremap.analysis import MitreMap
    from mitremap.attack import AttackKB
    from mitremap.training.corpus import LabelledText


@dataclass
class PRF:
    precision: float
    recall: float
    f1: float


@dataclass
class SentenceMetrics:
    n: int
    top1: float
    top5: float
    micro: PRF
    macro: PRF
    ece: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ReportMetrics:
    n: int
    threshold: float
    per_report_f1: float
    micro: PRF
    macro: PRF
    rolled_up_per_report_f1: float
    rolled_up_micro: PRF
    ece: float
    ece_pairs: int
    # a found technique counts as right when it or its parent is listed: the fair reading for
    # annotations made at parent level (AnnoCTR), like the rolled-up F1
    parent_level_ece: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def prf(tp: int, fp: int, fn: int) -> PRF:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return PRF(p, r, 2 * p * r / (p + r) if p + r else 0.0)


def set_f1(predicted: set[str], gold: set[str]) -> float:
    """F1 of one predicted set; two empty sets agree perfectly."""
    if not predicted and not gold:
        return 1.0
    return 2 * len(predicted & gold) / (len(predicted) + len(gold))


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 10
) -> float:
    """Σ_bins (share of items) × |accuracy − mean confidence|."""
    confidence = np.asarray(confidence, dtype=float)
    correct = np.asarray(correct, dtype=float)
    if len(confidence) == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(total)


def macro(per_label: dict[str, tuple[int, int, int]]) -> PRF:
    if not per_label:
        return PRF(0.0, 0.0, 0.0)
    scores = [prf(*counts) for counts in per_label.values()]
    return PRF(
        *(float(np.mean([getattr(s, k) for s in scores])) for k in ("precision", "recall", "f1"))
    )


def rolled_up(labels: Iterable[str]) -> set[str]:
    return {x.split(".")[0] for x in labels}


def evaluate_sentences(mitremap: MitreMap, items: Sequence[LabelledText]) -> SentenceMetrics:
    """Top-1/top-5 accuracy; P/R/F1 of the top-1 label against each text's labels."""
    items = [i for i in items if i.labels]
    if not items:
        raise ValueError("no labelled text to evaluate")
    ranked = mitremap.top_k([i.text for i in items], k=5)
    top1 = top5 = 0
    tp = fp = fn = 0
    per_label: dict[str, list[int]] = {}
    confidence, correct = [], []
    for item, best in zip(items, ranked, strict=True):
        gold = set(item.labels)
        first, conf = best[0]
        hit = first in gold
        top1 += hit
        top5 += any(label in gold for label, _ in best)
        confidence.append(conf)
        correct.append(hit)
        tp += hit
        fp += not hit
        fn += len(gold) - hit
        per_label.setdefault(first, [0, 0, 0])[0 if hit else 1] += 1
        for label in gold - {first}:
            per_label.setdefault(label, [0, 0, 0])[2] += 1
    n = len(items)
    return SentenceMetrics(
        n,
        top1 / n,
        top5 / n,
        prf(tp, fp, fn),
        macro({k: (v[0], v[1], v[2]) for k, v in per_label.items()}),
        expected_calibration_error(np.array(confidence), np.array(correct)),
    )


def report_predictions(
    mitremap: MitreMap, items: Sequence[LabelledText], window: int = 3
) -> list[tuple[dict[str, float], set[str]]]:
    """For each report: every label's report-level confidence, and its gold set."""
    out = []
    for item in items:
        analysis = mitremap.analyze(item.text, threshold=0.0, window=window)
        confidences = {h.technique.id: h.confidence for h in analysis.techniques}
        out.append((confidences, set(item.labels)))
    return out


def report_metrics(
    predictions: Sequence[tuple[dict[str, float], set[str]]],
    threshold: float = 0.6,
    min_confidence: float = 0.1,
) -> ReportMetrics:
    """Technique-set metrics at `threshold`; ECE over the pairs with confidence ≥ min_confidence."""
    f1s, rolled_f1s = [], []
    tp = fp = fn = 0
    rtp = rfp = rfn = 0
    per_label: dict[str, list[int]] = {}
    confidence, correct, parent_listed = [], [], []
    for confidences, gold in predictions:
        predicted = {k for k, v in confidences.items() if v >= threshold}
        f1s.append(set_f1(predicted, gold))
        rolled_f1s.append(set_f1(rolled_up(predicted), rolled_up(gold)))
        tp += len(predicted & gold)
        fp += len(predicted - gold)
        fn += len(gold - predicted)
        rp, rg = rolled_up(predicted), rolled_up(gold)
        rtp += len(rp & rg)
        rfp += len(rp - rg)
        rfn += len(rg - rp)
        for label in predicted | gold:
            counts = per_label.setdefault(label, [0, 0, 0])
            counts[
                0 if label in predicted and label in gold else 1 if label in predicted else 2
            ] += 1
        for label, value in confidences.items():
            if value >= min_confidence:
                confidence.append(value)
                correct.append(label in gold)
                parent_listed.append(label in gold or label.split(".")[0] in gold)
    return ReportMetrics(
        len(predictions),
        threshold,
        float(np.mean(f1s)) if f1s else 0.0,
        prf(tp, fp, fn),
        macro({k: (v[0], v[1], v[2]) for k, v in per_label.items()}),
        float(np.mean(rolled_f1s)) if rolled_f1s else 0.0,
        prf(rtp, rfp, rfn),
        expected_calibration_error(np.array(confidence), np.array(correct)),
        len(confidence),
        expected_calibration_error(np.array(confidence), np.array(parent_listed)),
    )


def evaluate_reports(
    mitremap: MitreMap, items: Sequence[LabelledText], threshold: float = 0.6, window: int = 3
) -> ReportMetrics:
    return report_metrics(report_predictions(mitremap, items, window), threshold)


def read_labelled(path: str, kb: AttackKB) -> list[LabelledText]:
    """A JSONL file of {"text", "labels"} with labels normalised like training labels."""
    from mitremap.training.corpus import LabelledText, LabelNormaliser, read_jsonl

    normaliser = LabelNormaliser(kb)
    return [
        LabelledText(i.text, normaliser.normalise(i.labels), i.source, i.id, i.meta)
        for i in read_jsonl(path)
    ]


def compare_reports(
    before: Sequence[Mapping[str, float]],
    after: Sequence[Mapping[str, float]],
    gold: Sequence[set[str]],
    threshold: float = 0.6,
    top: int = 10,
    floor: float = 0.05,
) -> dict[str, Any]:
    """Two models' report confidences on the same reports, against their gold sets: the mean
    per-report precision, recall and F1 at `threshold` of each, and the techniques whose
    confidence moved most on average (over the reports where either gave it at least `floor`;
    a side that lists no confidence under `floor` — stored suggestions stop there — counts as
    `floor`, so an absent value is never read as a move)."""

    def mean_prf(confidences: Sequence[Mapping[str, float]]) -> dict[str, float]:
        rows = []
        for found, listed in zip(confidences, gold, strict=True):
            predicted = {k for k, v in found.items() if v >= threshold}
            hits = len(predicted & listed)
            p = hits / len(predicted) if predicted else float(not listed)
            r = hits / len(listed) if listed else float(not predicted)
            rows.append((p, r, set_f1(predicted, listed)))
        if not rows:
            return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
        p, r, f = (float(np.mean(column)) for column in zip(*rows, strict=True))
        return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4)}

    changes: dict[str, list[float]] = {}
    for old, new in zip(before, after, strict=True):
        for technique in {*old, *new}:
            a, b = (max(floor, side.get(technique, 0.0)) for side in (old, new))
            if max(a, b) > floor:
                changes.setdefault(technique, []).append(b - a)
    means = ((t, float(np.mean(v)), len(v)) for t, v in changes.items())
    moved = sorted((m for m in means if abs(m[1]) >= 0.005), key=lambda x: -abs(x[1]))[:top]
    return {
        "reports": len(gold),
        "threshold": threshold,
        "before": mean_prf(before),
        "after": mean_prf(after),
        "moved": [{"technique": t, "change": round(c, 4), "reports": n} for t, c, n in moved],
    }
