"""The web app: the analysts' review workspace and the REST API (FastAPI; the `web` extra).
Run it with `mitremap serve`.

The app factory puts together what the workspace package provides — the database and its
service layer (`workspace.store`), who may do what (`workspace.auth`), the models
(`workspace.registry`), retraining (`workspace.retrain`), the routes under `/api`
(`workspace.api`), the pages (`workspace.pages`, when present) and the offline API docs at
`/docs` — and guards all of it:

- every answer carries a strict Content-Security-Policy (scripts from this server only),
  `X-Content-Type-Options` and `X-Frame-Options`; a foreign `Host` (DNS rebinding) and
  cross-origin writes are refused;
- every error is `{"error": {"code", "message"}}` with its status, a bug included (500,
  logged, its details kept out of the answer);
- request bodies are bounded (`max_bytes`) even when sent without a length; documents are read
  and analysed in a small worker pool off the event loop (a large upload never stalls the
  rest), with a queue limit (503 when full) and a time limit (504) that stops the work itself
  (a `Deadline` passed into it), so the worker is free again when the 504 goes out.
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mitremap.deadline import Deadline
from mitremap.errors import InputError, MissingExtraError, MitreMapError
from mitremap.errors import TimeLimitError as WorkTimeLimitError

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
WORKERS = 2  # analyses at once
QUEUE = 16  # analyses waiting or running before new ones get 503
TIME_LIMIT_S = 120.0
GRACE_S = 5.0  # past the deadline, stop waiting for work that did not stop itself
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; font-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "validation_error",
    500: "internal_error",
    503: "busy",
    504: "timeout",
}
PAGE_PATHS = re.compile(r"/|/login|/reports/[1-9][0-9]{0,17}")
"""The pages that start a browser session (`GET /api/session` starts one too); any other
path, an unknown one included, never writes a session row."""

log = logging.getLogger("mitremap.server")


def error_body(status: int, message: str, code: str | None = None) -> dict[str, Any]:
    """The one error shape of every answer."""
    return {"error": {"code": code or ERROR_CODES.get(status, "bad_request"), "message": message}}


def create_app(
    mitremap: Any = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS,
    time_limit_s: float = TIME_LIMIT_S,
    *,
    database: Any = None,
    auth: bool | None = None,
    secure_cookies: bool = False,
    model_path: Path | None = None,
    models_dir: Path | None = None,
    trainer: Any = None,
    threshold: float = 0.6,
    allow_private_urls: bool = True,
) -> Any:
    """The FastAPI app.

    `mitremap`: a loaded `MitreMap` (default: the database's active model, else the cached
    default model) found at `model_path`; `database`: a `Database` or URL (default: the
    SQLite file in the user data folder); `auth`: require login (default: when the database
    has users with passwords); `secure_cookies`: mark the session cookie Secure (off
    loopback); `models_dir`: where models live and retraining saves new ones (default: the
    user cache's models folder); `trainer`: what retraining runs (default: the default recipe
    plus the reviewed passages); `allowed_hosts`: the names a request's `Host` may carry."""
    try:
        import anyio
        from fastapi import FastAPI, Request
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import HTMLResponse, JSONResponse, Response
        from starlette.exceptions import HTTPException
        from starlette.requests import ClientDisconnect
    except ImportError as exc:
        raise MissingExtraError("fastapi", "web", "The web app") from exc
    try:
        from mitremap.workspace.api import Workspace, create_router, page_session
        from mitremap.workspace.auth import Auth
        from mitremap.workspace.db import Database
        from mitremap.workspace.docs import add_docs
        from mitremap.workspace.errors import BusyError, TimeLimitError, WorkspaceError
        from mitremap.workspace.registry import ModelRegistry
        from mitremap.workspace.retrain import ACTIVE_MODEL, Retrainer
        from mitremap.workspace.store import Store
    except ImportError as exc:
        raise MissingExtraError(exc.name or "sqlalchemy", "web", "The web app") from exc

    from mitremap import __version__
    from mitremap.analysis import default_model_path

    db = database if isinstance(database, Database) else Database(database)
    store = Store(db)
    store.fail_interrupted_jobs()
    folder = Path(models_dir) if models_dir else default_model_path().parent
    if mitremap is None:
        active = store.setting(ACTIVE_MODEL)
        path = folder / active if active and (folder / active / "manifest.json").is_file() else None
        model_path = path or model_path or default_model_path()
        from mitremap.analysis import MitreMap

        mitremap = MitreMap.load(model_path)
    registry = ModelRegistry(folder, mitremap, model_path)
    pending = [0]
    workers = anyio.CapacityLimiter(WORKERS)

    async def in_worker(function: Any, *args: Any) -> Any:
        """Run blocking work (reading a document, analysing it) in the worker pool, called
        with a `Deadline` as its last argument: the work stops itself at the time limit."""
        if pending[0] >= QUEUE:
            raise BusyError("the server is busy; try again shortly")
        pending[0] += 1
        deadline = Deadline.after(time_limit_s)
        try:
            call = anyio.to_thread.run_sync(function, *args, deadline, limiter=workers)
            return await asyncio.wait_for(call, timeout=time_limit_s + GRACE_S)
        except (TimeoutError, WorkTimeLimitError) as exc:
            raise TimeLimitError(f"the analysis took longer than {time_limit_s:.0f} s") from exc
        finally:
            pending[0] -= 1

    ws = Workspace(
        store=store,
        auth=Auth(store, enabled=store.has_login_users() if auth is None else auth),
        registry=registry,
        retrainer=Retrainer(store, registry, trainer),
        run=in_worker,
        max_bytes=max_bytes,
        threshold=threshold,
        secure_cookies=secure_cookies,
        allow_private_urls=allow_private_urls,
        database=db.kind,
    )

    app = FastAPI(
        title="MitreMap",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        description="Map threat reports to MITRE ATT&CK techniques, review the mappings, "
        "extract indicators of compromise. Scripts authenticate with "
        "`Authorization: Bearer <API token>`; browsers with the session cookie and "
        '`X-CSRF-Token`. Every error is `{"error": {"code", "message"}}`.',
    )
    app.state.workspace = ws

    def failure(status: int, message: str, code: str | None = None) -> JSONResponse:
        return JSONResponse(error_body(status, message, code), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        """Say which field is wrong, without echoing the input (it may not even be JSON)."""
        problems = [
            f"{'.'.join(str(x) for x in e.get('loc', ()) if x != 'body')}: {e.get('msg', '')}"
            for e in exc.errors()
        ]
        return failure(422, "; ".join(problems)[:500])

    @app.exception_handler(MitreMapError)
    async def _user_error(_: Request, exc: MitreMapError) -> JSONResponse:
        message = " ".join(str(exc).split())[:500]
        if isinstance(exc, WorkspaceError):
            return failure(exc.status, message, exc.code)
        if isinstance(exc, InputError) and ("larger than" in message or "too large" in message):
            return failure(413, message)
        return failure(400, message)

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
        messages = {404: "no such page or API route", 405: "that method is not allowed here"}
        detail = exc.detail if isinstance(exc.detail, str) else ""
        message = messages.get(exc.status_code, detail or "the request failed")
        return failure(exc.status_code, message)

    allowed = {h.strip("[]").lower() for h in allowed_hosts}

    def host_name(value: str) -> str:
        return (urlsplit(f"//{value}").hostname or "").lower()

    @app.middleware("http")
    async def _guarded(request: Request, call_next: Any) -> Any:
        """Refuse a foreign Host (DNS rebinding) and cross-origin writes; start a session for
        a page; turn a bug into a 500 in the one shape; add the security headers."""
        problem = None
        response: Response
        if host_name(request.headers.get("host", "")) not in allowed:
            problem = (400, "the Host header names a server this is not")
        elif request.method not in ("GET", "HEAD", "OPTIONS"):
            origin = request.headers.get("origin")
            site = request.headers.get("sec-fetch-site", "")
            if (
                origin and host_name(urlsplit(origin).netloc) not in allowed
            ) or site == "cross-site":
                problem = (403, "cross-origin requests are refused")
        if problem is not None:
            response = failure(*problem)
        else:
            cookie_carrier = Response()
            try:
                if request.method == "GET" and PAGE_PATHS.fullmatch(request.url.path):
                    page_session(ws, request, cookie_carrier)
                response = await call_next(request)
            except MitreMapError as exc:  # the database failed while starting a session
                response = await _user_error(request, exc)
            except ClientDisconnect:
                response = Response(status_code=400)  # nobody is there to read it
            except Exception:
                log.exception("internal error on %s %s", request.method, request.url.path)
                response = failure(500, "internal error; the server log has the details")
            for name, value in cookie_carrier.headers.items():
                if name == "set-cookie":
                    response.headers.append("set-cookie", value)
        response.headers.update(SECURITY_HEADERS)
        return response

    app.include_router(create_router(ws))
    add_docs(app)
    try:
        from mitremap.workspace.pages import add_pages  # the pages, when installed
    except ImportError:

        @app.get("/", include_in_schema=False)
        def home() -> HTMLResponse:
            return HTMLResponse(
                "<!DOCTYPE html><meta charset='utf-8'><title>MitreMap</title>"
                "<p>MitreMap's REST API is running: see <a href='/docs'>/docs</a>.</p>"
            )

    else:
        add_pages(app)
    app.add_middleware(BodyLimit, limit=max_bytes + 64 * 1024)
    return app


class BodyLimit:
    """ASGI middleware: a request body larger than `limit` is refused with 413 — at once
    when its Content-Length says so, else as soon as that many bytes have arrived (chunked
    uploads included)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = error_body(413, f"the request is larger than the {self.limit // 2**20} MB limit")
        length = dict(scope.get("headers") or ()).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            await _send_json(send, 413, body)
            return
        received, too_large, started = 0, False, False

        async def bounded() -> Any:
            """The body as it comes; past the limit, the app is told the client left."""
            nonlocal received, too_large
            if too_large:
                return {"type": "http.disconnect"}
            event = await receive()
            if event["type"] == "http.request":
                received += len(event.get("body", b""))
                if received > self.limit:
                    too_large = True
                    return {"type": "http.disconnect"}
            return event

        async def answer(event: Any) -> None:
            nonlocal started
            if too_large:
                return  # the 413 below answers instead
            started = started or event["type"] == "http.response.start"
            await send(event)

        try:
            await self.app(scope, bounded, answer)
        except Exception:
            if not too_large:
                raise
        if too_large and not started:
            await _send_json(send, 413, body)


async def _send_json(send: Any, status: int, body: dict[str, Any]) -> None:
    import json

    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def guarded_protocol(request_timeout: float = 30.0, per_client: int = 32) -> Any:
    """uvicorn's HTTP/1.1 protocol, made to drop clients that hold a connection without
    sending a whole request: a request (headers and body) must arrive within
    `request_timeout` seconds of its first byte or of the connection, and one client address
    may hold at most `per_client` connections. (uvicorn times out idle keep-alive connections
    itself, but not a request that never finishes.)"""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    open_by_client: dict[str, int] = {}
    arrived = (h11.DONE, h11.MUST_CLOSE)  # MUST_CLOSE: the whole request, sent with "close"

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
            if self.conn.their_state in arrived or self.transport.is_closing():
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
            if self.conn.their_state not in arrived:
                self.transport.close()

    return GuardedH11
