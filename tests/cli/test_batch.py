"""Corpus runs: folders and JSONL in, one JSONL line per document out, resumable."""

from __future__ import annotations

import json

import pytest

from mitremap import batch
from mitremap.errors import InputError
from tests.fakes import StandIn


@pytest.fixture
def model(monkeypatch) -> StandIn:
    stand_in = StandIn()
    monkeypatch.setitem(batch._MODELS, None, stand_in)
    return stand_in


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_folder_and_jsonl_into_jsonl(tmp_path, model):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("The loader created a scheduled task.")
    (corpus / ".hidden.txt").write_text("skipped")
    (corpus / "broken.bin").write_bytes(bytes(range(256)) * 8)
    records = tmp_path / "more.jsonl"
    records.write_text(json.dumps({"id": "r1", "text": "Credentials were dumped."}) + "\n")
    out = tmp_path / "out" / "results.jsonl"
    seen = []
    summary = batch.analyze_corpus(
        [corpus, records], out, progress=lambda d, t, i: seen.append((d, t))
    )
    assert (summary.done, summary.failed, summary.skipped) == (2, 1, 0)
    results = {r["id"]: r for r in lines(out)}
    assert set(results) == {str(corpus / "a.txt"), str(corpus / "broken.bin"), "r1"}
    assert results["r1"]["techniques"][0]["technique"] == "T1053.005"
    assert "binary" in results[str(corpus / "broken.bin")]["error"]
    assert seen[-1] == (3, 3)
    assert [c["document"].text for c in model.calls] == [
        "The loader created a scheduled task.",
        "Credentials were dumped.",
    ]


def test_a_rerun_skips_what_is_done_and_survives_a_torn_line(tmp_path, model):
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "a.txt").write_text("first report")
    out = tmp_path / "results.jsonl"
    batch.analyze_corpus([corpus], out)
    (corpus / "b.txt").write_text("second report")
    with out.open("a") as handle:
        handle.write('{"id": "torn')  # a run killed mid-write
    summary = batch.analyze_corpus([corpus], out)
    assert (summary.done, summary.skipped) == (1, 1)
    assert [r["id"] for r in lines(out)] == [str(corpus / "a.txt"), str(corpus / "b.txt")]


def test_bad_sources_are_clear_errors(tmp_path, model):
    with pytest.raises(InputError, match="no such file or folder"):
        batch.analyze_corpus([tmp_path / "missing"], tmp_path / "o.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1}\n')
    with pytest.raises(InputError, match="line 1"):
        batch.analyze_corpus([bad], tmp_path / "o.jsonl")


def _two_records(tmp_path):
    records = tmp_path / "in.jsonl"
    records.write_text(
        json.dumps({"id": "r1", "text": "It ran schtasks."})
        + "\n"
        + json.dumps({"id": "r2", "text": "It dumped LSASS."})
        + "\n"
    )
    return records


def test_a_complete_last_record_without_newline_counts_as_done(tmp_path, model):
    records = _two_records(tmp_path)
    out = tmp_path / "out.jsonl"
    batch.analyze_corpus([records], out)
    out.write_bytes(out.read_bytes().rstrip(b"\n"))  # killed just before the newline
    summary = batch.analyze_corpus([records], out)
    assert (summary.done, summary.skipped) == (0, 2)
    assert [r["id"] for r in lines(out)] == ["r1", "r2"]


def test_a_torn_last_record_is_redone(tmp_path, model):
    records = _two_records(tmp_path)
    out = tmp_path / "out.jsonl"
    batch.analyze_corpus([records], out)
    out.write_bytes(out.read_bytes()[:-20])  # killed mid-write
    summary = batch.analyze_corpus([records], out)
    assert (summary.done, summary.skipped) == (1, 1)
    assert sorted(r["id"] for r in lines(out)) == ["r1", "r2"]


def test_a_folder_spelled_differently_is_not_redone(tmp_path, model, monkeypatch):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("The loader created a scheduled task.")
    out = tmp_path / "out.jsonl"
    batch.analyze_corpus([corpus], out)
    monkeypatch.chdir(tmp_path)
    summary = batch.analyze_corpus(["./corpus/../corpus"], out)
    assert (summary.done, summary.skipped) == (0, 1) and len(lines(out)) == 1


def test_repeated_ids_in_a_source_are_all_analyzed(tmp_path, model):
    records = tmp_path / "in.jsonl"
    records.write_text(
        "".join(json.dumps({"id": "same", "text": f"Text {i}."}) + "\n" for i in range(3))
    )
    out = tmp_path / "out.jsonl"
    assert batch.analyze_corpus([records], out).done == 3
    assert batch.analyze_corpus([records], out).skipped == 3  # and resumable


def test_two_runs_on_one_output_are_refused(tmp_path, model):
    import fcntl

    records = _two_records(tmp_path)
    out = tmp_path / "out.jsonl"
    with out.open("a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        with pytest.raises(InputError, match="another batch run"):
            batch.analyze_corpus([records], out)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_workers_exit_when_the_parent_is_killed(tmp_path, how):
    import os
    import signal
    import subprocess
    import sys
    import time

    pids = tmp_path / "pids"
    pids.mkdir()
    records = tmp_path / "many.jsonl"  # enough for a chunk per worker
    records.write_text("".join(json.dumps({"text": f"Text {i}."}) + "\n" for i in range(12)))
    script = f"""
import os, signal, time
signal.signal(signal.SIGTERM, signal.default_int_handler)  # as `mitremap batch` does
from mitremap import batch
from tests.fakes import StandIn
class Slow(StandIn):
    def analyze(self, document, **options):
        (__import__("pathlib").Path({str(pids)!r}) / str(os.getpid())).touch()
        time.sleep(60)
batch._MODELS[None] = Slow()
batch.analyze_corpus([{str(records)!r}], {str(tmp_path / "out.jsonl")!r}, workers=2)
"""
    repo = str(__import__("pathlib").Path(__file__).resolve().parents[2])
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=repo)
    deadline = time.monotonic() + 30
    while len(list(pids.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    workers = [int(p.name) for p in pids.iterdir()]
    assert len(workers) == 2
    parent.send_signal(getattr(signal, how))
    parent.wait(timeout=30)
    deadline = time.monotonic() + 10
    alive = workers
    while alive and time.monotonic() < deadline:
        time.sleep(0.3)
        alive = [p for p in workers if os.path.exists(f"/proc/{p}") and _running(p)]
    assert alive == []


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"  # a zombie has exited
    except OSError:
        return False


def test_two_workers_finish_every_record(tmp_path, model):
    records = tmp_path / "many.jsonl"
    records.write_text("".join(json.dumps({"text": f"Text {i}."}) + "\n" for i in range(20)))
    out = tmp_path / "out.jsonl"
    summary = batch.analyze_corpus([records], out, workers=2)
    assert summary.done == 20 and len(lines(out)) == 20


def test_links_and_pipes_in_a_folder_are_recorded_not_passed_over(tmp_path, model):
    import os

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("The loader created a scheduled task.")
    (corpus / "dangling.txt").symlink_to(tmp_path / "gone.txt")
    (corpus / "loop.txt").symlink_to(corpus / "loop.txt")
    os.mkfifo(corpus / "pipe.txt")  # opening it would wait for a writer forever
    out = tmp_path / "results.jsonl"
    summary = batch.analyze_corpus([corpus], out)
    assert (summary.done, summary.failed) == (1, 3)
    errors = {r["id"]: r["error"] for r in lines(out) if "error" in r}
    assert errors == {
        str(corpus / "dangling.txt"): f"{corpus / 'dangling.txt'}: a dangling symbolic link "
        "(its target does not exist)",
        str(corpus / "loop.txt"): f"{corpus / 'loop.txt'}: a symbolic link loop",
        str(corpus / "pipe.txt"): f"{corpus / 'pipe.txt'}: a named pipe (FIFO), not a file",
    }


def test_the_output_inside_the_input_folder_is_not_analysed(tmp_path, model):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("The loader created a scheduled task.")
    out = corpus / "results.jsonl"
    batch.analyze_corpus([corpus], out)
    (corpus / "b.txt").write_text("Credentials were dumped.")
    summary = batch.analyze_corpus([corpus], out)
    assert (summary.done, summary.skipped) == (1, 1)
    assert [r["id"] for r in lines(out)] == [str(corpus / "a.txt"), str(corpus / "b.txt")]
    assert len(model.calls) == 2


def test_a_corpus_is_streamed_a_few_documents_per_worker_ahead(tmp_path, model):
    """Jobs are read from their source as workers take them: with 2 workers, at most
    2 × IN_FLIGHT_PER_WORKER are read ahead of the first result (a JSONL corpus was read
    whole into memory before)."""
    pulled = []

    def jobs():
        for i in range(40):
            pulled.append(i)
            yield batch.Job(id=f"r{i}", text=f"Text {i}.")

    records = batch._results(jobs(), batch.Settings(), workers=2, scheduler=None)
    first = next(records)
    assert first["id"] == "r0"
    assert len(pulled) <= 2 * batch.IN_FLIGHT_PER_WORKER
    assert [first["id"], *(r["id"] for r in records)] == [f"r{i}" for i in range(40)]


def test_a_jsonl_corpus_is_checked_whole_before_any_work(tmp_path, model):
    records = tmp_path / "in.jsonl"
    good = "".join(json.dumps({"id": f"r{i}", "text": "It ran schtasks."}) + "\n" for i in range(5))
    records.write_text(good + "not json\n")
    out = tmp_path / "out.jsonl"
    with pytest.raises(InputError, match="line 6"):
        batch.analyze_corpus([records], out)
    assert out.read_text() == "" and model.calls == []
