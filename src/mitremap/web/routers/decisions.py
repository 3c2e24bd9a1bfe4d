"""Decisions on a report's techniques: accept, reject, add, clear, and their history. Each is
only inserted, with who made it and when (the latest per technique and passage is in force)."""

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from mitremap.web.routers.deps import Analyst, ReportId, Viewer, WorkspaceDep

router = APIRouter(prefix="/api", tags=["decisions"])


class DecisionIn(BaseModel):
    technique: str = Field(..., max_length=16, examples=["T1059.001"])
    action: str = Field(..., description="accept, reject, add or clear")
    start: int | None = Field(None, ge=0)
    end: int | None = Field(None, ge=0)
    note: str = Field("", max_length=2000)


@router.post("/reports/{report_id}/decisions", status_code=201)
def decide(
    report_id: ReportId, body: DecisionIn, user: Analyst, ws: WorkspaceDep
) -> dict[str, Any]:
    """Accept or reject a technique (or one passage of it), add a technique to a
    passage, or clear a decision. Without start/end it is about the whole technique."""
    catalog = ws.registry.catalog
    return ws.store.decide(
        report_id,
        technique=body.technique,
        action=body.action,
        start=body.start,
        end=body.end,
        note=body.note,
        user=user.name,
        known=lambda t: t in catalog,
    )


@router.get("/reports/{report_id}/decisions")
def decisions(
    report_id: ReportId,
    _: Viewer,
    ws: WorkspaceDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """The decisions on the report, oldest first (the history behind the review), a page
    at a time: `items`, `total`, `page`, `per_page`."""
    return ws.store.decisions(report_id, page, per_page)
