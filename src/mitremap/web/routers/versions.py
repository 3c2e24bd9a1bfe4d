"""Versions on the wire: a report's ETag (`"v12"`), the `If-Match` a change is sent with, and
the 409 a stale change gets — the one error shape, plus `current`: how the thing stands now
and who changed it.

Why `If-Match` is optional: a script that sends none decides as before (the latest decision
wins, all are kept in the history); the pages always send it, so two analysts on one report
are told when one's decision overtook the other's.
"""

import re
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse

from mitremap.web.middleware import error_body
from mitremap.web.workspace.errors import BadRequestError, StaleError

_TAG = re.compile(r'^(?:W/)?"v(\d{1,18})"$')


def etag(version: int) -> str:
    return f'"v{version}"'


def expected_version(request: Request) -> int | None:
    """The version named by `If-Match` (None without one, or with `*`)."""
    sent = request.headers.get("if-match", "").strip()
    if not sent or sent == "*":
        return None
    match = _TAG.match(sent)
    if match is None:
        raise BadRequestError(
            'If-Match must be a report\'s ETag, as GET /api/reports/{id} sends it (e.g. "v12")'
        )
    return int(match.group(1))


IfMatch = Annotated[int | None, Depends(expected_version)]


def stale(exc: StaleError) -> JSONResponse:
    body: dict[str, Any] = error_body(exc.status, str(exc), exc.code)
    body["error"]["current"] = exc.current
    return JSONResponse(body, status_code=exc.status)
