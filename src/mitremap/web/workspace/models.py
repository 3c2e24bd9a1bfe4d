"""The workspace's tables (SQLAlchemy 2, typed). The schema itself is made by the migrations.

A report keeps its text; each analysis of it (by whichever model was active) is a row with
the model card and threshold, and its suggested techniques are rows under it. Decisions hang
on the report, not on an analysis: they name a technique and, for a passage, its character
offsets, so a report analysed again by a new model keeps every decision. Decisions are only
ever inserted (the latest for a technique and passage wins), so two analysts deciding at once
never overwrite each other.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

ROLES = ("viewer", "analyst", "admin")
STATUSES = ("new", "in_review", "reviewed")
ACTIONS = ("accept", "reject", "add", "clear")
INDICATOR_ACTIONS = ("accept", "reject", "clear")
TLP_LEVELS = ("clear", "green", "amber", "amber+strict", "red")
"""TLP 2.0, least to most restricted."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # a disabled user cannot log in, and their sessions and tokens stop working at once
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class ApiToken(Base):
    """A script's bearer token; only its SHA-256 is kept. `role` caps what it may do (empty:
    the user's role); the user's role caps it too, so demoting a user demotes their tokens."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    role: Mapped[str | None] = mapped_column(String(16))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    user: Mapped[User] = relationship()


class BrowserSession(Base):
    """A browser's session: the cookie holds a random token (only its SHA-256 is kept here)
    and the page holds `csrf_token`. `user_id` is empty until someone logs in."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    user: Mapped[User | None] = relationship()


class LoginAttempt(Base):
    """Login attempts counted for one key ('name:alice', 'address:192.0.2.1') since
    `window_start`. An attempt is counted before its password is checked (one atomic
    upsert), so parallel guesses cannot pass the limit; a successful one is uncounted."""

    __tablename__ = "login_attempts"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class AuditEvent(Base):
    """Who changed users or API tokens, and when (only inserted)."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[str] = mapped_column(Text, default="")


class IdempotencyKey(Base):
    """A client's `Idempotency-Key` for a new report, kept with the report it made (in the
    same transaction), so a retry after a lost answer finds the report instead of adding it
    twice."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_name", "key", name="uq_idempotency_user_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_name: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(200))
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )


class Report(Base):
    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    source: Mapped[str] = mapped_column(String(2000), default="")
    origin: Mapped[str] = mapped_column(String(2000), default="")
    media_type: Mapped[str] = mapped_column(String(100), default="text/plain")
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="new", index=True)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )
    version: Mapped[int] = mapped_column(Integer, default=0)
    """One more at every change (`Event.version`): the ETag, and what `If-Match` names."""
    tlp: Mapped[str] = mapped_column(String(16), default="amber")
    source_org: Mapped[str] = mapped_column(String(300), default="")
    published: Mapped[date | None] = mapped_column(Date)
    text_hash: Mapped[str] = mapped_column(String(64), default="", index=True)
    """SHA-256 of the normalised text: the same report added twice is found by it."""
    # the review in numbers, kept on the row (refreshed by every write that changes it) so that
    # the list reads one row a report and can sort by them
    accepted_count: Mapped[int] = mapped_column(Integer, default=0)
    pending_count: Mapped[int] = mapped_column(Integer, default=0)
    rejected_count: Mapped[int] = mapped_column(Integer, default=0)
    added_count: Mapped[int] = mapped_column(Integer, default=0)
    technique_ids: Mapped[list[Any]] = mapped_column(default=list)
    tags: Mapped[list[ReportTag]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="ReportTag.tag"
    )
    analyses: Mapped[list[Analysis]] = relationship(
        back_populates="report", cascade="all, delete-orphan", passive_deletes=True
    )
    decisions: Mapped[list[Decision]] = relationship(
        back_populates="report",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Decision.id",
    )


class Analysis(Base):
    """One run of a model over a report; the newest is the one shown."""

    __tablename__ = "analyses"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    model_name: Mapped[str] = mapped_column(String(200), default="")
    model_card: Mapped[dict[str, Any]] = mapped_column(default=dict)
    threshold: Mapped[float] = mapped_column(Float)
    window: Mapped[int] = mapped_column(Integer, default=3)
    indicators: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    report: Mapped[Report] = relationship(back_populates="analyses")
    suggestions: Mapped[list[Suggestion]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="Suggestion.id"
    )


class Suggestion(Base):
    """A technique the model suggested, down to the suggestion floor, with its evidence
    passages and the words that drove it (offsets into the report text)."""

    __tablename__ = "suggestions"

    id: Mapped[int] = mapped_column(primary_key=True)
    analysis_id: Mapped[int] = mapped_column(
        ForeignKey("analyses.id", ondelete="CASCADE"), index=True
    )
    technique: Mapped[str] = mapped_column(String(16))
    technique_name: Mapped[str] = mapped_column(String(300), default="")
    tactics: Mapped[list[Any]] = mapped_column(default=list)
    confidence: Mapped[float] = mapped_column(Float)
    evidence: Mapped[list[Any]] = mapped_column(default=list)
    attributions: Mapped[list[Any]] = mapped_column(default=list)


class Decision(Base):
    """An analyst's decision on a technique (`start`/`end` empty) or on one passage of it.
    Only inserted, never updated: the latest row for a technique and passage is in force."""

    __tablename__ = "decisions"
    __table_args__ = (Index("ix_decisions_report_technique", "report_id", "technique"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"))
    technique: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(8))
    start: Mapped[int | None] = mapped_column("span_start", Integer)
    end: Mapped[int | None] = mapped_column("span_end", Integer)
    note: Mapped[str] = mapped_column(Text, default="")
    user: Mapped[str] = mapped_column("user_name", String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    report: Mapped[Report] = relationship(back_populates="decisions")


class ReportTag(Base):
    """A free tag on a report (a row each, so the list filters on an index)."""

    __tablename__ = "report_tags"

    report_id: Mapped[int] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class IndicatorDecision(Base):
    """An analyst's verdict on one indicator value of a report: `accept` (an indicator),
    `reject` (not an indicator: context) or `clear`. Only inserted; the latest is in force."""

    __tablename__ = "indicator_decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(8))
    note: Mapped[str] = mapped_column(Text, default="")
    user: Mapped[str] = mapped_column("user_name", String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Event(Base):
    """One line of history: who changed what, when, from what to what. `report_id` is empty
    for a change of the whole workspace (the active model). `subject` names what changed
    (`technique:T1059`, `indicator:ipv4:1.2.3.4`, `status`, `tlp` …): a decision made on an
    older `version` of a subject that changed since is stale."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_report_subject", "report_id", "subject", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int | None] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer, default=0)
    kind: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(400))
    before: Mapped[str] = mapped_column(Text, default="")
    after: Mapped[str] = mapped_column(Text, default="")
    note: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[str] = mapped_column(String(500), default="")
    user: Mapped[str] = mapped_column("user_name", String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class Comment(Base):
    """A comment on a report as a whole."""

    __tablename__ = "comments"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    user: Mapped[str] = mapped_column("user_name", String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Draft(Base):
    """Text a user typed and has not sent yet (a note, a comment), kept so that a reload or a
    closed tab loses nothing; deleted when the decision or comment it was for is made."""

    __tablename__ = "drafts"
    __table_args__ = (UniqueConstraint("report_id", "user_name", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"))
    user: Mapped[str] = mapped_column("user_name", String(64))
    key: Mapped[str] = mapped_column(String(400))
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Job(Base):
    """A background retraining run and how far it got."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    model: Mapped[str | None] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Setting(Base):
    """Small named values the server keeps across restarts (the active model)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class FeedReport(Base):
    """A reviewed report as the TAXII feed last published it: the report version its objects
    were made from, and the TLP and tags they went out under (`membership`)."""

    __tablename__ = "feed_reports"

    report_id: Mapped[int] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer)
    membership: Mapped[str] = mapped_column(Text, default="")


class FeedObject(Base):
    """One version of one STIX object a reviewed report publishes in the TAXII feed, as it
    was first published, and when (`date_added`: it never moves while the report keeps it)."""

    __tablename__ = "feed_objects"
    __table_args__ = (Index("ix_feed_objects_object", "object_id", "version"),)

    report_id: Mapped[int] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True
    )
    object_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    version: Mapped[str] = mapped_column(String(40), primary_key=True)
    """The object's `modified` (else `created`) as it is written: TAXII's version."""
    modified: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    """The same moment, for ordering and matching (`match[version]`)."""
    date_added: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    body: Mapped[str] = mapped_column(Text)
