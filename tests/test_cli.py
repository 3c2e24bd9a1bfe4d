"""The command line: attack look-ups, data status, versions, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mitremap import __version__


@pytest.fixture
def mirror_env(shared_data, monkeypatch, tmp_path):
    monkeypatch.setenv("MITREMAP_DATA", str(shared_data))
    monkeypatch.setenv("MITREMAP_CACHE", str(tmp_path / "cache"))
    return shared_data


def test_version(cli):
    result = cli("--version")
    assert result.code == 0 and result.out.strip() == f"mitremap {__version__}"


def test_attack_show_table_and_json(cli, mirror_env):
    result = cli("attack", "show", "T1053.005")
    assert result.code == 0
    assert "Scheduled Task/Job: Scheduled Task" in result.out
    assert "Execution (TA0002), Persistence (TA0003), Privilege Escalation (TA0004)" in result.out
    assert "https://attack.mitre.org/techniques/T1053/005/" in result.out
    data = json.loads(cli("attack", "show", "T1053.005", "--format", "json").out)
    assert data["name"] == "Scheduled Task"
    assert [t["id"] for t in data["tactics"]] == ["TA0002", "TA0003", "TA0004"]


def test_attack_show_revoked_names_replacement(cli, mirror_env):
    data = json.loads(cli("attack", "show", "T1208", "-f", "json").out)
    assert data["revoked"] and data["replaced_by"] == "T1558.003"


def test_attack_search(cli, mirror_env):
    result = cli("attack", "search", "scheduled task", "--format", "json")
    assert json.loads(result.out)[0]["id"] == "T1053.005"


def test_unknown_technique_is_one_line_exit_1(cli, mirror_env):
    result = cli("attack", "show", "T1053.05")
    assert result.code == 1
    assert result.err.strip().count("\n") == 0 and "closest: T1053.005" in result.err
    assert "Traceback" not in result.err


def test_missing_data_folder_is_one_line_exit_1(cli, tmp_path):
    result = cli("--data", str(tmp_path / "nowhere"), "attack", "show", "T1059")
    assert result.code == 1 and "--data does not exist" in result.err
    assert "Traceback" not in result.err


def test_bad_bundle_via_environment_is_one_line(cli, tmp_path, monkeypatch):
    (tmp_path / "attack").mkdir()
    (tmp_path / "attack" / "enterprise-attack-18.1.json").write_text("{broken")
    monkeypatch.setenv("MITREMAP_DATA", str(tmp_path))
    monkeypatch.setenv("MITREMAP_CACHE", str(tmp_path / "cache"))
    result = cli("attack", "show", "T1059")
    assert result.code == 1 and "is not valid JSON" in result.err


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("MITREMAP_CACHE", str(tmp_path))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mitremap",
            "--debug",
            "--data",
            str(tmp_path / "x"),
            "attack",
            "show",
            "T1",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_data_status(cli, mirror_env):
    result = cli("data", "status")
    assert result.code == 0
    assert "ATT&CK Enterprise 18.1: 691 active techniques" in result.out
    assert "sigma" in result.out and "DRL 1.1" in result.out


def test_bad_format_is_a_usage_error(cli, mirror_env):
    result = cli("attack", "show", "T1059", "--format", "xml")
    assert result.code == 2 and "xml" in result.err


def test_data_fetch_errors_are_one_line(cli, tmp_path, monkeypatch):
    monkeypatch.delenv("MITREMAP_DATA", raising=False)
    monkeypatch.setenv("MITREMAP_CACHE", str(tmp_path))
    result = cli("data", "fetch", "nope")
    assert result.code == 1 and "Unknown data source 'nope'" in result.err
    monkeypatch.setenv("MITREMAP_OFFLINE", "1")
    result = cli("-q", "data", "fetch", "attack")
    assert result.code == 1 and "MITREMAP_DATA" in result.err and "Traceback" not in result.err
