"""Decisions on a report's techniques (accept, reject, add, clear) and on its indicators
(accept, reject: not an indicator, clear), each only inserted with who made it and when; the
report's history, its comments, and the drafts of what a user typed and has not sent.

A decision sent with `If-Match` (the report's ETag, as the page shows it) is refused as stale
(409, how the technique stands now and who changed it in `error.current`) when the technique or
indicator was decided on since that version.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from mitremap.web.routers.deps import Analyst, ReportId, Viewer, WorkspaceDep
from mitremap.web.routers.versions import IfMatch, stale
from mitremap.web.workspace.errors import StaleError

router = APIRouter(prefix="/api", tags=["decisions"])


class DecisionIn(BaseModel):
    technique: str = Field(..., max_length=16, examples=["T1059.001"])
    action: str = Field(..., description="accept, reject, add or clear")
    start: int | None = Field(None, ge=0)
    end: int | None = Field(None, ge=0)
    note: str = Field("", max_length=2000)


class IndicatorDecisionIn(BaseModel):
    type: str = Field(..., max_length=32, examples=["ipv4"])
    value: str = Field(..., max_length=4000, examples=["185.220.101.47"])
    action: str = Field(..., description="accept, reject (not an indicator) or clear")
    note: str = Field("", max_length=2000)


class CommentIn(BaseModel):
    text: str = Field(..., max_length=5000)


class DraftIn(BaseModel):
    key: str = Field(..., max_length=4100, description="technique:T1059, indicator:TYPE:VALUE …")
    text: str = Field("", max_length=5000, description="empty: forget the draft")


@router.post("/reports/{report_id}/decisions", status_code=201, response_model=None)
def decide(
    report_id: ReportId, body: DecisionIn, user: Analyst, ws: WorkspaceDep, expected: IfMatch
) -> dict[str, Any] | JSONResponse:
    """Accept or reject a technique (or one passage of it), add a technique to a
    passage, or clear a decision. Without start/end it is about the whole technique."""
    catalog = ws.registry.catalog
    try:
        return ws.store.decide(
            report_id,
            technique=body.technique,
            action=body.action,
            start=body.start,
            end=body.end,
            note=body.note,
            user=user.name,
            known=lambda t: t in catalog,
            expected=expected,
        )
    except StaleError as exc:
        return stale(exc)


@router.get("/reports/{report_id}/decisions")
def decisions(
    report_id: ReportId,
    _: Viewer,
    ws: WorkspaceDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """The decisions on the report's techniques, oldest first, a page at a time: `items`,
    `total`, `page`, `per_page`."""
    return ws.store.decisions_page(report_id, page, per_page)


@router.post("/reports/{report_id}/indicators/decisions", status_code=201, response_model=None)
def decide_indicator(
    report_id: ReportId,
    body: IndicatorDecisionIn,
    user: Analyst,
    ws: WorkspaceDep,
    expected: IfMatch,
) -> dict[str, Any] | JSONResponse:
    """Accept an indicator of the report, reject it (not an indicator: context the report
    names, left out of the reviewed exports) or clear the verdict."""
    try:
        return ws.store.decide_indicator(
            report_id,
            type=body.type,
            value=body.value,
            action=body.action,
            note=body.note,
            user=user.name,
            expected=expected,
        )
    except StaleError as exc:
        return stale(exc)


@router.get("/reports/{report_id}/history")
def report_history(
    report_id: ReportId,
    _: Viewer,
    ws: WorkspaceDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=1000)] = 200,
    since: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> dict[str, Any]:
    """The changes of the report, oldest first, a page at a time: decisions, status,
    metadata, analyses, comments (who, when, before → after), and the model switches made
    meanwhile; `items`, `total`, `page`, `per_page`. `since` (a version of the report): only
    its changes after that version."""
    return ws.store.history(report_id, page, per_page, since)


@router.get("/history")
def workspace_history(_: Viewer, ws: WorkspaceDep) -> dict[str, Any]:
    """Changes of the whole workspace (model switches, the default TLP), newest first."""
    return {"items": ws.store.workspace_history()}


@router.get("/reports/{report_id}/comments")
def comments(report_id: ReportId, _: Viewer, ws: WorkspaceDep) -> dict[str, Any]:
    return {"items": ws.store.comments(report_id)}


@router.post("/reports/{report_id}/comments", status_code=201)
def comment(
    report_id: ReportId, body: CommentIn, user: Analyst, ws: WorkspaceDep
) -> dict[str, Any]:
    """A comment on the report as a whole."""
    return ws.store.add_comment(report_id, body.text, user.name)


@router.get("/reports/{report_id}/drafts")
def drafts(report_id: ReportId, user: Viewer, ws: WorkspaceDep) -> dict[str, Any]:
    """What you typed on this report and have not sent yet (notes, a comment), by key."""
    return {"items": ws.store.drafts(report_id, user.name)}


@router.put("/reports/{report_id}/drafts", status_code=204)
def save_draft(report_id: ReportId, body: DraftIn, user: Analyst, ws: WorkspaceDep) -> Response:
    """Keep a draft (an empty text forgets it); the decision or comment made from it
    forgets it too."""
    ws.store.save_draft(report_id, user.name, body.key, body.text)
    return Response(status_code=204)
