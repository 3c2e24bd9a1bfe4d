"""Models and retraining: the reviewed passages as training text, a retraining job started and
followed, the models kept side by side and the one in use."""

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field

from mitremap.web.routers.deps import Admin, Viewer, WorkspaceDep
from mitremap.web.workspace.retrain import ACTIVE_MODEL

router = APIRouter(prefix="/api", tags=["retraining"])


@router.get("/reviews/export")
def export_reviews(_: Viewer, ws: WorkspaceDep) -> Response:
    """Every reviewed passage as labelled training text (the shared JSONL schema)."""
    lines = [
        json.dumps(
            {
                "source": r.source,
                "id": r.id,
                "text": r.text,
                "labels": list(r.labels),
                "meta": dict(r.meta),
            },
            ensure_ascii=False,
        )
        for r in ws.store.reviewed_passages()
    ]
    return Response(
        "".join(line + "\n" for line in lines),
        media_type="application/x-ndjson; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="reviewed-passages.jsonl"'},
    )


class RetrainIn(BaseModel):
    mode: Literal["full", "quick"] = Field(
        "full",
        description="full: the default recipe plus the reviews (minutes); quick: the active "
        "model corrected by the reviewed passages (seconds).",
    )


@router.post("/retrain", status_code=202)
def retrain(user: Admin, ws: WorkspaceDep, body: RetrainIn | None = None) -> dict[str, Any]:
    """Learn from the reviews in the background: a new model (the previous ones are kept)
    that the server uses when it is done. Its `learning` (in `GET /api/models`) says how it
    does on the reviewed reports, before and after."""
    return {"job": ws.retrainer.start(user.name, body.mode if body else "full")}


@router.get("/retrain/{job_id}")
def retrain_job(
    job_id: Annotated[str, Path(max_length=32)], _: Viewer, ws: WorkspaceDep
) -> dict[str, Any]:
    return {"job": ws.store.job(job_id)}


@router.get("/models")
def models(_: Viewer, ws: WorkspaceDep) -> dict[str, Any]:
    return {"items": ws.registry.items()}


@router.post("/models/{name}/activate")
def activate(
    name: Annotated[str, Path(max_length=100)], user: Admin, ws: WorkspaceDep
) -> dict[str, Any]:
    """Use this model from now on, for every user (kept across restarts; recorded in the
    history: `GET /api/history`)."""
    before = ws.registry.name
    item = ws.registry.activate(name)
    ws.store.set_setting(ACTIVE_MODEL, name)
    if before != name:
        ws.store.record_model_switch(user.name, before, name)
    return item
