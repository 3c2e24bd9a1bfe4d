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


def _defence_kb(tiny_kb, version: str):
    from dataclasses import replace

    from mitremap.attack import Mitigation

    return replace(
        tiny_kb,
        version=version,
        mitigations={"M9999": Mitigation("M9999", "Tiny Mitigation")},
        mitigated_by={"T1053": [("M9999", "audit jobs")], "T1059": [("M9999", "limit shells")]},
    )


def test_analyze_with_defend_carries_it_into_the_json(mm, tiny_kb):
    from mitremap.analysis import MitreMap

    kb = _defence_kb(tiny_kb, mm.model.card.attack_version or "0.1")
    with_kb = MitreMap(mm.model, kb=kb)
    result = with_kb.analyze(REPORT, threshold=0.0, defend=True)
    data = result.to_dict()["defend"]
    (mitigation,) = data["mitigations"]
    assert mitigation["id"] == "M9999"
    covered = {t["technique"]: t.get("from_parent") for t in mitigation["techniques"]}
    assert covered["T1059"] is None and covered["T1053.005"] == "T1053"  # the parent's, said so
    assert result.defend() is result.defence  # asked at analysis: not computed again
    later = mm.analyze(REPORT, threshold=0.0)
    assert "defend" not in later.to_dict()
    assert later.defend(kb).to_dict()["mitigations"] == data["mitigations"]


def test_implied_parents_add_nothing_to_the_defence(mm, tiny_kb):
    kb = _defence_kb(tiny_kb, "0.1")
    result = mm.analyze(REPORT, threshold=0.0, include_parents=True)
    assert any(h.implied for h in result.techniques)
    implied = {h.id for h in result.techniques if h.implied}
    assert not implied & set(result.defend(kb).confidences)


def test_the_core_does_not_import_its_notebook_front_end():
    """The widget takes a model (`widget(MitreMap.load())`); `analysis` never imports it."""
    import ast
    import inspect

    from mitremap import analysis
    from mitremap.analysis import MitreMap

    tree = ast.parse(inspect.getsource(analysis))
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    } | {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    assert not any(name.startswith("mitremap.notebook") for name in imported)
    assert not hasattr(MitreMap, "widget")


def test_json_keeps_an_empty_indicator_list_only_when_indicators_were_asked_for(mm):
    asked = mm.analyze(NONE[0], iocs=True).to_dict()
    assert asked["indicators"] == []
    assert "indicators" not in mm.analyze(NONE[0]).to_dict()


def test_millions_of_tiny_sentences_are_read_up_to_the_sentence_budget(mm, monkeypatch):
    """Text whose cost is in its number of sentences: at most MAX_SENTENCES are analysed, in
    segments of at most SEGMENT_SENTENCES, and the document says what was left out."""
    from mitremap import analysis

    monkeypatch.setattr(analysis, "MAX_SENTENCES", 300)
    segments = []
    score = mm.model.score_document
    monkeypatch.setattr(analysis, "SEGMENT_SENTENCES", 100)

    def counted(sentences, *args):
        segments.append(len(sentences))
        return score(sentences, *args)

    monkeypatch.setattr(mm.model, "score_document", counted)
    text = "a\n\n" * 300 + REPORT + "\nC2 at 185.220.101.47.\n"
    result = mm.analyze(text, threshold=0.0, iocs=True)
    assert segments == [100, 100, 100]
    assert result.document.text == text  # offsets still point into the whole text
    assert result.document.warnings == (
        f"only the first 300 sentences (898 of {len(text):,} characters) were analysed",
    )
    assert result.indicators == []  # the indicator is past what was analysed
    assert all(e.end <= 898 for h in result.techniques for e in h.evidence)
    assert mm.analyze(text, iocs=True).document.warnings == result.document.warnings


def test_the_deadline_stops_the_analysis(mm):
    from mitremap.deadline import Deadline
    from mitremap.errors import TimeLimitError

    with pytest.raises(TimeLimitError, match="stopped at the time limit of 1e-09 s"):
        mm.analyze(REPORT, deadline=Deadline.after(1e-9))
    assert mm.analyze(REPORT, threshold=0.0, deadline=Deadline.after(60)).techniques


def test_millions_of_named_mentions_are_listed_up_to_the_budget(mm, tiny_kb, monkeypatch):
    """Text whose cost is in its named mentions ("cmd cmd …" took 6 GB for 10 MB): at most
    MAX_ENTITIES are found and listed, with a note."""
    from mitremap import analysis
    from mitremap.names import Gazetteer

    monkeypatch.setattr(mm, "gazetteer", Gazetteer.from_attack(tiny_kb))
    monkeypatch.setattr(analysis, "MAX_ENTITIES", 5)
    found = []
    find = mm.gazetteer.find

    def recorded(text, limit=None):
        found.append(limit)
        return find(text, limit)

    monkeypatch.setattr(mm.gazetteer, "find", recorded)
    result = mm.analyze("TinyRAT ran schtasks. " * 50)
    assert found == [6]  # the search itself stops past the budget
    assert [e.name for e in result.entities] == ["TinyRAT"] * 5
    assert result.document.warnings == ("only the first 5 mentions of ATT&CK names are listed",)


def test_millions_of_indicators_are_listed_up_to_the_budget(mm, monkeypatch):
    from mitremap.iocs import extract

    monkeypatch.setattr(extract, "MAX_INDICATORS", 3)
    result = mm.analyze("C2 at 185.220.101.47 and 10.0.0.1.\n" * 10, iocs=True)
    assert [i.value for i in result.indicators] == ["185.220.101.47", "10.0.0.1", "185.220.101.47"]
    assert result.document.warnings == ("only the first 3 indicators are listed",)
