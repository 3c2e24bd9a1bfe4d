"""The reports half of the service layer (`Store` inherits it): reports and their analyses,
metadata, decisions on techniques and indicators, history, comments, drafts, full-text search
and the list's filters and order.

Every write is one short transaction that bumps the report's version and records what changed
(`history`); a write sent with the version it was made on (`expected`) is refused as stale when
what it is about changed since. The review in numbers (accepted, pending …) is kept on the
report's row by the same transaction, so the list reads one row a report.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, case, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session, defer, selectinload
from sqlalchemy.sql import ColumnElement

from mitremap.attack import technique_url
from mitremap.documents import Document
from mitremap.documents.dates import stated_date
from mitremap.training.corpus import LabelledText
from mitremap.web.workspace import history, metadata, reviews
from mitremap.web.workspace.errors import InvalidError, NotFoundError
from mitremap.web.workspace.models import (
    ACTIONS,
    INDICATOR_ACTIONS,
    STATUSES,
    TLP_LEVELS,
    Analysis,
    Comment,
    Decision,
    Draft,
    IdempotencyKey,
    IndicatorDecision,
    Report,
    ReportTag,
    Setting,
    Suggestion,
    utcnow,
)
from mitremap.web.workspace.search import SearchIndex, search_index

if TYPE_CHECKING:
    from mitremap.web.workspace.db import Database

SUGGESTION_FLOOR = 0.2
"""Techniques down to this confidence are kept as suggestions ("show more suggestions")."""
MAX_SUGGESTIONS = 60
MAX_ATTRIBUTIONS = 40  # per technique, the strongest by |weight|
MAX_COMMENT_CHARS = 5000
MAX_DRAFT_CHARS = 5000
MAX_BULK = 500
_TECHNIQUE = re.compile(r"^T\d{4}(\.\d{3})?$")
_DRAFT_KEY = re.compile(
    r"^(technique:T\d{4}(\.\d{3})?|indicator:[a-z0-9_]{1,32}:.{1,360}|add|comment)$"
)

Describe = Mapping[str, tuple[str, tuple[str, ...]]]
"""Technique id → (name, tactic names), for techniques a report's analysis did not suggest."""

_STATUS_ORDER = case({s: i for i, s in enumerate(STATUSES)}, value=Report.status, else_=9)
_TLP_ORDER = case({t: i for i, t in enumerate(TLP_LEVELS)}, value=Report.tlp, else_=9)
SORTS: dict[str, Any] = {
    "updated": Report.updated_at,
    "created": Report.created_at,
    "title": func.lower(Report.title),
    "source": func.lower(Report.source),
    "status": _STATUS_ORDER,
    "tlp": _TLP_ORDER,
    "published": Report.published,
    "accepted": Report.accepted_count,
    "pending": Report.pending_count,
}
"""The list's orders (`sort=title`, `sort=-accepted` for the largest first)."""


@dataclass(frozen=True)
class ReportQuery:
    """A page of the reports list: `q` searches title, text, indicator values and technique
    ids; the others filter; `sort` is one of `SORTS`, with `-` for descending."""

    q: str = ""
    status: str = ""
    tag: str = ""
    tlp: str = ""
    technique: str = ""
    sort: str = "-updated"
    page: int = 1
    per_page: int = 25


@dataclass(frozen=True)
class ReportChanges:
    """What a request changes about a report (None: left as it is; `published=""` clears)."""

    status: str | None = None
    title: str | None = None
    tlp: str | None = None
    tags: list[str] | str | None = None
    source_org: str | None = None
    published: str | None = None


class ReportStore:
    """Reports, analyses, decisions, history, comments and drafts (see the module docstring)."""

    db: Database

    @property
    def search(self) -> SearchIndex:
        return search_index(self.db.kind)

    # ---- adding, reading, changing ------------------------------------------------------------

    def add_report(
        self,
        document: Document,
        analysis: dict[str, Any],
        *,
        source: str,
        user: str,
        model_name: str,
        threshold: float,
        changes: ReportChanges | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Keep a report with its first analysis (`Analysis.to_dict()`) and metadata (the
        publication date, unless given, as the document states it); its detail. An
        `idempotency_key` is kept with it in the same transaction (`report_for_key`)."""
        meta = changes or ReportChanges()
        tlp = metadata.check_tlp(meta.tlp) if meta.tlp else self.default_tlp()
        tags = metadata.clean_tags(meta.tags or [])
        published = (
            metadata.parse_date(meta.published)
            if meta.published is not None
            else stated_date(document.text, document.date)
        )
        now = utcnow()
        with self.db.session() as s:
            report = Report(
                created_at=now,
                updated_at=now,
                title=(document.title or "untitled report")[:300],
                source=source[:2000],
                origin=document.origin[:2000],
                media_type=document.media_type[:100],
                text=document.text,
                created_by=user,
                version=1,
                tlp=tlp,
                source_org=(meta.source_org or "").strip()[:300],
                published=published,
                text_hash=metadata.text_hash(document.text),
                tags=[ReportTag(tag=t) for t in tags],
            )
            s.add(report)
            s.flush()
            row = _analysis_row(report.id, analysis, model_name, threshold)
            s.add(row)
            s.flush()
            self._after_analysis(s, report, row)
            history.record(
                s, report.id, 1, "analysis", "report", "", model_name, user=user, at=now,
                detail=f"from {source[:200]}",
            )  # fmt: skip
            if idempotency_key:
                s.add(IdempotencyKey(user_name=user, key=idempotency_key, report_id=report.id))
            report_id = report.id
        return self.detail(report_id)

    def report_for_key(self, user: str, idempotency_key: str) -> int | None:
        """The report `user` added with this `Idempotency-Key`, if any (and not deleted)."""
        with self.db.session(read=True) as s:
            found = s.scalar(
                select(IdempotencyKey.report_id).where(
                    IdempotencyKey.user_name == user, IdempotencyKey.key == idempotency_key
                )
            )
            return int(found) if found is not None else None

    def add_analysis(
        self,
        report_id: int,
        analysis: dict[str, Any],
        model_name: str,
        threshold: float,
        user: str = "",
    ) -> None:
        """Keep a new analysis of a report (by another model); its decisions stay as they are."""
        now = utcnow()
        with self.db.session() as s:
            version = history.bump(s, report_id, now)
            report = _report(s, report_id)
            before = _latest(s, report_id)
            row = _analysis_row(report.id, analysis, model_name, threshold)
            s.add(row)
            s.flush()
            state = self._after_analysis(s, report, row)
            history.record(
                s, report_id, version, "analysis", "analysis",
                before.model_name if before else "", model_name, user=user, at=now,
                detail=f"{state.count('pending') + state.count('accepted')} techniques at or "
                f"above {threshold}",
            )  # fmt: skip

    def _after_analysis(self, s: Session, report: Report, row: Analysis) -> reviews.Review:
        """What follows a new analysis: the counts on the row, the search entry."""
        state = _review_of(s, report.id, row, {})
        _store_counts(s, report.id, state)
        values = [str(i.get("value", "")) for i in row.indicators if isinstance(i, dict)]
        self.search.put(s.connection(), report.id, report.title, report.text, values)
        return state

    def report_document(self, report_id: int) -> Document:
        with self.db.session(read=True) as s:
            r = _report(s, report_id)
            return Document(r.text, r.title, r.origin, r.media_type)

    def version(self, report_id: int) -> int:
        """The report's version (its ETag), without reading the report."""
        with self.db.session(read=True) as s:
            found = s.scalar(select(Report.version).where(Report.id == report_id))
            if found is None:
                raise NotFoundError(f"no report {report_id}")
            return int(found)

    def list_reports(self, query: ReportQuery | None = None, **fields: Any) -> dict[str, Any]:
        """A page of report summaries (see `ReportQuery`; or its fields as keywords)."""
        query = query or ReportQuery(**fields)
        ids = self._filtered(query)
        key, descending = query.sort.lstrip("-"), query.sort.startswith("-")
        if key not in SORTS:
            raise InvalidError(f"unknown order {query.sort!r}; use one of: {', '.join(SORTS)}")
        column = SORTS[key]
        order = [column.desc() if descending else column.asc()]
        order.append(Report.id.desc() if descending else Report.id.asc())
        with self.db.session(read=True) as s:
            total = s.scalar(select(func.count()).select_from(ids.subquery())) or 0
            rows = s.scalars(
                select(Report)
                .where(Report.id.in_(ids))
                .options(defer(Report.text), selectinload(Report.tags))
                .order_by(*order)
                .offset((query.page - 1) * query.per_page)
                .limit(query.per_page)
            ).all()
            items = [_summary(r) for r in rows]
        return {"items": items, "total": total, "page": query.page, "per_page": query.per_page}

    def _filtered(self, query: ReportQuery) -> Select[int]:
        """The ids of the reports a query asks for."""
        if query.status and query.status not in STATUSES:
            raise InvalidError(
                f"unknown status {query.status!r}; use one of: {', '.join(STATUSES)}"
            )
        found = select(Report.id)
        if query.status:
            found = found.where(Report.status == query.status)
        if query.tlp:
            found = found.where(Report.tlp == metadata.check_tlp(query.tlp))
        if query.tag.strip():
            found = found.where(
                exists().where(
                    ReportTag.report_id == Report.id,
                    func.lower(ReportTag.tag) == " ".join(query.tag.split()).lower(),
                )
            )
        if query.technique.strip():
            found = found.where(_shows_technique(query.technique.strip()))
        q = query.q.strip()[:200]
        if q:
            like = _like(q)
            matches: list[ColumnElement[bool]] = [Report.title.ilike(f"%{like}%", escape="\\")]
            text_match = self.search.matching(q, Report.id)
            if text_match is not None:
                matches.append(text_match)
            if re.match(r"^[Tt]\d{4}(\.\d{0,3})?$", q):
                matches.append(_shows_technique(q))
            found = found.where(or_(*matches))
        return found

    def summary(self, report_id: int) -> dict[str, Any]:
        with self.db.session(read=True) as s:
            return _summary(_report(s, report_id))

    def detail(self, report_id: int, describe: Describe | None = None) -> dict[str, Any]:
        """Everything the review page shows about one report."""
        describe = describe or {}
        with self.db.session(read=True) as s:
            report = _report(s, report_id)
            analysis = _latest(s, report.id)
            state = _review_of(s, report.id, analysis, describe)
            text = report.text
            out = _summary(report) | {
                "origin": report.origin,
                "media_type": report.media_type,
                "text": text,
                "threshold": analysis.threshold if analysis else None,
                "model": (analysis.model_card if analysis else {})
                | {"name": analysis.model_name if analysis else ""},
                "analysed_at": reviews.iso(analysis.created_at) if analysis else None,
                "suggestions": [_suggestion_dict(t, text, describe) for t in state.techniques],
                "added": [_added_dict(a, describe) for a in state.added],
                "indicators": analysis.indicators if analysis else [],
                "indicator_review": [
                    _indicator_dict(r, _source_url(report))
                    for r in _indicator_state(s, report.id, analysis)
                ],
                "duplicates": _duplicates(s, report),
                "comments": s.scalar(
                    select(func.count(Comment.id)).where(Comment.report_id == report.id)
                ),
            }
        return out

    def update_report(
        self,
        report_id: int,
        changes: ReportChanges,
        *,
        user: str = "",
        expected: int | None = None,
    ) -> dict[str, Any]:
        """Change the status, title or metadata; each field that changes is a line of history.
        Made on version `expected`, a field changed since is stale (409)."""
        wanted = _checked(changes)
        now = utcnow()
        with self.db.session() as s:
            version = history.bump(s, report_id, now)
            report = _report(s, report_id)
            current = _fields(report)
            changed = {k: v for k, v in wanted.items() if current[k] != v}
            history.check_fresh(
                s, report_id, list(changed), expected, lambda: {"report": _summary(report)}
            )
            for field, value in changed.items():
                kind = "status" if field == "status" else "metadata"
                history.record(
                    s, report_id, version, kind, field, _shown(current[field]), _shown(value),
                    user=user, at=now,
                )  # fmt: skip
                _apply(report, field, value)
            if "title" in changed:
                self._reindex_title(s, report)
            s.flush()
            return _summary(report)

    def _reindex_title(self, s: Session, report: Report) -> None:
        analysis = _latest(s, report.id)
        values = [str(i.get("value", "")) for i in (analysis.indicators if analysis else []) if i]
        self.search.put(s.connection(), report.id, report.title, report.text, values)

    def delete_report(self, report_id: int) -> None:
        with self.db.session() as s:
            s.delete(_report(s, report_id))
            self.search.drop(s.connection(), [report_id])

    def bulk(self, ids: list[int], action: str, user: str) -> dict[str, Any]:
        """Mark several reports reviewed, or delete them: `{"done", "missing"}`."""
        if action not in ("mark_reviewed", "delete"):
            raise InvalidError(f"unknown bulk action {action!r}; use mark_reviewed or delete")
        if not 0 < len(ids) <= MAX_BULK:
            raise InvalidError(f"select between 1 and {MAX_BULK} reports")
        done, missing = [], []
        for report_id in dict.fromkeys(ids):
            try:
                if action == "delete":
                    self.delete_report(report_id)
                else:
                    self.update_report(report_id, ReportChanges(status="reviewed"), user=user)
            except NotFoundError:
                missing.append(report_id)
            else:
                done.append(report_id)
        return {"action": action, "done": done, "missing": missing}

    # ---- decisions ----------------------------------------------------------------------------

    def decide(
        self,
        report_id: int,
        *,
        technique: str,
        action: str,
        start: int | None,
        end: int | None,
        note: str,
        user: str,
        known: Callable[[str], bool],
        expected: int | None = None,
    ) -> dict[str, Any]:
        """Record one decision (an inserted row); the first moves a `new` report to
        `in_review`. Answers `{"decision", "report"}`; stale (409) when made on version
        `expected` and the technique was decided on since.

        `add` needs a technique the model `known`s; accept, reject and clear also take one
        the report's latest analysis suggested or a decision named (after a model switch, a
        technique the new model lacks can still be decided on, or cleared)."""
        technique = _check_decision(technique, action, start, end)
        subject = f"technique:{technique}"
        now = utcnow()
        with self.db.session() as s:
            length = s.scalar(select(func.length(Report.text)).where(Report.id == report_id))
            if length is None:
                raise NotFoundError(f"no report {report_id}")
            if not known(technique) and (
                action == "add" or not _on_report(s, report_id, technique)
            ):
                raise InvalidError(f"{technique!r} is not an ATT&CK technique this model knows")
            if start is not None and end is not None and not 0 <= start < end <= length:
                raise InvalidError(f"the passage {start}–{end} is outside the text (0–{length})")
            version = history.bump(s, report_id, now)
            suggestions, rows, threshold = _state_rows(s, report_id)
            before = reviews.review(suggestions, rows, threshold)
            history.check_fresh(
                s, report_id, [subject], expected, lambda: _technique_now(before, technique)
            )
            row = Decision(
                report_id=report_id, technique=technique, action=action, start=start,
                end=end, note=note[:2000], user=user, at=now,
            )  # fmt: skip
            s.add(row)
            s.flush()
            after = reviews.review(suggestions, [*rows, _row(row)], threshold)
            history.record(
                s, report_id, version, "decision", subject,
                reviews.technique_state(before, technique),
                reviews.technique_state(after, technique),
                user=user, at=now, note=row.note, detail=_what(action, start, end),
            )  # fmt: skip
            self._after_decision(s, report_id, version, user, "add" if action == "add" else subject)
            _store_counts(s, report_id, after)
            decision = {"id": row.id, **_row(row).to_dict()}
            return {"decision": decision, "report": _summary(_report(s, report_id, text=False))}

    def _after_decision(
        self, s: Session, report_id: int, version: int, user: str, key: str
    ) -> None:
        """The draft the decision was typed in is spent; a `new` report is now in review."""
        s.execute(
            delete(Draft).where(Draft.report_id == report_id, Draft.user == user, Draft.key == key)
        )
        moved = s.execute(
            update(Report)
            .where(Report.id == report_id, Report.status == "new")
            .values(status="in_review")
        )
        if getattr(moved, "rowcount", 0):
            history.record(
                s, report_id, version, "status", "status", "new", "in_review",
                user=user, at=utcnow(), detail="the first decision",
            )  # fmt: skip

    def decide_indicator(
        self,
        report_id: int,
        *,
        type: str,
        value: str,
        action: str,
        note: str,
        user: str,
        expected: int | None = None,
    ) -> dict[str, Any]:
        """Accept an indicator value of the report, reject it ("not an indicator": context),
        or clear the verdict. Answers `{"decision", "indicator", "report"}`."""
        if action not in INDICATOR_ACTIONS:
            raise InvalidError(
                f"unknown action {action!r}; use one of: {', '.join(INDICATOR_ACTIONS)}"
            )
        subject = f"indicator:{type}:{value}"[:400]  # as the history keeps it
        now = utcnow()
        with self.db.session() as s:
            version = history.bump(s, report_id, now)
            analysis = _latest(s, report_id)
            entries = {(r.type, r.value): r for r in _indicator_state(s, report_id, analysis)}
            entry = entries.get((type, value))
            if entry is None:
                raise InvalidError(f"{type} {value!r} is not an indicator of this report")
            history.check_fresh(
                s, report_id, [subject], expected, lambda: {"indicator": _indicator_dict(entry)}
            )
            before = entry.state
            row = IndicatorDecision(
                report_id=report_id, type=type, value=value, action=action, note=note[:2000],
                user=user, at=now,
            )  # fmt: skip
            s.add(row)
            s.flush()
            entry.decision = None if action == "clear" else _indicator_row(row)
            history.record(
                s, report_id, version, "indicator", subject, before, entry.state,
                user=user, at=now, note=row.note, detail=action,
            )  # fmt: skip
            self._after_decision(s, report_id, version, user, subject)
            return {
                "decision": {"id": row.id, **_indicator_row(row).to_dict()},
                "indicator": _indicator_dict(entry),
                "report": _summary(_report(s, report_id, text=False)),
            }

    def decisions(self, report_id: int) -> list[dict[str, Any]]:
        with self.db.session(read=True) as s:
            _report(s, report_id, text=False)
            return [{"id": d.id, **d.to_dict()} for d in _decision_rows(s, report_id)]

    def decisions_page(self, report_id: int, page: int = 1, per_page: int = 100) -> dict[str, Any]:
        """A page of the report's decisions, oldest first: `items`, `total`, `page`,
        `per_page`."""
        with self.db.session(read=True) as s:
            _report(s, report_id, text=False)
            total = s.scalar(
                select(func.count()).select_from(Decision).where(Decision.report_id == report_id)
            )
            rows = _decision_rows(s, report_id, offset=(page - 1) * per_page, limit=per_page)
            items = [{"id": d.id, **d.to_dict()} for d in rows]
        return {"items": items, "total": total or 0, "page": page, "per_page": per_page}

    # ---- history, comments, drafts ------------------------------------------------------------

    def history(
        self, report_id: int, page: int = 1, per_page: int = 200, since: int = 0
    ) -> dict[str, Any]:
        """A page of the report's changes, oldest first (and the model switches meanwhile):
        `items`, `total`, `page`, `per_page`; `since` a version: only the changes after it."""
        with self.db.session(read=True) as s:
            report = _report(s, report_id, text=False)
            items, total = history.report_events(
                s, report, offset=(page - 1) * per_page, limit=per_page, since=since
            )
        return {"items": items, "total": total, "page": page, "per_page": per_page}

    def workspace_history(self) -> list[dict[str, Any]]:
        with self.db.session(read=True) as s:
            return history.workspace_events(s)

    def record_model_switch(self, user: str, before: str, after: str) -> None:
        """A switch of the active model: it changes every user's next analysis."""
        with self.db.session() as s:
            history.record(s, None, 0, "model", "model", before, after, user=user, at=utcnow())

    def comments(self, report_id: int) -> list[dict[str, Any]]:
        with self.db.session(read=True) as s:
            _report(s, report_id)
            rows = s.scalars(
                select(Comment).where(Comment.report_id == report_id).order_by(Comment.id)
            )
            return [_comment_dict(c) for c in rows]

    def add_comment(self, report_id: int, text: str, user: str) -> dict[str, Any]:
        text = text.strip()
        if not text:
            raise InvalidError("the comment is empty")
        if len(text) > MAX_COMMENT_CHARS:
            raise InvalidError(f"a comment is at most {MAX_COMMENT_CHARS} characters")
        now = utcnow()
        with self.db.session() as s:
            version = history.bump(s, report_id, now)
            row = Comment(report_id=report_id, text=text, user=user, at=now)
            s.add(row)
            s.flush()
            history.record(
                s, report_id, version, "comment", "comment", "", _shown(text, 200),
                user=user, at=now,
            )  # fmt: skip
            s.execute(
                delete(Draft).where(
                    Draft.report_id == report_id, Draft.user == user, Draft.key == "comment"
                )
            )
            return _comment_dict(row)

    def drafts(self, report_id: int, user: str) -> dict[str, str]:
        """The user's unsent notes and comment on the report, by key."""
        with self.db.session(read=True) as s:
            _report(s, report_id)
            rows = s.scalars(select(Draft).where(Draft.report_id == report_id, Draft.user == user))
            return {d.key: d.text for d in rows}

    def save_draft(self, report_id: int, user: str, key: str, text: str) -> None:
        """Keep (or, empty, forget) what the user typed under `key`: `technique:T1059`,
        `indicator:TYPE:VALUE`, `add` (the note of a technique to add) or `comment`."""
        if not _DRAFT_KEY.match(key):
            raise InvalidError(f"{key[:60]!r} is not a draft key")
        if len(text) > MAX_DRAFT_CHARS:
            raise InvalidError(f"a draft is at most {MAX_DRAFT_CHARS} characters")
        with self.db.session() as s:
            _report(s, report_id)
            found = s.scalar(
                select(Draft).where(
                    Draft.report_id == report_id, Draft.user == user, Draft.key == key
                )
            )
            if not text.strip():
                if found is not None:
                    s.delete(found)
            elif found is None:
                s.add(Draft(report_id=report_id, user=user, key=key, text=text, at=utcnow()))
            else:
                found.text, found.at = text, utcnow()

    # ---- settings, exports, training text -----------------------------------------------------

    def default_tlp(self) -> str:
        with self.db.session(read=True) as s:
            found = s.get(Setting, metadata.DEFAULT_TLP_SETTING)
            return found.value if found else metadata.DEFAULT_TLP

    def set_default_tlp(self, tlp: str, user: str) -> str:
        tlp = metadata.check_tlp(tlp)
        with self.db.session() as s:
            before = s.get(Setting, metadata.DEFAULT_TLP_SETTING)
            old = before.value if before else metadata.DEFAULT_TLP
            s.merge(Setting(key=metadata.DEFAULT_TLP_SETTING, value=tlp))
            if old != tlp:
                history.record(
                    s, None, 0, "metadata", "default_tlp", old, tlp, user=user, at=utcnow()
                )
        return tlp

    def reviewed_result(
        self, report_id: int, describe: Describe, *, keep_rejected: bool = False
    ) -> reviews.ReviewedResult:
        """The reviewed report as the exporters read it: accepted and added techniques, the
        indicators with their verdicts (rejected ones only with `keep_rejected`), the metadata,
        every decision, the history and comments."""
        with self.db.session(read=True) as s:
            report = _report(s, report_id)
            analysis = _latest(s, report.id)
            state = _review_of(s, report.id, analysis, describe)
            published = report.published.isoformat() if report.published else ""
            record = reviews.ReviewRecord(
                status=report.status,
                decisions=_decision_rows(s, report.id),
                indicator_decisions=_indicator_rows(s, report.id),
                history=history.report_events(s, report)[0],
                comments=[_comment_dict(c) for c in _comment_rows(s, report.id)],
                metadata={
                    "tlp": report.tlp,
                    "tags": [t.tag for t in report.tags],
                    "source_org": report.source_org,
                    "published": published or None,
                },
                keep_rejected=keep_rejected,
            )
            return reviews.reviewed_result(
                Document(
                    report.text,
                    report.title,
                    report.origin,
                    report.media_type,
                    # its publication date; else exports are dated when it was added
                    date=published or reviews.iso(report.created_at),
                ),
                state,
                record=record,
                model=analysis.model_card if analysis else {},
                threshold=analysis.threshold if analysis else 0.0,
                window=analysis.window if analysis else 3,
                indicators=analysis.indicators if analysis else [],
                describe=describe,
            )

    def reviewed_passages(self) -> Iterator[LabelledText]:
        """Every decided passage of every report, as labelled training text."""
        for review in self.report_reviews():
            yield from review.passages

    def report_reviews(self, ids: Iterable[int] | None = None) -> Iterator[reviews.ReportReview]:
        """The review of each report with decisions (or of the reports `ids`), one
        transaction each, in id order; reports deleted meanwhile are skipped."""
        if ids is None:
            with self.db.session(read=True) as s:
                ids = s.scalars(
                    select(Report.id)
                    .where(exists().where(Decision.report_id == Report.id))
                    .order_by(Report.id)
                ).all()
        for report_id in ids:
            with self.db.session(read=True) as s:
                report = s.get(Report, report_id)
                if report is None:
                    continue
                state = _review_of(s, report.id, _latest(s, report.id), {})
                yield reviews.report_review(
                    report.text, state, report.id, report.title, report.status
                )

    def review_signatures(self) -> dict[int, tuple[int, int, str, int]]:
        """Per report with decisions: (decisions, latest decision id, status, latest analysis
        id) — what changes when its review changes (the review memory re-reads only those)."""
        with self.db.session(read=True) as s:
            latest = dict(
                s.execute(
                    select(Analysis.report_id, func.max(Analysis.id)).group_by(Analysis.report_id)
                ).all()
            )
            rows = s.execute(
                select(Decision.report_id, func.count(), func.max(Decision.id), Report.status)
                .join(Report, Report.id == Decision.report_id)
                .group_by(Decision.report_id, Report.status)
            )
            return {
                int(r): (int(n), int(m), str(st), int(latest.get(r) or 0)) for r, n, m, st in rows
            }

    def report_texts(self, ids: Iterable[int]) -> dict[int, str]:
        wanted = list(ids)
        with self.db.session(read=True) as s:
            rows = s.execute(select(Report.id, Report.text).where(Report.id.in_(wanted)))
            return {int(r): str(t) for r, t in rows}

    def first_confidences(self, ids: Iterable[int]) -> dict[int, dict[str, float]]:
        """Each report's first analysis (the one its analysts reviewed): technique →
        confidence, down to the suggestion floor."""
        wanted = list(ids)
        with self.db.session(read=True) as s:
            first = (
                select(func.min(Analysis.id))
                .where(Analysis.report_id.in_(wanted))
                .group_by(Analysis.report_id)
            )
            rows = s.execute(
                select(Analysis.report_id, Suggestion.technique, Suggestion.confidence)
                .join(Suggestion, Suggestion.analysis_id == Analysis.id)
                .where(Analysis.id.in_(first))
            )
            out: dict[int, dict[str, float]] = {r: {} for r in wanted}
            for report, technique, value in rows:
                out[int(report)][str(technique)] = float(value)
            return out

    def passing(self, report_id: int, threshold: float) -> set[str]:
        """The techniques the report's latest analysis found at or above `threshold`."""
        with self.db.session(read=True) as s:
            _report(s, report_id, text=False)
            analysis = _latest(s, report_id)
            if analysis is None:
                return set()
            return {x.technique for x in analysis.suggestions if x.confidence >= threshold}


# ---- checks -----------------------------------------------------------------------------------


def _check_decision(technique: str, action: str, start: int | None, end: int | None) -> str:
    technique = technique.strip().upper()
    if action not in ACTIONS:
        raise InvalidError(f"unknown action {action!r}; use one of: {', '.join(ACTIONS)}")
    if not _TECHNIQUE.match(technique):
        raise InvalidError(f"{technique!r} is not an ATT&CK technique this model knows")
    if (start is None) != (end is None):
        raise InvalidError("give both start and end of the passage, or neither")
    if action == "add" and start is None:
        raise InvalidError("add needs the passage: its start and end")
    return technique


def _checked(changes: ReportChanges) -> dict[str, Any]:
    """The fields a change sets, checked and normalised."""
    out: dict[str, Any] = {}
    if changes.status is not None:
        if changes.status not in STATUSES:
            raise InvalidError(
                f"unknown status {changes.status!r}; use one of: {', '.join(STATUSES)}"
            )
        out["status"] = changes.status
    if changes.title is not None:
        if not changes.title.strip():
            raise InvalidError("the title is empty")
        out["title"] = changes.title.strip()[:300]
    if changes.tlp is not None:
        out["tlp"] = metadata.check_tlp(changes.tlp)
    if changes.tags is not None:
        out["tags"] = metadata.clean_tags(changes.tags)
    if changes.source_org is not None:
        out["source_org"] = " ".join(changes.source_org.split())[:300]
    if changes.published is not None:
        out["published"] = metadata.parse_date(changes.published)
    return out


def _fields(report: Report) -> dict[str, Any]:
    return {
        "status": report.status,
        "title": report.title,
        "tlp": report.tlp,
        "tags": [t.tag for t in report.tags],
        "source_org": report.source_org,
        "published": report.published,
    }


def _apply(report: Report, field: str, value: Any) -> None:
    if field == "tags":
        report.tags = [ReportTag(tag=t) for t in value]
    else:
        setattr(report, field, value)


def _shown(value: Any, limit: int = 2000) -> str:
    """A field's value as the history shows it."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(value)
    if isinstance(value, date):
        return value.isoformat()
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _what(action: str, start: int | None, end: int | None) -> str:
    return action if start is None else f"{action} the passage {start}–{end}"


def _like(q: str) -> str:
    return q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# ---- queries ----------------------------------------------------------------------------------


def _report(s: Session, report_id: int, *, text: bool = True) -> Report:
    """The report's row (`text=False`: without its text, which a summary does not need)."""
    report = s.get(Report, report_id, options=() if text else [defer(Report.text)])
    if report is None:
        raise NotFoundError(f"no report {report_id}")
    return report


def _latest(s: Session, report_id: int) -> Analysis | None:
    return s.scalar(
        select(Analysis).where(Analysis.report_id == report_id).order_by(Analysis.id.desc())
    )


def _shows_technique(q: str) -> ColumnElement[bool]:
    """Reports that show a technique (or one under an id prefix): accepted or added by an
    analyst, or suggested at or above the threshold."""
    prefix = f"{_like(q.upper())}%"
    return or_(
        exists().where(
            Decision.report_id == Report.id,
            Decision.technique.like(prefix, escape="\\"),
            Decision.action.in_(("accept", "add")),
        ),
        exists().where(
            Analysis.report_id == Report.id,
            Suggestion.analysis_id == Analysis.id,
            Suggestion.technique.like(prefix, escape="\\"),
            Suggestion.confidence >= Analysis.threshold,
        ),
    )


def _on_report(s: Session, report_id: int, technique: str) -> bool:
    """Whether the report's latest analysis suggested `technique` or a decision names it."""
    latest = (
        select(Analysis.id)
        .where(Analysis.report_id == report_id)
        .order_by(Analysis.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    suggested = exists().where(Suggestion.analysis_id == latest, Suggestion.technique == technique)
    decided = exists().where(Decision.report_id == report_id, Decision.technique == technique)
    return bool(s.scalar(select(or_(suggested, decided))))


def _duplicates(s: Session, report: Report) -> list[dict[str, Any]]:
    """Other reports with the same normalised text, or read from the same URL."""
    same_text = Report.text_hash == report.text_hash
    conditions = [same_text] if report.text_hash else []
    if report.origin.startswith(("http://", "https://")):
        conditions.append(Report.origin == report.origin)
    if not conditions:
        return []
    rows = s.execute(
        select(Report.id, Report.title, Report.created_at, Report.created_by, same_text)
        .where(Report.id != report.id, or_(*conditions))
        .order_by(Report.id)
        .limit(5)
    )
    return [
        {
            "id": i,
            "title": title,
            "created_at": reviews.iso(at),
            "created_by": by,
            "reason": "same text" if text else "same URL",
        }
        for i, title, at, by, text in rows
    ]


def _comment_rows(s: Session, report_id: int) -> list[Comment]:
    return list(
        s.scalars(select(Comment).where(Comment.report_id == report_id).order_by(Comment.id))
    )


def _indicator_rows(s: Session, report_id: int) -> list[reviews.IndicatorDecisionRow]:
    rows = s.scalars(
        select(IndicatorDecision)
        .where(IndicatorDecision.report_id == report_id)
        .order_by(IndicatorDecision.id)
    )
    return [_indicator_row(d) for d in rows]


def _indicator_state(
    s: Session, report_id: int, analysis: Analysis | None
) -> list[reviews.IndicatorReview]:
    found = analysis.indicators if analysis else []
    return reviews.indicator_review(found, _indicator_rows(s, report_id))


def _review_rows(
    s: Session, report_id: int, analysis: Analysis | None
) -> tuple[list[reviews.SuggestionRow], list[reviews.DecisionRow], float]:
    suggestions = [
        reviews.SuggestionRow(
            x.technique,
            x.technique_name,
            tuple(x.tactics),
            x.confidence,
            tuple((e["start"], e["end"], e["confidence"]) for e in x.evidence),
            tuple((a["start"], a["end"], a["weight"]) for a in x.attributions),
            tuple(e.get("reviewed") for e in x.evidence),
        )
        for x in (analysis.suggestions if analysis else ())
    ]
    rows = _decision_rows(s, report_id, in_force=True)
    return suggestions, rows, analysis.threshold if analysis else 1.0


def _state_rows(
    s: Session, report_id: int
) -> tuple[list[reviews.SuggestionRow], list[reviews.DecisionRow], float]:
    """What a technique's state needs, and nothing more (no attributions, no model card; plain
    rows, not ORM objects): a decision is answered in a few milliseconds."""
    latest = s.execute(
        select(Analysis.id, Analysis.threshold)
        .where(Analysis.report_id == report_id)
        .order_by(Analysis.id.desc())
        .limit(1)
    ).first()
    suggestions = []
    if latest is not None:
        found = s.execute(
            select(
                Suggestion.technique,
                Suggestion.technique_name,
                Suggestion.tactics,
                Suggestion.confidence,
                Suggestion.evidence,
            ).where(Suggestion.analysis_id == latest[0])
        )
        suggestions = [
            reviews.SuggestionRow(
                t,
                name,
                tuple(tactics),
                c,
                tuple((e["start"], e["end"], e["confidence"]) for e in ev),
            )
            for t, name, tactics, c, ev in found
        ]
    rows = _decision_rows(s, report_id, in_force=True)
    return suggestions, rows, latest[1] if latest else 1.0


_DECISION_COLUMNS = (
    Decision.id,
    Decision.technique,
    Decision.action,
    Decision.start,
    Decision.end,
    Decision.note,
    Decision.user,
    Decision.at,
)


def _decision_rows(
    s: Session,
    report_id: int,
    *,
    in_force: bool = False,
    offset: int = 0,
    limit: int | None = None,
) -> list[reviews.DecisionRow]:
    """A report's decisions, oldest first, read as plain rows. `in_force`: only what
    `reviews.in_force` can keep — per technique and passage the latest add, the latest accept
    or reject and the latest clear — so a long history costs one grouped query, not every
    row (4,000 decisions on one report: the review 106 → 63 ms, a decision 262 → 47 ms)."""
    query = select(*_DECISION_COLUMNS).where(Decision.report_id == report_id)
    if in_force:
        latest = (
            select(func.max(Decision.id))
            .where(Decision.report_id == report_id)
            .group_by(
                Decision.technique,
                Decision.start,
                Decision.end,
                Decision.action == "add",
                Decision.action == "clear",
            )
        )
        query = query.where(Decision.id.in_(latest))
    query = query.order_by(Decision.id).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return [reviews.DecisionRow(*row) for row in s.execute(query)]


def _review_of(
    s: Session, report_id: int, analysis: Analysis | None, describe: Describe
) -> reviews.Review:
    suggestions, rows, threshold = _review_rows(s, report_id, analysis)
    return reviews.review(suggestions, rows, threshold, describe)


def _store_counts(s: Session, report_id: int, state: reviews.Review) -> None:
    counts = reviews.summary_counts(state)
    s.execute(
        update(Report)
        .where(Report.id == report_id)
        .values(
            accepted_count=counts["accepted"],
            pending_count=counts["pending"],
            rejected_count=counts["rejected"],
            added_count=counts["added"],
            technique_ids=counts["techniques"],
        )
    )


def _technique_now(state: reviews.Review, technique: str) -> dict[str, Any]:
    """How a technique stands, for a stale decision's answer."""
    out: dict[str, Any] = {"technique": technique}
    out["state"] = reviews.technique_state(state, technique)
    for t in state.techniques:
        if t.technique == technique and t.decision is not None:
            out["decision"] = _decision_brief(t.decision)
    return out


# ---- rows to answers --------------------------------------------------------------------------


def _summary(report: Report) -> dict[str, Any]:
    return {
        "id": report.id,
        "title": report.title,
        "source": report.source,
        "created_at": reviews.iso(report.created_at),
        "updated_at": reviews.iso(report.updated_at),
        "status": report.status,
        "version": report.version,
        "accepted": report.accepted_count,
        "pending": report.pending_count,
        "rejected": report.rejected_count,
        "added": report.added_count,
        "techniques": list(report.technique_ids or []),
        "tlp": report.tlp,
        "tags": [t.tag for t in report.tags],
        "source_org": report.source_org,
        "published": report.published.isoformat() if report.published else None,
    }


def _row(d: Decision) -> reviews.DecisionRow:
    return reviews.DecisionRow(d.id, d.technique, d.action, d.start, d.end, d.note, d.user, d.at)


def _indicator_row(d: IndicatorDecision) -> reviews.IndicatorDecisionRow:
    return reviews.IndicatorDecisionRow(d.id, d.type, d.value, d.action, d.note, d.user, d.at)


def _analysis_row(
    report_id: int, data: dict[str, Any], model_name: str, threshold: float
) -> Analysis:
    """An analysis row with its suggestions, from `Analysis.to_dict()` (run at the floor)."""
    row = Analysis(
        report_id=report_id,
        model_name=model_name[:200],
        model_card=dict(data.get("model") or {}),
        threshold=threshold,
        window=int(data.get("window") or 3),
        indicators=list(data.get("indicators") or []),
    )
    for t in list(data.get("techniques") or [])[:MAX_SUGGESTIONS]:
        attributions = sorted(t.get("attributions") or [], key=lambda a: -abs(a["weight"]))
        row.suggestions.append(
            Suggestion(
                technique=t["technique"],
                technique_name=t.get("technique_name", "")[:300],
                tactics=[str(x) for x in t.get("tactics") or []],
                confidence=float(t.get("confidence_score", 0.0)),
                evidence=[
                    {"start": e["start"], "end": e["end"], "confidence": e["confidence"]}
                    | _reviewed_at(e, t.get("reviewed") or [])
                    for e in t.get("evidence") or []
                ],
                attributions=[
                    {"start": a["start"], "end": a["end"], "weight": round(a["weight"], 5)}
                    for a in sorted(attributions[:MAX_ATTRIBUTIONS], key=lambda a: a["start"])
                ],
            )
        )
    return row


def _reviewed_at(evidence: dict[str, Any], reviewed: list[dict[str, Any]]) -> dict[str, Any]:
    """Where an evidence passage came from the review memory: the closest reviewed passage it
    overlaps, and who accepted it in which report (shown beside the evidence)."""
    matches = [
        r
        for r in reviewed
        if r.get("action") == "accepted"
        and r["start"] < evidence["end"]
        and evidence["start"] < r["end"]
    ]
    if not matches:
        return {}
    best = max(matches, key=lambda r: r.get("similarity", 0.0))
    keys = ("action", "user", "report", "title", "at", "similarity")
    return {"reviewed": {k: best[k] for k in keys if k in best}}


def _parent(technique: str, describe: Describe) -> dict[str, Any]:
    """A sub-technique's parent (id and name), for the matrix to fold it under."""
    if "." not in technique:
        return {}
    parent = technique.split(".")[0]
    return {"parent": parent, "parent_name": describe.get(parent, (parent, ()))[0]}


def _suggestion_dict(t: reviews.TechniqueReview, text: str, describe: Describe) -> dict[str, Any]:
    s = t.suggestion
    return {
        "technique": s.technique,
        "technique_name": s.technique_name,
        "tactics": list(s.tactics),
        "url": technique_url(s.technique),
        "confidence": round(s.confidence, 4),
        "above_threshold": t.above_threshold,
        "state": t.state,
        "evidence": [
            {"start": a, "end": b, "text": text[a:b], "confidence": round(c, 4)}
            | ({"reviewed": s.reviewed[i]} if i < len(s.reviewed) and s.reviewed[i] else {})
            for i, (a, b, c) in enumerate(s.evidence)
        ],
        "attributions": [{"start": a, "end": b, "weight": w} for a, b, w in s.attributions],
        "decision": _decision_brief(t.decision) if t.decision else None,
        "passages": [{"start": p.start, "end": p.end, **_decision_brief(p)} for p in t.passages],
        **_parent(s.technique, describe),
    }


def _decision_brief(d: reviews.DecisionRow) -> dict[str, Any]:
    return {"action": d.action, "note": d.note, "user": d.user, "at": reviews.iso(d.at)}


def _added_dict(a: reviews.DecisionRow, describe: Describe) -> dict[str, Any]:
    name, tactics = describe.get(a.technique, (a.technique, ()))
    return {
        "id": a.id,
        "technique": a.technique,
        "technique_name": name,
        "tactics": list(tactics),
        "url": technique_url(a.technique),
        "start": a.start,
        "end": a.end,
        "note": a.note,
        "user": a.user,
        "at": reviews.iso(a.at),
        **_parent(a.technique, describe),
    }


def _source_url(report: Report) -> str | None:
    return report.origin if report.origin.startswith(("http://", "https://")) else None


def _indicator_dict(r: reviews.IndicatorReview, source: str | None = None) -> dict[str, Any]:
    """An indicator as the page shows it; `benign`: why the lists call it context (the page
    pre-marks it so; an analyst's verdict overrides it), or None."""
    from mitremap.iocs.benign import benign_reason

    d = r.decision
    private = any(o.get("private") for o in r.occurrences)
    return {
        "type": r.type,
        "value": r.value,
        "occurrences": r.occurrences,
        "state": r.state,
        "benign": benign_reason({"type": r.type, "value": r.value, "private": private}, source),
        "decision": None
        if d is None
        else {"action": d.action, "note": d.note, "user": d.user, "at": reviews.iso(d.at)},
    }


def _comment_dict(c: Comment) -> dict[str, Any]:
    return {"id": c.id, "text": c.text, "user": c.user, "at": reviews.iso(c.at)}
