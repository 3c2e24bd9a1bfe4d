"""Reports: add one (text, file or URL; analysed at once), list (search, filters, order),
read, change (status, title, metadata), delete, analyse again, export the reviewed result —
and the same for several at once (mark reviewed, delete, export as one file).

A report's answer carries its version as an `ETag`; a change sent with `If-Match` is refused
(409, `current` in the error) when what it changes was changed since (`routers.versions`).

A report from a URL: only http(s), redirects capped and each target checked, and on a shared
server (`allow_private_urls=False`) every connection, redirects included, goes only to a
public address that was checked (`documents.readers.read_url`'s `check_address`).
"""

import ipaddress
from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from mitremap.deadline import Deadline
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
from mitremap.web.routers.versions import IfMatch, etag, stale
from mitremap.web.workspace.combined import MAX_REPORTS, combine, export_options
from mitremap.web.workspace.errors import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    InvalidError,
    StaleError,
    TooLargeError,
)
from mitremap.web.workspace.models import TLP_LEVELS
from mitremap.web.workspace.reports import SUGGESTION_FLOOR, ReportChanges, ReportQuery

Benign = Literal["context", "omit"]
URL_TIMEOUT_S = 30.0
REANALYSE_AT_ONCE = 25

router = APIRouter(prefix="/api", tags=["reports"])


class ReportIn(BaseModel):
    title: str | None = Field(None, max_length=300)
    text: str | None = None
    url: str | None = Field(None, max_length=2000)
    source: str | None = Field(None, max_length=2000)
    tlp: str | None = Field(None, max_length=20, description=", ".join(TLP_LEVELS))
    tags: list[str] | str | None = Field(None, description="a list, or one string: a, b, c")
    source_org: str | None = Field(None, max_length=300)
    published: str | None = Field(None, max_length=40, description="YYYY-MM-DD")


class ReportPatch(BaseModel):
    status: str | None = Field(None, description="new, in_review or reviewed")
    title: str | None = Field(None, max_length=300)
    tlp: str | None = Field(None, max_length=20, description=", ".join(TLP_LEVELS))
    tags: list[str] | str | None = Field(None, description="the report's tags (all of them)")
    source_org: str | None = Field(None, max_length=300)
    published: str | None = Field(None, max_length=40, description='YYYY-MM-DD; "" clears')


class BulkIn(BaseModel):
    ids: list[int] = Field(..., min_length=1, max_length=MAX_REPORTS)
    action: str = Field(..., description="mark_reviewed (analysts) or delete (admins)")


class SettingsPatch(BaseModel):
    default_tlp: str = Field(..., max_length=20, description="new reports' TLP")


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

    def work(deadline: Deadline) -> tuple[Document, dict[str, Any], str]:
        document = read(deadline)
        if title:
            document = replace(document, title=title)
        if not document.text.strip():
            raise BadRequestError("the report is empty")
        return document, *_analyse(ws, document, deadline)

    document, analysis, model_name = await ws.run(work)
    try:
        return ws.store.add_report(
            document,
            analysis,
            source=source,
            user=user.name,
            model_name=model_name,
            threshold=ws.threshold,
            changes=ReportChanges(
                tlp=fields.get("tlp") or None,
                tags=fields.get("tags") or None,
                source_org=fields.get("source_org") or None,
                published=fields.get("published") or None,
            ),
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
    tag: Annotated[str, Query(max_length=64)] = "",
    tlp: Annotated[str, Query(max_length=20)] = "",
    technique: Annotated[str, Query(max_length=16)] = "",
    sort: Annotated[str, Query(max_length=20)] = "-updated",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 25,
) -> dict[str, Any]:
    """Report summaries. `q` searches titles, the text, indicator values and technique ids
    (full text: every word must be there); `status`, `tag`, `tlp`, `technique` filter; `sort`
    is updated, created, title, source, status, tlp, published, accepted or pending, with a
    leading `-` for descending (default `-updated`, most recently changed first)."""
    query = ReportQuery(q, status, tag, tlp, technique, sort, page, per_page)
    return ws.store.list_reports(query)


@router.post("/reports/bulk")
def bulk(body: BulkIn, user: Analyst, ws: WorkspaceDep) -> dict[str, Any]:
    """Several reports at once: `mark_reviewed`, or `delete` (admins). Answers which were
    done and which no longer exist."""
    if body.action == "delete" and user.role != "admin":
        raise ForbiddenError("only admins delete reports")
    return ws.store.bulk(body.ids, body.action, user.name)


@router.get("/reports/export")
def export_several(
    _: Viewer,
    ws: WorkspaceDep,
    ids: Annotated[str, Query(max_length=8000, description="report ids: 1,2,3")],
    format: Annotated[str, Query(max_length=20)] = "navigator",
) -> Response:
    """Several reviewed reports as one file: a Navigator layer (score: how many of them show
    each technique), one STIX bundle, a MISP event collection, or their JSON."""
    chosen = _ids(ids)
    describe = ws.registry.catalog.describe()
    keep = format in ("stix", "misp", "json")
    found = combine(
        [ws.store.reviewed_result(i, describe, keep_rejected=keep) for i in chosen], format
    )
    name = f"reports-{len(chosen)}-reviewed{found.extension}"
    return Response(
        found.body,
        media_type=found.media_type + "; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/settings")
def settings(_: Viewer, ws: WorkspaceDep) -> dict[str, Any]:
    """The workspace's choices: new reports' TLP marking (and the markings there are)."""
    return {"default_tlp": ws.store.default_tlp(), "tlp_levels": list(TLP_LEVELS)}


@router.patch("/settings")
def change_settings(body: SettingsPatch, user: Admin, ws: WorkspaceDep) -> dict[str, Any]:
    ws.store.set_default_tlp(body.default_tlp, user.name)
    return {"default_tlp": ws.store.default_tlp(), "tlp_levels": list(TLP_LEVELS)}


@router.get("/reports/{report_id}", response_model=None)
def get_report(
    report_id: ReportId, request: Request, response: Response, _: Viewer, ws: WorkspaceDep
) -> dict[str, Any] | Response:
    """Everything the review page shows: text, suggestions, decisions, indicators, metadata,
    duplicates. Its `ETag` is the report's version (`If-None-Match` with it: 304)."""
    current = etag(ws.store.version(report_id))
    if request.headers.get("if-none-match") == current:
        return Response(status_code=304, headers={"ETag": current})
    detail = ws.store.detail(report_id, ws.registry.catalog.describe())
    response.headers["ETag"] = etag(detail["version"])
    return detail


@router.patch("/reports/{report_id}", response_model=None)
def patch_report(
    report_id: ReportId, body: ReportPatch, user: Analyst, ws: WorkspaceDep, expected: IfMatch
) -> dict[str, Any] | JSONResponse:
    """Change the status (new, in_review, reviewed), the title or the metadata (TLP, tags,
    source organisation, publication date). With `If-Match`: 409 when a field it changes was
    changed since that version."""
    changes = ReportChanges(**body.model_dump())
    try:
        return ws.store.update_report(report_id, changes, user=user.name, expected=expected)
    except StaleError as exc:
        return stale(exc)


@router.delete("/reports/{report_id}", status_code=204)
def delete_report(report_id: ReportId, _: Admin, ws: WorkspaceDep) -> Response:
    ws.store.delete_report(report_id)
    return Response(status_code=204)


@router.post("/reports/{report_id}/analyze")
async def reanalyse(report_id: ReportId, user: Analyst, ws: WorkspaceDep) -> dict[str, Any]:
    """Analyse the report again with the active model; its decisions are kept."""
    document = ws.store.report_document(report_id)
    analysis, model_name = await ws.run(_analyse, ws, document)
    ws.store.add_analysis(report_id, analysis, model_name, ws.threshold, user.name)
    return ws.store.detail(report_id, ws.registry.catalog.describe())


class ReanalyseIn(BaseModel):
    ids: list[int] = Field(..., min_length=1, max_length=REANALYSE_AT_ONCE)


@router.post("/reports/reanalyze")
async def reanalyse_many(body: ReanalyseIn, user: Analyst, ws: WorkspaceDep) -> dict[str, Any]:
    """Analyse reports again with the active model (up to 25 a call: the page sends every
    report in batches) and say, for each, which techniques appeared above the threshold and
    which disappeared; decisions are kept."""
    out = []
    for report_id in dict.fromkeys(body.ids):
        before = ws.store.passing(report_id, ws.threshold)  # 404 for a report that is not there
        document = ws.store.report_document(report_id)
        analysis, model_name = await ws.run(_analyse, ws, document)
        ws.store.add_analysis(report_id, analysis, model_name, ws.threshold, user.name)
        after = ws.store.passing(report_id, ws.threshold)
        out.append(
            {
                "id": report_id,
                "model": model_name,
                "appeared": sorted(after - before),
                "disappeared": sorted(before - after),
            }
        )
    return {"items": out}


@router.get("/reports/{report_id}/export")
def export(
    report_id: ReportId,
    _: Viewer,
    ws: WorkspaceDep,
    format: Annotated[str, Query(max_length=20)] = "json",
    benign: Annotated[Benign, Query(description="context or omit")] = "context",
) -> Response:
    """The reviewed result as a file to download: accepted and added techniques; indicators as
    reviewed — accepted ones, and unreviewed ones not known-benign, are indicators (STIX
    indicator, MISP `to_ids`); rejected and known-benign ones go out as observed context
    (`benign=context`) or not at all (`omit`); marked with the report's TLP."""
    from mitremap.export import export_format

    exporter = export_format(format)
    keep = benign == "context" and format in ("stix", "misp", "json")
    result = ws.store.reviewed_result(report_id, ws.registry.catalog.describe(), keep_rejected=keep)
    body = exporter.render(result, True, export_options(result, benign))
    name = f"report-{report_id}-reviewed{exporter.extension}"
    return Response(
        body,
        media_type=exporter.content_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _ids(ids: str) -> list[int]:
    try:
        chosen = [int(x) for x in ids.split(",") if x.strip()]
    except ValueError:
        raise InvalidError("ids must be report ids separated by commas: 1,2,3") from None
    if not 0 < len(chosen) <= MAX_REPORTS or min(chosen) < 1:
        raise InvalidError(f"select between 1 and {MAX_REPORTS} reports")
    return list(dict.fromkeys(chosen))


def _reader(
    ws: Workspace,
    fields: dict[str, str],
    upload: tuple[str, bytes] | None,
    title: str | None,
) -> tuple[Callable[[Deadline], Document], str]:
    """How to read the new report (run in the worker pool, within the request's deadline: a
    URL is fetched there) and the source it is recorded with: the uploaded file, else the URL,
    else the pasted text."""
    text, url = fields.get("text") or "", (fields.get("url") or "").strip()
    if upload is not None:
        name, data = upload
        return lambda deadline: read_bytes(data, name=name, origin=name, deadline=deadline), name
    if url:
        _check_url(url)
        addresses = None if ws.allow_private_urls else _public_address

        def fetch(deadline: Deadline) -> Document:
            return read_url(
                url,
                max_bytes=ws.max_bytes,
                timeout=URL_TIMEOUT_S,
                check=_check_url,  # every redirect's target too
                check_address=addresses,  # every connection, to the address checked
                deadline=deadline,
            )

        return fetch, url
    if text.strip():
        source = (fields.get("source") or "").strip() or "pasted"
        document = Document.from_text(clean(text), title=title, origin="pasted")
        return lambda _: document, source
    raise BadRequestError("give the report's text, a file or a URL")


def _analyse(ws: Workspace, document: Document, deadline: Deadline) -> tuple[dict[str, Any], str]:
    """The active model's analysis of `document`, down to the suggestion floor, with the
    words that drove each technique, the indicators and the review memory's say, within the
    request's `deadline`; and that model's name (the model and its name read together, when
    the work runs: a switch meanwhile cannot mix them)."""
    memory = ws.memory.current(ws.registry.general()[0])
    model, name = ws.registry.for_text(document.text, memory)
    floor = min(SUGGESTION_FLOOR, ws.threshold)
    result = model.analyze(
        document, threshold=floor, explain=True, iocs=True, memory=memory, deadline=deadline
    )
    data: dict[str, Any] = result.to_dict()
    return data, name


async def _read_report_request(
    request: Request, max_bytes: int
) -> tuple[dict[str, str], tuple[str, bytes] | None]:
    """The fields of a JSON or multipart request, and the uploaded file (its name, as text
    only, and bytes: it is never written under a name the client chose)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        return await _read_form(request, max_bytes)
    if kind not in ("application/json", ""):
        raise BadRequestError("send JSON or multipart/form-data")
    try:
        body = ReportIn.model_validate_json(await request.body())
    except ValueError as exc:
        raise InvalidError(f"not a report request: {_first_problem(exc)}") from None
    if body.text is not None and len(body.text.encode("utf-8", "replace")) > max_bytes:
        raise TooLargeError(f"the text is larger than the {max_bytes // 2**20} MB limit")
    fields = body.model_dump()
    if isinstance(fields.get("tags"), list):
        fields["tags"] = ",".join(str(t) for t in fields["tags"])
    return {k: v for k, v in fields.items() if isinstance(v, str)}, None


async def _read_form(
    request: Request, max_bytes: int
) -> tuple[dict[str, str], tuple[str, bytes] | None]:
    """A multipart request's text fields, and its file when it has one (at most `max_bytes`;
    its name cleaned of folders)."""
    # the block closes the form's files (spooled temporary files), whatever happens
    async with request.form(max_files=1, max_fields=12, max_part_size=max_bytes) as form:
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        upload = form.get("file")
        if upload is None or isinstance(upload, str) or not upload.filename:
            return fields, None
        data = await upload.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise TooLargeError(f"the file is larger than the {max_bytes // 2**20} MB limit")
        name = clean(upload.filename).replace("/", "_").replace("\\", "_")[:255]
        return fields, (name, data)


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
