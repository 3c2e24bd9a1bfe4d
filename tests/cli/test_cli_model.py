"""`mitremap train | analyze | evaluate | model ensure | model info` on tiny data."""

from __future__ import annotations

import json

import pytest

from mitremap.training.fit import train_linear
from tests.conftest import make_tiny_bundle
from tests.schemas import valid
from tests.tiny import REPORT, SETTINGS, SHELL, TASK, items, reports


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli-model") / "m"
    train_linear(items(), reports=reports(), settings=SETTINGS).save(path)
    return path


@pytest.fixture
def report_file(tmp_path):
    path = tmp_path / "report.txt"
    path.write_text(REPORT, encoding="utf-8")
    return path


def test_analyze_json(cli, model_dir, report_file):
    result = cli(
        "analyze",
        str(report_file),
        "--model",
        str(model_dir),
        "--format",
        "json",
        "--threshold",
        "0",
    )
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["threshold"] == 0.0
    assert data["techniques"][0]["technique"] in {"T1053.005", "T1059"}
    assert data["techniques"][0]["evidence"][0]["text"]


def test_analyze_table_and_csv(cli, model_dir, report_file):
    table = cli("analyze", str(report_file), "--model", str(model_dir), "--threshold", "0")
    assert table.code == 0, table.err
    assert "T1053.005" in table.out
    csv = cli(
        "analyze",
        str(report_file),
        "--model",
        str(model_dir),
        "--format",
        "csv",
        "--threshold",
        "0",
    )
    assert csv.code == 0, csv.err
    assert "T1059" in csv.out


def test_analyze_nothing_found_says_so(cli, model_dir, report_file):
    result = cli("analyze", str(report_file), "--model", str(model_dir), "--threshold", "1")
    assert result.code == 0
    assert "no technique reached the threshold 1.0" in result.out


def test_missing_model_is_one_line_error(cli, tmp_path, report_file):
    result = cli("analyze", str(report_file), "--model", str(tmp_path / "none"))
    assert result.code == 1
    assert "no model found" in result.err and "mitremap train" in result.err
    assert "Traceback" not in result.err


def test_evaluate_sentences_and_reports(cli, model_dir, tmp_path):
    sentences = tmp_path / "s.jsonl"
    sentences.write_text(
        "\n".join(
            json.dumps({"text": t, "labels": [label]})
            for t, label in [(TASK[2], "T1053.005"), (SHELL[3], "T1059")]
        )
        + "\n"
    )
    result = cli(
        "--data",
        str(_tiny_mirror(tmp_path)),
        "evaluate",
        str(sentences),
        "--model",
        str(model_dir),
        "--format",
        "json",
    )
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["n"] == 2 and 0.0 <= data["top1"] <= 1.0 and data["top5"] == 1.0
    docs = tmp_path / "r.jsonl"
    docs.write_text(json.dumps({"text": REPORT, "labels": ["T1053.005", "T1059"]}) + "\n")
    result = cli(
        "--data",
        str(_tiny_mirror(tmp_path)),
        "evaluate",
        str(docs),
        "--level",
        "report",
        "--model",
        str(model_dir),
        "--format",
        "json",
        "--threshold",
        "0.01",
    )
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["n"] == 1 and data["micro"]["recall"] == 1.0


def _own_file(tmp_path):
    """The tiny corpus as a user's own labelled JSONL file."""
    path = tmp_path / "mine.jsonl"
    path.write_text(
        "\n".join(json.dumps({"text": i.text, "labels": list(i.labels)}) for i in items()) + "\n"
    )
    return path


def _tiny_mirror(tmp_path):
    root = tmp_path / "mirror"
    (root / "attack").mkdir(parents=True, exist_ok=True)
    (root / "attack" / "enterprise-attack-18.1.json").write_text(json.dumps(make_tiny_bundle()))
    return root


def test_train_on_own_file_then_info(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("MITREMAP_CACHE", str(tmp_path / "cache"))
    extra = _own_file(tmp_path)
    out = tmp_path / "trained"
    result = cli(
        "-q",
        "--data",
        str(_tiny_mirror(tmp_path)),
        "train",
        "--source",
        "attack-procedures",
        "--add",
        str(extra),
        "--out",
        str(out),
    )
    assert result.code == 0, result.err
    assert (out / "manifest.json").is_file()
    info = cli("model", "info", "--model", str(out), "--format", "json")
    assert info.code == 0, info.err
    card = json.loads(info.out)
    assert card["backend"] == "linear" and card["attack_version"] == "18.1"
    assert card["sources"]["attack-procedures"] >= 1
    assert card["report_confidence"].startswith("best window")  # no annotated reports here


def test_info_names_the_report_model(cli, model_dir):
    info = cli("model", "info", "--model", str(model_dir), "--format", "json")
    assert info.code == 0, info.err
    assert json.loads(info.out)["report_confidence"] == (
        "best window, Platt-scaled (too little held-out evidence for trees: 3 r, 5 snippets)"
    )


def test_model_ensure_keeps_an_existing_model(cli, tmp_path, monkeypatch, model_dir):
    import shutil

    cache = tmp_path / "cache"
    shutil.copytree(model_dir, cache / "models" / "default")
    monkeypatch.setenv("MITREMAP_CACHE", str(cache))
    result = cli("model", "ensure")
    assert result.code == 0, result.err
    assert "default model present" in result.out
    as_json = cli("model", "ensure", "--format", "json")
    assert as_json.code == 0, as_json.err
    body = json.loads(as_json.out)
    assert body["status"] == "present" and body["path"] == str(cache / "models" / "default")
    assert body["backend"] == "linear" and "techniques" not in body


def test_a_missing_calibration_source_is_loud_and_kept_in_the_card(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("MITREMAP_CACHE", str(tmp_path / "cache"))
    extra = _own_file(tmp_path)
    out = tmp_path / "trained"
    result = cli(
        "--data", str(_tiny_mirror(tmp_path)), "train", "--source", "attack-procedures",
        "--add", str(extra), "-o", str(out), "--format", "json",
    )  # fmt: skip
    assert result.code == 0, result.err
    trained = json.loads(result.out)  # the card, as `model info --format json` gives it
    assert trained["path"] == str(out) and trained["sources"]["attack-procedures"] >= 1
    missing = "annotated reports missing (tram-reports, annoctr-reports)"
    assert any(w.startswith(missing) for w in trained["warnings"])
    assert f"warning: {missing}" in result.err and "UserWarning" not in result.err
    assert trained["recipe"]["calibration"]["missing"] == ["tram-reports", "annoctr-reports"]
    info = cli("model", "info", "--model", str(out))
    assert info.code == 0 and "warning" in info.out and "tram-reports" in info.out
    assert json.loads(cli("model", "info", "-m", str(out), "-f", "json").out)["warnings"]


def test_analyze_parents_and_stride(cli, model_dir, report_file):
    def techniques(*extra):
        result = cli(
            "analyze", str(report_file), "--model", str(model_dir), "-f", "json", "-t", "0", *extra
        )
        assert result.code == 0, result.err
        return {t["technique"]: t["confidence_score"] for t in json.loads(result.out)["techniques"]}

    plain = techniques()
    assert "T1053.005" in plain
    with_parents = techniques("--parents")
    assert with_parents["T1053"] >= with_parents["T1053.005"]  # a child implies its parent
    assert set(plain) <= set(with_parents)
    assert techniques("--stride", "3")  # fewer, non-overlapping windows still find techniques
    bad = cli("analyze", str(report_file), "--model", str(model_dir), "--stride", "0")
    assert bad.code != 0 and "Traceback" not in bad.err


def test_evaluate_refuses_an_unknown_format_or_level(cli, model_dir, tmp_path):
    labelled = tmp_path / "l.jsonl"
    labelled.write_text('{"text": "It ran schtasks.", "labels": ["T1053.005"]}\n')
    for option in (("--format", "bogus"), ("--level", "word")):
        result = cli("evaluate", str(labelled), "--model", str(model_dir), *option)
        assert result.code == 2, (option, result.out, result.err)


def test_training_prints_plain_progress_lines_when_not_a_terminal(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("MITREMAP_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "trained"
    extra = _own_file(tmp_path)
    result = cli(
        "--data", str(_tiny_mirror(tmp_path)), "train", "--source", "attack-procedures",
        "--add", str(extra), "--out", str(out), "--no-calibrate",
    )  # fmt: skip
    assert result.code == 0, result.err
    lines = result.err.splitlines()
    assert "corpus: 1/1" in result.err  # the corpus stage completes
    train = [line for line in lines if line.startswith("train: ")]
    assert (
        train[0].startswith("train: 0/")
        and train[-1].split()[1].split("/")[0] == (train[-1].split()[1].split("/")[1])
    )  # from 0 to the end, in plain lines


@pytest.mark.parametrize("where", ["missing-folder/out.json", "a-folder", "/dev/full"])
def test_output_errors_are_one_line_and_keep_the_previous_file(
    cli, model_dir, report_file, tmp_path, where
):
    target = tmp_path / where if not where.startswith("/") else __import__("pathlib").Path(where)
    if where == "a-folder":
        target.mkdir()
    result = cli(
        "analyze", str(report_file), "--model", str(model_dir), "-f", "json", "-o", str(target)
    )
    assert result.code == 1, result.out
    assert "Traceback" not in result.err and "cannot write" in result.err


def test_a_failed_write_keeps_the_previous_good_output(model_dir, tmp_path, monkeypatch):
    import os

    from mitremap.errors import OutputError
    from mitremap.files import write_text

    target = tmp_path / "out.json"
    target.write_text("previous good output")

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OutputError, match="No space left"):
        write_text(target, "new output")
    assert target.read_text() == "previous good output"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temporary file left


def test_folder_reports_of_the_same_name_get_their_own_files(cli, model_dir, tmp_path):
    reports = tmp_path / "reports"
    for sub in ("a", "b"):
        (reports / sub).mkdir(parents=True)
        (reports / sub / "report.md").write_text(REPORT, encoding="utf-8")
    out = tmp_path / "out"
    result = cli("analyze", str(reports), "--model", str(model_dir), "-f", "json", "-o", str(out))
    assert result.code == 0, result.err
    assert sorted(p.name for p in out.iterdir()) == ["a__report.md.json", "b__report.md.json"]
    assert "wrote 2 files" in result.err


def test_train_checks_its_output_folder_before_training(cli, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = cli("train", "--out", str(blocker / "model"))
    assert result.code == 1 and "cannot create" in result.err


def test_model_export_then_install_on_a_second_cache(cli, model_dir, tmp_path, monkeypatch):
    archive = tmp_path / "model.tar.gz"
    exported = cli("model", "export", "--model", str(model_dir), "-o", str(archive))
    assert exported.code == 0, exported.err
    digest = exported.out.split("sha256 ")[1].split()[0]
    monkeypatch.setenv("MITREMAP_CACHE", str(tmp_path / "second-cache"))
    wrong = cli("model", "install", str(archive), "--sha256", "0" * 64)
    assert wrong.code == 1 and "SHA-256" in wrong.err
    installed = cli("model", "install", str(archive), "--sha256", digest, "--format", "json")
    assert installed.code == 0, installed.err
    default = tmp_path / "second-cache" / "models" / "default"
    body = valid("model-install", json.loads(installed.out))
    assert {k: body[k] for k in ("installed", "sha256")} == {
        "installed": str(default),
        "sha256": digest,
    }
    again = cli(
        "model", "export", "-m", str(default), "-o", str(tmp_path / "b.tar.gz"), "-f", "json"
    )
    assert valid("model-export", json.loads(again.out))["sha256"] == digest  # the same archive
    assert (default / "manifest.json").is_file()
    info = cli("model", "info", "--format", "json")
    assert json.loads(info.out)["path"] == str(default)


def test_model_install_refuses_hostile_archives(cli, model_dir, tmp_path):
    import io
    import tarfile

    def archive(*members):
        path = tmp_path / f"bad{len(list(tmp_path.iterdir()))}.tar.gz"
        with tarfile.open(path, "w:gz") as tar:
            for info, data in members:
                tar.addfile(info, io.BytesIO(data) if data is not None else None)
        return path

    link = tarfile.TarInfo("arrays.npz")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    manifest = (model_dir / "manifest.json").read_bytes()
    info = tarfile.TarInfo("manifest.json")
    info.size = len(manifest)
    escape = tarfile.TarInfo("../../evil")
    escape.size = 1
    target = tmp_path / "installed"
    for bad in (
        archive((info, manifest), (link, None)),  # a link instead of the arrays
        archive((escape, b"x")),  # a path out of the folder
        tmp_path / "nothing.tar.gz",
    ):
        result = cli("model", "install", str(bad), "--target", str(target))
        assert result.code == 1 and "Traceback" not in result.err, result.err
        assert not target.exists()
    assert not (tmp_path.parent / "evil").exists()


def test_piped_tables_are_tab_separated_and_values_whole(cli, model_dir, tmp_path):
    report = tmp_path / "r.txt"
    url = "hxxps://very-long-subdomain.example-domain-for-testing[.]com/" + "a" * 120 + "/x.bin"
    report.write_text(f"{TASK[0]} The loader came from {url} today.\n", encoding="utf-8")
    result = cli("analyze", str(report), "--model", str(model_dir), "--iocs", "-t", "0.0")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert all("\t" in line for line in lines)  # one record a line, never wrapped
    url_line = next(line for line in lines if line.startswith("url\t"))
    assert url_line.split("\t")[2] == url


def test_model_ensure_does_not_call_a_truncated_model_present(
    cli, tmp_path, monkeypatch, model_dir
):
    import shutil

    cache = tmp_path / "cache"
    default = cache / "models" / "default"
    shutil.copytree(model_dir, default)
    arrays = default / "arrays.npz"
    arrays.write_bytes(arrays.read_bytes()[:1000])
    monkeypatch.setenv("MITREMAP_CACHE", str(cache))
    monkeypatch.setenv("MITREMAP_OFFLINE", "1")
    empty = tmp_path / "no-data"
    empty.mkdir()
    result = cli("--data", str(empty), "model", "ensure")
    assert "default model present" not in result.out
    assert "retraining" in result.err and result.code == 1  # it tries to train (no data here)
