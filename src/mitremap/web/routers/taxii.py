"""TAXII 2.1 under `/taxii2/`: the reviewed reports as a feed a threat-intel platform polls
(OpenCTI, MISP, anything built on `taxii2-client`).

Discovery, one API root (`/taxii2/workspace/`), its collections (every reviewed report; one per
TLP level; one per tag), and for each: the manifest, the objects (`added_after`, `match[…]`,
`limit` and `next`, with the `X-TAXII-Date-Added-First/Last` headers), one object, its
versions. Read only: collections say `can_write: false`, and writes are refused (403).
What each collection holds, and since when, is `workspace.feed`'s.

Who reads: an API token of the workspace (`Authorization: Bearer <token>`, or taxii2-client's
`Token <token>`); a viewer's is enough. No token, no feed: a feed is read by machines, so the
no-login local mode and browser sessions do not open it. Every answer, errors included, is
TAXII's media type, and every error TAXII's error object — never the API's shape, never a
traceback (`TaxiiRoute`).
"""

import logging
import re
import threading
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from mitremap.errors import MissingExtraError, MitreMapError
from mitremap.web.routers.deps import WorkspaceDep
from mitremap.web.workspace.auth import Caller
from mitremap.web.workspace.errors import (
    ForbiddenError,
    NotAcceptableError,
    NotFoundError,
    UnauthorizedError,
    WorkspaceError,
)
from mitremap.web.workspace.feed import Feed, FeedQuery, Page

TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"
API_ROOT = "workspace"
TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Request too large",
    422: "Unprocessable request",
    429: "Too many requests",
    500: "Internal error",
    501: "Not implemented",
    503: "Busy",
}
_OBJECT_ID = r"[a-z0-9-]{1,64}--[0-9a-fA-F-]{36}"
_WRITES = re.compile(rf"/taxii2/{API_ROOT}/collections/[^/]+/objects/({_OBJECT_ID}/)?")

log = logging.getLogger("mitremap.server")
_MAKING = threading.Lock()


class TaxiiJSON(JSONResponse):
    media_type = TAXII_MEDIA_TYPE


def taxii_error(exc: Exception) -> TaxiiJSON:
    """Any failure as TAXII's error object, with the status its type says; a bug is a 500
    that says nothing of itself (the server log has it)."""
    status, message, headers = 500, "internal error; the server log has the details", {}
    if isinstance(exc, WorkspaceError):
        status, message = exc.status, str(exc)
    elif isinstance(exc, MissingExtraError):
        status, message = 501, str(exc)
    elif isinstance(exc, MitreMapError):  # the server's own data (ATT&CK missing …)
        status, message = 500, str(exc)
        log.error("TAXII feed: %s", exc)
    elif isinstance(exc, RequestValidationError):
        status = 400
        message = "; ".join(
            f"{'.'.join(str(x) for x in e.get('loc', ()) if x != 'query')}: {e.get('msg', '')}"
            for e in exc.errors()
        )
    elif isinstance(exc, HTTPException):
        status, message = exc.status_code, str(exc.detail)
    else:
        log.exception("internal error in the TAXII feed")
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="MitreMap TAXII"'
    return TaxiiJSON(error_shape(status, message)[1], status_code=status, headers=headers)


def error_shape(status: int, message: str) -> tuple[str, dict[str, Any]]:
    """TAXII's media type and error object (also for the answers the middleware makes before
    a route runs: a body over the size limit)."""
    body = {
        "title": TITLES.get(status, "Error"),
        "description": " ".join(message.split())[:500],
        "http_status": str(status),
    }
    return TAXII_MEDIA_TYPE, body


class TaxiiRoute(APIRoute):
    """A route whose every failure (its dependencies', its parameters', its own) is answered
    in TAXII's error shape and media type."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                return taxii_error(exc)

        return answer


def reader(request: Request, ws: WorkspaceDep) -> None:
    """401 without a valid API token (Bearer, or taxii2-client's Token scheme); then the role
    check every reader passes (a viewer's token is enough)."""
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() not in ("bearer", "token") or not token.strip():
        raise UnauthorizedError(
            "the feed needs an API token: Authorization: Bearer <token> (a viewer's is enough)"
        )
    user = ws.store.authenticate_token(token.strip())  # 401: unknown, expired, user disabled
    ws.auth.require(Caller(user, "token"), "viewer", "GET", None)


def accepts_taxii(request: Request) -> None:
    """406 unless the client accepts TAXII 2.1 (no Accept header, or a wildcard, will do)."""
    accept = request.headers.get("accept", "")
    for item in accept.split(","):
        kind, *params = [p.strip().lower() for p in item.split(";")]
        version = next((p[8:] for p in params if p.startswith("version=")), "2.1")
        if kind in ("", "*/*", "application/*") or (
            kind == "application/taxii+json" and version == "2.1"
        ):
            return
    raise NotAcceptableError(f"this server answers {TAXII_MEDIA_TYPE} only")


router = APIRouter(
    prefix="/taxii2",
    tags=["taxii"],
    route_class=TaxiiRoute,
    dependencies=[Depends(reader), Depends(accepts_taxii)],
)


def feed(request: Request, ws: WorkspaceDep) -> Feed:
    """The app's one feed (made on first use: it holds the sync lock)."""
    with _MAKING:
        found: Feed | None = getattr(request.app.state, "taxii_feed", None)
        if found is None:
            found = Feed(ws.store, lambda: ws.registry.catalog.describe())
            request.app.state.taxii_feed = found
    return found


FeedDep = Annotated[Feed, Depends(feed)]


def query(
    added_after: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[str | None, Query(max_length=12)] = None,
    next: Annotated[str | None, Query(max_length=1000)] = None,
    match_id: Annotated[str | None, Query(alias="match[id]", max_length=20_000)] = None,
    match_type: Annotated[str | None, Query(alias="match[type]", max_length=2000)] = None,
    match_version: Annotated[str | None, Query(alias="match[version]", max_length=2000)] = None,
    match_spec: Annotated[str | None, Query(alias="match[spec_version]", max_length=200)] = None,
) -> FeedQuery:
    """TAXII's filters and paging (400 for a value that is not one)."""
    return FeedQuery.parse(
        added_after=added_after,
        limit=limit,
        next=next,
        id=match_id,
        type=match_type,
        version=match_version,
        spec_version=match_spec,
    )


QueryDep = Annotated[FeedQuery, Depends(query)]


def paged(body: dict[str, Any], page: Page) -> TaxiiJSON:
    return TaxiiJSON(body, headers=page.headers())


@router.get("/", name="taxii_discovery")
def discovery(request: Request) -> TaxiiJSON:
    """TAXII's server discovery: the one API root."""
    root = str(request.url_for("taxii_api_root"))
    return TaxiiJSON(
        {
            "title": "MitreMap",
            "description": "The reviewed reports of this MitreMap workspace as STIX 2.1.",
            "default": root,
            "api_roots": [root],
        }
    )


@router.get(f"/{API_ROOT}/", name="taxii_api_root")
def api_root() -> TaxiiJSON:
    return TaxiiJSON(
        {
            "title": "MitreMap workspace",
            "description": "Reviewed reports: ATT&CK techniques and indicators an analyst "
            "accepted, marked with each report's TLP (TLP:RED never leaves). Read only.",
            "versions": [TAXII_MEDIA_TYPE],
            "max_content_length": 0,  # read only: nothing can be added
        }
    )


@router.get(f"/{API_ROOT}/collections/")
def collections(found: FeedDep) -> TaxiiJSON:
    return TaxiiJSON({"collections": [c.to_dict() for c in found.collections()]})


@router.get(f"/{API_ROOT}/collections/{{collection}}/")
def collection(collection: str, found: FeedDep) -> TaxiiJSON:
    return TaxiiJSON(found.collection(collection).to_dict())


@router.get(f"/{API_ROOT}/collections/{{collection}}/manifest/")
def manifest(collection: str, found: FeedDep, q: QueryDep) -> TaxiiJSON:
    """One manifest record per object version (oldest added first), paged."""
    page = found.page(found.collection(collection), q)
    return paged(page.envelope("objects", [e.manifest() for e in page.entries]), page)


@router.get(f"/{API_ROOT}/collections/{{collection}}/objects/")
def objects(collection: str, found: FeedDep, q: QueryDep) -> TaxiiJSON:
    """The objects (the latest version of each unless `match[version]` says otherwise)."""
    page = found.page(found.collection(collection), q, bodies=True)
    return paged(page.envelope("objects", page.objects or []), page)


@router.get(f"/{API_ROOT}/collections/{{collection}}/objects/{{object_id}}/")
def get_object(collection: str, object_id: str, found: FeedDep, q: QueryDep) -> TaxiiJSON:
    page = found.page(found.collection(collection), q, object_id=object_id, bodies=True)
    return paged(page.envelope("objects", page.objects or []), page)


@router.get(f"/{API_ROOT}/collections/{{collection}}/objects/{{object_id}}/versions/")
def versions(collection: str, object_id: str, found: FeedDep, q: QueryDep) -> TaxiiJSON:
    """The object's versions in the collection (`match[version]` does not apply)."""
    every = replace(q, ids=(), types=(), versions=("all",))
    page = found.page(found.collection(collection), every, object_id=object_id)
    return paged(page.envelope("versions", [e.version for e in page.entries]), page)


@router.api_route(
    "/{rest:path}",
    methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
    include_in_schema=False,
)
def elsewhere(request: Request) -> TaxiiJSON:
    """Anything else under /taxii2/: adding or deleting objects is forbidden (the collections
    are read only), other methods are not allowed, other paths are not found."""
    if request.method in ("POST", "DELETE") and _WRITES.fullmatch(request.url.path):
        raise ForbiddenError("the collections are read only (can_write: false)")
    if request.method != "GET":
        raise HTTPException(405, "the feed is read only: use GET")
    raise NotFoundError(f"no TAXII resource at {request.url.path[:200]}")
