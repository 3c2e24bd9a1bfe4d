"""ATT&CK: one technique, and search by id or name. Both answer from the active model (its
knowledge base, loaded once per model; its catalogue of techniques), not per request."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from mitremap.web.routers.deps import Reader, WorkspaceDep
from mitremap.web.workspace.errors import NotFoundError

router = APIRouter(prefix="/api", tags=["attack"])


@router.get("/techniques/{technique_id}")
def technique(
    technique_id: Annotated[str, Path(max_length=16)], _: Reader, ws: WorkspaceDep
) -> dict[str, Any]:
    """One technique from the ATT&CK knowledge base of the active model's version (loaded
    once per model, not per request)."""
    kb = ws.registry.current.attack()
    try:
        found: dict[str, Any] = kb[technique_id].to_dict()
    except KeyError as exc:
        raise NotFoundError(str(exc).strip("'\"")) from None
    return found


@router.get("/attack/search")
def search(
    _: Reader,
    ws: WorkspaceDep,
    q: Annotated[str, Query(max_length=200)] = "",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    """Techniques and sub-techniques whose id or name matches `q`."""
    return {"items": [e.to_dict() for e in ws.registry.catalog.search(q, limit)]}
