"""Learning from the analysts: retraining in the background on the reviewed passages, the
models kept side by side, `mitremap train --add-reviews` and `serve export-reviews`."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")

from fastapi.testclient import TestClient

from mitremap.training.corpus import LabelledText
from mitremap.web.app import create_app
from mitremap.web.workspace.retrain import fraction
from tests.tiny import REPORT, SETTINGS, items, reports
from tests.web.clients import browser


def tiny_trainer(seen: list):
    """The tiny corpus plus the reviewed passages (what the default trainer does with the
    default recipe), recording what it was given."""

    def train(data, progress):
        from mitremap.training.fit import train_linear

        seen.append(data)
        model = train_linear(
            [*items(), *data.passages],
            [*reports(), *data.reports],
            SETTINGS,
            progress=progress,
            out_of_fold=data.out_of_fold,
        )
        model.card.techniques = {"T1053.005": {"name": "Scheduled Task", "tactics": ["Execution"]}}
        return model

    return train


def wait_for(client: TestClient, job: str) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = client.get(f"/api/retrain/{job}").json()["job"]
        if state["state"] in ("done", "failed"):
            return state
        time.sleep(0.1)
    raise AssertionError("the retraining job did not end")


@pytest.fixture
def models(mm, tmp_path):
    folder = tmp_path / "models"
    mm.model.save(folder / "default")
    return folder


def test_retrain_uses_the_reviews_keeps_the_old_model_and_switches(db_url, models):
    seen: list = []
    options = {"database": db_url, "models_dir": models, "threshold": 0.3}
    app = create_app(None, model_path=models / "default", trainer=tiny_trainer(seen), **options)
    client = browser(app)
    report = client.post("/api/reports", json={"text": REPORT}).json()["id"]
    client.post(f"/api/reports/{report}/decisions", json={"technique": "T1059", "action": "reject"})
    client.post(
        f"/api/reports/{report}/decisions", json={"technique": "T1053.005", "action": "accept"}
    )
    started = client.post("/api/retrain")
    assert started.status_code == 202
    job = started.json()["job"]
    assert job["state"] in ("queued", "running") and 0 <= job["progress"] <= 1
    done = wait_for(client, job["id"])
    assert done["state"] == "done" and done["progress"] == 1.0, done
    assert done["model"].startswith("reviewed-")
    labels = {r.labels for r in seen[0].passages}
    assert ("T1053.005",) in labels and () in labels  # the rejected shell passage
    rejected = next(r for r in seen[0].passages if not r.labels)
    assert rejected.meta["rejected"] == ["T1059"]  # evidence against T1059 only

    listed = client.get("/api/models").json()["items"]
    assert {m["name"] for m in listed} == {"default", done["model"]}
    assert [m["name"] for m in listed if m["active"]] == [done["model"]]
    assert (models / "default" / "manifest.json").is_file()  # the previous model is kept
    new_card = next(m for m in listed if m["active"])["card"]
    assert "techniques" not in new_card and new_card["backend"] == "linear"
    analysed = client.post(f"/api/reports/{report}/analyze").json()
    assert analysed["model"]["name"] == done["model"]  # the server uses the new model

    # the choice survives a restart; the previous model can be made active again
    restarted = browser(create_app(None, **options))
    assert [m["name"] for m in restarted.get("/api/models").json()["items"] if m["active"]] == [
        done["model"]
    ]
    back = restarted.post("/api/models/default/activate")
    assert back.status_code == 200 and back.json()["active"] is True
    assert restarted.post("/api/models/../etc/activate").status_code == 404
    assert restarted.post("/api/models/nothing/activate").status_code == 404


def test_a_failed_retraining_says_why_and_keeps_the_model(db_url, models):
    def broken(data, progress):
        from mitremap.errors import DataError

        raise DataError("the data mirror is missing tram/reports.jsonl")

    app = create_app(
        None, database=db_url, models_dir=models, model_path=models / "default", trainer=broken
    )
    client = browser(app)
    job = client.post("/api/retrain").json()["job"]
    state = wait_for(client, job["id"])
    assert state["state"] == "failed" and "tram/reports.jsonl" in state["message"]
    assert [m["name"] for m in client.get("/api/models").json()["items"] if m["active"]] == [
        "default"
    ]


def test_progress_follows_the_training_stages():
    stages = [
        ("corpus", 0, 1),
        ("corpus", 1, 1),
        ("features", 1, 1),
        ("calibrate 1/2", 5, 10),
        ("calibrate 2/2", 10, 10),
        ("train", 3, 10),
        ("train", 10, 10),
    ]
    values = [fraction(*s) for s in stages]
    assert values == sorted(values) and values[0] == 0 and 0.9 < values[-1] < 1


def test_reviewed_passages_replace_corpus_text_and_negatives_stay(tiny_kb):
    from mitremap.training.train import _with_reviewed

    corpus = [
        LabelledText("It created a scheduled task.", ("T1053.005",), "c", "1"),
        LabelledText("Unrelated sentence.", (), "c", "2"),
    ]
    reviewed = [
        LabelledText("It created  a Scheduled task.", (), "reviews", "r1"),  # rejected there
        LabelledText("cmd.exe ran the batch file.", ("T1059",), "reviews", "r2"),
        LabelledText("cmd.exe ran the batch file.", ("T1053.005",), "reviews", "r3"),
    ]
    merged = {i.text: i.labels for i in _with_reviewed(corpus, reviewed, tiny_kb)}
    assert merged == {
        "Unrelated sentence.": (),
        "It created  a Scheduled task.": (),  # the analyst's word replaces the corpus label
        "cmd.exe ran the batch file.": ("T1059", "T1053.005"),
    }


def test_a_rejection_is_evidence_against_that_technique_only(tiny_kb):
    from mitremap.training.train import _with_reviewed

    reviewed = [
        LabelledText("cmd.exe ran it.", (), "reviews", "r1", {"rejected": ["T1053.005"]}),
        LabelledText("cmd.exe ran it.", ("T1059",), "reviews", "r2", {"rejected": ["T1059"]}),
        LabelledText("at.exe ran it.", (), "reviews", "r3", {"rejected": ["T1059"]}),
    ]
    merged = {i.text: i for i in _with_reviewed([], reviewed, tiny_kb)}
    assert merged["cmd.exe ran it."].labels == ("T1059",)
    assert merged["cmd.exe ran it."].meta["rejected"] == ["T1053.005"]  # accepted wins
    assert merged["at.exe ran it."].meta["rejected"] == ["T1059"]


def test_train_add_reviews_reads_the_workspace(cli, db_url, tmp_path, monkeypatch, tiny_kb):
    from mitremap.documents import Document
    from mitremap.web.workspace.db import Database
    from mitremap.web.workspace.store import Store

    store = Store(Database(db_url))
    detail = store.add_report(
        Document(REPORT, "r"),
        {"techniques": [], "model": {}},
        source="pasted",
        user="u",
        model_name="m",
        threshold=0.6,
    )
    store.decide(
        detail["id"],
        technique="T1053.005",
        action="add",
        start=0,
        end=40,
        note="",
        user="u",
        known=lambda t: True,
    )
    captured = {}

    class Trained:
        labels = ("T1053.005",)

        class card:  # stands in for a ModelCard
            training_texts = 1
            train_seconds = 0.0
            recipe: dict = {}  # noqa: RUF012 - a stand-in's class attribute

        def save(self, path):
            captured["saved"] = path

    def fake_train(*args, **kwargs):
        captured["reviewed"] = kwargs["reviewed"]
        return Trained()

    monkeypatch.setattr("mitremap.training.train.train_model", fake_train)
    monkeypatch.setattr("mitremap.attack.load_attack", lambda **_: tiny_kb)
    monkeypatch.setattr(  # a stand-in model has no folder to add ATT&CK's knowledge to
        "mitremap.classify.knowledge.write_knowledge", lambda path, kb: captured.update(kb=kb)
    )
    out = tmp_path / "model"
    answer = cli("train", "--add-reviews", "--db", db_url, "--out", str(out))
    assert answer.code == 0, answer.err
    assert [r.labels for r in captured["reviewed"]] == [("T1053.005",)]
    assert captured["reviewed"][0].text == REPORT[:40].strip()
    assert "adding 1 reviewed passages" in answer.err
    assert captured["kb"] is tiny_kb  # the trained model carries the ATT&CK it was trained on
    # without --out: a new folder beside the default model, which stays as it was
    cache = tmp_path / "cache"
    monkeypatch.setenv("MITREMAP_CACHE", str(cache))
    beside = cli("train", "--add-reviews", "--db", db_url)
    assert beside.code == 0, beside.err
    assert captured["saved"].parent == cache / "models"
    assert captured["saved"].name.startswith("reviewed-") and "default model is unchanged" in (
        beside.out
    )
    assert Trained.card.recipe["learned_from"] == {"model": "default", "mode": "full"}
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    nothing = cli("train", "--add-reviews", "--db", empty, "--out", str(out))
    assert nothing.code == 1 and "no reviewed passages" in nothing.err
    # without --db: $MITREMAP_DB, else the default database
    monkeypatch.setattr("mitremap.web.workspace.db.default_url", lambda: db_url)
    assert cli("train", "--out", str(out), "--add-reviews").code == 0
    monkeypatch.setenv("MITREMAP_DB", empty)
    assert cli("train", "--out", str(out), "--add-reviews").code == 1

    exported = tmp_path / "reviews.jsonl"
    answer = cli("serve", "export-reviews", str(exported), "--db", db_url)
    assert answer.code == 0 and "wrote 1 reviewed passages" in answer.out
    from mitremap.training.corpus import read_jsonl

    assert [r.labels for r in read_jsonl(exported)] == [("T1053.005",)]
