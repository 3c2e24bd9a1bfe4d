"""The web app and REST API (FastAPI; the `web` extra). Run it with `mitremap serve`.

- `GET /` — a form: paste a report or upload a file; the answer is the HTML report.
- `POST /api/analyze` — JSON `{"text", "threshold", "window", "explain", "iocs", "format"}`;
  answers the CLI's JSON schema, or any export format (`navigator`, `stix`, `csv`, ...).
- `POST /api/analyze/file` — the same for an uploaded file (multipart; PDF, DOCX, HTML, text).
- `POST /api/iocs` — `{"text", "types"}` → `{"indicators": [...]}`.
- `GET /api/techniques/{id}`, `GET /api/health`.

Every input is bounded (`max_bytes`), errors are one-line JSON `{"error": ...}` with a 4xx
status, and the model is loaded once per process. Documents are read and analysed in a small
worker pool off the event loop (a large upload never stalls `/api/health`), with a queue limit
(503 when full) and a time limit (504). Every answer carries a strict Content-Security-Policy,
`X-Content-Type-Options` and `X-Frame-Options`; requests naming a foreign `Host` (DNS
rebinding) or posted from a foreign origin are refused.
"""

import html
import math
from typing import Annotated, Any

from mitremap.errors import InputError, MissingExtraError, MitreMapError

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
WORKERS = 2  # analyses at once
QUEUE = 16  # analyses waiting or running before new ones get 503
TIME_LIMIT_S = 120.0
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]", "testserver")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}

_FORM = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>MitreMap</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}
textarea{{width:100%;height:16rem}}fieldset{{border:0;padding:0;margin:.5rem 0}}</style></head><body>
<h1>MitreMap</h1><p>Paste a threat report or upload a file (text, Markdown, HTML, PDF, DOCX;
up to {limit} MB) to map it to MITRE ATT&amp;CK techniques and extract its indicators.</p>
<form method="post" action="/report" enctype="multipart/form-data">
<textarea name="text" placeholder="Paste a report…"></textarea>
<fieldset><input type="file" name="file"></fieldset>
<fieldset><label>Threshold <input type="number" name="threshold" value="0.6" min="0" max="1" step="0.05"></label>
<label>Window <input type="number" name="window" value="3" min="1" max="20"></label>
<label><input type="checkbox" name="explain" value="1" checked> explain</label></fieldset>
<button type="submit">Analyze</button></form>
<p><small>REST API: <code>POST /api/analyze</code>, <code>POST /api/analyze/file</code>,
<code>POST /api/iocs</code>; schema at <a href="/openapi.json">/openapi.json</a>.</small></p>
</body></html>"""


def clean_text(text: str) -> str:
    """Text that encodes: a lone surrogate (valid JSON, invalid UTF-8) becomes '?', one
    character for one, so offsets stay true."""
    return text.encode("utf-8", "replace").decode("utf-8")


def create_app(
    mitremap: Any = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS,
    time_limit_s: float = TIME_LIMIT_S,
) -> Any:
    """The FastAPI app; `mitremap` is a loaded `MitreMap` (default: the cached default model).

    `allowed_hosts`: the names a request's `Host` may carry (loopback by default)."""
    try:
        from fastapi import FastAPI, File, Form, Request, UploadFile
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import HTMLResponse, JSONResponse, Response
        from pydantic import BaseModel, Field
    except ImportError as exc:
        raise MissingExtraError("fastapi", "web", "The web app") from exc

    import asyncio
    from urllib.parse import urlsplit

    import anyio

    from mitremap import __version__
    from mitremap.documents import Document, read_bytes
    from mitremap.export import FORMATS, export_format

    state: dict[str, Any] = {"mitremap": mitremap, "pending": 0}
    workers = anyio.CapacityLimiter(WORKERS)

    async def in_worker(function: Any, *args: Any) -> Any:
        """Run blocking work (reading a document, analysing it) in the worker pool."""
        if state["pending"] >= QUEUE:
            raise _Busy("the server is busy; try again shortly")
        state["pending"] += 1
        try:
            call = anyio.to_thread.run_sync(function, *args, limiter=workers)
            return await asyncio.wait_for(call, timeout=time_limit_s)
        except TimeoutError as exc:
            raise _Busy(f"the analysis took longer than {time_limit_s:.0f} s", 504) from exc
        finally:
            state["pending"] -= 1

    def model() -> Any:
        if state["mitremap"] is None:
            from mitremap.analysis import MitreMap

            state["mitremap"] = MitreMap.load()
        return state["mitremap"]

    class AnalyzeRequest(BaseModel):
        text: str = Field(..., description="The report text.")
        title: str = ""
        threshold: float = Field(0.6, ge=0.0, le=1.0, allow_inf_nan=False)
        window: int = Field(3, ge=1, le=50)
        explain: bool = False
        iocs: bool = True
        format: str = Field("json", description=f"One of {', '.join(FORMATS)}.")

    class IocRequest(BaseModel):
        text: str
        types: list[str] | None = None

    app = FastAPI(
        title="MitreMap",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        description="Map threat reports to MITRE ATT&CK techniques; extract IoCs.",
    )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        """Say which field is wrong, without echoing the input (it may not even be JSON)."""
        problems = [
            f"{'.'.join(str(x) for x in e.get('loc', ()) if x != 'body')}: {e.get('msg', '')}"
            for e in exc.errors()
        ]
        return JSONResponse({"error": "; ".join(problems)}, status_code=422)

    @app.exception_handler(MitreMapError)
    async def _user_error(_: Request, exc: MitreMapError) -> JSONResponse:
        status = 413 if isinstance(exc, InputError) and "larger than" in str(exc) else 400
        if isinstance(exc, _Busy):
            status = exc.status
        return JSONResponse({"error": str(exc)}, status_code=status)

    def _check_size(size: int) -> None:
        if size > max_bytes:
            raise InputError(f"the input is larger than the {max_bytes // 2**20} MB limit")

    def _answer(
        document: Document, threshold: float, window: int, explain: bool, iocs: bool, fmt: str
    ) -> Response:
        exporter = export_format(fmt)
        if not document.text.strip():
            raise InputError("the input is empty")
        if not math.isfinite(threshold) or not 0.0 <= threshold <= 1.0:
            raise InputError("the threshold must be a number between 0 and 1")
        result = model().analyze(
            document, threshold=threshold, window=window, explain=explain, iocs=iocs
        )
        if fmt == "json":
            return JSONResponse(result.to_dict())
        return Response(
            exporter.render(result, iocs), media_type=exporter.media_type + "; charset=utf-8"
        )

    def _host_name(value: str) -> str:
        return (urlsplit(f"//{value}").hostname or "").lower()

    allowed = {h.strip("[]").lower() for h in allowed_hosts}

    @app.middleware("http")
    async def _guarded(request: Request, call_next: Any) -> Any:
        """Refuse a foreign Host (DNS rebinding) and cross-origin posts; add the security
        headers to every answer."""
        problem = None
        if _host_name(request.headers.get("host", "")) not in allowed:
            problem = (400, "the Host header names a server this is not")
        elif request.method == "POST":
            origin = request.headers.get("origin")
            site = request.headers.get("sec-fetch-site", "")
            if (
                origin and _host_name(urlsplit(origin).netloc) not in allowed
            ) or site == "cross-site":
                problem = (403, "cross-origin requests are refused")
        if problem is not None:
            response = JSONResponse({"error": problem[1]}, status_code=problem[0])
        else:
            response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.middleware("http")
    async def _bounded(request: Request, call_next: Any) -> Any:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_bytes + 64 * 1024:
            return JSONResponse(
                {"error": f"the request is larger than the {max_bytes // 2**20} MB limit"},
                status_code=413,
            )
        return await call_next(request)

    @app.get("/", response_class=HTMLResponse)
    def home() -> str:
        return _FORM.format(limit=max_bytes // 2**20)

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, "model": model().card}

    @app.post("/api/analyze")
    async def analyze(request: AnalyzeRequest) -> Response:
        text = clean_text(request.text)
        _check_size(len(text.encode("utf-8")))
        document = Document(text, title=clean_text(request.title) or "text", origin="api")
        return await in_worker(
            _answer,
            document,
            request.threshold,
            request.window,
            request.explain,
            request.iocs,
            request.format,
        )

    @app.post("/api/analyze/file")
    async def analyze_file(
        file: Annotated[UploadFile, File()],
        threshold: Annotated[float, Form(ge=0.0, le=1.0)] = 0.6,
        window: Annotated[int, Form(ge=1, le=50)] = 3,
        explain: Annotated[bool, Form()] = False,
        iocs: Annotated[bool, Form()] = True,
        format: Annotated[str, Form()] = "json",
    ) -> Response:
        data = await file.read(max_bytes + 1)
        _check_size(len(data))
        name = clean_text(file.filename or "upload")

        def work() -> Response:
            document = read_bytes(data, name=name, origin=name)
            return _answer(document, threshold, window, explain, iocs, format)

        return await in_worker(work)

    @app.post("/api/iocs")
    async def iocs(request: IocRequest) -> dict[str, Any]:
        from mitremap.iocs import extract_iocs

        text = clean_text(request.text)
        _check_size(len(text.encode("utf-8")))
        found = await in_worker(lambda: extract_iocs(text, types=request.types))
        return {"indicators": [i.to_dict() for i in found]}

    @app.get("/api/techniques/{technique_id}")
    def technique(technique_id: str) -> dict[str, Any]:
        kb = getattr(model(), "kb", None)
        if kb is None:
            from mitremap.attack import load_attack

            kb = load_attack()
        try:
            return kb[technique_id].to_dict()
        except KeyError as exc:
            raise MitreMapError(str(exc)) from None

    @app.post("/report", response_class=HTMLResponse)
    async def report(
        text: Annotated[str, Form()] = "",
        file: Annotated[UploadFile | None, File()] = None,
        threshold: Annotated[float, Form(ge=0.0, le=1.0)] = 0.6,
        window: Annotated[int, Form(ge=1, le=50)] = 3,
        explain: Annotated[str, Form()] = "",
    ) -> Response:
        try:
            if file is not None and file.filename:
                data = await file.read(max_bytes + 1)
                _check_size(len(data))
                name = clean_text(file.filename)

                def work() -> Response:
                    document = read_bytes(data, name=name, origin=name)
                    return _answer(document, threshold, window, bool(explain), True, "html")

            else:
                pasted = clean_text(text)
                _check_size(len(pasted.encode("utf-8")))

                def work() -> Response:
                    document = Document(pasted, title="pasted text", origin="form")
                    return _answer(document, threshold, window, bool(explain), True, "html")

            return await in_worker(work)
        except MitreMapError as exc:
            page = (
                f"<!DOCTYPE html><meta charset='utf-8'><title>MitreMap: error</title>"
                f"<p>Error: {html.escape(str(exc))}</p><p><a href='/'>Back</a></p>"
            )
            return HTMLResponse(page, status_code=400)

    return app


class _Busy(MitreMapError):
    """The worker pool is full (503) or an analysis ran out of time (504)."""

    def __init__(self, message: str, status: int = 503) -> None:
        super().__init__(message)
        self.status = status


def guarded_protocol(request_timeout: float = 30.0, per_client: int = 32) -> Any:
    """uvicorn's HTTP/1.1 protocol, made to drop clients that hold a connection without
    sending a whole request: a request (headers and body) must arrive within
    `request_timeout` seconds of its first byte or of the connection, and one client address
    may hold at most `per_client` connections. (uvicorn times out idle keep-alive connections
    itself, but not a request that never finishes.)"""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    open_by_client: dict[str, int] = {}

    class GuardedH11(H11Protocol):
        _deadline: Any = None
        _who: str = ""

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._who = self.client[0] if self.client else ""
            open_by_client[self._who] = open_by_client.get(self._who, 0) + 1
            if open_by_client[self._who] > per_client:
                transport.close()
                return
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is h11.DONE or self.transport.is_closing():
                self._disarm()
            else:
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            left = open_by_client.get(self._who, 1) - 1
            if left > 0:
                open_by_client[self._who] = left
            else:
                open_by_client.pop(self._who, None)
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._deadline is None:
                self._deadline = self.loop.call_later(request_timeout, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            self._deadline = None
            if self.conn.their_state is not h11.DONE:
                self.transport.close()

    return GuardedH11
