"""Metric arithmetic: set F1, ECE, report-level metrics with roll-up."""

from __future__ import annotations

import numpy as np
import pytest

from mitremap.training.evaluate import (
    expected_calibration_error,
    prf,
    report_metrics,
    rolled_up,
    set_f1,
)


def test_set_f1_and_prf():
    assert set_f1(set(), set()) == 1.0
    assert set_f1({"T1"}, set()) == 0.0
    assert set_f1({"T1", "T2"}, {"T2", "T3"}) == pytest.approx(0.5)
    assert prf(1, 1, 2).f1 == pytest.approx(2 * 0.5 * (1 / 3) / (0.5 + 1 / 3))


def test_ece_is_zero_when_confidence_matches_accuracy_and_large_when_not():
    confidence = np.array([0.8] * 10)
    assert expected_calibration_error(confidence, np.array([1] * 8 + [0] * 2)) == pytest.approx(0)
    assert expected_calibration_error(confidence, np.zeros(10)) == pytest.approx(0.8)


def test_report_metrics_threshold_and_roll_up():
    predictions = [
        ({"T1053.005": 0.9, "T1059.001": 0.7, "T1105": 0.3}, {"T1053.005", "T1059"}),
        ({"T1003.001": 0.65}, {"T1003.001"}),
    ]
    m = report_metrics(predictions, threshold=0.6)
    assert m.per_report_f1 == pytest.approx((0.5 + 1.0) / 2)
    assert (m.micro.precision, m.micro.recall) == pytest.approx((2 / 3, 2 / 3))
    assert m.rolled_up_per_report_f1 == pytest.approx(1.0)  # T1059.001 → T1059 matches
    assert rolled_up(["T1059.001", "T1105"]) == {"T1059", "T1105"}
    assert m.ece_pairs == 4


def test_parent_level_ece_counts_a_sub_technique_of_a_listed_parent_as_right():
    predictions = [({"T1059.001": 0.9, "T1105": 0.9}, {"T1059"})] * 5
    m = report_metrics(predictions, threshold=0.6)
    assert m.ece == pytest.approx(0.9)  # both wrong when judged exactly
    assert m.parent_level_ece == pytest.approx(0.4)  # half right at the parent level
