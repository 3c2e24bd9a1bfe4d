"""The workspace when a client or the server fails, on SQLite and PostgreSQL: a retried
report creation with an `Idempotency-Key` adds one report; training workers cannot outlive
a killed server."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")

from fastapi.testclient import TestClient

from mitremap.web.app import create_app
from tests.tiny import REPORT

LOCAL = "http://127.0.0.1"


def browser(app) -> TestClient:
    client = TestClient(app, base_url=LOCAL)
    client.headers["X-CSRF-Token"] = client.get("/api/session").json()["csrf_token"]
    return client


# ---- idempotency keys -------------------------------------------------------------------


def test_a_retried_report_with_the_same_idempotency_key_is_added_once(db_url, mm):
    client = browser(create_app(mm, database=db_url, threshold=0.3))
    key = {"Idempotency-Key": "import-2026-12-02-0001"}
    first = client.post("/api/reports", json={"text": REPORT, "title": "once"}, headers=key)
    retry = client.post("/api/reports", json={"text": REPORT, "title": "once"}, headers=key)
    assert first.status_code == retry.status_code == 201
    assert retry.json()["id"] == first.json()["id"]
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    other = client.post("/api/reports", json={"text": REPORT}, headers={"Idempotency-Key": "b"})
    assert other.json()["id"] != first.json()["id"]
    assert client.post("/api/reports", json={"text": REPORT}).status_code == 201  # no key
    assert client.get("/api/reports").json()["total"] == 3
    bad = client.post("/api/reports", json={"text": REPORT}, headers={"Idempotency-Key": "a b"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_request"


def test_a_retry_that_races_the_first_request_still_makes_one_report(db_url, mm):
    """Two requests with one key both pass the first look-up (neither has committed); the
    second's insert then meets the first's key and answers the first's report."""
    app = create_app(mm, database=db_url, threshold=0.3)
    client = browser(app)
    store = app.state.workspace.store
    key = {"Idempotency-Key": "same"}
    first = client.post("/api/reports", json={"text": REPORT}, headers=key).json()["id"]
    looked_up = store.report_for_key
    calls: list[int | None] = []

    def not_yet_on_the_first_look(user: str, value: str) -> int | None:
        calls.append(None if not calls else looked_up(user, value))
        return calls[-1]

    store.report_for_key = not_yet_on_the_first_look  # type: ignore[method-assign]
    second = client.post("/api/reports", json={"text": REPORT}, headers=key)
    assert second.status_code == 201 and second.json()["id"] == first
    assert calls == [None, first] and client.get("/api/reports").json()["total"] == 1


# ---- retraining ------------------------------------------------------------------------


def test_retraining_runs_its_parallel_work_in_threads_of_the_server(mm, tmp_path):
    """joblib's default process workers outlive a SIGKILLed server; threads cannot."""
    from joblib import Parallel, delayed

    seen: list[int] = []

    def trainer(reviewed, progress):
        seen.extend(Parallel(n_jobs=2)(delayed(os.getpid)() for _ in range(4)))
        raise RuntimeError("stopped by the test")

    app = create_app(mm, database=f"sqlite:///{tmp_path / 'w.db'}", trainer=trainer)
    assert browser(app).post("/api/retrain").status_code == 202
    app.state.workspace.retrainer.thread.join(60)
    assert seen == [os.getpid()] * 4
