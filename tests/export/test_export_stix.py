"""The one STIX 2.1 builder, checked by its consumers' own libraries: `stix2` parses the bundle
and `stix2-validator` in strict mode (every SHOULD an error) finds nothing to say."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from mitremap.documents import Document
from mitremap.export import to_stix
from tests.export_kb import make_kb
from tests.fakes import FakeAnalysis

stix2 = pytest.importorskip("stix2")
validator = pytest.importorskip("stix2validator")

TEXT = (
    "The actor exploited CVE-2021-44228 in the VPN portal. "
    "The implant beaconed to 185.220.101.47 over HTTPS every minute. "
    "Later it beaconed to 185.220.101.47 again. "
    "A scheduled task named Updater ran the loader hourly. "
    "Ransom was paid to 1FeexV6bAHb8ybZjqQMjJrcCrHGW9sb6uF; the domain evil-docs.com hosted files. "
    "An internal host 10.0.0.5 was seen."
)


def _span(needle: str, nth: int = 0) -> tuple[int, int]:
    start = -1
    for _ in range(nth + 1):
        start = TEXT.index(needle, start + 1)
    return start, start + len(needle)


def _sentence(needle: str) -> dict:
    start, end = _span(needle)
    return {"start": start, "end": end, "confidence": 0.9, "text": needle}


def _hit(tid: str, name: str, tactics: list[str], score: float, sentence: str) -> dict:
    return {
        "technique": tid,
        "technique_name": name,
        "tactics": tactics,
        "webpage_link": f"https://attack.mitre.org/techniques/{tid.replace('.', '/')}/",
        "confidence_score": score,
        "evidence": [_sentence(sentence)],
    }


def _indicator(kind: str, value: str, nth: int = 0, private: bool = False) -> dict:
    start, end = _span(value, nth)
    return {
        "type": kind,
        "value": value,
        "raw": value,
        "start": start,
        "end": end,
        "private": private,
    }


def analysis(techniques: list[dict] | None = None) -> FakeAnalysis:
    hits = [
        _hit(
            "T1190",
            "Exploit Public-Facing Application",
            ["Initial Access"],
            0.8,
            "The actor exploited CVE-2021-44228 in the VPN portal.",
        ),
        _hit(
            "T1071.001",
            "Web Protocols",
            ["Command and Control"],
            0.75,
            "The implant beaconed to 185.220.101.47 over HTTPS every minute.",
        ),
        _hit(
            "T1053.005",
            "Scheduled Task",
            ["Execution", "Persistence", "Privilege Escalation"],
            0.91,
            "A scheduled task named Updater ran the loader hourly.",
        ),
    ]
    return FakeAnalysis(
        Document(TEXT, title="Glass Harbor", origin="https://example.org/report"),
        techniques=hits if techniques is None else techniques,
        indicators=[
            _indicator("cve", "CVE-2021-44228"),
            _indicator("ipv4", "185.220.101.47"),
            _indicator("ipv4", "185.220.101.47", nth=1),  # the same IP again: one indicator
            _indicator("bitcoin", "1FeexV6bAHb8ybZjqQMjJrcCrHGW9sb6uF"),  # no STIX observable
            _indicator("domain", "evil-docs.com"),
            _indicator("ipv4", "10.0.0.5", private=True),
        ],
    )


def strict_errors(bundle: dict) -> list[str]:
    options = validator.ValidationOptions(strict=True, version="2.1")
    result = validator.validate_string(json.dumps(bundle), options)
    return [str(e) for e in result.errors]


def by_type(bundle: dict, kind: str) -> list[dict]:
    return [o for o in bundle["objects"] if o["type"] == kind]


@pytest.fixture(scope="module")
def kb():
    return make_kb()


@pytest.fixture(scope="module")
def bundle(kb):
    return to_stix(analysis(), kb=kb)


def test_strict_validator_finds_nothing(bundle):
    assert strict_errors(bundle) == []
    parsed = stix2.parse(json.dumps(bundle), allow_custom=False)
    assert parsed.type == "bundle"


def test_attack_patterns_are_attacks_own_objects(bundle, kb):
    patterns = {
        p["external_references"][0]["external_id"]: p for p in by_type(bundle, "attack-pattern")
    }
    assert sorted(patterns) == ["T1053.005", "T1071.001", "T1190"]
    task = patterns["T1053.005"]
    assert task["id"] == kb["T1053.005"].stix_id  # merged, not duplicated, by a consumer
    assert task["name"] == "Scheduled Task"
    assert task["kill_chain_phases"] == [
        {"kill_chain_name": "mitre-attack", "phase_name": p}
        for p in ("execution", "persistence", "privilege-escalation")
    ]
    assert task["external_references"] == [
        {"source_name": "mitre-attack", "external_id": "T1053.005"}
    ]
    note = next(n for n in by_type(bundle, "note") if n["object_refs"] == [task["id"]])
    assert note["confidence"] == 91 and "A scheduled task named Updater" in note["content"]


def test_indicators_are_deduplicated_and_a_cve_is_a_vulnerability(bundle):
    patterns = sorted(i["pattern"] for i in by_type(bundle, "indicator"))
    assert patterns == [
        "[domain-name:value = 'evil-docs.com']",
        "[ipv4-addr:value = '185.220.101.47']",
    ]
    assert {i["indicator_types"][0] for i in by_type(bundle, "indicator")} == {"malicious-activity"}
    # the private address is context, observed in the report, never an indicator
    (observed,) = by_type(bundle, "observed-data")
    (address,) = by_type(bundle, "ipv4-addr")
    assert observed["object_refs"] == [address["id"]] and address["value"] == "10.0.0.5"
    (why,) = [n for n in by_type(bundle, "note") if n["object_refs"] == [observed["id"]]]
    assert why["content"] == "10.0.0.5: a private, internal or documentation value"
    (vulnerability,) = by_type(bundle, "vulnerability")
    assert vulnerability["name"] == "CVE-2021-44228"
    assert vulnerability["external_references"] == [
        {"source_name": "cve", "external_id": "CVE-2021-44228"}
    ]
    assert "1FeexV6bAHb8ybZjqQMjJrcCrHGW9sb6uF" not in json.dumps(bundle)


def test_relationships_say_only_what_the_report_says(bundle):
    names = {o["id"]: o.get("pattern") or o.get("name") for o in bundle["objects"]}
    said = sorted(
        (names[r["source_ref"]], r["relationship_type"], names[r["target_ref"]])
        for r in by_type(bundle, "relationship")
    )
    assert said == [
        ("Exploit Public-Facing Application", "targets", "CVE-2021-44228"),
        ("[ipv4-addr:value = '185.220.101.47']", "indicates", "Web Protocols"),
    ]
    (report,) = by_type(bundle, "report")
    (identity,) = by_type(bundle, "identity")
    others = [o["id"] for o in bundle["objects"] if o["type"] not in ("report", "identity")]
    assert sorted(report["object_refs"]) == sorted(others)  # the domain rides on the report
    assert identity["name"] == "MitreMap" and identity["identity_class"] == "system"
    assert all(
        o["created_by_ref"] == identity["id"]
        for o in bundle["objects"]
        if o["type"] not in ("identity", "attack-pattern", "ipv4-addr")  # observables: no maker
    )


def test_ids_and_timestamps_are_stable(bundle, kb):
    assert to_stix(analysis(), kb=kb) == bundle  # the same report, the same bytes
    other = to_stix(analysis(), kb=make_kb())  # another ATT&CK copy: its own pattern ids
    ids = {
        o["type"]: sorted(x["id"] for x in by_type(bundle, o["type"])) for o in bundle["objects"]
    }
    assert sorted(i["id"] for i in by_type(other, "indicator")) == ids["indicator"]
    assert sorted(v["id"] for v in by_type(other, "vulnerability")) == ids["vulnerability"]
    assert sorted(p["id"] for p in by_type(other, "attack-pattern")) != ids["attack-pattern"]
    now = str(datetime.now(UTC).date())
    assert all(not o.get("created", "").startswith(now) for o in bundle["objects"])
    (report,) = by_type(bundle, "report")
    assert report["published"] == "2026-04-01T09:30:00Z"  # no date stated: when it was analysed


def test_the_documents_date_is_the_reports_date(kb):
    dated = analysis()
    base = dated.to_dict

    def to_dict():
        data = base()
        data["document"]["date"] = "2026-03-02"
        return data

    dated.to_dict = to_dict  # type: ignore[method-assign]
    (report,) = by_type(to_stix(dated, kb=kb), "report")
    assert report["published"].startswith("2026-03-02T00:00:00")


def test_a_technique_the_knowledge_base_does_not_know(kb):
    unknown = _hit(
        "T1690", "Disable Tools", [], 0.7, "A scheduled task named Updater ran the loader hourly."
    )
    bundle = to_stix(analysis([unknown]), kb=kb)
    assert strict_errors(bundle) == []
    (pattern,) = by_type(bundle, "attack-pattern")
    assert pattern["name"] == "Disable Tools" and "kill_chain_phases" not in pattern
    assert to_stix(analysis([unknown]), kb=make_kb()) == bundle  # an id of ours, stable


def test_indicators_alone_need_no_knowledge_base():
    bundle = to_stix(analysis([]), kb=None)  # no technique: ATT&CK is never loaded
    assert strict_errors(bundle) == []
    assert {o["type"] for o in bundle["objects"]} == {
        "identity",
        "report",
        "indicator",
        "vulnerability",
        "observed-data",  # the private address, as context
        "ipv4-addr",
        "note",
    }


def test_default_knowledge_base_comes_from_the_data_mirror(monkeypatch, tmp_path):
    from tests.export_kb import make_mirror

    monkeypatch.setenv("MITREMAP_DATA", str(make_mirror(tmp_path / "data")))
    monkeypatch.setenv("MITREMAP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MITREMAP_OFFLINE", "1")
    bundle = to_stix(analysis())
    mirror = json.loads((tmp_path / "data/attack/enterprise-attack-18.1.json").read_text())
    ids = {
        o["external_references"][0]["external_id"]: o["id"]
        for o in mirror["objects"]
        if o["type"] == "attack-pattern"
    }
    assert {p["id"] for p in by_type(bundle, "attack-pattern")} == {
        ids["T1190"],
        ids["T1071.001"],
        ids["T1053.005"],
    }


@pytest.mark.integration
@pytest.mark.slow
def test_the_sample_report_against_real_attack(real_mm, shared_data, monkeypatch, tmp_path):
    """The bundled sample report, analysed by the real model, with ATT&CK 18.1 from the mirror."""
    from mitremap.documents import read_document
    from tests.conftest import REPO

    monkeypatch.setenv("MITREMAP_DATA", str(shared_data))
    monkeypatch.setenv("MITREMAP_CACHE", str(tmp_path / "cache"))
    result = real_mm.analyze(read_document(REPO / "examples" / "apt-report.md"), iocs=True)
    bundle = to_stix(result)
    assert strict_errors(bundle) == []
    attack = json.loads((shared_data / "attack" / "enterprise-attack-18.1.json").read_text())
    ids = {
        ref["external_id"]: o["id"]
        for o in attack["objects"]
        if o["type"] == "attack-pattern" and not o.get("revoked")
        for ref in o.get("external_references", ())
        if ref.get("source_name") == "mitre-attack"
    }
    patterns = by_type(bundle, "attack-pattern")
    assert len(patterns) == len(result.techniques) > 0
    for p in patterns:
        assert p["id"] == ids[p["external_references"][0]["external_id"]]
        assert p["kill_chain_phases"]
    assert [v["name"] for v in by_type(bundle, "vulnerability")] == ["CVE-2026-21513"]
    values = [i["pattern"] for i in by_type(bundle, "indicator")]
    assert len(values) == len(set(values)) and "[ipv4-addr:value = '185.220.101.47']" in values
    assert by_type(bundle, "relationship")


def _with(extra_text: str, indicators: list[dict], entities: list[dict] | None = None, **kw):
    """An analysis of TEXT plus `extra_text`, with these indicators and named entities."""
    from tests.fakes import FakeAnalysis

    text = TEXT + " " + extra_text
    return FakeAnalysis(
        Document(text, title="T", origin=kw.pop("origin", "https://vendor.example/blog/t")),
        techniques=kw.pop("techniques", []),
        indicators=indicators,
        entities=entities or [],
    ), text


def _ioc(text: str, kind: str, value: str) -> dict:
    start = text.index(value)
    return {"type": kind, "value": value, "raw": value, "start": start, "end": start + len(value),
            "private": False}  # fmt: skip


def test_known_benign_values_are_context_or_left_out_never_indicators(kb):
    from mitremap.export import ExportOptions

    extra = (
        "The loader ran cmd.exe and powershell.exe from C:\\Users\\Public\\svchost.exe, read "
        "https://vendor.example/blog/t and schemas.microsoft.com, and wrote "
        "HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run."
    )
    found, text = _with("", [])
    text = text + extra
    found.document = Document(text, title="T", origin="https://vendor.example/blog/t")
    found.indicators = [
        _ioc(text, "file_name", "cmd.exe"),
        _ioc(text, "file_name", "powershell.exe"),
        _ioc(text, "windows_path", "C:\\Users\\Public\\svchost.exe"),
        _ioc(text, "url", "https://vendor.example/blog/t"),
        _ioc(text, "domain", "schemas.microsoft.com"),
        _ioc(text, "registry_key", "HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run"),
    ]
    bundle = to_stix(found, kb=kb)
    assert strict_errors(bundle) == []
    (indicator,) = by_type(bundle, "indicator")  # masquerading outside System32: an indicator
    assert "svchost.exe" in indicator["pattern"] and "Public" in indicator["pattern"]
    (why,) = [n for n in by_type(bundle, "note") if "context" in n["abstract"]]
    assert "cmd.exe: a Windows system program every host has" in why["content"]
    assert "https://vendor.example/blog/t: the report's own address" in why["content"]
    assert "schemas.microsoft.com: a well-known vendor or schema domain" in why["content"]
    assert len(by_type(bundle, "observed-data")) == 5
    omitted = to_stix(found, kb=kb, options=ExportOptions(benign="omit"))
    assert not by_type(omitted, "observed-data") and len(by_type(omitted, "indicator")) == 1
    assert "cmd.exe" not in json.dumps(omitted)


def test_named_software_is_attacks_own_object_used_where_the_evidence_names_it():
    from tests.export_kb import make_full_kb
    from tests.fakes import FakeAnalysis

    full = make_full_kb()
    task = "TinyRAT created a scheduled task named Updater."
    shell = "TinyTool ran cmd.exe to run the commands."
    text = f"{task} {'Nothing else happened that day. ' * 10}{shell}"

    def hit(tid: str, name: str, passage: str, users: list[tuple[str, str]]) -> dict:
        start = text.index(passage)
        found = _hit(tid, name, ["Execution"], 0.9 if tid == "T1053.005" else 0.7, "")
        found["evidence"] = [{"start": start, "end": start + len(passage), "confidence": 0.9}]
        found["named_software_known_to_use"] = [
            {"id": i, "name": n, "kind": "", "webpage_link": ""} for i, n in users
        ]
        return found

    both = [("S9999", "TinyRAT"), ("S9998", "TinyTool")]
    hits = [
        hit("T1053.005", "Scheduled Task", task, both),  # TinyTool: 300 characters away
        hit("T1059", "Command and Scripting Interpreter", shell, both),  # TinyRAT: far away
    ]
    entities = [
        {"id": s, "name": n, "kind": k, "start": text.index(n), "end": text.index(n) + len(n)}
        for s, n, k in (("S9999", "TinyRAT", "malware"), ("S9998", "TinyTool", "tool"))
    ]
    bundle = to_stix(FakeAnalysis(Document(text, title="T"), hits, [], entities), kb=full)
    assert strict_errors(bundle) == []
    (malware,) = by_type(bundle, "malware")
    (tool,) = by_type(bundle, "tool")
    assert malware["id"] == next(e.stix_id for e in full.software if e.id == "S9999")
    assert malware["is_family"] is True and malware["name"] == "TinyRAT"
    assert tool["external_references"] == [{"source_name": "mitre-attack", "external_id": "S9998"}]
    uses = {
        (r["source_ref"], r["target_ref"], r["confidence"])
        for r in by_type(bundle, "relationship")
        if r["relationship_type"] == "uses"
    }
    assert uses == {
        (malware["id"], full["T1053.005"].stix_id, 90),  # malware uses the technique
        (full["T1059"].stix_id, tool["id"], 70),  # the technique uses the tool (STIX's way)
    }
    assert not by_type(bundle, "intrusion-set")  # never attribution


def test_a_named_pipe_is_a_file_of_the_pipe_file_system():
    from mitremap.export import stix_pattern

    pattern = stix_pattern("windows_path", "\\\\.\\pipe\\msagent_12")
    assert pattern == (
        "[file:name = 'msagent_12' AND file:parent_directory_ref.path = '\\\\\\\\.\\\\pipe']"
    )
    assert "directory:path" not in pattern
    assert (
        stix_pattern("windows_path", "C:\\Windows\\Temp")
        == "[directory:path = 'C:\\\\Windows\\\\Temp']"
    )


def test_tlp_marks_what_mitremap_makes_and_no_local_path_leaves(kb):
    from mitremap.export import ExportOptions

    found = analysis()
    found.document = Document(TEXT, title="Glass Harbor", origin="/home/ana/cases/glass.md")
    bundle = to_stix(found, kb=kb, options=ExportOptions(tlp="amber"))
    assert strict_errors(bundle) == []
    (marking,) = by_type(bundle, "marking-definition")
    assert marking["name"] == "TLP:AMBER"
    for o in bundle["objects"]:
        if o["type"] in ("report", "note", "indicator", "relationship", "vulnerability"):
            assert o["object_marking_refs"] == [marking["id"]]
    assert "/home/ana" not in json.dumps(bundle) and "glass.md" in json.dumps(bundle)
    kept = to_stix(found, kb=kb, options=ExportOptions(keep_path=True))
    assert "/home/ana/cases/glass.md" in json.dumps(kept)
