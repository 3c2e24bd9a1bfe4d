"""The workspace's service layer: every read and write of the database goes through `Store`.

Answers are plain dicts in the REST API's shapes (`summary`, `detail`, decisions, jobs), so
the API module only routes and checks permissions. Writes are short transactions; a decision
is one inserted row plus a conditional status update, never a read-modify-write of a blob.
Reports, decisions, history and search are `workspace.reports.ReportStore`, which `Store`
inherits.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, exists, select, text, update

from mitremap.web.workspace import reviews
from mitremap.web.workspace.db import Database
from mitremap.web.workspace.errors import ConflictError, InvalidError, NotFoundError
from mitremap.web.workspace.models import (
    ROLES,
    ApiToken,
    BrowserSession,
    Job,
    Setting,
    User,
    utcnow,
)
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


SESSION_LIFETIME = timedelta(hours=12)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


@dataclass(frozen=True)
class UserInfo:
    name: str
    role: str
    has_password: bool = False


@dataclass(frozen=True)
class SessionInfo:
    user: UserInfo | None
    csrf_token: str


def digest(secret: str) -> str:
    """SHA-256 of a random token: what is stored, so a database leak reveals no token."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


# PostgreSQL advisory lock that serialises starting a retraining job (SQLite's BEGIN IMMEDIATE
# already does)
RETRAIN_LOCK = 0x6D6D7274


class Store(ReportStore):
    """Users, sessions, tokens, jobs and settings here; reports, analyses, decisions, history,
    comments and drafts in `ReportStore` (`workspace.reports`)."""

    def __init__(self, database: Database) -> None:
        self.db = database

    # ---- users, tokens, sessions --------------------------------------------------------

    def add_user(self, name: str, role: str, password_hash: str | None) -> UserInfo:
        if not _NAME.match(name):
            raise InvalidError(f"{name!r} is not a user name (letters, digits, . _ @ -; up to 64)")
        if role not in ROLES:
            raise InvalidError(f"unknown role {role!r}; use one of: {', '.join(ROLES)}")
        try:
            with self.db.session() as s:
                s.add(User(name=name, role=role, password_hash=password_hash))
        except ConflictError:
            raise ConflictError(f"the user {name!r} exists already") from None
        return UserInfo(name, role, password_hash is not None)

    def ensure_user(self, name: str, role: str) -> UserInfo:
        """The user `name`, created (without a password) when missing."""
        with self.db.session() as s:
            user = s.scalar(select(User).where(User.name == name))
            if user is None:
                user = User(name=name, role=role, password_hash=None)
                s.add(user)
            return _user(user)

    def remove_user(self, name: str) -> None:
        with self.db.session() as s:
            user = s.scalar(select(User).where(User.name == name))
            if user is None:
                raise NotFoundError(f"no user {name!r}")
            s.delete(user)

    def users(self) -> list[UserInfo]:
        with self.db.session() as s:
            return [_user(u) for u in s.scalars(select(User).order_by(User.name))]

    def has_login_users(self) -> bool:
        """Whether anyone can log in: then the server runs with authentication."""
        with self.db.session() as s:
            return bool(s.scalar(select(exists().where(User.password_hash.is_not(None)))))

    def password_hash(self, name: str) -> tuple[UserInfo, str] | None:
        with self.db.session() as s:
            user = s.scalar(select(User).where(User.name == name))
            if user is None or user.password_hash is None:
                return None
            return _user(user), user.password_hash

    def issue_token(self, name: str, label: str = "") -> str:
        """A new API token for `name`; only its digest is kept, so it is shown once."""
        token = "mm_" + secrets.token_urlsafe(32)
        with self.db.session() as s:
            user = s.scalar(select(User).where(User.name == name))
            if user is None:
                raise NotFoundError(f"no user {name!r}; add one with `mitremap serve user add`")
            s.add(ApiToken(user_id=user.id, token_hash=digest(token), label=label[:100]))
        return token

    def token_user(self, token: str) -> UserInfo | None:
        with self.db.session() as s:
            found = s.scalar(select(ApiToken).where(ApiToken.token_hash == digest(token)))
            return _user(found.user) if found is not None else None

    def new_session(self, user: str | None = None) -> tuple[str, SessionInfo]:
        """A browser session (for `user`, or anonymous): the cookie value and what it holds.
        Expired sessions are swept here."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = utcnow()
        with self.db.session() as s:
            s.execute(delete(BrowserSession).where(BrowserSession.expires_at < now))
            owner = s.scalar(select(User).where(User.name == user)) if user else None
            s.add(
                BrowserSession(
                    token_hash=digest(token),
                    csrf_token=csrf,
                    user_id=owner.id if owner else None,
                    created_at=now,
                    expires_at=now + SESSION_LIFETIME,
                )
            )
            return token, SessionInfo(_user(owner) if owner else None, csrf)

    def session(self, token: str) -> SessionInfo | None:
        with self.db.session() as s:
            found = s.scalar(
                select(BrowserSession).where(BrowserSession.token_hash == digest(token))
            )
            if found is None or _aware(found.expires_at) < utcnow():
                return None
            return SessionInfo(_user(found.user) if found.user else None, found.csrf_token)

    def end_session(self, token: str) -> None:
        with self.db.session() as s:
            s.execute(delete(BrowserSession).where(BrowserSession.token_hash == digest(token)))

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
        with self.db.session() as s:
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
        with self.db.session() as s:
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


def _user(user: User) -> UserInfo:
    return UserInfo(user.name, user.role, user.password_hash is not None)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


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
