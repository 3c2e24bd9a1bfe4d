"""The workspace's service layer: every read and write of the database goes through `Store`.

Answers are plain dicts in the REST API's shapes (`summary`, `detail`, decisions, jobs), so
the API module only routes and checks permissions. Writes are short transactions; a decision
is one inserted row plus a conditional status update, never a read-modify-write of a blob.
Reports, decisions, history and search are `workspace.reports.ReportStore`; users, sessions,
tokens, login counting and the audit log are `workspace.accounts.Accounts`; `Store` inherits
both.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, text, update

from mitremap.web.workspace import reviews
from mitremap.web.workspace.accounts import (  # noqa: F401 - the names callers import from here
    SESSION_LIFETIME,
    Accounts,
    SessionInfo,
    UserInfo,
    digest,
)
from mitremap.web.workspace.db import Database
from mitremap.web.workspace.errors import ConflictError, InvalidError, NotFoundError
from mitremap.web.workspace.models import Job, Setting, utcnow
from mitremap.web.workspace.reports import (  # noqa: F401 - the names callers import from here
    MAX_ATTRIBUTIONS,
    MAX_SUGGESTIONS,
    Describe,
    ReportChanges,
    ReportQuery,
    ReportStore,
)

if TYPE_CHECKING:
    from mitremap.web.workspace.learning import ReviewSet


# PostgreSQL advisory lock that serialises starting a retraining job (SQLite's BEGIN IMMEDIATE
# already does)
RETRAIN_LOCK = 0x6D6D7274


class Store(ReportStore, Accounts):
    """Jobs and settings here; reports, analyses, decisions, history, comments and drafts in
    `ReportStore` (`workspace.reports`); users, sessions, tokens, login counting and the audit
    log in `Accounts` (`workspace.accounts`)."""

    def __init__(self, database: Database) -> None:
        self.db = database

    # ---- retraining jobs and settings ---------------------------------------------------

    def new_job(self, user: str) -> dict[str, Any]:
        """A queued retraining job, unless one is queued or running already (409)."""
        with self.db.session() as s:
            if self.db.kind == "postgresql":  # read-then-insert: one transaction at a time
                s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": RETRAIN_LOCK})
            if s.scalar(select(Job.id).where(Job.state.in_(("queued", "running")))):
                raise ConflictError("a retraining job is already running; wait for it to end")
            job = Job(id=uuid.uuid4().hex, state="queued", created_by=user, message="queued")
            s.add(job)
            s.flush()
            return _job(job)

    def update_job(self, job_id: str, **fields: Any) -> None:
        with self.db.session() as s:
            s.execute(update(Job).where(Job.id == job_id).values(**fields, updated_at=utcnow()))

    def job(self, job_id: str) -> dict[str, Any]:
        with self.db.session(read=True) as s:
            job = s.get(Job, job_id)
            if job is None:
                raise NotFoundError(f"no retraining job {job_id!r}")
            return _job(job)

    def fail_interrupted_jobs(self) -> None:
        """Jobs a stopped server left queued or running will never end: say so."""
        with self.db.session() as s:
            s.execute(
                update(Job)
                .where(Job.state.in_(("queued", "running")))
                .values(state="failed", message="interrupted by a server restart")
            )

    def setting(self, key: str) -> str | None:
        with self.db.session(read=True) as s:
            found = s.get(Setting, key)
            return found.value if found else None

    def set_setting(self, key: str, value: str) -> None:
        with self.db.session() as s:
            s.merge(Setting(key=key, value=value))


def review_set_in(url: str | None = None) -> ReviewSet:
    """Everything the analysts of the workspace at `url` (default: the SQLite file) decided,
    for `mitremap train --add-reviews`; a database with no reviewed passage is an error, not a
    silent no-op."""
    from mitremap.web.workspace.learning import review_set

    database = Database(url)
    try:
        found = review_set(Store(database))
    finally:
        database.close()
    if not found.passages:
        raise InvalidError(f"{database.safe_url} has no reviewed passages yet")
    return found


# ---- rows to answers ----------------------------------------------------------------------


def _job(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "state": job.state,
        "progress": round(job.progress, 3),
        "message": job.message,
        "model": job.model,
        "created_by": job.created_by,
        "created_at": reviews.iso(job.created_at),
        "updated_at": reviews.iso(job.updated_at),
    }
