"""The workspace's REST API (`/api/...`): sessions, reports, decisions, exports, retraining.

Routes only parse, check who may do what (`auth.Auth`) and call the `Store`; analysis runs in
the server's worker pool (`Workspace.run`), bounded in size and time. Every error is the one
shape `{"error": {"code", "message"}}` (the server's handlers turn `WorkspaceError`s into it).

A page request (`GET /`, `/login`, `/reports/{id}`; see `server.PAGE_PATHS`) gets a session
and `request.state.csrf_token`, `request.state.user` and `request.state.auth` from
`page_session`, for the pages to render; so does `GET /api/session`.

A report from a URL: only http(s), redirects capped and each target checked, and on a shared
server (`allow_private_urls=False`) every connection, redirects included, goes only to a
public address that was checked (`documents.readers.read_url`'s `check_address`).
"""

import ipaddress
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from mitremap import __version__
from mitremap.deadline import Deadline
from mitremap.documents import Document, read_bytes, read_url
from mitremap.export import FORMATS
from mitremap.workspace.auth import COOKIE, CSRF_HEADER, Auth, Caller
from mitremap.workspace.errors import (
    BadRequestError,
    InvalidError,
    NotFoundError,
    TooLargeError,
)
from mitremap.workspace.registry import ModelRegistry
from mitremap.workspace.retrain import ACTIVE_MODEL, Retrainer
from mitremap.workspace.store import SESSION_LIFETIME, SessionInfo, Store, UserInfo

SUGGESTION_FLOOR = 0.2
"""Techniques down to this confidence are kept as suggestions ("show more suggestions")."""
URL_TIMEOUT_S = 30.0


@dataclass
class Workspace:
    """What the API needs, made once by the server's app factory."""

    store: Store
    auth: Auth
    registry: ModelRegistry
    retrainer: Retrainer
    # blocking work in the worker pool, called with its Deadline as its last argument
    run: Callable[..., Awaitable[Any]]
    max_bytes: int
    threshold: float = 0.6
    secure_cookies: bool = False
    allow_private_urls: bool = True
    database: str = "sqlite"


class AnalyzeIn(BaseModel):
    text: str = Field(..., description="The report text.")
    title: str = Field("", max_length=300)
    threshold: float = Field(0.6, ge=0.0, le=1.0, allow_inf_nan=False)
    window: int = Field(3, ge=1, le=50)
    explain: bool = False
    iocs: bool = True
    format: str = Field("json", max_length=20, description=f"One of {', '.join(FORMATS)}.")


class IocIn(BaseModel):
    text: str
    types: list[str] | None = Field(None, max_length=50)


class ReportIn(BaseModel):
    title: str | None = Field(None, max_length=300)
    text: str | None = None
    url: str | None = Field(None, max_length=2000)
    source: str | None = Field(None, max_length=2000)


class ReportPatch(BaseModel):
    status: str | None = Field(None, description="new, in_review or reviewed")
    title: str | None = Field(None, max_length=300)


class DecisionIn(BaseModel):
    technique: str = Field(..., max_length=16, examples=["T1059.001"])
    action: str = Field(..., description="accept, reject, add or clear")
    start: int | None = Field(None, ge=0)
    end: int | None = Field(None, ge=0)
    note: str = Field("", max_length=2000)


class LoginIn(BaseModel):
    name: str = Field(..., max_length=64)
    password: str = Field(..., max_length=1024)


def create_router(ws: Workspace) -> APIRouter:
    router = APIRouter(prefix="/api")

    def caller(request: Request) -> Caller:
        found = ws.auth.caller(request.cookies.get(COOKIE), request.headers.get("authorization"))
        request.state.caller = found
        return found

    def needs(role: str, changes: bool = True) -> Any:
        """A dependency: the user, when they have `role` (and, for a change made with the
        session cookie, the CSRF token)."""

        def check(request: Request, who: Annotated[Caller, Depends(caller)]) -> UserInfo:
            method = request.method if changes else "GET"
            return ws.auth.require(who, role, method, request.headers.get(CSRF_HEADER))

        return Depends(check)

    Viewer = Annotated[UserInfo, needs("viewer")]
    Analyst = Annotated[UserInfo, needs("analyst")]
    Admin = Annotated[UserInfo, needs("admin")]
    ReportId = Annotated[int, Path(ge=1, le=2**62)]

    # ---- session ----------------------------------------------------------------------

    @router.get("/session", tags=["session"])
    def session(request: Request, response: Response) -> dict[str, Any]:
        """Who you are, the CSRF token to send as `X-CSRF-Token`, and whether login is on."""
        info = page_session(ws, request, response)
        return _session_answer(ws, info)

    @router.post("/login", tags=["session"])
    def login(
        body: LoginIn, request: Request, who: Annotated[Caller, Depends(caller)]
    ) -> JSONResponse:
        """Log in (the page's CSRF token is needed); answers like `GET /api/session`."""
        if not ws.auth.enabled:
            raise BadRequestError("this server runs without users: there is nothing to log in to")
        ws.auth.check_csrf(who, request.headers.get(CSRF_HEADER))
        token, info = ws.auth.login(body.name, body.password)
        if who.cookie:
            ws.store.end_session(who.cookie)  # a new session id at login: no fixation
        response = JSONResponse(_session_answer(ws, info))
        _set_cookie(ws, response, token)
        return response

    @router.post("/logout", status_code=204, tags=["session"])
    def logout(request: Request, who: Annotated[Caller, Depends(caller)]) -> Response:
        ws.auth.check_csrf(who, request.headers.get(CSRF_HEADER))
        if who.cookie:
            ws.store.end_session(who.cookie)
        response = Response(status_code=204)
        response.delete_cookie(COOKIE, path="/")
        return response

    # ---- analysis without keeping anything -----------------------------------------------

    @router.get("/health", tags=["analysis"])
    def health() -> dict[str, Any]:
        """The version, the active model's card and the kind of database."""
        card = getattr(ws.registry.current, "card", None)
        return {
            "status": "ok",
            "version": __version__,
            "model": dict(card) if isinstance(card, dict) else None,
            "database": ws.database,
        }

    @router.post("/analyze", tags=["analysis"])
    async def analyze(
        body: AnalyzeIn, _: Annotated[UserInfo, needs("viewer", changes=False)]
    ) -> Response:
        """Analyse a text and answer the CLI's JSON, or any export format; nothing is kept."""
        text = _clean(body.text)
        _check_size(len(text.encode("utf-8")), ws.max_bytes)
        document = Document(text, title=_clean(body.title) or "text", origin="api")
        options = body.model_dump(exclude={"text", "title"})
        return await ws.run(_answer, ws, document, options)

    @router.post("/analyze/file", tags=["analysis"])
    async def analyze_file(
        file: Annotated[UploadFile, File()],
        _: Annotated[UserInfo, needs("viewer", changes=False)],
        threshold: Annotated[float, Form(ge=0.0, le=1.0)] = 0.6,
        window: Annotated[int, Form(ge=1, le=50)] = 3,
        explain: Annotated[bool, Form()] = False,
        iocs: Annotated[bool, Form()] = True,
        format: Annotated[str, Form(max_length=20)] = "json",
    ) -> Response:
        """The same for an uploaded file (PDF, DOCX, HTML, Markdown, text)."""
        data = await file.read(ws.max_bytes + 1)
        _check_size(len(data), ws.max_bytes)
        name = _clean(file.filename or "upload")
        options = {
            "threshold": threshold,
            "window": window,
            "explain": explain,
            "iocs": iocs,
            "format": format,
        }

        def work(deadline: Deadline) -> Response:
            document = read_bytes(data, name=name, origin=name, deadline=deadline)
            return _answer(ws, document, options, deadline)

        return await ws.run(work)

    @router.post("/iocs", tags=["analysis"])
    async def iocs(
        body: IocIn, _: Annotated[UserInfo, needs("viewer", changes=False)]
    ) -> dict[str, Any]:
        """Indicators of compromise in a text (refanged, with offsets)."""
        from mitremap.iocs import extract_iocs
        from mitremap.iocs.extract import MAX_INDICATORS as most

        text = _clean(body.text)
        _check_size(len(text.encode("utf-8")), ws.max_bytes)
        found = await ws.run(
            lambda deadline: extract_iocs(text, body.types, deadline=deadline, limit=most + 1)
        )
        notes = {"warnings": [f"only the first {most:,} indicators are listed"]}
        return {
            "indicators": [i.to_dict() for i in found[:most]],
            **(notes if found[most:] else {}),
        }

    @router.get("/techniques/{technique_id}", tags=["attack"])
    def technique(
        technique_id: Annotated[str, Path(max_length=16)],
        _: Annotated[UserInfo, needs("viewer", changes=False)],
    ) -> dict[str, Any]:
        """One technique from the ATT&CK knowledge base of the active model's version (loaded
        once per model, not per request)."""
        kb = ws.registry.current.attack()
        try:
            found: dict[str, Any] = kb[technique_id].to_dict()
        except KeyError as exc:
            raise NotFoundError(str(exc).strip("'\"")) from None
        return found

    # ---- ATT&CK -------------------------------------------------------------------------

    @router.get("/attack/search", tags=["attack"])
    def search(
        _: Annotated[UserInfo, needs("viewer", changes=False)],
        q: Annotated[str, Query(max_length=200)] = "",
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> dict[str, Any]:
        """Techniques and sub-techniques whose id or name matches `q`."""
        return {"items": [e.to_dict() for e in ws.registry.catalog.search(q, limit)]}

    # ---- reports ------------------------------------------------------------------------

    @router.post(
        "/reports",
        status_code=201,
        tags=["reports"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": ReportIn.model_json_schema()},
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "file": {"type": "string", "format": "binary"},
                                "title": {"type": "string"},
                                "text": {"type": "string"},
                                "url": {"type": "string"},
                            },
                        }
                    },
                },
            }
        },
    )
    async def add_report(request: Request, user: Analyst) -> dict[str, Any]:
        """Add a report by text, file upload (multipart) or URL; it is analysed at once."""
        fields, upload = await _read_report_request(request, ws.max_bytes)
        title = (fields.get("title") or "").strip()[:300] or None
        text, url = fields.get("text") or "", (fields.get("url") or "").strip()
        if upload is not None:
            name, data = upload
            source = name

            def read(deadline: Deadline) -> Document:
                return read_bytes(data, name=name, origin=name, deadline=deadline)

        elif url:
            _check_url(url)
            source = url
            addresses = None if ws.allow_private_urls else _public_address

            def read(deadline: Deadline) -> Document:
                return read_url(
                    url,
                    max_bytes=ws.max_bytes,
                    timeout=URL_TIMEOUT_S,
                    check=_check_url,  # every redirect's target too
                    check_address=addresses,  # every connection, to the address checked
                    deadline=deadline,
                )

        elif text.strip():
            source = (fields.get("source") or "").strip() or "pasted"
            document = Document.from_text(_clean(text), title=title, origin="pasted")

            def read(deadline: Deadline) -> Document:
                return document

        else:
            raise BadRequestError("give the report's text, a file or a URL")

        def work(deadline: Deadline) -> tuple[Document, dict[str, Any], str]:
            document = read(deadline)
            if title:
                document = replace(document, title=title)
            if not document.text.strip():
                raise BadRequestError("the report is empty")
            return document, *_analyse(ws, document, deadline)

        document, analysis, model_name = await ws.run(work)
        return ws.store.add_report(
            document,
            analysis,
            source=source,
            user=user.name,
            model_name=model_name,
            threshold=ws.threshold,
        )

    @router.get("/reports", tags=["reports"])
    def list_reports(
        _: Annotated[UserInfo, needs("viewer", changes=False)],
        q: Annotated[str, Query(max_length=200)] = "",
        status: Annotated[str, Query(max_length=16)] = "",
        page: Annotated[int, Query(ge=1, le=100_000)] = 1,
        per_page: Annotated[int, Query(ge=1, le=100)] = 25,
    ) -> dict[str, Any]:
        """Report summaries, most recently changed first."""
        return ws.store.list_reports(q, status, page, per_page)

    @router.get("/reports/{report_id}", tags=["reports"])
    def get_report(report_id: ReportId, _: Viewer) -> dict[str, Any]:
        """Everything the review page shows: text, suggestions, decisions, indicators."""
        return ws.store.detail(report_id, ws.registry.catalog.describe())

    @router.patch("/reports/{report_id}", tags=["reports"])
    def patch_report(report_id: ReportId, body: ReportPatch, _: Analyst) -> dict[str, Any]:
        """Change the status (new, in_review, reviewed) or the title."""
        return ws.store.update_report(report_id, status=body.status, title=body.title)

    @router.delete("/reports/{report_id}", status_code=204, tags=["reports"])
    def delete_report(report_id: ReportId, _: Admin) -> Response:
        ws.store.delete_report(report_id)
        return Response(status_code=204)

    @router.post("/reports/{report_id}/analyze", tags=["reports"])
    async def reanalyse(report_id: ReportId, _: Analyst) -> dict[str, Any]:
        """Analyse the report again with the active model; its decisions are kept."""
        document = ws.store.report_document(report_id)
        analysis, model_name = await ws.run(_analyse, ws, document)
        ws.store.add_analysis(report_id, analysis, model_name, ws.threshold)
        return ws.store.detail(report_id, ws.registry.catalog.describe())

    @router.post("/reports/{report_id}/decisions", status_code=201, tags=["decisions"])
    def decide(report_id: ReportId, body: DecisionIn, user: Analyst) -> dict[str, Any]:
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

    @router.get("/reports/{report_id}/decisions", tags=["decisions"])
    def decisions(report_id: ReportId, _: Viewer) -> dict[str, Any]:
        """Every decision on the report, oldest first (the history behind the review)."""
        return {"items": ws.store.decisions(report_id)}

    @router.get("/reports/{report_id}/export", tags=["reports"])
    def export(
        report_id: ReportId,
        _: Viewer,
        format: Annotated[str, Query(max_length=20)] = "json",
    ) -> Response:
        """The reviewed result (accepted and added techniques) as a file to download."""
        from mitremap.export import export_format

        exporter = export_format(format)
        result = ws.store.reviewed_result(report_id, ws.registry.catalog.describe())
        body = exporter.render(result, True)
        name = f"report-{report_id}-reviewed{exporter.extension}"
        return Response(
            body,
            media_type=exporter.content_type,
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @router.get("/reviews/export", tags=["retraining"])
    def export_reviews(_: Viewer) -> Response:
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

    # ---- retraining and models ----------------------------------------------------------

    @router.post("/retrain", status_code=202, tags=["retraining"])
    def retrain(user: Admin) -> dict[str, Any]:
        """Train a new model on the default recipe plus the reviewed passages, in the
        background; when it is done the server uses it (the previous model is kept)."""
        return {"job": ws.retrainer.start(user.name)}

    @router.get("/retrain/{job_id}", tags=["retraining"])
    def retrain_job(job_id: Annotated[str, Path(max_length=32)], _: Viewer) -> dict[str, Any]:
        return {"job": ws.store.job(job_id)}

    @router.get("/models", tags=["retraining"])
    def models(_: Viewer) -> dict[str, Any]:
        return {"items": ws.registry.items()}

    @router.post("/models/{name}/activate", tags=["retraining"])
    def activate(name: Annotated[str, Path(max_length=100)], _: Admin) -> dict[str, Any]:
        """Use this model from now on (kept across restarts)."""
        item = ws.registry.activate(name)
        ws.store.set_setting(ACTIVE_MODEL, name)
        return item

    return router


# ---- helpers ----------------------------------------------------------------------------


def page_session(ws: Workspace, request: Request, response: Response) -> SessionInfo:
    """The browser's session, started (cookie set on `response`) when it has none; also puts
    `csrf_token`, `user` and `auth` on `request.state` for pages."""
    cookie = request.cookies.get(COOKIE)
    info = ws.store.session(cookie) if cookie else None
    if info is None:
        token, info = ws.store.new_session()
        _set_cookie(ws, response, token)
    user = info.user if ws.auth.enabled else ws.auth.local
    request.state.csrf_token = info.csrf_token
    request.state.user = {"name": user.name, "role": user.role} if user else None
    request.state.auth = ws.auth.enabled
    return info


def _session_answer(ws: Workspace, info: SessionInfo) -> dict[str, Any]:
    user = info.user if ws.auth.enabled else ws.auth.local
    return {
        "user": {"name": user.name, "role": user.role} if user else None,
        "csrf_token": info.csrf_token,
        "auth": ws.auth.enabled,
    }


def _set_cookie(ws: Workspace, response: Response, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path="/",
        httponly=True,
        samesite="strict",
        secure=ws.secure_cookies,
    )


def _check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise TooLargeError(f"the input is larger than the {max_bytes // 2**20} MB limit")


def _answer(
    ws: Workspace, document: Document, options: dict[str, Any], deadline: Deadline
) -> Response:
    """`POST /api/analyze`'s answer: the CLI's JSON or another export format."""
    from mitremap.export import export_format

    exporter = export_format(options["format"])
    if not document.text.strip():
        raise BadRequestError("the input is empty")
    result = ws.registry.current.analyze(
        document,
        threshold=options["threshold"],
        window=options["window"],
        explain=options["explain"],
        iocs=options["iocs"],
        deadline=deadline,
    )
    if options["format"] == "json":
        return JSONResponse(result.to_dict())
    return Response(exporter.render(result, options["iocs"]), media_type=exporter.content_type)


def _analyse(ws: Workspace, document: Document, deadline: Deadline) -> tuple[dict[str, Any], str]:
    """The active model's analysis of `document`, down to the suggestion floor, with the
    words that drove each technique and the indicators; and that model's name (the model
    and its name read together, when the work runs: a switch meanwhile cannot mix them)."""
    model, name = ws.registry.active()
    floor = min(SUGGESTION_FLOOR, ws.threshold)
    result = model.analyze(document, threshold=floor, explain=True, iocs=True, deadline=deadline)
    data: dict[str, Any] = result.to_dict()
    return data, name


def _clean(text: str) -> str:
    """Text that encodes: a lone surrogate becomes '?', one character for one."""
    return text.encode("utf-8", "replace").decode("utf-8")


async def _read_report_request(
    request: Request, max_bytes: int
) -> tuple[dict[str, str], tuple[str, bytes] | None]:
    """The fields of a JSON or multipart request, and the uploaded file (its name, as text
    only, and bytes: it is never written under a name the client chose)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=10, max_part_size=max_bytes)
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        upload = form.get("file")
        if upload is not None and not isinstance(upload, str) and upload.filename:
            data = await upload.read(max_bytes + 1)
            if len(data) > max_bytes:
                raise TooLargeError(f"the file is larger than the {max_bytes // 2**20} MB limit")
            name = _clean(upload.filename).replace("/", "_").replace("\\", "_")[:255]
            return fields, (name, data)
        return fields, None
    if kind not in ("application/json", ""):
        raise BadRequestError("send JSON or multipart/form-data")
    try:
        body = ReportIn.model_validate_json(await request.body())
    except ValueError as exc:
        raise InvalidError(f"not a report request: {_first_problem(exc)}") from None
    if body.text is not None and len(body.text.encode("utf-8", "replace")) > max_bytes:
        raise TooLargeError(f"the text is larger than the {max_bytes // 2**20} MB limit")
    return {k: v for k, v in body.model_dump().items() if isinstance(v, str)}, None


def _first_problem(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0] if errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()))
        return f"{where}: {first.get('msg', '')}".strip(": ")
    return str(exc).splitlines()[0]


def _check_url(url: str) -> None:
    """Only http(s) URLs with a host and a valid port (the URL, and every redirect's target)."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise BadRequestError("the URL must start with http:// or https://")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError:
        raise BadRequestError("the URL's port is not a valid port number") from None


def _public_address(host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    """On a shared server, only public addresses: the server must not be a way into the
    network behind it. Checked on every connection of a URL import, redirects included."""
    if not address.is_global:
        raise BadRequestError(f"{host} is not a public address")
