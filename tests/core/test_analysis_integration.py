"""A real model on real data: the demo report, TRAM sentences, safety of the folder.

Hermetic: the model is trained here, once per session, with the default recipe and smaller
settings (about two minutes on 2 cores) — never the developer's cached model.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_sentences_map_to_their_techniques(real_mm):
    ranked = real_mm.top_k(
        [
            "The operators dumped credentials from LSASS memory with a renamed copy of Mimikatz.",
            "To survive reboots it created a scheduled task that runs every hour.",
            "The implant added a Run key under HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run.",
            "They cleared the Windows Security and System event logs with wevtutil.",
        ],
        k=5,
    )
    expected = ["T1003.001", "T1053.005", "T1547.001", "T1070.001"]
    for want, top in zip(expected, ranked, strict=True):
        assert want in [label for label, _ in top[:3]], (want, top)


def test_no_technique_text_is_not_confident(real_mm):
    ranked = real_mm.top_k(
        [
            "This report was published on 3 March 2024 by our research team.",
            "Thanks to our partners for their help.",
        ],
        k=1,
    )
    assert all(top[0][1] < 0.5 for top in ranked), ranked


def test_demo_report_finds_its_main_techniques(real_mm):
    text = (REPO / "examples" / "apt-report.md").read_text(encoding="utf-8")
    result = real_mm.analyze(text, threshold=0.2)
    found = {h.id for h in result.techniques}
    assert (
        len(
            found
            & {
                "T1566.001",
                "T1003.001",
                "T1547.001",
                "T1053.005",
                "T1071.001",
                "T1082",
                "T1105",
                "T1070.001",
            }
        )
        >= 4
    ), found
    for hit in result.techniques:
        assert hit.evidence and all(0 <= e.start < e.end <= len(text) for e in hit.evidence)
    json.dumps(result.to_dict())


def test_model_folder_holds_no_pickle(real_mm, tmp_path):
    import numpy as np

    path = real_mm.model.save(tmp_path / "again")
    with np.load(path / "arrays.npz", allow_pickle=False) as data:
        assert all(data[name].dtype != object for name in data.files)
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["card"]["labels"] >= 550


def test_report_confidence_comes_from_trees_fitted_on_held_out_evidence(real_mm):
    calibration = real_mm.model.calibration
    evidence = calibration.evidence
    assert evidence["tram-reports"] >= 100  # TRAM's annotated reports, held out in turn
    assert evidence["snippets"] >= 500  # short reports of held-out text of every source
    assert len(calibration.report_trees["trees"]) > 10
    report = (REPO / "examples" / "apt-report.md").read_text(encoding="utf-8")
    confidences = [h.confidence for h in real_mm.analyze(report, threshold=0.0).techniques]
    assert all(0.0 <= c <= 1.0 for c in confidences) and max(confidences) >= 0.6


def test_techniques_tram_never_annotates_are_found(real_mm):
    """Textbook sentences of techniques outside TRAM's annotations: the long tail of ATT&CK."""
    cases = {
        "The attackers deleted all volume shadow copies with vssadmin delete shadows /all.": "T1490",
        "The ransomware encrypted files on every drive and left a ransom note.": "T1486",
        "A LaunchAgent plist in ~/Library/LaunchAgents kept the backdoor running.": "T1543.001",
        "They scanned the internal network for open SSH ports with masscan.": "T1046",
    }
    ranked = real_mm.top_k(list(cases), k=3)
    for (text, want), top in zip(cases.items(), ranked, strict=True):
        assert want in [label for label, _ in top], (text, top)


def test_named_software_is_a_second_kind_of_evidence(real_mm):
    text = "The operators dumped credentials from LSASS memory with a renamed copy of Mimikatz."
    result = real_mm.analyze(text, threshold=0.0)
    assert [e.name for e in result.entities] == ["Mimikatz"]
    lsass = next(h for h in result.techniques if h.id == "T1003.001")
    assert [e.name for e in lsass.named] == ["Mimikatz"]
    assert lsass.to_dict(text)["named_software_known_to_use"][0]["id"] == "S0002"


def test_defend_the_sample_report(real_mm, real_kb):
    from mitremap.analysis import MitreMap

    text = (REPO / "examples" / "apt-report.md").read_text(encoding="utf-8")
    result = MitreMap(real_mm.model, kb=real_kb).analyze(text, defend=True)
    defence = result.defence
    assert defence is not None and defence.attack_version == "18.1"
    found = {h.id for h in result.techniques}
    assert set(defence.confidences) == found
    first = defence.mitigations[0]
    assert len(first.covers) >= 2 and first.mitigation.id.startswith("M")
    assert {c.technique for m in defence.mitigations for c in m.covers} <= found
    if "T1003.001" in found:
        lsass = next(t for t in defence.techniques if t.technique == "T1003.001")
        assert [d.id for d in lsass.detections] == ["DET0363"]
    groups = [s for s in defence.similar if s.kind == "group"]
    assert len(groups) == 5 and all(s.in_common for s in groups)
    json.dumps(result.to_dict())


def test_cli_analyze_defend_json(cli, shared_data, real_model_path, tmp_path, monkeypatch):
    monkeypatch.setenv("MITREMAP_CACHE", str(tmp_path / "cache"))
    report = str(REPO / "examples" / "apt-report.md")
    common = ("--data", str(shared_data), "analyze", report, "-m", str(real_model_path))
    result = cli(*common, "--defend", "-f", "json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    defend = data["defend"]
    assert defend["mitigations"][0]["id"].startswith("M")
    assert defend["mitigations"][0]["webpage_link"].startswith(
        "https://attack.mitre.org/mitigations/"
    )
    assert all(d["strategies"][0]["id"].startswith("DET") for d in defend["detections"])
    assert {s["kind"] for s in defend["similar"]} >= {"group", "campaign"}
    assert all(s["id"][0] in "GCS" for s in defend["similar"])
    assert [e["id"] for e in data["entities"]][:2] == ["S0002", "S0029"]  # Mimikatz, PsExec
    table = cli(*common, "--defend")
    assert table.code == 0, table.err
    rows = [line.split("\t") for line in table.out.splitlines()]
    assert any(r[0] == "mitigation" and r[1].startswith("M") for r in rows)
    assert any(r[0] == "similar" and r[3] == "group" for r in rows)
