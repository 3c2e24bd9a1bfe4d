"""Every bad input to `mitremap analyze` is one line on stderr and exit code 1, never a
traceback or a hang; folders are analyzed file by file with a summary of what was skipped."""

from __future__ import annotations

import json
import os

import pytest

from mitremap.training.fit import train_linear
from tests.tiny import SETTINGS, items, reports


def _write(path, content: bytes):
    path.write_bytes(content)
    return path


BAD_INPUTS = {
    "empty.txt": (b"", "empty"),
    "blank.md": (b"  \n\t\n", "empty"),
    "binary.dat": (bytes(range(256)) * 16, "binary"),
    "corrupt.pdf": (b"%PDF-1.4\n1 0 obj garbage", "PDF"),
    "corrupt.docx": (b"PK\x03\x04 not really a zip", "DOCX"),
    "script.html": (
        b"<html><head><script>var a = 1;</script></head><body></body></html>",
        "no readable text",
    ),
    "latin.txt": (b"caf\xe9 \x81\x8d\x9d na\xefve \xff\xfe\xfa\x80\x81", "UTF-8"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_files_are_one_line_errors(cli, tmp_path, name):
    content, expected = BAD_INPUTS[name]
    if name.endswith((".pdf", ".docx", ".html")):
        pytest.importorskip(
            {"pdf": "pypdf", "docx": "docx", "html": "trafilatura"}[name.rsplit(".", 1)[1]]
        )
    result = cli("analyze", str(_write(tmp_path / name, content)))
    assert result.code == 1, result.out
    assert expected in result.err and name in result.err
    assert "Traceback" not in result.err and result.err.strip().count("\n") == 0


def test_a_200_mb_file_fails_at_once_on_its_size(cli, tmp_path):
    big = tmp_path / "big.txt"
    with big.open("wb") as handle:  # sparse: nothing is really written
        handle.truncate(200 * 1024 * 1024)
    result = cli("analyze", str(big))
    assert result.code == 1 and "too large" in result.err and "Traceback" not in result.err


def test_missing_file_and_unreachable_url(cli, tmp_path):
    assert "no such file" in cli("analyze", str(tmp_path / "nope.txt")).err
    result = cli("analyze", "http://127.0.0.1:9/report.html")
    assert result.code == 1 and "cannot connect" in result.err


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    model = train_linear(items(), reports=reports(), settings=SETTINGS)
    path = tmp_path_factory.mktemp("model") / "tiny"
    model.save(path)
    return path


def test_a_folder_is_analyzed_file_by_file_with_a_skip_summary(cli, tmp_path, tiny_model):
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "one.txt").write_text(
        "The malware creates a scheduled task with schtasks to run every hour."
    )
    (folder / "two.md").write_text("The backdoor spawns cmd.exe to execute shell commands.")
    _write(folder / "image.bin", bytes(range(256)) * 8)
    result = cli("analyze", str(folder), "--model", str(tiny_model), "--format", "json", "-t", "0")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert sorted(os.path.basename(d["document"]["origin"]) for d in data["documents"]) == [
        "one.txt",
        "two.md",
    ]
    assert [os.path.basename(s["path"]) for s in data["skipped"]] == ["image.bin"]
    assert "2 reports analyzed, 1 skipped" in result.err and "binary" in result.err
    out = tmp_path / "layers"
    result = cli(
        "analyze", str(folder), "--model", str(tiny_model), "-f", "navigator", "-o", str(out)
    )
    assert result.code == 0 and sorted(p.name for p in out.iterdir()) == [
        "one.txt.layer.json",
        "two.md.layer.json",
    ]
    result = cli("analyze", str(folder), "--model", str(tiny_model), "-f", "csv")
    assert result.code == 1 and "--output DIR" in result.err


def test_batch_takes_the_same_options_and_reports_as_json(cli, tmp_path, tiny_model):
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "one.txt").write_text("A scheduled task named Updater was registered with schtasks.")
    _write(folder / "image.bin", bytes(range(256)) * 8)
    out = tmp_path / "results.jsonl"
    args = ("batch", str(folder), "-o", str(out), "-m", str(tiny_model), "-t", "0", "-w", "2")
    result = cli(*args, "--workers", "1", "--format", "json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["output"] == str(out) and summary["done"] == 1 and summary["skipped"] == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    analysed = [line for line in lines if "techniques" in line]
    assert analysed and analysed[0]["window"] == 2 and analysed[0]["threshold"] == 0
    again = json.loads(cli(*args, "--workers", "1", "-f", "json").out)
    assert summary["failed"] == 1 and summary["errors"][0]["id"].endswith("image.bin")
    assert again["done"] == 0 and again["skipped"] == 2  # a re-run skips what is done


# ---- time limits, notes and file names (issue 22) -----------------------------------------


@pytest.fixture(scope="module")
def slow_pdf(tmp_path_factory):
    """One page whose 5 MB content stream takes pypdf seconds to parse."""
    pytest.importorskip("pypdf")
    from tests import hostile

    return hostile.pdf_shared_stream(tmp_path_factory.mktemp("pdf") / "slow.pdf", 1, 5_000_000)


@pytest.mark.parametrize("command", ["analyze", "iocs"])
def test_time_limit_stops_the_work_with_one_line(cli, slow_pdf, tiny_model, command):
    import time

    model = ("--model", str(tiny_model)) if command == "analyze" else ()
    started = time.perf_counter()
    result = cli(command, str(slow_pdf), "--time-limit", "0.5", *model)
    assert time.perf_counter() - started < 3
    assert result.code == 1
    assert result.err.strip() == (
        "error: stopped at the time limit of 0.5 s while reading the PDF: give it more time "
        "with --time-limit, or split the report"
    )


def test_batch_records_a_document_past_its_time_limit(cli, tmp_path, slow_pdf, tiny_model):
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "slow.pdf").write_bytes(slow_pdf.read_bytes())
    (folder / "one.txt").write_text("A scheduled task was registered with schtasks.")
    out = tmp_path / "results.jsonl"
    args = ("batch", str(folder), "-o", str(out), "-m", str(tiny_model), "--workers", "1")
    result = cli(*args, "--time-limit", "0.5", "-f", "json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert (summary["done"], summary["failed"]) == (1, 1)
    assert "stopped at the time limit of 0.5 s" in summary["errors"][0]["error"]


def test_notes_about_what_was_left_out_are_one_line_each_on_stderr(cli, tmp_path, tiny_model):
    pytest.importorskip("trafilatura")
    from tests import hostile

    page = hostile.html_table(tmp_path / "big.html", 700_000)  # ~65,000 elements
    result = cli("analyze", str(page), "--model", str(tiny_model), "-f", "json")
    assert result.code == 0, result.err
    assert result.err == (
        f"note: {page}: the HTML page is very large: read as plain text (navigation and "
        "footers not told apart)\n"
    )
    assert json.loads(result.out)["document"]["warnings"] == [
        result.err[len(f"note: {page}: ") :].strip()
    ]


def test_file_names_never_reach_the_terminal_with_their_control_characters(
    cli, tmp_path, tiny_model
):
    folder = tmp_path / "corpus"
    folder.mkdir()
    _write(folder / "\x1b[2J\x1b]0;owned\x07.bin", bytes(range(256)) * 8)
    (folder / "one.txt").write_text("A scheduled task was registered with schtasks.")
    args = ("batch", str(folder), "-o", str(tmp_path / "r.jsonl"), "-m", str(tiny_model))
    result = cli(*args, "--workers", "1")
    assert result.code == 0, result.err
    assert "\x1b" not in result.err and "\x07" not in result.err
    assert "\\x1b[2J\\x1b]0;owned\\x07.bin" in result.err
    result = cli("analyze", str(folder), "--model", str(tiny_model))
    assert "\x1b" not in result.err and "skipped" in result.err and "\\x1b[2J" in result.err


def test_iocs_lists_indicators_up_to_the_budget_and_says_so(cli, tmp_path, monkeypatch):
    from mitremap.iocs import extract

    monkeypatch.setattr(extract, "MAX_INDICATORS", 2)
    feed = _write(tmp_path / "feed.txt", b"1.2.3.4\n5.6.7.8\n9.9.9.9\n")
    result = cli("iocs", str(feed), "-f", "json")
    assert result.code == 0, result.err
    assert [i["value"] for i in json.loads(result.out)["indicators"]] == ["1.2.3.4", "5.6.7.8"]
    assert result.err == f"note: {feed}: only the first 2 indicators are listed\n"
