"""`mitremap diff`: two analyses compared across ATT&CK versions, as a table, JSON and a
Navigator layer that MITRE's own library loads."""

from __future__ import annotations

import json

import pytest

from mitremap.diff import diff_analyses
from mitremap.errors import InputError
from mitremap.export import DIFF_COLOURS as COLOURS
from mitremap.export import diff_layer
from tests.schemas import valid


def _analysis(*hits: tuple[str, float], version: str = "18.1") -> dict:
    return {
        "model": {"attack_version": version},
        "techniques": [
            {"technique": t, "technique_name": f"name of {t}", "confidence_score": c}
            for t, c in hits
        ],
    }


def test_three_sets_with_confidences():
    a = _analysis(("T1059", 0.9), ("T1053.005", 0.7))
    b = _analysis(("T1053.005", 0.8), ("T1486", 0.65))
    result = diff_analyses(a, b, names=("a.json", "b.json"))
    assert [(t.technique, t.a, t.b) for t in result.of("only_a")] == [("T1059", 0.9, None)]
    assert [(t.technique, t.a, t.b) for t in result.of("only_b")] == [("T1486", None, 0.65)]
    assert [(t.technique, t.a, t.b) for t in result.of("both")] == [("T1053.005", 0.7, 0.8)]
    data = valid("diff", result.to_dict())
    assert data["both"] == [
        {
            "technique": "T1053.005",
            "technique_name": "name of T1053.005",
            "tactics": [],  # no ATT&CK to read them in
            "confidence_a": 0.7,
            "confidence_b": 0.8,
        }
    ]
    assert (data["a"], data["b"], data["attack_version"], data["changes"]) == (
        "a.json",
        "b.json",
        "18.1",
        [],
    )


def test_revoked_ids_are_read_as_their_replacements_and_reported(tiny_kb):
    old = _analysis(("T1168", 0.9), ("T1059", 0.6), version="6.3")  # T1168: revoked
    new = _analysis(("T1053.005", 0.8), ("T1053", 0.7))
    result = diff_analyses(old, new, tiny_kb)
    assert [t.technique for t in result.of("both")] == ["T1053.005"]
    assert [t.technique for t in result.of("only_a")] == ["T1059"]
    assert [t.technique for t in result.of("only_b")] == ["T1053"]
    assert result.of("both")[0].name == "Scheduled Task"  # the knowledge base's name
    assert [c.to_dict() for c in result.changes] == [
        {"analysis": "A", "was": "T1168", "now": "T1053.005", "why": "revoked"}
    ]


def test_deprecated_and_unknown_ids_stay_and_are_reported(tiny_kb):
    from dataclasses import replace

    tiny_kb._techniques["T1059"] = replace(tiny_kb["T1059"], deprecated=True)
    result = diff_analyses(_analysis(("T1059", 0.9)), _analysis(("T1682", 0.8)), tiny_kb)
    assert {t.technique for t in result.techniques} == {"T1059", "T1682"}
    assert [(c.analysis, c.was, c.now, c.why) for c in result.changes] == [
        ("A", "T1059", None, "deprecated"),
        ("B", "T1682", None, "unknown"),
    ]


def test_an_id_and_its_replacement_in_one_analysis_count_once_at_the_best(tiny_kb):
    result = diff_analyses(
        _analysis(("T1168", 0.9), ("T1053.005", 0.7)), _analysis(("T1053.005", 0.6)), tiny_kb
    )
    assert [(t.technique, t.a, t.b) for t in result.techniques] == [("T1053.005", 0.9, 0.6)]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"model": {}}, "not a MitreMap analysis"),
        ({"techniques": "T1059"}, "not a MitreMap analysis"),
        ({"techniques": [{"technique": "rm -rf", "confidence_score": 0.5}]}, "ATT&CK id"),
        ({"techniques": [{"technique": "T1059", "confidence_score": 7}]}, "between 0 and 1"),
        ({"techniques": [{"technique": "T1059"}] * 5001}, "not a MitreMap analysis"),
    ],
)
def test_what_is_not_an_analysis_is_refused(data, message):
    with pytest.raises(InputError, match=message):
        diff_analyses(data, _analysis())


def test_navigator_layer_colours_the_three_sets_and_loads_in_mitreattack(tiny_kb):
    navlayers = pytest.importorskip("mitreattack.navlayers")
    result = diff_analyses(
        _analysis(("T1059", 0.9), ("T1053.005", 0.7)),
        _analysis(("T1053.005", 0.8)),
        tiny_kb,
        names=("before: [x]", "after"),
    )
    layer = diff_layer(result.to_dict())
    assert layer["versions"]["layer"] == "4.5"
    assert layer["name"] == "MitreMap diff - before: [x] vs after"  # whole: 255 allowed
    colours = {(t["techniqueID"], t.get("tactic")): t.get("color") for t in layer["techniques"]}
    assert colours[("T1059", "execution")] == COLOURS["only_a"]
    assert colours[("T1053.005", "execution")] == COLOURS["both"]
    assert colours[("T1053.005", "persistence")] == COLOURS["both"]
    assert colours[("T1053", "execution")] is None  # the parent, listed so the child shows
    assert [item["color"] for item in layer["legendItems"]] == list(COLOURS.values())
    loaded = navlayers.Layer()
    loaded.from_dict(json.loads(json.dumps(layer)))
    again = loaded.to_dict()
    assert {(t["techniqueID"], t.get("color")) for t in again["techniques"]} == {
        (t["techniqueID"], t.get("color")) for t in layer["techniques"]
    }
    assert again["legendItems"] == layer["legendItems"]
    assert any(t.get("comment") == "A: 0.70 · B: 0.80" for t in again["techniques"])


# ---- the command line -----------------------------------------------------------------------


@pytest.fixture
def two_files(tmp_path):
    a, b = tmp_path / "old.json", tmp_path / "new.json"
    a.write_text(json.dumps(_analysis(("T1086", 0.9), ("T1003.001", 0.8), version="15.1")))
    b.write_text(json.dumps(_analysis(("T1059.001", 0.7), ("T1486", 0.6))))
    return a, b


def test_cli_json_across_attack_versions(cli, shared_data, two_files):
    a, b = two_files
    result = cli("--data", str(shared_data), "diff", str(a), str(b), "--format", "json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["attack_version"] == "18.1"
    assert [t["technique"] for t in data["both"]] == ["T1059.001"]  # T1086 revoked since
    assert [t["technique"] for t in data["only_a"]] == ["T1003.001"]
    assert [t["technique"] for t in data["only_b"]] == ["T1486"]
    assert data["changes"] == [
        {"analysis": "A", "was": "T1086", "now": "T1059.001", "why": "revoked"}
    ]


def test_cli_table_and_layer_file(cli, shared_data, two_files, tmp_path):
    a, b = two_files
    table = cli("--data", str(shared_data), "diff", str(a), str(b))
    assert table.code == 0, table.err
    lines = [line.split("\t") for line in table.out.splitlines()]
    assert ["both", "T1059.001", "PowerShell", "0.90", "0.70"] in lines
    assert ["changed", "A", "T1086", "T1059.001", "revoked"] in lines
    out = tmp_path / "diff.layer.json"
    layer = cli(
        "--data", str(shared_data), "diff", str(a), str(b), "-f", "navigator", "-o", str(out)
    )
    assert layer.code == 0 and json.loads(out.read_text())["versions"]["attack"] == "18"


def test_cli_compares_two_reports(cli, shared_data, real_model_path, tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("The operators dumped credentials from LSASS memory with Mimikatz.\n")
    b.write_text("They cleared the Windows Security event logs with wevtutil.\n")
    common = ("--data", str(shared_data), "diff", str(a), str(b), "-m", str(real_model_path))
    result = cli(*common, "-t", "0.3", "-f", "json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert "T1003.001" in [t["technique"] for t in data["only_a"]]
    assert "T1070.001" in [t["technique"] for t in data["only_b"]]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"documents": []}', "the analysis of a folder"),
        ('{"techniques": [{"technique": "T1059", "confidence_score": 2}]}', "between 0 and 1"),
    ],
)
def test_cli_errors_are_one_line(cli, shared_data, tmp_path, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    result = cli("--data", str(shared_data), "diff", str(bad), str(bad))
    assert result.code == 1 and message in result.err and "Traceback" not in result.err
    missing = cli("--data", str(shared_data), "diff", str(tmp_path / "nope.json"), str(bad))
    assert missing.code == 1 and "no such file" in missing.err
