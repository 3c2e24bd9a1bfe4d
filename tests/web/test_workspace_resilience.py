"""The workspace when a client or the server fails, on SQLite and PostgreSQL: a retried
report creation with an `Idempotency-Key` adds one report; training workers cannot outlive
a killed server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")


from mitremap.web.app import create_app
from tests.tiny import REPORT
from tests.web.clients import browser

REPO = Path(__file__).resolve().parents[2]


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

    store.report_for_key = not_yet_on_the_first_look
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


KILLED = """
import os, sys, time
from pathlib import Path
from joblib import Parallel, delayed
sys.path.insert(0, sys.argv[3])
from tests.fakes import StandIn
from mitremap.web.app import create_app

def nap(marker):
    Path(marker).touch()
    time.sleep(60)

def trainer(reviewed, progress):
    Parallel(n_jobs=2)(delayed(nap)(f"{sys.argv[2]}.{i}") for i in range(2))

app = create_app(StandIn(), database=sys.argv[1], trainer=trainer)
app.state.workspace.retrainer.start("admin")
time.sleep(120)
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc (Linux)")
def test_no_training_process_outlives_a_killed_server(tmp_path):
    """A server killed (SIGKILL) while retraining leaves no worker process behind: every
    process that carried the server's environment is gone."""
    import signal
    import time
    import uuid

    mark = uuid.uuid4().hex
    environment = {**os.environ, "PYTHONPATH": str(REPO / "src"), "MITREMAP_TEST_MARK": mark}
    marker = tmp_path / "napping"
    server = subprocess.Popen(
        [sys.executable, "-c", KILLED, f"sqlite:///{tmp_path / 'w.db'}", str(marker), str(REPO)],
        env=environment,
    )
    deadline = time.monotonic() + 60
    while not (Path(f"{marker}.0").exists() and Path(f"{marker}.1").exists()):
        assert server.poll() is None and time.monotonic() < deadline, "training never started"
        time.sleep(0.1)
    server.send_signal(signal.SIGKILL)
    server.wait(10)
    time.sleep(1.0)
    left = _processes_marked(mark)
    for pid in left:  # never leave them running, even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert left == []


def _processes_marked(mark: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if f"MITREMAP_TEST_MARK={mark}".encode() in environ:
            found.append(int(entry.name))
    return found
