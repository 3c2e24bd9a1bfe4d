"""The ATT&CK knowledge base on a tiny synthetic bundle and on the real v18.1 bundle."""

from __future__ import annotations

import gzip
import json
import os
import time
from pathlib import Path

import pytest

from mitremap.attack import AttackKB, load_attack, technique_url
from mitremap.errors import DataError, UnknownTechniqueError


def write_bundle(path: Path, bundle: dict) -> Path:
    path.write_text(json.dumps(bundle), encoding="utf-8")
    return path


# ---- tiny synthetic bundle ------------------------------------------------------------------


def test_tiny_bundle_techniques_tactics_and_hierarchy(tiny_kb):
    assert [t.id for t in tiny_kb.tactics] == ["TA0002", "TA0003"]  # matrix order
    task = tiny_kb["T1053.005"]
    assert task.name == "Scheduled Task"
    assert task.parent == "T1053" and task.is_subtechnique
    assert task.tactic_names == ["Execution", "Persistence"]
    assert task.url == "https://attack.mitre.org/techniques/T1053/005/"
    assert "(Citation" not in task.description
    assert [t.id for t in tiny_kb.techniques()] == ["T1053", "T1053.005", "T1059"]
    assert len(tiny_kb.techniques(active_only=False)) == 4
    assert [t.id for t in tiny_kb.subtechniques("T1053")] == ["T1053.005"]


def test_revoked_ids_resolve_to_replacement(tiny_kb):
    assert tiny_kb["T1168"].revoked
    assert tiny_kb.resolve("T1168").id == "T1053.005"
    assert tiny_kb.resolve("t1053.005").id == "T1053.005"  # case and spacing do not matter


def test_procedures_lose_citations_and_links_and_keep_source_name(tiny_kb):
    by_tech = {p.technique: p for p in tiny_kb.procedures}
    proc = by_tech["T1053.005"]
    assert proc.text == "TinyRAT creates a scheduled task for persistence."
    assert proc.source_name == "TinyRAT" and proc.source_id == "S9999"


def test_groups_software_aliases_and_search(tiny_kb):
    assert tiny_kb.groups[0].aliases == ("Tiny Panda",)
    assert tiny_kb.software[0].kind == "malware"
    hits = tiny_kb.search("scheduled task")
    assert hits[0].id == "T1053.005"
    assert tiny_kb.search("tiny panda")[0].id == "G9999"
    assert tiny_kb.search("TRAT")[0].id == "S9999"
    assert tiny_kb.search("   ") == []


def test_unknown_id_names_the_closest(tiny_kb):
    with pytest.raises(UnknownTechniqueError) as info:
        tiny_kb["T1053.05"]
    message = str(info.value)
    assert "T1053.05" in message and "T1053.005 (Scheduled Task)" in message
    assert tiny_kb.get("T9999") is None
    assert "T1053" in tiny_kb and "T9999" not in tiny_kb


def test_version_from_collection_then_caller_then_file_name(tmp_path, tiny_bundle):
    path = write_bundle(tmp_path / "enterprise-attack-17.0.json", tiny_bundle)
    assert AttackKB.from_file(path).version == "17.0"
    assert AttackKB.from_file(path, version="9.9").version == "9.9"
    tiny_bundle["objects"].append(
        {"type": "x-mitre-collection", "id": "x-mitre-collection--1", "x_mitre_version": "16.1"}
    )
    assert AttackKB.from_file(write_bundle(path, tiny_bundle)).version == "16.1"


def test_gzip_bundle(tmp_path, tiny_bundle):
    path = tmp_path / "enterprise-attack-1.0.json.gz"
    path.write_bytes(gzip.compress(json.dumps(tiny_bundle).encode()))
    assert AttackKB.from_file(path)["T1059"].name == "Command and Scripting Interpreter"


def test_cached_index_is_used_and_invalidated_when_the_bundle_changes(tmp_path, tiny_bundle):
    path = write_bundle(tmp_path / "b.json", tiny_bundle)
    cache = tmp_path / "cache"
    first = AttackKB.from_file(path, version="1", cache_dir=cache)
    assert len(list(cache.iterdir())) == 1
    again = AttackKB.from_file(path, version="1", cache_dir=cache)
    assert again["T1053.005"] == first["T1053.005"]
    assert again.procedures == first.procedures and again.revoked_map == first.revoked_map
    # change the bundle: the new name must be seen, not the cached one
    tiny_bundle["objects"][4]["name"] = "Renamed Task"
    write_bundle(path, tiny_bundle)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert (
        AttackKB.from_file(path, version="1", cache_dir=cache)["T1053.005"].name == "Renamed Task"
    )


def test_damaged_cache_index_is_rebuilt(tmp_path, tiny_bundle):
    path = write_bundle(tmp_path / "b.json", tiny_bundle)
    cache = tmp_path / "cache"
    AttackKB.from_file(path, version="1", cache_dir=cache)
    (index,) = cache.iterdir()
    index.write_text("{not json")
    assert AttackKB.from_file(path, version="1", cache_dir=cache)["T1059"].id == "T1059"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "not found"),
        (b"", "is empty"),
        (b"hello, not json", "is not valid JSON"),
        (b'{"type": "bundle", "objects": [{"type": "attack-pattern", "id": "a"', "is truncated"),
        (b'{"type": "bundle", "objects": [{"type": "malware", "id": "m"}]}', "no attack-pattern"),
        (b'["a", "list"]', "not a STIX bundle"),
        (b"\x1f\x8b\x08\x00garbage", "damaged or truncated gzip"),
        (b"\xff\xfe\x00\x81\x92binary", "not text"),
    ],
)
def test_bad_bundle_files_give_one_line_errors(tmp_path, content, expected):
    path = tmp_path / "bundle.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError) as info:
        AttackKB.from_file(path)
    message = str(info.value)
    assert expected in message and str(path) in message and "\n" not in message


def test_technique_url():
    assert technique_url("T1059") == "https://attack.mitre.org/techniques/T1059/"


# ---- the real ATT&CK v18.1 bundle ------------------------------------------------------------


def test_real_bundle_counts(real_kb):
    active = real_kb.techniques()
    assert len(active) == 691
    assert sum(t.is_subtechnique for t in active) == 475
    assert len(real_kb.tactics) == 14
    assert real_kb.tactics[0].name == "Reconnaissance" and real_kb.tactics[-1].name == "Impact"
    assert real_kb.version == "18.1"
    assert len(real_kb.groups) > 150 and len(real_kb.software) > 700 and len(real_kb.campaigns) > 40


def test_real_scheduled_task(real_kb):
    task = real_kb["T1053.005"]
    assert task.name == "Scheduled Task"
    assert task.tactic_names == ["Execution", "Persistence", "Privilege Escalation"]
    assert task.url == "https://attack.mitre.org/techniques/T1053/005/"
    assert real_kb.search("scheduled task")[0].id == "T1053.005"


def test_real_revoked_ids_resolve(real_kb):
    assert real_kb.resolve("T1208").id == "T1558.003"  # Kerberoasting
    assert real_kb.resolve("T1086").id == "T1059.001"  # PowerShell
    assert len(real_kb.revoked_map) > 100
    for old, new in real_kb.revoked_map.items():
        assert real_kb[old].revoked and real_kb.resolve(old).active, (old, new)


def test_real_procedures(real_kb):
    assert 15_000 <= len(real_kb.procedures) <= 17_000
    assert not any("(Citation:" in p.text for p in real_kb.procedures)
    assert not any("](https://attack.mitre.org" in p.text for p in real_kb.procedures)
    assert all(p.technique in real_kb for p in real_kb.procedures)


def test_real_aliases_searchable(real_kb):
    assert real_kb.search("Cozy Bear")[0].name == "APT29"


def test_load_attack_uses_the_data_mirror(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("MITREMAP_CACHE", str(tmp_path))
    kb = load_attack(data_dir=shared_data)
    assert kb.version == "18.1" and "T1059.001" in kb


# ---- mitigations, detections and links (issue 14) -------------------------------------------


def _ref_of(external_id: str) -> list[dict[str, str]]:
    return [{"source_name": "mitre-attack", "external_id": external_id}]


def _link(n: int, kind: str, source: str, target: str, description: str = "") -> dict:
    return {
        "type": "relationship",
        "id": f"relationship--d{n}",
        "relationship_type": kind,
        "source_ref": source,
        "target_ref": target,
        "description": description,
    }


def defence_bundle() -> dict:
    """The tiny bundle plus a mitigation, a deprecated one, an ATT&CK 18 detection strategy
    with an analytic, a data component that detects the old way, and a campaign."""
    from tests.conftest import make_tiny_bundle

    bundle = make_tiny_bundle()
    bundle["objects"] += [
        {
            "type": "course-of-action",
            "id": "course-of-action--m",
            "name": "Tiny Mitigation",
            "description": "Limit it.(Citation: X)",
            "external_references": _ref_of("M9999"),
        },
        {
            "type": "course-of-action",
            "id": "course-of-action--old",
            "name": "Old Mitigation",
            "x_mitre_deprecated": True,
            "external_references": _ref_of("T1053"),
        },
        {
            "type": "x-mitre-data-component",
            "id": "x-mitre-data-component--dc",
            "name": "Process Creation",
            "x_mitre_log_sources": [{"name": "WinEventLog:Sysmon", "channel": "EventCode=1"}],
            "external_references": _ref_of("DC9999"),
        },
        {
            "type": "x-mitre-analytic",
            "id": "x-mitre-analytic--a",
            "name": "Analytic 9999",
            "description": "Watch schtasks.exe /create.",
            "x_mitre_platforms": ["Windows"],
            "x_mitre_log_source_references": [
                {
                    "x_mitre_data_component_ref": "x-mitre-data-component--dc",
                    "name": "WinEventLog:Security",
                    "channel": "EventCode=4698",
                }
            ],
            "external_references": _ref_of("AN9999"),
        },
        {
            "type": "x-mitre-detection-strategy",
            "id": "x-mitre-detection-strategy--d",
            "name": "Scheduled task creation",
            "x_mitre_analytic_refs": ["x-mitre-analytic--a", "x-mitre-analytic--missing"],
            "external_references": _ref_of("DET9999"),
        },
        {
            "type": "campaign",
            "id": "campaign--c",
            "name": "Tiny Campaign",
            "external_references": _ref_of("C9999"),
        },
        _link(1, "mitigates", "course-of-action--m", "attack-pattern--1", "Audit the jobs."),
        _link(2, "mitigates", "course-of-action--m", "attack-pattern--3", "Restrict shells."),
        _link(3, "mitigates", "course-of-action--old", "attack-pattern--1"),
        _link(4, "detects", "x-mitre-detection-strategy--d", "attack-pattern--2"),
        _link(5, "detects", "x-mitre-data-component--dc", "attack-pattern--3"),
        _link(6, "attributed-to", "campaign--c", "intrusion-set--g"),
        _link(7, "uses", "intrusion-set--g", "malware--m"),
        _link(8, "uses", "campaign--c", "attack-pattern--3", "The campaign ran cmd."),
    ]
    return bundle


def test_mitigations_detections_and_links_are_read():
    kb = AttackKB.from_bundle(defence_bundle(), version="0.1")
    assert list(kb.mitigations) == ["M9999"]  # the deprecated per-technique one is left out
    mitigation = kb.mitigations["M9999"]
    assert mitigation.description == "Limit it."
    assert mitigation.url == "https://attack.mitre.org/mitigations/M9999/"
    assert kb.mitigated_by == {
        "T1053": [("M9999", "Audit the jobs.")],
        "T1059": [("M9999", "Restrict shells.")],
    }
    assert kb.detected_by == {"T1053.005": ["DET9999"], "T1059": ["DC9999"]}
    strategy = kb.detection_strategies["DET9999"]
    assert strategy.url == "https://attack.mitre.org/detectionstrategies/DET9999/"
    (analytic,) = strategy.analytics  # a dangling analytic reference is skipped
    assert analytic.id == "AN9999" and analytic.platforms == ("Windows",)
    assert analytic.log_sources[0].name == "WinEventLog:Security"
    assert analytic.log_sources[0].data_component == "DC9999"
    component = kb.data_components["DC9999"]
    assert component.name == "Process Creation"
    assert component.log_sources[0].channel == "EventCode=1"
    assert kb.attributed_to == {"C9999": ["G9999"]}
    assert kb.software_used == {"G9999": ["S9999"]}
    assert [p.source_id for p in kb.procedures_for("T1059")] == ["G9999", "C9999"]


def test_cached_index_keeps_defence_data(tmp_path):
    path = write_bundle(tmp_path / "b.json", defence_bundle())
    cache = tmp_path / "cache"
    parsed = AttackKB.from_file(path, version="1", cache_dir=cache)
    cached = AttackKB.from_file(path, version="1", cache_dir=cache)
    assert cached == parsed  # every field, the new ones included, survives the index


def test_an_index_of_the_old_schema_is_rebuilt(tmp_path, tiny_bundle):
    from mitremap.attack._index import INDEX_SCHEMA, to_index

    path = write_bundle(tmp_path / "b.json", tiny_bundle)
    cache = tmp_path / "cache"
    kb = AttackKB.from_file(path, version="1", cache_dir=cache)
    old = to_index(kb)
    old["schema"] = INDEX_SCHEMA - 1
    del old["mitigations"]  # what a schema-1 index lacks
    (index,) = cache.iterdir()
    index.write_text(json.dumps(old))
    assert AttackKB.from_file(path, version="1", cache_dir=cache).mitigations == {}
    assert json.loads(index.read_text())["schema"] == INDEX_SCHEMA


def test_real_lsass_memory_mitigations_and_detection(real_kb):
    assert [m for m, _ in real_kb.mitigated_by["T1003.001"]] == [
        "M1017",
        "M1025",
        "M1026",
        "M1027",
        "M1028",
        "M1040",
        "M1043",
    ]
    assert real_kb.mitigations["M1043"].name == "Credential Access Protection"
    assert real_kb.detected_by["T1003.001"] == ["DET0363"]
    (analytic,) = real_kb.detection_strategies["DET0363"].analytics
    assert analytic.id == "AN1030" and analytic.platforms == ("Windows",)
    sources = {(s.name, s.channel) for s in analytic.log_sources}
    assert ("WinEventLog:Sysmon", "EventCode=10") in sources  # process access to lsass.exe
    assert all(s.data_component.startswith("DC") for s in analytic.log_sources)


def test_real_bundle_defence_counts(real_kb):
    assert len(real_kb.mitigations) == 44  # M-ids; 224 deprecated per-technique ones left out
    assert len(real_kb.detection_strategies) == 691
    assert all(real_kb.detected_by.get(t.id) for t in real_kb.techniques())  # v18: all have one
    assert sum(len(v) for v in real_kb.mitigated_by.values()) == 1445
    assert real_kb.attributed_to["C0024"] == ["G0016"]  # SolarWinds Compromise → APT29
    assert "S0002" in real_kb.software_used["G0016"]  # APT29 uses Mimikatz
