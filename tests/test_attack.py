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
