"""The JSON contract: the shipped JSON Schemas are what `mitremap.schema`'s types say, every
command's JSON output validates against its schema, and every command's piped output is plain
(tab-separated lines, no box drawing, no progress frames)."""

from __future__ import annotations

import json
import re

import pytest

from mitremap.schema import SCHEMAS, generate_schema, json_schema
from tests.conftest import REPO
from tests.export_kb import make_full_bundle, make_knowing_model
from tests.schemas import valid
from tests.tiny import REPORT, SHELL, TASK

BOXES = re.compile("[\u2500-\u259f\u2800-\u28ff]")
"""Box drawing, block elements (rich's bars) and braille (spinners)."""


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_the_shipped_schema_is_generated_from_the_types(name):
    pytest.importorskip("pydantic")
    assert json_schema(name) == generate_schema(name), (
        f"{name}: run `python scripts/generate_schemas.py` after changing mitremap/schema.py"
    )


def test_the_schema_command_prints_a_schema_and_lists_the_names(cli):
    listed = cli("schema")
    assert listed.code == 0 and listed.out.split() == list(SCHEMAS)
    printed = cli("schema", "analyze")
    assert printed.code == 0 and json.loads(printed.out) == json_schema("analyze")
    unknown = cli("schema", "nope")
    assert unknown.code == 1 and "choose one of" in unknown.err


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A mirror holding the tiny ATT&CK bundle, a model trained on the tiny corpus that
    carries it, two reports and a folder of them."""
    root = tmp_path_factory.mktemp("schema")
    mirror = root / "mirror"
    (mirror / "attack").mkdir(parents=True)
    (mirror / "attack" / "enterprise-attack-18.1.json").write_text(json.dumps(make_full_bundle()))
    model = make_knowing_model(root / "model")
    folder = root / "reports"
    folder.mkdir()
    (folder / "a.txt").write_text(f"{REPORT} TinyRAT beaconed to 185.220.101[.]47.")
    (folder / "b.md").write_text(f"{SHELL[0]} {SHELL[1]} It used C:\\Windows\\System32\\cmd.exe.")
    (root / "labelled.jsonl").write_text(
        json.dumps({"text": TASK[2], "labels": ["T1053.005"]}) + "\n"
    )
    return {"root": root, "mirror": mirror, "model": model, "reports": folder}


@pytest.fixture
def run(cli, world, monkeypatch):
    """`mitremap` with the world's mirror, model and an empty cache; output not a terminal."""
    monkeypatch.setenv("MITREMAP_DATA", str(world["mirror"]))
    monkeypatch.setenv("MITREMAP_CACHE", str(world["root"] / "cache"))
    monkeypatch.setenv("MITREMAP_OFFLINE", "1")
    return cli


def test_every_json_output_validates_against_its_schema(run, world, tmp_path):
    model, reports = str(world["model"]), world["reports"]
    a, b = str(reports / "a.txt"), str(reports / "b.md")

    def output(name: str, *args: str) -> dict:
        result = run(*args)
        assert result.code == 0, (args, result.err)
        return valid(name, json.loads(result.out))

    analysis = output(
        "analyze", "analyze", a, "-m", model, "-t", "0.1", "--iocs", "--defend", "--explain",
        "--parents", "-f", "json",
    )  # fmt: skip
    assert analysis["defend"]["mitigations"] and analysis["indicators"]
    assert analysis["techniques"][0]["attributions"] and analysis["analyzed_at"]
    saved = tmp_path / "a.json"
    saved.write_text(json.dumps(analysis))
    output("analyze-folder", "analyze", str(reports), "-m", model, "-t", "0.1", "-f", "json")
    output("iocs", "iocs", a, "-f", "json")
    output("diff", "diff", str(saved), b, "-m", model, "-t", "0.1", "-f", "json")
    output("similar", "similar", str(saved), "-f", "json", "-m", model)
    output("attack-show", "attack", "show", "T1053.005", "-f", "json")
    output("attack-search", "attack", "search", "scheduled", "-f", "json")
    output("data-status", "data", "status", "-f", "json")
    output("model", "model", "info", "-m", model, "-f", "json")
    output("evaluate", "evaluate", str(world["root"] / "labelled.jsonl"), "-m", model, "-f", "json")
    archive = tmp_path / "m.tar.gz"
    output("model-export", "model", "export", "-m", model, "-o", str(archive), "-f", "json")
    output("model-install", "model", "install", str(archive), "-f", "json")
    assert output("model", "model", "ensure", "-f", "json")["status"] == "present"
    results = tmp_path / "batch.jsonl"
    (reports / "broken.bin").write_bytes(bytes(range(256)) * 8)
    try:
        output("batch", "batch", str(reports), "-o", str(results), "-m", model, "--workers", "1",
               "-f", "json")  # fmt: skip
    finally:
        (reports / "broken.bin").unlink()
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert {"error" in r for r in records} == {True, False}  # an analysis and an error line
    for record in records:
        valid("batch-record", record)


def test_piped_output_of_every_command_is_plain(run, world, tmp_path):
    model, reports = str(world["model"]), world["reports"]
    a, b = str(reports / "a.txt"), str(reports / "b.md")
    commands = [
        ("analyze", a, "-m", model, "-t", "0.1", "--iocs", "--defend"),
        ("analyze", str(reports), "-m", model, "-t", "0.1"),
        ("analyze", str(reports), "-m", model, "-f", "json", "-o", str(tmp_path / "out")),
        ("iocs", a),
        ("iocs", a, "-o", str(tmp_path / "iocs.tsv")),
        ("diff", a, b, "-m", model, "-t", "0.1"),
        ("similar", a, "-m", model, "-t", "0.1"),
        ("attack", "search", "scheduled"),
        ("attack", "show", "T1053.005"),
        ("data", "status"),
        ("model", "info", "-m", model),
        ("evaluate", str(world["root"] / "labelled.jsonl"), "-m", model),
        ("batch", str(reports), "-o", str(tmp_path / "b.jsonl"), "-m", model, "--workers", "1"),
        ("schema",),
    ]
    for args in commands:
        result = run(*args)
        assert result.code == 0, (args, result.err)
        assert not BOXES.search(result.out + result.err), (args, result.out, result.err)
        assert "\x1b[" not in result.out + result.err, args  # no colour codes either
    assert all("\t" in line for line in (tmp_path / "iocs.tsv").read_text().splitlines())
    searched = run("attack", "search", "scheduled").out.splitlines()
    assert searched[0].split("\t")[:2] == ["T1053.005", "Scheduled Task"]
    batch = run("batch", str(reports), "-o", str(tmp_path / "c.jsonl"), "-m", model,
                "--workers", "1")  # fmt: skip
    assert "analyzing: 2/2 (" in batch.err  # progress as plain lines


def test_the_version_and_shell_completion(cli):
    from mitremap import __version__

    short = cli("-V")
    assert short.code == 0 and short.out.strip() == f"mitremap {__version__}"
    helped = cli("--help")
    assert "--install-completion" in helped.out and "-V, --version" in helped.out


def test_the_explain_extra_has_what_shap_plots_need():
    import tomllib

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert any(r.startswith("matplotlib") for r in extras["explain"])


def test_no_export_names_the_local_path_unless_asked(run, world, tmp_path):
    """Exports name the report by its file name: an analyst's folders stay theirs."""
    model, report = str(world["model"]), world["reports"] / "a.txt"
    folder = str(world["reports"])
    for fmt in ("json", "csv", "navigator", "stix", "misp", "markdown", "html", "docx"):
        out = tmp_path / f"out.{fmt}"
        result = run("analyze", str(report), "-m", model, "-t", "0.1", "--iocs", "-f", fmt,
                     "-o", str(out))  # fmt: skip
        assert result.code == 0, (fmt, result.err)
        content = out.read_bytes()
        if fmt == "docx":
            import zipfile

            with zipfile.ZipFile(out) as parts:
                content = b"".join(parts.read(name) for name in parts.namelist())
        assert folder.encode() not in content, fmt
        assert fmt == "csv" or b"a.txt" in content, fmt  # the CSV names no source
    kept = run("analyze", str(report), "-m", model, "-t", "0.1", "-f", "json", "--keep-path")
    assert json.loads(kept.out)["document"]["origin"] == str(report)
