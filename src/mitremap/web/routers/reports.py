"""Reports: add one (text, file or URL; analysed at once), list, read, change, delete,
analyse again, and export the reviewed result.

A report from a URL: only http(s), redirects capped and each target checked, and on a shared
server (`allow_private_urls=False`) every connection, redirects included, goes only to a
public address that was checked (`documents.readers.read_url`'s `check_address`).
"""

import ipaddress
from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from mitremap.documents import Document, read_bytes, read_url
from mitremap.web.addresses import check_public
from mitremap.web.routers.deps import (
    Admin,
    Analyst,
    Reader,
    ReportId,
    Viewer,
    Workspace,
    WorkspaceDep,
    clean,
)
from mitremap.web.workspace.errors import (
    BadRequestError,
    ConflictError,
    InvalidError,
    TooLargeError,
)

SUGGESTION_FLOOR = 0.2
"""Techniques down to this confidence are kept as suggestions ("show more suggestions")."""
URL_TIMEOUT_S = 30.0

router = APIRouter(prefix="/api", tags=["reports"])


class ReportIn(BaseModel):
    title: str | None = Field(None, max_length=300)
    text: str | None = None
    url: str | None = Field(None, max_length=2000)
    source: str | None = Field(None, max_length=2000)


class ReportPatch(BaseModel):
    status: str | None = Field(None, description="new, in_review or reviewed")
    title: str | None = Field(None, max_length=300)


NEW_REPORT_BODY = {
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
}
"""`POST /api/reports` reads its body itself (JSON or multipart): the docs are told its shape."""


@router.post("/reports", status_code=201, openapi_extra=NEW_REPORT_BODY)
async def add_report(
    request: Request, response: Response, user: Analyst, ws: WorkspaceDep
) -> dict[str, Any]:
    """Add a report by text, file upload (multipart) or URL; it is analysed at once.

    With an `Idempotency-Key` header (1–200 visible ASCII characters), a retry with the
    same key (say, after the answer was lost) answers the report the first request made,
    with `Idempotent-Replayed: true`, instead of adding it again."""
    key = _idempotency_key(request)
    if key and (found := ws.store.report_for_key(user.name, key)) is not None:
        response.headers["Idempotent-Replayed"] = "true"
        return ws.store.detail(found)
    fields, upload = await _read_report_request(request, ws.max_bytes)
    title = (fields.get("title") or "").strip()[:300] or None
    read, source = _reader(ws, fields, upload, title)

    def work() -> tuple[Document, dict[str, Any], str]:
        document = read()
        if title:
            document = replace(document, title=title)
        if not document.text.strip():
            raise BadRequestError("the report is empty")
        return document, *_analyse(ws, document)

    document, analysis, model_name = await ws.run(work)
    try:
        return ws.store.add_report(
            document,
            analysis,
            source=source,
            user=user.name,
            model_name=model_name,
            threshold=ws.threshold,
            idempotency_key=key,
        )
    except ConflictError:  # the same key, committed meanwhile by a concurrent retry
        if key and (found := ws.store.report_for_key(user.name, key)) is not None:
            response.headers["Idempotent-Replayed"] = "true"
            return ws.store.detail(found)
        raise


def _idempotency_key(request: Request) -> str | None:
    value = request.headers.get("idempotency-key")
    if value is None:
        return None
    if not 1 <= len(value) <= 200 or not all(" " < c < "\x7f" for c in value):
        raise BadRequestError("the Idempotency-Key header must be 1–200 visible ASCII characters")
    return value


@router.get("/reports")
def list_reports(
    _: Reader,
    ws: WorkspaceDep,
    q: Annotated[str, Query(max_length=200)] = "",
    status: Annotated[str, Query(max_length=16)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 25,
) -> dict[str, Any]:
    """Report summaries, most recently changed first."""
    return ws.store.list_reports(q, status, page, per_page)


@router.get("/reports/{report_id}")
def get_report(report_id: ReportId, _: Viewer, ws: WorkspaceDep) -> dict[str, Any]:
    """Everything the review page shows: text, suggestions, decisions, indicators."""
    return ws.store.detail(report_id, ws.registry.catalog.describe())


@router.patch("/reports/{report_id}")
def patch_report(
    report_id: ReportId, body: ReportPatch, _: Analyst, ws: WorkspaceDep
) -> dict[str, Any]:
    """Change the status (new, in_review, reviewed) or the title."""
    return ws.store.update_report(report_id, status=body.status, title=body.title)


@router.delete("/reports/{report_id}", status_code=204)
def delete_report(report_id: ReportId, _: Admin, ws: WorkspaceDep) -> Response:
    ws.store.delete_report(report_id)
    return Response(status_code=204)


@router.post("/reports/{report_id}/analyze")
async def reanalyse(report_id: ReportId, _: Analyst, ws: WorkspaceDep) -> dict[str, Any]:
    """Analyse the report again with the active model; its decisions are kept."""
    document = ws.store.report_document(report_id)
    analysis, model_name = await ws.run(_analyse, ws, document)
    ws.store.add_analysis(report_id, analysis, model_name, ws.threshold)
    return ws.store.detail(report_id, ws.registry.catalog.describe())


@router.get("/reports/{report_id}/export")
def export(
    report_id: ReportId,
    _: Viewer,
    ws: WorkspaceDep,
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


def _reader(
    ws: Workspace,
    fields: dict[str, str],
    upload: tuple[str, bytes] | None,
    title: str | None,
) -> tuple[Callable[[], Document], str]:
    """How to read the new report (run in the worker pool: a URL is fetched there) and the
    source it is recorded with: the uploaded file, else the URL, else the pasted text."""
    text, url = fields.get("text") or "", (fields.get("url") or "").strip()
    if upload is not None:
        name, data = upload
        return lambda: read_bytes(data, name=name, origin=name), name
    if url:
        _check_url(url)
        addresses = None if ws.allow_private_urls else _public_address

        def fetch() -> Document:
            return read_url(
                url,
                max_bytes=ws.max_bytes,
                timeout=URL_TIMEOUT_S,
                check=_check_url,  # every redirect's target too
                check_address=addresses,  # every connection, to the address checked
            )

        return fetch, url
    if text.strip():
        source = (fields.get("source") or "").strip() or "pasted"
        document = Document.from_text(clean(text), title=title, origin="pasted")
        return lambda: document, source
    raise BadRequestError("give the report's text, a file or a URL")


def _analyse(ws: Workspace, document: Document) -> tuple[dict[str, Any], str]:
    """The active model's analysis of `document`, down to the suggestion floor, with the
    words that drove each technique and the indicators; and that model's name (the model
    and its name read together, when the work runs: a switch meanwhile cannot mix them)."""
    model, name = ws.registry.active()
    floor = min(SUGGESTION_FLOOR, ws.threshold)
    result = model.analyze(document, threshold=floor, explain=True, iocs=True)
    data: dict[str, Any] = result.to_dict()
    return data, name


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
            name = clean(upload.filename).replace("/", "_").replace("\\", "_")[:255]
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
    network behind it. Checked on every connection of a URL import, redirects included; an
    IPv6 address that carries an IPv4 one (NAT64, 6to4, Teredo, mapped…) is judged by it
    (`web.addresses`)."""
    check_public(host, address)
