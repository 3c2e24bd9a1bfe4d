"""The workspace database, on SQLite and PostgreSQL: failures that name no host, a database
from a newer MitreMap, several servers starting at once on an empty database, and long
decision histories (paginated, read in one grouped query)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")

from sqlalchemy import text

from mitremap.documents import Document
from mitremap.web.app import create_app
from mitremap.web.workspace import reviews
from mitremap.web.workspace.db import Database, head_revision
from mitremap.web.workspace.store import Store
from tests.tiny import REPORT
from tests.web.clients import browser

REPO = Path(__file__).resolve().parents[2]


# ---- database failures ------------------------------------------------------------------


def test_a_postgresql_failure_names_no_host_or_port(postgres_server, mm):
    """psycopg says 'connection to server at "127.0.0.1", port N failed': API clients are
    told the database failed, and the log gets the details."""
    import socket
    import uuid

    from sqlalchemy import create_engine

    from tests.postgres import create_database

    url = create_database(postgres_server, f"t{uuid.uuid4().hex[:16]}")
    database = Database(url)
    app = create_app(mm, database=database)
    client = browser(app)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    gone = url.rsplit("@", 1)[0] + f"@127.0.0.1:{closed}/nothing"
    for factory in (database._sessions, database._reads):  # the server went away
        factory.configure(bind=create_engine(gone))
    for answer in (client.get("/api/reports"), client.post("/api/reports", json={"text": "x"})):
        assert answer.status_code == 503, answer.text
        message = answer.json()["error"]["message"]
        assert "127.0.0.1" not in message and str(closed) not in message
        assert "port" not in message and "database" in message
    database.close()


# ---- migrations -------------------------------------------------------------------------


def test_a_database_from_a_newer_mitremap_is_a_one_line_error(db_url, cli):
    Database(db_url).close()
    engine = Database(db_url, migrate=False).engine
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0099_future'"))
    engine.dispose()
    for command in (("serve", "user", "list", "--db", db_url), ("serve", "--db", db_url)):
        answer = cli(*command)
        assert answer.code == 1 and "Traceback" not in answer.err, answer.err
        lines = [line for line in answer.err.splitlines() if line.strip()]
        assert len(lines) == 1 and "'0099_future'" in lines[0] and "newer" in lines[0]


STARTER = """
import sys, time
from alembic import command  # noqa: F401 - imported before the start, as a warm server has
from mitremap.web.workspace.db import Database
database = Database(sys.argv[1], migrate=False)
with database.engine.connect():
    pass  # connected before the start: the four upgrades overlap as much as they can
while time.time() < float(sys.argv[2]):
    time.sleep(0.001)
database.upgrade()
database.close()
print("ok")
"""


def test_four_servers_starting_at_once_on_an_empty_database_make_the_schema_once(db_url):
    """Once, 2 of 4 failed on PostgreSQL with a duplicate key on alembic_version."""
    import time

    environment = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    at = str(time.time() + 3.0)  # all four begin at this moment, imports done
    starters = [
        subprocess.Popen(
            [sys.executable, "-c", STARTER, db_url, at],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [p.communicate(timeout=120) for p in starters]
    assert [p.returncode for p in starters] == [0, 0, 0, 0], [err for _, err in results]
    database = Database(db_url, migrate=False)
    with database.engine.connect() as connection:
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    assert [v for (v,) in versions] == [head_revision()]
    database.close()


# ---- long decision histories -------------------------------------------------------------


def test_decisions_are_paginated(db_url, mm):
    client = browser(create_app(mm, database=db_url, threshold=0.3))
    report = client.post("/api/reports", json={"text": REPORT}).json()["id"]
    for i in range(25):
        body = {"technique": "T1059", "action": "add", "start": i, "end": i + 40}
        assert client.post(f"/api/reports/{report}/decisions", json=body).status_code == 201
    first = client.get(f"/api/reports/{report}/decisions?per_page=10").json()
    last = client.get(f"/api/reports/{report}/decisions?per_page=10&page=3").json()
    assert first["total"] == last["total"] == 25 and (first["page"], last["page"]) == (1, 3)
    assert [d["start"] for d in first["items"]] == list(range(10))
    assert [d["start"] for d in last["items"]] == list(range(20, 25))
    assert client.get(f"/api/reports/{report}/decisions?per_page=5000").status_code == 422


def test_the_review_read_from_the_latest_rows_matches_the_whole_history(db_url):
    """The review reads only the rows that can be in force (one grouped query); it must
    agree with `reviews.in_force` over every row, clears and all."""
    database = Database(db_url)
    store = Store(database)
    text_ = "It ran cmd.exe. " * 20
    passages_at = [(0, 15), (16, 31), (32, 47)]
    spans: list[tuple[int, int] | None] = [*passages_at, None]
    evidence = [{"start": a, "end": b, "confidence": 0.8} for a, b in passages_at]
    hits: list[dict[str, Any]] = [
        {
            "technique": t,
            "technique_name": t,
            "tactics": ["Execution"],
            "confidence_score": confidence,
            "evidence": evidence,
            "attributions": [],
        }
        for t, confidence in (("T1059", 0.8), ("T1059.003", 0.3), ("T1566", 0.2))
    ]
    analysis = {"model": {}, "window": 3, "techniques": hits, "indicators": []}

    def add(title: str) -> int:
        return store.add_report(
            Document(text_, title, "pasted"),
            analysis,
            source="x",
            user="u",
            model_name="m",
            threshold=0.5,
        )["id"]

    report = add("r")
    pick = random.Random(7)
    for _ in range(400):
        span = pick.choice(spans)
        action = pick.choice(("accept", "reject", "add", "clear", "clear"))
        if action == "add" and span is None:
            span = spans[0]
        store.decide(
            report,
            technique=pick.choice(("T1059", "T1059.003", "T1105")),
            action=action,
            start=span[0] if span else None,
            end=span[1] if span else None,
            note="",
            user="u",
            known=lambda _: True,
        )
    every = store.decisions_page(report, per_page=1000)["items"]
    assert len(every) == 400
    fields = ("id", "technique", "action", "start", "end", "note", "user", "at")
    rows = [reviews.DecisionRow(*(d[f] for f in fields)) for d in every]
    passages = tuple((a, b, 0.8) for a, b in passages_at)
    suggestions = [
        reviews.SuggestionRow(
            h["technique"], h["technique"], ("Execution",), h["confidence_score"], passages
        )
        for h in hits
    ]
    expected = reviews.review(suggestions, rows, 0.5, {})
    detail = store.detail(report)
    assert {s["technique"]: s["state"] for s in detail["suggestions"]} == {
        t.technique: t.state for t in expected.techniques
    }
    assert sorted((a["technique"], a["start"]) for a in detail["added"]) == sorted(
        (a.technique, a.start) for a in expected.added
    )
    # the list reads many reports at once (a few grouped queries): the same summaries
    untouched = add("untouched")
    listed = {r["id"]: r for r in store.list_reports()["items"]}
    assert listed == {i: store.summary(i) for i in (report, untouched)}
    database.close()
