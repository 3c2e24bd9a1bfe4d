"""The guards around every answer of the web app.

- every answer carries a strict Content-Security-Policy (scripts from this server only),
  `X-Content-Type-Options` and `X-Frame-Options`; a foreign `Host` (DNS rebinding) and
  cross-origin writes are refused (`add_guard`);
- every error is `{"error": {"code", "message"}}` with its status, a bug included (500,
  logged, its details kept out of the answer); the status comes from the error's type, never
  from its message (`user_error`);
- request bodies are bounded even when sent without a length (`BodyLimit`), and a client that
  holds a connection without sending a whole request is dropped (`guarded_protocol`).

FastAPI is imported inside the functions: `mitremap serve` imports this module before it knows
whether the `web` extra is installed, and says which package is missing.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mitremap.errors import MitreMapError, TooLargeInputError
from mitremap.web.workspace.errors import WorkspaceError

if TYPE_CHECKING:
    from fastapi import FastAPI, Request, Response
    from fastapi.responses import JSONResponse

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
PAGE_PATHS = re.compile(r"/|/login|/admin|/docs|/reports/[1-9][0-9]{0,17}")
"""The pages that get the caller and its CSRF token (`GET /api/session` too): a browser that
is not logged in gets the `mitremap_csrf` cookie there. No page writes a database row."""

log = logging.getLogger("mitremap.server")  # the name operators' logging settings know

PageSession = Callable[["Request", "Response"], object]
"""Finds a page's caller and CSRF token, setting the pre-login cookie on the response given
when the browser has none."""


def error_body(status: int, message: str, code: str | None = None) -> dict[str, Any]:
    """The one error shape of every answer."""
    return {"error": {"code": code or ERROR_CODES.get(status, "bad_request"), "message": message}}


def failure(status: int, message: str, code: str | None = None) -> JSONResponse:
    from fastapi.responses import JSONResponse

    return JSONResponse(error_body(status, message, code), status_code=status)


def user_error(exc: MitreMapError) -> JSONResponse:
    """A user's error in the one shape: a workspace error says its own status; an input past
    its size limit is 413; any other is 400."""
    message = " ".join(str(exc).split())[:500]
    if isinstance(exc, WorkspaceError):
        return failure(exc.status, message, exc.code)
    return failure(413 if isinstance(exc, TooLargeInputError) else 400, message)


def add_error_handlers(app: FastAPI) -> None:
    """Every error the routes raise, answered in the one shape."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

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
        return user_error(exc)

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
        messages = {404: "no such page or API route", 405: "that method is not allowed here"}
        detail = exc.detail if isinstance(exc.detail, str) else ""
        message = messages.get(exc.status_code, detail or "the request failed")
        return failure(exc.status_code, message)


def add_guard(app: FastAPI, allowed_hosts: tuple[str, ...], page_session: PageSession) -> None:
    """Refuse a foreign Host (DNS rebinding) and cross-origin writes; find a page's caller
    (`PAGE_PATHS`); turn a bug into a 500 in the one shape; add the security headers."""
    from fastapi import Response
    from starlette.requests import ClientDisconnect

    allowed = {h.strip("[]").lower() for h in allowed_hosts}

    def refused(request: Request) -> tuple[int, str] | None:
        if _host_name(request.headers.get("host", "")) not in allowed:
            return 400, "the Host header names a server this is not"
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return None
        origin = request.headers.get("origin")
        foreign = origin and _host_name(urlsplit(origin).netloc) not in allowed
        if foreign or request.headers.get("sec-fetch-site", "") == "cross-site":
            return 403, "cross-origin requests are refused"
        return None

    @app.middleware("http")
    async def _guarded(request: Request, call_next: Callable[[Request], Awaitable[Any]]) -> Any:
        problem = refused(request)
        response: Response
        if problem is not None:
            response = failure(*problem)
        else:
            cookie_carrier = Response()
            try:
                if request.method == "GET" and PAGE_PATHS.fullmatch(request.url.path):
                    page_session(request, cookie_carrier)
                response = await call_next(request)
            except MitreMapError as exc:  # the database failed, or a bad token on a page
                response = user_error(exc)
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


def _host_name(value: str) -> str:
    return (urlsplit(f"//{value}").hostname or "").lower()


ErrorShape = Callable[[int, str], tuple[str, dict[str, Any]]]
"""(status, message) → (media type, body): how a part of the API words its errors."""


class BodyLimit:
    """ASGI middleware: a request body larger than `limit` is refused with 413 — at once
    when its Content-Length says so, else as soon as that many bytes have arrived (chunked
    uploads included). Under a path prefix of `shapes` (the TAXII feed), the 413 is worded
    the way that part of the API words its errors."""

    def __init__(self, app: Any, limit: int, shapes: dict[str, ErrorShape] | None = None) -> None:
        self.app = app
        self.limit = limit
        self.shapes = shapes or {}

    def _refusal(self, path: str) -> tuple[str, dict[str, Any]]:
        message = f"the request is larger than the {self.limit // 2**20} MB limit"
        for prefix, shape in self.shapes.items():
            if path.startswith(prefix):
                return shape(413, message)
        return "application/json", error_body(413, message)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        kind, body = self._refusal(str(scope.get("path", "")))
        length = dict(scope.get("headers") or ()).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            await _send_json(send, 413, body, kind)
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
            await _send_json(send, 413, body, kind)


async def _send_json(
    send: Any, status: int, body: dict[str, Any], kind: str = "application/json"
) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", kind.encode()), (b"content-length", str(len(data)).encode())]
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

        def connection_made(self, transport: Any) -> None:
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
