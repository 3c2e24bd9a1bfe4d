"""How to defend against a report's techniques: mitigations (one prioritised list), detections,
and the sections the Markdown and HTML exports show. A tiny knowledge base built here, then the
real ATT&CK 18.1 bundle."""

from __future__ import annotations

import json

import pytest

from mitremap.attack import (
    Analytic,
    AttackKB,
    DataComponent,
    DetectionStrategy,
    LogSource,
    Mitigation,
    Technique,
    technique_url,
)
from mitremap.defend import PARENT_WEIGHT, defend, technique_defence
from mitremap.export import html_section, markdown_section
from tests.conftest import REPO


def _technique(tid: str, name: str, **extra) -> Technique:
    parent = tid.split(".")[0] if "." in tid else None
    return Technique(tid, name, (), technique_url(tid), parent is not None, parent, "", (), **extra)


@pytest.fixture
def kb() -> AttackKB:
    """Four techniques (one revoked), three mitigations, a detection strategy, and a data
    component that detects the way bundles before ATT&CK 18 did."""
    techniques = [
        _technique("T1000", "Parent"),
        _technique("T1000.001", "Child With Its Own"),
        _technique("T1000.002", "Child Without"),
        _technique("T2000", "Other"),
        _technique("T3000", "Old", revoked=True),
    ]
    return AttackKB(
        version="0.1",
        tactics=[],
        _techniques={t.id: t for t in techniques},
        revoked_map={"T3000": "T2000"},
        mitigations={
            "M1": Mitigation("M1", "Harden <everything>"),
            "M2": Mitigation("M2", "Audit"),
            "M3": Mitigation("M3", "Train"),
        },
        mitigated_by={
            "T1000": [("M1", "for the parent"), ("M3", "train for the parent")],
            "T1000.001": [("M2", "audit the child")],
            "T2000": [("M1", "harden the other"), ("M2", "audit the other")],
        },
        detection_strategies={
            "DET1": DetectionStrategy(
                "DET1",
                "Watch it",
                (Analytic("AN1", ("Windows",), "look", (LogSource("Sysmon", "EventCode=1"),)),),
            )
        },
        data_components={"DC1": DataComponent("DC1", "Process Creation")},
        detected_by={"T1000": ["DET1"], "T2000": ["DC1"]},
    )


def test_own_mitigations_and_detections(kb):
    child = technique_defence(kb, "T1000.001")
    assert [(m.mitigation.id, m.how, m.from_parent) for m in child.mitigations] == [
        ("M2", "audit the child", None)
    ]  # the parent's M1 and M3 are not inherited
    other = technique_defence(kb, "T2000")
    assert other.detections == () and [c.id for c in other.data_components] == ["DC1"]


def test_a_sub_technique_without_its_own_borrows_the_parents_and_says_so(kb):
    child = technique_defence(kb, "T1000.002")
    assert [(m.mitigation.id, m.from_parent) for m in child.mitigations] == [
        ("M1", "T1000"),
        ("M3", "T1000"),
    ]
    assert [d.id for d in child.detections] == ["DET1"]
    assert child.detections_from_parent == "T1000"
    assert technique_defence(kb, "T1000.001").detections_from_parent == "T1000"


def test_prioritised_list_weighs_confidence_and_borrowed_links(kb):
    result = defend({"T1000.001": 0.9, "T1000.002": 0.8, "T2000": 0.6}, kb)
    ranked = [(m.mitigation.id, round(m.score, 6)) for m in result.mitigations]
    assert ranked == [
        ("M2", 1.5),  # own links: 0.9 + 0.6
        ("M1", round(0.8 * PARENT_WEIGHT + 0.6, 6)),  # borrowed from T1000 for T1000.002
        ("M3", round(0.8 * PARENT_WEIGHT, 6)),
    ]
    m1 = result.mitigations[1]
    assert [(c.technique, c.from_parent, c.how) for c in m1.covers] == [
        ("T1000.002", "T1000", "for the parent"),
        ("T2000", None, "harden the other"),
    ]


def test_revoked_ids_are_read_as_their_replacements_and_unknown_ones_listed(kb):
    result = defend({"T3000": 0.7, "T2000": 0.5, "T9999": 0.9}, kb)
    assert result.replaced == {"T3000": "T2000"}
    assert result.unknown == ("T9999",)
    assert result.confidences == {"T2000": 0.7}  # the better of the two readings
    assert [t.technique for t in result.techniques] == ["T2000"]


def test_json_form(kb):
    data = defend({"T1000.002": 0.8, "T2000": 0.6}, kb).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert [m["id"] for m in data["mitigations"]] == ["M1", "M2", "M3"]
    assert data["mitigations"][0]["techniques"][0] == {
        "technique": "T1000.002",
        "confidence": 0.8,
        "how": "for the parent",
        "from_parent": "T1000",
    }
    detection = data["detections"][0]
    assert detection["technique"] == "T1000.002" and detection["detections_from_parent"] == "T1000"
    assert detection["mitigations_from_parent"] == "T1000"
    assert detection["strategies"][0]["analytics"][0]["log_sources"] == [
        {"name": "Sysmon", "channel": "EventCode=1"}
    ]
    assert data["detections"][1]["data_components"][0]["id"] == "DC1"
    assert data["uncovered"] == []
    assert "not attribution" in data["similar_note"]


def test_sections_escape_everything(kb):
    data = defend({"T2000": 0.6}, kb).to_dict()
    data["similar"] = [
        {
            "id": "G1",
            "name": "<script>x</script>",
            "kind": "group",
            "webpage_link": "javascript:alert(1)",
            "score": 0.5,
            "coverage": 1.0,
            "techniques_known": 1,
            "techniques_in_common": [{"technique": "T2000", "matched": "T2000"}],
        }
    ]
    html = html_section(data)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "Harden &lt;everything&gt;" in html
    assert "javascript:" not in html  # only ATT&CK links become links
    assert '<a href="https://attack.mitre.org/mitigations/M1/"' in html
    markdown = markdown_section(data)
    assert "[M1](https://attack.mitre.org/mitigations/M1/)" in markdown
    assert "<everything>" not in markdown and "<script>" not in markdown
    assert "Techniques in common with" in markdown and "attributed to" not in markdown


def test_frame(kb):
    pytest.importorskip("pandas")
    frame = defend({"T1000.001": 0.9, "T2000": 0.6}, kb).to_frame()
    assert list(frame.columns) == ["mitigation", "name", "score", "techniques", "webpage_link"]
    assert frame.iloc[0]["mitigation"] == "M2" and frame.iloc[0]["techniques"] == "T1000.001, T2000"


# ---- the real ATT&CK 18.1 bundle ------------------------------------------------------------


def test_lsass_memory_lists_exactly_its_seven_mitigations_and_det0363(real_kb):
    found = technique_defence(real_kb, "T1003.001")
    assert [m.mitigation.id for m in found.mitigations] == [
        "M1017",
        "M1025",
        "M1026",
        "M1027",
        "M1028",
        "M1040",
        "M1043",
    ]
    assert not any(m.from_parent for m in found.mitigations)  # T1003's M1015, M1041: not listed
    (strategy,) = found.detections
    assert strategy.id == "DET0363" and [a.id for a in strategy.analytics] == ["AN1030"]
    assert "lsass.exe" in strategy.analytics[0].description
    assert found.data_components == ()


def test_real_sub_technique_without_mitigations_shows_its_parents(real_kb):
    found = technique_defence(real_kb, "T1070.004")  # File Deletion: ATT&CK links none to it
    assert found.mitigations and {m.from_parent for m in found.mitigations} == {"T1070"}
    assert {m.mitigation.id for m in found.mitigations} == {
        m for m, _ in real_kb.mitigated_by["T1070"]
    }


def test_sample_report_prioritised_list_is_stable_and_explained(real_kb):
    """The expert technique set of the sample report: the list is a pure function of ATT&CK."""
    expert = json.loads((REPO / "benchmarks" / "data" / "apt-report-expert.json").read_text())
    techniques = dict.fromkeys(expert["core"], 1.0)
    first, again = defend(techniques, real_kb), defend(techniques, real_kb)
    assert first.to_dict() == again.to_dict()
    top = [(m.mitigation.id, m.score) for m in first.mitigations[:3]]
    assert top == [("M1026", 6.0), ("M1017", 4.0), ("M1031", 4.0)]
    m1026 = first.mitigations[0]
    assert [c.technique for c in m1026.covers] == [
        "T1003.001",
        "T1021.002",
        "T1053.005",
        "T1059.001",
        "T1078",
        "T1569.002",
    ]
    for m in first.mitigations:  # the score is what it covers, weighted as documented
        assert m.score == pytest.approx(
            sum(c.confidence * (PARENT_WEIGHT if c.from_parent else 1.0) for c in m.covers)
        )
    scores = [m.score for m in first.mitigations]
    assert scores == sorted(scores, reverse=True)
    assert "T1547.001" in first.uncovered  # ATT&CK lists no mitigation for Run keys
    kinds = [s.kind for s in first.similar]  # each kind ranked on its own, five of each
    assert kinds[:10] == ["group"] * 5 + ["campaign"] * 5
    assert set(kinds[10:]) <= {"malware", "tool"} and len(kinds) == 15
