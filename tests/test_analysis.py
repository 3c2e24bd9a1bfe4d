"""`MitreMap.analyze` / `top_k` on a tiny model: hits, evidence offsets, threshold, exports."""

from __future__ import annotations

import pytest

from mitremap.analysis import Analysis
from mitremap.documents import Document
from tests.tiny import NONE, REPORT


def test_analyze_finds_techniques_with_evidence_inside_the_text(mm):
    result = mm.analyze(Document(REPORT, title="tiny"), threshold=0.0)
    assert isinstance(result, Analysis)
    ids = [h.id for h in result.techniques]
    assert set(ids[:2]) == {"T1053.005", "T1059"}
    confidences = [h.confidence for h in result.techniques]
    assert confidences == sorted(confidences, reverse=True)
    task = result.techniques[ids.index("T1053.005")]
    assert task.technique.name == "Scheduled Task"
    assert task.technique.url == "https://attack.mitre.org/techniques/T1053/005/"
    for e in task.evidence:
        assert 0 <= e.start < e.end <= len(REPORT)
    assert any("schtasks" in REPORT[e.start : e.end] for e in task.evidence)


def test_threshold_is_never_lowered_silently(mm):
    result = mm.analyze(NONE[0], threshold=1.0)
    assert result.techniques == []
    assert "no technique reached the threshold 1.0" in result.message
    assert result.to_dict()["message"] == result.message


def test_to_dict_follows_the_json_schema(mm):
    data = mm.analyze(REPORT, threshold=0.0).to_dict()
    assert {"document", "model", "threshold", "techniques"} <= set(data)
    hit = data["techniques"][0]
    assert {
        "technique",
        "technique_name",
        "tactics",
        "webpage_link",
        "confidence_score",
        "evidence",
    } <= set(hit)
    assert {"start", "end", "confidence", "text"} <= set(hit["evidence"][0])
    assert data["model"]["backend"] == "linear"


def test_to_frame_has_the_original_columns(mm):
    pytest.importorskip("pandas")
    frame = mm.analyze(REPORT, threshold=0.0).to_frame()
    assert list(frame.columns) == [
        "technique",
        "technique_name",
        "tactics",
        "webpage_link",
        "confidence_score",
        "evidence",
    ]
    assert len(frame) >= 2


def test_parents_of_subtechnique_hits_can_be_added(mm):
    result = mm.analyze(REPORT, threshold=0.0, include_parents=True)
    ids = [h.id for h in result.techniques]
    assert "T1053" in ids


def test_top_k_is_sorted_and_sized(mm):
    ranked = mm.top_k(["schtasks created a scheduled task", "cmd.exe ran commands"], k=2)
    assert [r[0][0] for r in ranked] == ["T1053.005", "T1059"]
    assert all(len(r) == 2 and r[0][1] >= r[1][1] for r in ranked)
    assert mm.top_k([]) == []


def test_explain_gives_attributions_inside_the_evidence(mm):
    result = mm.analyze(REPORT, threshold=0.0, explain=True)
    hit = next(h for h in result.techniques if h.id == "T1053.005")
    assert hit.attributions
    best = max(hit.attributions, key=lambda a: a.weight)
    assert REPORT[best.start : best.end].lower().startswith(("schtasks", "scheduled", "task"))


def test_empty_text_gives_no_hits(mm):
    result = mm.analyze("", threshold=0.5)
    assert result.techniques == [] and result.message


def test_bad_arguments(mm):
    with pytest.raises(ValueError):
        mm.analyze(REPORT, window=0)
    with pytest.raises(ValueError):
        mm.analyze(REPORT, threshold=1.5)


def test_a_long_document_is_read_in_segments_with_true_offsets(mm, monkeypatch):
    from mitremap import analysis

    whole = mm.analyze(REPORT, threshold=0.0)
    assert len(whole.techniques) == len(mm.labels)  # at 0 every label is listed, with evidence
    monkeypatch.setattr(analysis, "SEGMENT_CHARS", 120)  # every sentence or two a segment
    parts = mm.analyze(REPORT, threshold=0.0)
    assert {h.id for h in parts.techniques} == {h.id for h in whole.techniques}
    for hit in parts.techniques:
        for e in hit.evidence:
            assert 0 <= e.start < e.end <= len(REPORT)
    assert analysis._segments([(0, 50), (51, 100), (101, 300), (301, 320)], 120) == [
        (0, 2),
        (2, 3),
        (3, 4),
    ]
    assert analysis._segments([], 120) == [(0, 0)]
