"""A report's history and versions: every change is one `Event` row (who, when, what, before →
after) stamped with the report's new version, in the same transaction as the change itself.

Why versions per subject: two analysts on one report must not silently overwrite each other,
but must not block each other either. A page sends the version it shows (`If-Match`); a change
is refused as stale (409) only when *what it is about* (a technique, an indicator, the status,
a metadata field) changed after that version. Bob accepting T1059 makes Alice's rejection of
T1059 stale, not her decision on T1003.

Bumping the version is an `UPDATE` of the report's row: it also takes the row's lock on
PostgreSQL (SQLite's `BEGIN IMMEDIATE` already serialises writers), so the freshness check
that follows it cannot race another writer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from mitremap.web.workspace import reviews
from mitremap.web.workspace.errors import NotFoundError, StaleError
from mitremap.web.workspace.models import Event, Report

KINDS = ("decision", "indicator", "status", "metadata", "analysis", "model", "comment")


def bump(s: Session, report_id: int, now: datetime) -> int:
    """The report's next version (its row locked until the transaction ends)."""
    version = s.execute(
        update(Report)
        .where(Report.id == report_id)
        .values(version=Report.version + 1, updated_at=now)
        .returning(Report.version)
    ).scalar()
    if version is None:
        raise NotFoundError(f"no report {report_id}")
    return int(version)


def check_fresh(
    s: Session, report_id: int, subjects: Sequence[str], expected: int | None, current: Any
) -> None:
    """Refuse (`StaleError`) a change made on version `expected` when one of `subjects` changed
    after it. `current()` says how the subject stands now, for the answer. None: not checked
    (a script that sends no `If-Match`)."""
    if expected is None:
        return
    newer = s.scalar(
        select(Event)
        .where(
            Event.report_id == report_id,
            Event.subject.in_(subjects),
            Event.version > expected,
        )
        .order_by(Event.id.desc())
        .limit(1)
    )
    if newer is None:
        return
    what = newer.subject.split(":", 1)[-1]
    raise StaleError(
        f"{what} was changed by {newer.user} meanwhile ({newer.before or '—'} → "
        f"{newer.after or '—'}); the page shows it as it is now: decide again if you still "
        "want to",
        {"changed_by": newer.user, "changed_at": reviews.iso(newer.at), **current()},
    )


def record(
    s: Session,
    report_id: int | None,
    version: int,
    kind: str,
    subject: str,
    before: str,
    after: str,
    *,
    user: str,
    at: datetime,
    note: str = "",
    detail: str = "",
) -> None:
    """One line of history (`note`: the analyst's words; `detail`: what exactly was done,
    e.g. "accept the passage 120–180")."""
    s.add(
        Event(
            report_id=report_id,
            version=version,
            kind=kind,
            subject=subject[:400],
            before=before[:2000],
            after=after[:2000],
            note=note[:2000],
            detail=detail[:500],
            user=user,
            at=at,
        )
    )


def report_events(
    s: Session, report: Report, offset: int = 0, limit: int | None = None, since: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """A page of the report's history, oldest first, with the workspace's model switches made
    while it was kept (they explain why a re-analysis found other techniques); and how many
    events there are in all (`limit` None: every one, as a reviewed export holds). `since`: only the report's changes after that version (what a
    page open on an older version has not seen)."""
    models = and_(Event.report_id.is_(None), Event.kind == "model", Event.at >= report.created_at)
    where = or_(Event.report_id == report.id, models)
    if since:
        where = and_(Event.report_id == report.id, Event.version > since)
    total = s.scalar(select(func.count()).select_from(Event).where(where)) or 0
    rows = s.scalars(select(Event).where(where).order_by(Event.id).offset(offset).limit(limit))
    return [event_dict(e) for e in rows], total


def workspace_events(s: Session, limit: int = 200) -> list[dict[str, Any]]:
    """Changes of the whole workspace (model switches), newest first."""
    rows = s.scalars(
        select(Event).where(Event.report_id.is_(None)).order_by(Event.id.desc()).limit(limit)
    )
    return [event_dict(e) for e in rows]


def event_dict(e: Event) -> dict[str, Any]:
    return {
        "id": e.id,
        "report": e.report_id,
        "version": e.version,
        "kind": e.kind,
        "subject": e.subject,
        "before": e.before,
        "after": e.after,
        "note": e.note,
        "detail": e.detail,
        "user": e.user,
        "at": reviews.iso(e.at),
    }
