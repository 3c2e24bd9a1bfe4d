"""The workspace's service layer: every read and write of the database goes through `Store`.

Answers are plain dicts in the REST API's shapes (`summary`, `detail`, decisions, jobs), so
the API module only routes and checks permissions. Writes are short transactions; a decision
is one inserted row plus a conditional status update, never a read-modify-write of a blob.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import exists, func, or_, select, text, update
from sqlalchemy.orm import Session, defer
from sqlalchemy.sql import ColumnElement

from mitremap.attack import technique_url
from mitremap.documents import Document
from mitremap.training.corpus import LabelledText
from mitremap.web.workspace import reviews
from mitremap.web.workspace.accounts import Accounts
from mitremap.web.workspace.db import Database
from mitremap.web.workspace.errors import ConflictError, InvalidError, NotFoundError
from mitremap.web.workspace.models import (
    ACTIONS,
    STATUSES,
    Analysis,
    Decision,
    IdempotencyKey,
    Job,
    Report,
    Setting,
    Suggestion,
    utcnow,
)

MAX_SUGGESTIONS = 60
MAX_ATTRIBUTIONS = 40  # per technique, the strongest by |weight|
_TECHNIQUE = re.compile(r"^T\d{4}(\.\d{3})?$")

Describe = Mapping[str, tuple[str, tuple[str, ...]]]
"""Technique id → (name, tactic names), for techniques a report's analysis did not suggest."""


# PostgreSQL advisory lock that serialises starting a retraining job (SQLite's BEGIN IMMEDIATE
# already does)
RETRAIN_LOCK = 0x6D6D7274


class Store(Accounts):
    """Reports, analyses, decisions, jobs and settings; users, sessions and tokens come
    from `accounts.Accounts`."""

    def __init__(self, database: Database) -> None:
        self.db = database

    # ---- reports ------------------------------------------------------------------------

    def add_report(
        self,
        document: Document,
        analysis: dict[str, Any],
        *,
        source: str,
        user: str,
        model_name: str,
        threshold: float,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Keep a report with its first analysis (`Analysis.to_dict()`); its detail. An
        `idempotency_key` is kept with it in the same transaction (`report_for_key`)."""
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
            )
            s.add(report)
            s.flush()
            s.add(_analysis_row(report.id, analysis, model_name, threshold))
            if idempotency_key:
                s.add(IdempotencyKey(user_name=user, key=idempotency_key, report_id=report.id))
            report_id = report.id
        return self.detail(report_id)

    def report_for_key(self, user: str, idempotency_key: str) -> int | None:
        """The report `user` added with this `Idempotency-Key`, if any (and not deleted)."""
        with self.db.reading() as s:
            found = s.scalar(
                select(IdempotencyKey.report_id).where(
                    IdempotencyKey.user_name == user, IdempotencyKey.key == idempotency_key
                )
            )
            return int(found) if found is not None else None

    def add_analysis(
        self, report_id: int, analysis: dict[str, Any], model_name: str, threshold: float
    ) -> None:
        """Keep a new analysis of a report (by another model); its decisions stay as they are."""
        with self.db.session() as s:
            report = _report(s, report_id)
            s.add(_analysis_row(report.id, analysis, model_name, threshold))
            report.updated_at = utcnow()

    def report_document(self, report_id: int) -> Document:
        with self.db.reading() as s:
            r = _report(s, report_id)
            return Document(r.text, r.title, r.origin, r.media_type)

    def list_reports(
        self, q: str = "", status: str = "", page: int = 1, per_page: int = 25
    ) -> dict[str, Any]:
        """A page of report summaries, newest change first; `q` matches the title or a
        technique id (accepted, added, or suggested above the threshold)."""
        if status and status not in STATUSES:
            raise InvalidError(f"unknown status {status!r}; use one of: {', '.join(STATUSES)}")
        query = select(Report.id)
        if status:
            query = query.where(Report.status == status)
        q = q.strip()[:200]
        if q:
            like = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            matches: list[ColumnElement[bool]] = [Report.title.ilike(f"%{like}%", escape="\\")]
            if re.match(r"^[Tt]\d", q):
                prefix = f"{like.upper()}%"
                matches.append(
                    exists().where(
                        Decision.report_id == Report.id,
                        Decision.technique.like(prefix, escape="\\"),
                        Decision.action.in_(("accept", "add")),
                    )
                )
                matches.append(
                    exists().where(
                        Analysis.report_id == Report.id,
                        Suggestion.analysis_id == Analysis.id,
                        Suggestion.technique.like(prefix, escape="\\"),
                        Suggestion.confidence >= Analysis.threshold,
                    )
                )
            query = query.where(or_(*matches))
        with self.db.reading() as s:
            total = s.scalar(select(func.count()).select_from(query.subquery())) or 0
            ids = s.scalars(
                query.order_by(Report.updated_at.desc(), Report.id.desc())
                .offset((page - 1) * per_page)
                .limit(per_page)
            ).all()
            items = self._summaries(s, ids)
        return {"items": items, "total": total, "page": page, "per_page": per_page}

    def summary(self, report_id: int, describe: Describe | None = None) -> dict[str, Any]:
        with self.db.reading() as s:
            return self._summary(s, _report(s, report_id), describe or {})

    def detail(self, report_id: int, describe: Describe | None = None) -> dict[str, Any]:
        """Everything the review page shows about one report."""
        with self.db.reading() as s:
            report = _report(s, report_id)
            analysis = _latest(s, report.id)
            state = _review(s, report, analysis, describe or {})
            text = report.text
            out = self._summary(s, report, describe or {}, state)
            out |= {
                "origin": report.origin,
                "media_type": report.media_type,
                "text": text,
                "threshold": analysis.threshold if analysis else None,
                "model": (analysis.model_card if analysis else {})
                | {"name": analysis.model_name if analysis else ""},
                "analysed_at": reviews.iso(analysis.created_at) if analysis else None,
                "suggestions": [_suggestion_dict(t, text) for t in state.techniques],
                "added": [_added_dict(a, describe or {}) for a in state.added],
                "indicators": analysis.indicators if analysis else [],
            }
        return out

    def update_report(
        self, report_id: int, *, status: str | None = None, title: str | None = None
    ) -> dict[str, Any]:
        if status is not None and status not in STATUSES:
            raise InvalidError(f"unknown status {status!r}; use one of: {', '.join(STATUSES)}")
        if title is not None and not title.strip():
            raise InvalidError("the title is empty")
        with self.db.session() as s:
            report = _report(s, report_id)
            if status is not None:
                report.status = status
            if title is not None:
                report.title = title.strip()[:300]
            report.updated_at = utcnow()
        return self.summary(report_id)

    def delete_report(self, report_id: int) -> None:
        with self.db.session() as s:
            s.delete(_report(s, report_id))

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
    ) -> dict[str, Any]:
        """Record one decision (an inserted row); the first moves a `new` report to
        `in_review`. Answers `{"decision", "report"}`.

        `add` needs a technique the model `known`s; accept, reject and clear also take one
        the report's latest analysis suggested or a decision named (after a model switch, a
        technique the new model lacks can still be decided on, or cleared)."""
        technique = technique.strip().upper()
        if action not in ACTIONS:
            raise InvalidError(f"unknown action {action!r}; use one of: {', '.join(ACTIONS)}")
        unknown = InvalidError(f"{technique!r} is not an ATT&CK technique this model knows")
        if not _TECHNIQUE.match(technique):
            raise unknown
        if (start is None) != (end is None):
            raise InvalidError("give both start and end of the passage, or neither")
        if action == "add" and start is None:
            raise InvalidError("add needs the passage: its start and end")
        with self.db.session() as s:
            length = s.scalar(select(func.length(Report.text)).where(Report.id == report_id))
            if length is None:
                raise NotFoundError(f"no report {report_id}")
            if not known(technique) and (
                action == "add" or not _on_report(s, report_id, technique)
            ):
                raise unknown
            if start is not None and end is not None and not 0 <= start < end <= length:
                raise InvalidError(f"the passage {start}–{end} is outside the text (0–{length})")
            now = utcnow()
            row = Decision(
                report_id=report_id,
                technique=technique,
                action=action,
                start=start,
                end=end,
                note=note[:2000],
                user=user,
                at=now,
            )
            s.add(row)
            s.execute(update(Report).where(Report.id == report_id).values(updated_at=now))
            s.execute(
                update(Report)
                .where(Report.id == report_id, Report.status == "new")
                .values(status="in_review")
            )
            s.flush()
            decision = {"id": row.id, **_row(row).to_dict()}
        return {"decision": decision, "report": self.summary(report_id)}

    def decisions(self, report_id: int, page: int = 1, per_page: int = 100) -> dict[str, Any]:
        """A page of the report's decisions, oldest first (the history behind the review)."""
        with self.db.reading() as s:
            _report(s, report_id)
            total = s.scalar(
                select(func.count()).select_from(Decision).where(Decision.report_id == report_id)
            )
            rows = _decision_rows(s, report_id, offset=(page - 1) * per_page, limit=per_page)
            items = [{"id": d.id, **d.to_dict()} for d in rows]
        return {"items": items, "total": total or 0, "page": page, "per_page": per_page}

    def reviewed_result(self, report_id: int, describe: Describe) -> reviews.ReviewedResult:
        """The reviewed report as the exporters read it (accepted and added only)."""
        with self.db.reading() as s:
            report = _report(s, report_id)
            analysis = _latest(s, report.id)
            state = _review(s, report, analysis, describe)
            rows = _decision_rows(s, report.id)
            return reviews.reviewed_result(
                Document(
                    report.text,
                    report.title,
                    report.origin,
                    report.media_type,
                    date=reviews.iso(report.created_at),  # exports are dated when it was added
                ),
                state,
                status=report.status,
                decisions=rows,
                model=analysis.model_card if analysis else {},
                threshold=analysis.threshold if analysis else 0.0,
                window=analysis.window if analysis else 3,
                indicators=analysis.indicators if analysis else [],
                describe=describe,
            )

    def reviewed_passages(self) -> Iterator[LabelledText]:
        """Every decided passage of every report, as labelled training text."""
        with self.db.reading() as s:
            ids = s.scalars(
                select(Report.id)
                .where(exists().where(Decision.report_id == Report.id))
                .order_by(Report.id)
            ).all()
        for report_id in ids:
            with self.db.reading() as s:
                report = s.get(Report, report_id)
                if report is None:  # deleted meanwhile
                    continue
                state = _review(s, report, _latest(s, report.id), {})
                yield from reviews.reviewed_passages(report.text, state, report.id, report.title)

    def _summaries(self, s: Session, ids: Sequence[int]) -> list[dict[str, Any]]:
        """The summaries of many reports in five queries, not four per report (their text
        left unread): a list page costs the same whatever its length."""
        reports = {
            r.id: r
            for r in s.scalars(select(Report).where(Report.id.in_(ids)).options(defer(Report.text)))
        }
        latest: dict[int, int] = {
            report: analysis
            for report, analysis in s.execute(
                select(Analysis.report_id, func.max(Analysis.id))
                .where(Analysis.report_id.in_(ids))
                .group_by(Analysis.report_id)
            )
        }
        thresholds: dict[int, float] = {
            analysis: threshold
            for analysis, threshold in s.execute(
                select(Analysis.id, Analysis.threshold).where(Analysis.id.in_(latest.values()))
            )
        }
        suggested = _suggestion_rows(s, list(latest.values()))
        decided = _decisions_in_force(s, ids)
        out = []
        for i in ids:
            if i not in reports:  # deleted meanwhile
                continue
            analysis = latest.get(i, 0)
            state = reviews.review(
                suggested.get(analysis, []), decided.get(i, []), thresholds.get(analysis, 1.0)
            )
            out.append(self._summary(s, reports[i], {}, state))
        return out

    def _summary(
        self,
        s: Session,
        report: Report,
        describe: Describe,
        state: reviews.Review | None = None,
    ) -> dict[str, Any]:
        if state is None:
            state = _review(s, report, _latest(s, report.id), describe)
        return {
            "id": report.id,
            "title": report.title,
            "source": report.source,
            "created_at": reviews.iso(report.created_at),
            "updated_at": reviews.iso(report.updated_at),
            "status": report.status,
            "accepted": state.count("accepted"),
            "pending": state.count("pending"),
            "rejected": state.count("rejected"),
            "added": len(state.added),
            "techniques": state.technique_ids,
        }

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
        with self.db.reading() as s:
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
        with self.db.reading() as s:
            found = s.get(Setting, key)
            return found.value if found else None

    def set_setting(self, key: str, value: str) -> None:
        with self.db.session() as s:
            s.merge(Setting(key=key, value=value))


def reviewed_passages_in(url: str | None = None) -> list[LabelledText]:
    """The reviewed passages of the workspace at `url` (default: the SQLite file), for
    `mitremap train --add-reviews`; a database with none is an error, not a silent no-op."""
    database = Database(url)
    try:
        found = list(Store(database).reviewed_passages())
    finally:
        database.close()
    if not found:
        raise InvalidError(f"{database.safe_url} has no reviewed passages yet")
    return found


# ---- rows to answers ----------------------------------------------------------------------


def _report(s: Session, report_id: int) -> Report:
    report = s.get(Report, report_id)
    if report is None:
        raise NotFoundError(f"no report {report_id}")
    return report


def _latest(s: Session, report_id: int) -> Analysis | None:
    return s.scalar(
        select(Analysis).where(Analysis.report_id == report_id).order_by(Analysis.id.desc())
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


def _row(d: Decision) -> reviews.DecisionRow:
    return reviews.DecisionRow(d.id, d.technique, d.action, d.start, d.end, d.note, d.user, d.at)


def _review(
    s: Session, report: Report, analysis: Analysis | None, describe: Describe
) -> reviews.Review:
    suggestions = [
        reviews.SuggestionRow(
            x.technique,
            x.technique_name,
            tuple(x.tactics),
            x.confidence,
            tuple((e["start"], e["end"], e["confidence"]) for e in x.evidence),
            tuple((a["start"], a["end"], a["weight"]) for a in x.attributions),
        )
        for x in (analysis.suggestions if analysis else ())
    ]
    threshold = analysis.threshold if analysis else 1.0
    current = _decision_rows(s, report.id, in_force=True)
    return reviews.review(suggestions, current, threshold, describe)


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


def _decisions_in_force(s: Session, ids: Sequence[int]) -> dict[int, list[reviews.DecisionRow]]:
    """The decisions that can be in force (see `_decision_rows`) of many reports at once."""
    latest = (
        select(func.max(Decision.id))
        .where(Decision.report_id.in_(ids))
        .group_by(
            Decision.report_id,
            Decision.technique,
            Decision.start,
            Decision.end,
            Decision.action == "add",
            Decision.action == "clear",
        )
    )
    out: dict[int, list[reviews.DecisionRow]] = {}
    query = select(Decision.report_id, *_DECISION_COLUMNS).where(Decision.id.in_(latest))
    for row in s.execute(query.order_by(Decision.id)):
        out.setdefault(row[0], []).append(reviews.DecisionRow(*row[1:]))
    return out


def _suggestion_rows(s: Session, analyses: Sequence[int]) -> dict[int, list[reviews.SuggestionRow]]:
    """What a summary needs of many analyses' suggestions: those above the threshold or
    decided on (the rest count for nothing), without their attributions."""
    out: dict[int, list[reviews.SuggestionRow]] = {}
    decided = exists().where(
        Decision.report_id == Analysis.report_id, Decision.technique == Suggestion.technique
    )
    query = (
        select(
            Suggestion.analysis_id,
            Suggestion.technique,
            Suggestion.technique_name,
            Suggestion.tactics,
            Suggestion.confidence,
            Suggestion.evidence,
        )
        .join(Analysis, Analysis.id == Suggestion.analysis_id)
        .where(
            Suggestion.analysis_id.in_(analyses),
            or_(Suggestion.confidence >= Analysis.threshold, decided),
        )
    )
    for analysis, technique, name, tactics, confidence, evidence in s.execute(
        query.order_by(Suggestion.id)
    ):
        passages = tuple((e["start"], e["end"], e["confidence"]) for e in evidence)
        row = reviews.SuggestionRow(technique, name, tuple(tactics), confidence, passages)
        out.setdefault(analysis, []).append(row)
    return out


def _decision_rows(
    s: Session,
    report_id: int,
    *,
    in_force: bool = False,
    offset: int = 0,
    limit: int | None = None,
) -> list[reviews.DecisionRow]:
    """A report's decisions, oldest first, read as plain rows (thousands of ORM objects
    cost more than the review itself). `in_force`: only what `reviews.in_force` can keep —
    per technique and passage the latest add, the latest accept or reject and the latest
    clear — so a long history costs one grouped query, not every row."""
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
                    for e in t.get("evidence") or []
                ],
                attributions=[
                    {"start": a["start"], "end": a["end"], "weight": round(a["weight"], 5)}
                    for a in sorted(attributions[:MAX_ATTRIBUTIONS], key=lambda a: a["start"])
                ],
            )
        )
    return row


def _suggestion_dict(t: reviews.TechniqueReview, text: str) -> dict[str, Any]:
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
            for a, b, c in s.evidence
        ],
        "attributions": [{"start": a, "end": b, "weight": w} for a, b, w in s.attributions],
        "decision": _decision_brief(t.decision) if t.decision else None,
        "passages": [{"start": p.start, "end": p.end, **_decision_brief(p)} for p in t.passages],
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
    }


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
