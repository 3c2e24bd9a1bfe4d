"""A model that carries its ATT&CK knowledge: installed alone (no data mirror, offline), every
command that reads ATT&CK works; archives are reproducible; one trainer per machine."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from mitremap.classify.knowledge import KNOWLEDGE, read_knowledge
from mitremap.classify.package import export_model
from mitremap.errors import ModelError
from tests.export_kb import make_full_kb
from tests.export_kb import make_knowing_model as make_model
from tests.tiny import TASK

REPO = Path(__file__).resolve().parents[2]
REPORT = (
    f"{TASK[0]} The TinyRAT implant was the loader. {TASK[1]} "
    "The actor ran commands through cmd.exe on the victim host. "
    "It beaconed to hxxps://cdn.freight-docs[.]com/update/ldr.bin and 185.220.101[.]47."
)


@pytest.fixture(scope="module")
def kb():
    return make_full_kb()  # fresh STIX ids each time: one per module


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, kb):
    return make_model(tmp_path_factory.mktemp("knowing") / "m", kb)


def test_the_knowledge_round_trips_without_what_only_training_reads(model_dir, kb):
    carried = read_knowledge(model_dir)
    assert carried is not None and carried.version == "18.1"
    assert carried["T1053.005"].stix_id == kb["T1053.005"].stix_id
    assert [t.shortname for t in carried["T1053.005"].tactics] == [
        t.shortname for t in kb["T1053.005"].tactics
    ]
    assert carried.mitigated_by == kb.mitigated_by
    assert carried.detection_strategies == kb.detection_strategies
    assert {e.id: e.stix_id for e in carried.software} == {e.id: e.stix_id for e in kb.software}
    assert carried.software_used == kb.software_used
    pairs = {(p.source_id, p.technique) for p in kb.procedures}
    assert {(p.source_id, p.technique) for p in carried.procedures} == pairs
    assert all(p.text == "" for p in carried.procedures)  # the texts stay in the bundle
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert manifest["knowledge"]["attack_version"] == "18.1"
    assert str(model_dir) not in (model_dir / KNOWLEDGE).read_text()  # no local path in it


def test_damaged_knowledge_is_a_one_line_model_error(model_dir, tmp_path):
    import shutil

    copy = tmp_path / "m"
    shutil.copytree(model_dir, copy)
    data = (copy / KNOWLEDGE).read_bytes()
    (copy / KNOWLEDGE).write_bytes(data.replace(b"T1053", b"T9999", 1))
    with pytest.raises(ModelError, match="SHA-256"):
        read_knowledge(copy)
    (copy / KNOWLEDGE).write_bytes(data[:100])
    with pytest.raises(ModelError, match="wrong size"):
        read_knowledge(copy)


def test_two_exports_of_one_model_are_the_same_bytes(model_dir, tmp_path, monkeypatch):
    import time

    first = export_model(model_dir, tmp_path / "a.tar.gz")
    later = time.time() + 3600
    monkeypatch.setattr(time, "time", lambda: later)  # gzip and tar would stamp this
    assert export_model(model_dir, tmp_path / "b.tar.gz") == first
    with tarfile.open(tmp_path / "b.tar.gz") as archive:
        members = archive.getmembers()
    assert [m.name for m in members] == sorted(["arrays.npz", "attack.json", "manifest.json"])
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) for m in members} == {
        (0, 0, 0, "", "", 0o644)
    }
    header = (tmp_path / "b.tar.gz").read_bytes()[:10]
    assert header[4:8] == b"\0\0\0\0"  # no time in the gzip header


@pytest.fixture
def installed_only(cli, model_dir, tmp_path, monkeypatch):
    """A cache holding only an installed model: no data mirror, downloads off."""
    archive = tmp_path / "model.tar.gz"
    assert cli("model", "export", "-m", str(model_dir), "-o", str(archive)).code == 0
    monkeypatch.delenv("MITREMAP_DATA", raising=False)
    monkeypatch.setenv("MITREMAP_OFFLINE", "1")
    monkeypatch.setenv("MITREMAP_CACHE", str(tmp_path / "cache"))
    installed = cli("model", "install", str(archive))
    assert installed.code == 0, installed.err
    assert sorted(os.listdir(tmp_path / "cache")) == ["models"]
    report = tmp_path / "report.txt"
    report.write_text(REPORT, encoding="utf-8")
    return report


def test_an_installed_model_alone_answers_every_command(cli, installed_only, kb):
    from tests.export.test_export_stix import strict_errors

    report = str(installed_only)
    stix = cli("analyze", report, "--iocs", "-t", "0.3", "-f", "stix")
    assert stix.code == 0, stix.err
    bundle = json.loads(stix.out)
    assert strict_errors(bundle) == []
    patterns = {o["name"]: o["id"] for o in bundle["objects"] if o["type"] == "attack-pattern"}
    assert patterns["Scheduled Task"] == kb["T1053.005"].stix_id  # ATT&CK's own id
    misp = cli("analyze", report, "--iocs", "-t", "0.3", "-f", "misp")
    assert misp.code == 0, misp.err
    pymisp = pytest.importorskip("pymisp")
    event = pymisp.MISPEvent()
    event.load(misp.out)
    assert any(t.name.startswith("misp-galaxy:mitre-attack-pattern") for t in event.tags)
    navigator = cli("analyze", report, "-t", "0.3", "-f", "navigator")
    assert navigator.code == 0 and json.loads(navigator.out)["techniques"]
    defend = cli("analyze", report, "-t", "0.3", "--defend", "-f", "json")
    assert defend.code == 0, defend.err
    defence = json.loads(defend.out)["defend"]
    assert [m["id"] for m in defence["mitigations"]] == ["M1026"]
    assert any(s["id"] == "G9999" for s in defence["similar"])
    similar = cli("similar", report, "-t", "0.3", "-f", "json")
    assert similar.code == 0, similar.err
    assert "G9999" in {s["id"] for s in json.loads(similar.out)["similar"]}
    show = cli("attack", "show", "T1053.005")
    assert show.code == 0 and "Scheduled Task" in show.out


def test_exports_are_dated_by_the_date_the_report_states(cli, installed_only):
    dated = installed_only.with_name("dated.txt")
    dated.write_text("Posted on 12 March 2024\n\n" + REPORT, encoding="utf-8")
    stix = cli("analyze", str(dated), "-t", "0.3", "-f", "stix")
    assert stix.code == 0, stix.err
    (report,) = [o for o in json.loads(stix.out)["objects"] if o["type"] == "report"]
    assert report["published"].startswith("2024-03-12T00:00:00")
    misp = cli("analyze", str(dated), "-t", "0.3", "-f", "misp")
    assert json.loads(misp.out)["Event"]["date"] == "2024-03-12"
    stix = cli("analyze", str(installed_only), "-t", "0.3", "-f", "stix")
    (report,) = [o for o in json.loads(stix.out)["objects"] if o["type"] == "report"]
    assert not report["published"].startswith("2024")  # no date stated: when it was analysed


def test_the_first_run_names_install_then_fetch_then_train(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("MITREMAP_CACHE", str(tmp_path / "empty"))
    report = tmp_path / "r.txt"
    report.write_text("text", encoding="utf-8")
    result = cli("analyze", str(report))
    assert result.code == 1 and "Traceback" not in result.err
    message = result.err
    install = message.index("mitremap model install FILE|URL")
    assert install < message.index("mitremap data fetch all") < message.index("mitremap train")


def test_model_ensure_adds_knowledge_to_a_model_without_it(cli, tmp_path, monkeypatch):
    from tests.export_kb import make_full_bundle

    cache = tmp_path / "cache"
    folder = make_model(cache / "models" / "default")
    (folder / KNOWLEDGE).unlink()
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["knowledge"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    mirror = tmp_path / "mirror" / "attack"
    mirror.mkdir(parents=True)
    (mirror / "enterprise-attack-18.1.json").write_text(json.dumps(make_full_bundle()))
    monkeypatch.setenv("MITREMAP_CACHE", str(cache))
    result = cli("--data", str(mirror.parent), "model", "ensure", "-f", "json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["attack_knowledge"] == "ATT&CK 18.1"
    assert read_knowledge(folder) is not None


FAKE_ENSURE = """
import shutil, sys, time
from pathlib import Path
import mitremap.cli.model as cli_model

def fake_train(*args, **kwargs):
    with open(sys.argv[2], "a") as log:
        log.write("trained\\n")
    time.sleep(3)  # long enough for the other process to find the lock taken
    from mitremap.analysis import default_model_path
    shutil.copytree(sys.argv[1], default_model_path())

cli_model._train = fake_train
from mitremap.cli import main
main(["model", "ensure"])
"""


def test_two_concurrent_ensures_on_an_empty_cache_train_once(model_dir, tmp_path):
    log = tmp_path / "trainings.log"
    env = {
        **os.environ,
        "MITREMAP_CACHE": str(tmp_path / "cache"),
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]),
    }
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", FAKE_ENSURE, str(model_dir), str(log)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert log.read_text().splitlines() == ["trained"]
    waited = [err for _, err in outputs if "waiting" in err]
    assert len(waited) == 1
    assert any("default model present" in out for out, _ in outputs)
    digest = hashlib.sha256((tmp_path / "cache/models/default/arrays.npz").read_bytes())
    assert digest.hexdigest() == hashlib.sha256((model_dir / "arrays.npz").read_bytes()).hexdigest()
