"""Corpus runs: folders and JSONL in, one JSONL line per document out, resumable."""

from __future__ import annotations

import json

import pytest

from mitremap import batch
from mitremap.errors import InputError
from tests.test_notebook import StandIn


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
