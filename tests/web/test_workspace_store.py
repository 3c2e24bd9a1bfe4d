"""The workspace's storage and review logic, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy")
pytest.importorskip("alembic")

from mitremap.documents import Document
from mitremap.web.workspace import reviews
from mitremap.web.workspace.db import Database
from mitremap.web.workspace.errors import ConflictError, InvalidError, NotFoundError
from mitremap.web.workspace.store import ReportChanges, Store, digest

TEXT = (
    "The actor sent phishing mails. "
    "It created a scheduled task named Updater. "
    "Then it ran cmd.exe to launch the payload."
)
PHISH = (0, 30)
TASK = (31, 73)
SHELL = (74, len(TEXT))
KNOWN = {"T1566", "T1053.005", "T1059", "T1059.003"}


def span_of(needle: str) -> tuple[int, int]:
    start = TEXT.index(needle)
    return start, start + len(needle)


def analysis(*hits: tuple[str, float, tuple[int, int]]) -> dict:
    """An `Analysis.to_dict()` with one evidence passage per hit."""
    return {
        "model": {"backend": "test"},
        "window": 3,
        "techniques": [
            {
                "technique": technique,
                "technique_name": f"name of {technique}",
                "tactics": ["Execution"],
                "confidence_score": confidence,
                "evidence": [{"start": a, "end": b, "confidence": confidence}],
                "attributions": [{"start": a, "end": a + 4, "weight": 0.5}],
            }
            for technique, confidence, (a, b) in hits
        ],
        "indicators": [],
    }


@pytest.fixture
def store(db_url):
    database = Database(db_url)
    yield Store(database)
    database.close()


def add(store: Store, title: str = "Report", hits=None) -> int:
    hits = hits or [("T1053.005", 0.9, TASK), ("T1566", 0.7, PHISH), ("T1059", 0.3, SHELL)]
    detail = store.add_report(
        Document(TEXT, title, "pasted"),
        analysis(*hits),
        source="pasted",
        user="alice",
        model_name="m1",
        threshold=0.6,
    )
    return detail["id"]


def decide(store: Store, report: int, technique: str, action: str, span=None, user="alice"):
    start, end = span or (None, None)
    return store.decide(
        report,
        technique=technique,
        action=action,
        start=start,
        end=end,
        note="",
        user=user,
        known=KNOWN.__contains__,
    )


def test_migrations_make_the_schema_once(db_url):
    from sqlalchemy import inspect, text

    first = Database(db_url)
    again = Database(db_url)  # start-up runs `upgrade head` again: nothing to do
    tables = set(inspect(again.engine).get_table_names())
    assert {"reports", "analyses", "suggestions", "decisions", "users", "sessions"} <= tables
    assert {"events", "comments", "drafts", "indicator_decisions", "report_tags"} <= tables
    with again.engine.connect() as connection:
        assert connection.execute(text("select version_num from alembic_version")).scalar() == (
            migration_head()
        )
    assert again.revision() == migration_head()
    assert first.kind == again.kind == db_url.split(":")[0].split("+")[0]
    first.close()
    again.close()


def migration_head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from mitremap.web.workspace import db

    config = Config()
    config.set_main_option("script_location", str(Path(db.__file__).parent / "migrations"))
    return str(ScriptDirectory.from_config(config).get_current_head())


def test_the_review_migration_brings_older_reports_up_to_date(db_url):
    """A database made by the first revision, with a report and decisions in it: upgraded,
    the report has its counts, its hash and its search entry."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from mitremap.web.workspace import db, metadata

    old = Database(db_url, migrate=False)
    config = Config()
    config.set_main_option("script_location", str(Path(db.__file__).parent / "migrations"))
    with old.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    now = "2026-01-02 03:04:05"
    with old.engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO reports (id, title, source, origin, media_type, text, status, "
                "created_by, created_at, updated_at) VALUES (1, 'Old', 'pasted', 'pasted', "
                "'text/plain', :t, 'in_review', 'alice', :now, :now)"
            ),
            {"t": TEXT, "now": now},
        )
        c.execute(
            text(
                'INSERT INTO analyses (id, report_id, model_name, model_card, threshold, "window", '
                "indicators, created_at) VALUES (1, 1, 'm1', '{}', 0.6, 3, :i, :now)"
            ),
            {
                "i": '[{"type": "file_name", "value": "cmd.exe", "start": 86, "end": 93}]',
                "now": now,
            },
        )
        for i, (technique, confidence, (a, b)) in enumerate(
            [("T1053.005", 0.9, TASK), ("T1566", 0.7, PHISH)], 1
        ):
            c.execute(
                text(
                    "INSERT INTO suggestions (id, analysis_id, technique, technique_name, "
                    "tactics, confidence, evidence, attributions) VALUES (:i, 1, :t, :t, "
                    "'[]', :c, :e, '[]')"
                ),
                {"i": i, "t": technique, "c": confidence, "e": f'[{{"start": {a}, "end": {b}, '
                 f'"confidence": {confidence}}}]'},
            )  # fmt: skip
        c.execute(
            text(
                "INSERT INTO decisions (report_id, technique, action, note, user_name, at) "
                "VALUES (1, 'T1566', 'accept', '', 'alice', :now)"
            ),
            {"now": now},
        )
    old.close()
    store = Store(Database(db_url))
    summary = store.summary(1)
    assert (summary["accepted"], summary["pending"], summary["techniques"]) == (1, 1, ["T1566"])
    assert summary["tlp"] == "amber" and summary["tags"] == []
    assert store.detail(1)["duplicates"] == []
    assert [r["id"] for r in store.list_reports(q="cmd.exe")["items"]] == [1]
    assert [r["id"] for r in store.list_reports(q="Updater")["items"]] == [1]
    with store.db.session() as s:
        assert s.scalar(text("select text_hash from reports")) == metadata.text_hash(TEXT)
    store.db.close()


def test_a_report_and_its_suggestions_are_rows(store):
    report = add(store)
    detail = store.detail(report)
    assert detail["status"] == "new" and detail["text"] == TEXT
    by_id = {s["technique"]: s for s in detail["suggestions"]}
    assert [s["technique"] for s in detail["suggestions"]] == ["T1053.005", "T1566", "T1059"]
    assert by_id["T1053.005"]["above_threshold"] and not by_id["T1059"]["above_threshold"]
    assert by_id["T1566"]["evidence"][0]["text"] == TEXT[slice(*PHISH)]
    assert detail["pending"] == 2  # the two above the threshold
    assert detail["model"]["name"] == "m1" and detail["threshold"] == 0.6


def test_decisions_survive_a_new_analysis(store):
    report = add(store)
    decide(store, report, "T1053.005", "accept", TASK)
    decide(store, report, "T1566", "reject")
    decide(store, report, "T1059.003", "add", span_of("ran cmd.exe"))
    # a new model no longer suggests T1053.005 and finds T1059 above the threshold
    store.add_analysis(report, analysis(("T1059", 0.8, SHELL)), "m2", 0.6)
    detail = store.detail(report, {"T1053.005": ("Scheduled Task", ("Persistence",))})
    by_id = {s["technique"]: s for s in detail["suggestions"]}
    assert detail["model"]["name"] == "m2"
    assert by_id["T1053.005"]["state"] == "accepted"
    assert by_id["T1053.005"]["technique_name"] == "Scheduled Task"
    assert by_id["T1053.005"]["passages"][0]["start"] == TASK[0]
    assert by_id["T1566"]["state"] == "rejected"
    assert by_id["T1059"]["state"] == "pending" and by_id["T1059"]["above_threshold"]
    assert [a["technique"] for a in detail["added"]] == ["T1059.003"]
    assert detail["techniques"] == ["T1053.005", "T1059.003"]
    assert (detail["accepted"], detail["rejected"], detail["pending"]) == (1, 1, 1)


def test_the_first_decision_starts_the_review_and_bad_ones_are_refused(store):
    report = add(store)
    answer = decide(store, report, "T1566", "accept")
    assert answer["report"]["status"] == "in_review"
    assert answer["decision"]["user"] == "alice" and answer["decision"]["action"] == "accept"
    with pytest.raises(InvalidError, match="not an ATT&CK technique"):
        decide(store, report, "T9999", "accept")
    with pytest.raises(InvalidError, match="outside the text"):
        decide(store, report, "T1566", "accept", (10, len(TEXT) + 1))
    with pytest.raises(InvalidError, match="needs the passage"):
        decide(store, report, "T1566", "add")
    with pytest.raises(InvalidError, match="unknown action"):
        decide(store, report, "T1566", "maybe")
    with pytest.raises(NotFoundError):
        decide(store, report + 100, "T1566", "accept")


def test_concurrent_decisions_on_one_report_are_all_kept(store):
    report = add(store)
    errors: list[Exception] = []

    def analyst(name: str) -> None:
        try:
            for i in range(10):
                decide(store, report, "T1059.003", "add", (i, i + 5), user=name)
        except Exception as exc:  # pragma: no cover - shown by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=analyst, args=(f"analyst{n}",)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.decisions(report)) == 60
    assert store.summary(report)["added"] == 10  # six analysts added the same ten passages
    users = {d["user"] for d in store.decisions(report)}
    assert users == {f"analyst{n}" for n in range(6)}


def test_list_search_status_and_pages(store):
    first = add(store, "APT-Tiny loader")
    add(store, "Quarterly summary", hits=[("T1566", 0.8, PHISH)])
    third = add(store, "Another report", hits=[("T1059", 0.3, SHELL)])
    decide(store, third, "T1059.003", "add", SHELL)
    store.update_report(first, ReportChanges(status="reviewed"))
    assert store.list_reports()["total"] == 3
    assert [r["id"] for r in store.list_reports(q="tiny")["items"]] == [first]
    assert {r["id"] for r in store.list_reports(q="T1059")["items"]} == {third}  # added
    assert store.list_reports(q="T1566")["total"] == 2  # suggested above the threshold
    assert [r["id"] for r in store.list_reports(status="reviewed")["items"]] == [first]
    page = store.list_reports(page=2, per_page=2)
    assert page["total"] == 3 and len(page["items"]) == 1
    assert store.list_reports(q="100%_")["total"] == 0  # LIKE wildcards are literal
    with pytest.raises(InvalidError):
        store.list_reports(status="done")


def test_deleting_a_report_deletes_its_rows(store):
    from sqlalchemy import func, select

    from mitremap.web.workspace.models import Analysis, Decision, Suggestion

    report = add(store)
    decide(store, report, "T1566", "accept")
    store.delete_report(report)
    with store.db.session() as s:
        for table in (Analysis, Suggestion, Decision):
            assert s.scalar(select(func.count()).select_from(table)) == 0
    with pytest.raises(NotFoundError):
        store.detail(report)


def test_users_tokens_and_sessions(store):
    from sqlalchemy import select

    from mitremap.web.workspace.models import ApiToken, BrowserSession

    assert not store.has_login_users()
    store.add_user("alice", "analyst", "$argon2id$hash")
    assert store.has_login_users()
    with pytest.raises(ConflictError):
        store.add_user("alice", "admin", "$argon2id$other")
    with pytest.raises(InvalidError):
        store.add_user("../etc", "admin", None)
    with pytest.raises(InvalidError):
        store.add_user("bob", "root", None)
    token = store.issue_token("alice", "ci")
    assert store.token_user(token).name == "alice" and store.token_user(token + "x") is None
    cookie, info = store.new_session("alice")
    assert store.session(cookie).user.name == "alice"
    assert store.session(cookie).csrf_token == info.csrf_token
    with store.db.session() as s:  # only digests are kept
        assert s.scalar(select(ApiToken.token_hash)) == digest(token)
        row = s.scalar(select(BrowserSession))
        assert row.token_hash == digest(cookie)
        row.expires_at = row.created_at - timedelta(seconds=1)
    assert store.session(cookie) is None  # expired
    store.remove_user("alice")
    assert store.token_user(token) is None


def test_one_retraining_job_at_a_time(store):
    job = store.new_job("admin")
    assert job["state"] == "queued"
    with pytest.raises(ConflictError):
        store.new_job("admin")
    store.fail_interrupted_jobs()
    assert store.job(job["id"])["state"] == "failed"
    assert store.new_job("admin")["state"] == "queued"


def test_reviewed_passages_become_labelled_text(store):
    report = add(store)
    decide(store, report, "T1053.005", "accept")  # its evidence passage: labelled
    decide(store, report, "T1566", "reject")  # its passage, nothing accepted there: negative
    decide(store, report, "T1059", "reject", SHELL)
    decide(store, report, "T1059.003", "add", SHELL)  # …but something else is there
    items = {(i.meta["start"], i.meta["end"]): i for i in store.reviewed_passages()}
    assert items[TASK].labels == ("T1053.005",) and items[TASK].text == TEXT[slice(*TASK)]
    assert items[PHISH].labels == () and items[PHISH].meta["rejected"] == ["T1566"]
    assert items[SHELL].labels == ("T1059.003",) and items[SHELL].meta["rejected"] == ["T1059"]
    assert all(
        i.source == "reviews" and i.id.startswith(f"report{report}:") for i in items.values()
    )


# ---- the review rules, without a database --------------------------------------------------


def row(i, technique, action, span=None):
    from datetime import UTC, datetime

    start, end = span or (None, None)
    return reviews.DecisionRow(i, technique, action, start, end, "", "u", datetime.now(UTC))


def suggestion(technique, confidence, *spans):
    return reviews.SuggestionRow(
        technique,
        technique,
        ("Execution",),
        confidence,
        tuple((a, b, confidence) for a, b in spans),
    )


def test_the_latest_decision_wins_and_clear_withdraws_it():
    decided = [
        row(1, "T1", "accept"),
        row(2, "T1", "reject"),
        row(3, "T2", "add", (0, 5)),
        row(4, "T2", "clear", (0, 5)),
        row(5, "T3", "accept", (1, 2)),
        row(6, "T3", "clear"),  # clears the technique decision only, not the passage
    ]
    kept = reviews.in_force(decided)
    assert [(d.id, d.action) for d in kept] == [(2, "reject"), (5, "accept")]


def test_technique_states():
    state = reviews.review(
        [
            suggestion("T1", 0.9, (0, 10), (20, 30)),
            suggestion("T2", 0.8, (0, 10), (20, 30)),
            suggestion("T3", 0.7, (0, 10)),
            suggestion("T4", 0.3, (40, 50)),
        ],
        [
            row(1, "T1", "reject", (0, 10)),  # one of two passages rejected: still pending
            row(2, "T2", "reject", (0, 10)),
            row(3, "T2", "reject", (20, 30)),  # every passage rejected: rejected
            row(4, "T3", "accept", (0, 10)),
            row(5, "T4", "accept"),  # below the threshold, accepted all the same
        ],
        threshold=0.6,
    )
    states = {t.technique: t.state for t in state.techniques}
    assert states == {"T1": "pending", "T2": "rejected", "T3": "accepted", "T4": "accepted"}
    assert (state.count("accepted"), state.count("pending"), state.count("rejected")) == (2, 1, 1)


def test_the_reviewed_result_leaves_rejected_and_pending_out():
    from mitremap.export import to_navigator

    text = "a" * 60
    state = reviews.review(
        [suggestion("T1053.005", 0.9, (0, 10), (20, 30)), suggestion("T1566", 0.8, (40, 50))],
        [
            row(1, "T1053.005", "accept"),
            row(2, "T1053.005", "reject", (20, 30)),
            row(3, "T1566", "reject"),
            row(4, "T1059.001", "add", (40, 50)),
        ],
        threshold=0.6,
    )
    result = reviews.reviewed_result(
        Document(text, "t"),
        state,
        record=reviews.ReviewRecord("in_review", [row(1, "T1053.005", "accept")]),
        model={},
        threshold=0.6,
        window=3,
        indicators=[],
        describe={"T1059.001": ("PowerShell", ("Execution",))},
    )
    data = result.to_dict()
    by_id = {t["technique"]: t for t in data["techniques"]}
    assert set(by_id) == {"T1053.005", "T1059.001"}
    assert [(e["start"], e["end"]) for e in by_id["T1053.005"]["evidence"]] == [(0, 10)]
    assert by_id["T1059.001"]["review"] == "added" and by_id["T1059.001"]["confidence_score"] == 1.0
    assert by_id["T1059.001"]["technique_name"] == "PowerShell"
    assert data["review"]["decisions"][0]["action"] == "accept"
    layer = to_navigator(result)
    assert {t["techniqueID"] for t in layer["techniques"]} >= {"T1053.005", "T1059.001"}


def test_concurrent_retrain_requests_start_one_job(store):
    """Eight requests at once (threads, each its own transaction): exactly one job starts, on
    SQLite (BEGIN IMMEDIATE) and on PostgreSQL (an advisory lock around read-then-insert)."""
    import threading

    started, refused = [], []
    gate = threading.Barrier(8)

    def request() -> None:
        gate.wait()
        try:
            started.append(store.new_job("admin"))
        except ConflictError:
            refused.append(1)

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(started) == 1 and len(refused) == 7
