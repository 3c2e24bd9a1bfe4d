"""Calibration: what held-out evidence judges, short reports of held-out text, window targets."""

from __future__ import annotations

import numpy as np
import pytest

from mitremap.classify.calibration import REPORT_FLOOR
from mitremap.training.calibration import HeldOut, Judged, snippet_reports, span_targets
from mitremap.training.corpus import LabelledText


def _labelled(n: int) -> list[LabelledText]:
    return [
        LabelledText(f"The actor did thing number {i}", (f"T{1000 + i % 7}",), "s", str(i))
        for i in range(n)
    ]


def test_snippet_reports_keep_each_part_and_its_labels_at_its_offsets():
    items = _labelled(40)
    filler = [LabelledText("The report was published in May.", (), "tram-negative", "n")]
    reports = snippet_reports(items, filler, seed=3, limit=100)
    seen = 0
    for text, spans in reports:
        for start, end, labels in spans:
            part = text[start:end]
            assert part.startswith("The actor did thing number")
            number = int(part.rstrip(".").rsplit(" ", 1)[1])
            assert labels == (f"T{1000 + number % 7}",)
            seen += 1
    assert seen == 40  # every held-out item is used once
    assert any("published in May" in text for text, _ in reports)  # filler among them


def test_snippet_reports_stop_at_the_limit():
    assert len(snippet_reports(_labelled(200), [], seed=0, limit=5)) == 5


def test_span_targets_mark_the_windows_a_span_touches():
    chars = [(0, 10), (5, 20), (20, 30)]
    index = {"T1059": 0, "T1053.005": 1}
    target = span_targets(chars, [(12, 18, ("T1059",)), (25, 26, ("T9999", "T1053.005"))], index)
    assert target.tolist() == [[False, False], [True, False], [False, True]]


def test_held_out_evidence_only_counts_labels_it_judges():
    held = HeldOut()
    raw = np.array([[1.0, 0.5, -2.0], [0.2, 0.9, -2.0]], dtype=np.float32)
    targets = np.array([[True, False, False], [False, False, False]])
    gold = np.array([True, False, False])
    held.add(raw, targets, gold, Judged(np.array([True, False, True])), "tram")
    # label 1 is not judged; label 2 is below the floor everywhere
    assert (held.window_scores[0] > REPORT_FLOOR).all()
    assert sorted(held.window_scores[0].tolist()) == pytest.approx([0.2, 1.0])
    assert held.report_rows[0].shape == (1, 7) and held.report_targets[0].tolist() == [True]
    held.add(raw, targets, gold, Judged(), "snippets")
    assert held.report_rows[1].shape == (2, 7)
    assert held.counts == {"tram": 1, "snippets": 1}


def test_calibration_fits_and_ranks_like_the_raw_scores():
    rng = np.random.default_rng(0)
    held = HeldOut()
    for _ in range(300):
        raw = rng.normal(-1.0, 0.4, size=(4, 6)).astype(np.float32)
        gold = rng.random(6) < 0.2
        raw[:, gold] += rng.random() * 2.0  # present labels score higher
        targets = np.zeros_like(raw, dtype=bool)
        targets[:, gold] = True
        held.add(raw, targets, gold, Judged(), "snippets")
    calibration = held.fit()
    assert calibration.window_a > 0 and calibration.report_trees
    p = calibration.window_proba(np.array([-1.0, 0.0, 1.0]))
    assert (np.diff(p) > 0).all()
    strong = np.full((3, 2), -1.0, dtype=np.float32)
    strong[1, 0] = 1.5
    report = calibration.report_proba(strong)
    assert report[0] > report[1]
