"""Sessions: who you are, logging in and out.

A page request (`GET /`, `/login`, `/reports/{id}`; see `middleware.PAGE_PATHS`) gets a session
and `request.state.csrf_token`, `request.state.user` and `request.state.auth` from
`page_session`, for the pages to render; so does `GET /api/session`.
"""

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from mitremap.web.routers.deps import CallerDep, Workspace, WorkspaceDep
from mitremap.web.workspace.auth import COOKIE, CSRF_HEADER
from mitremap.web.workspace.errors import BadRequestError
from mitremap.web.workspace.store import SESSION_LIFETIME, SessionInfo

router = APIRouter(prefix="/api", tags=["session"])


class LoginIn(BaseModel):
    name: str = Field(..., max_length=64)
    password: str = Field(..., max_length=1024)


@router.get("/session")
def session(request: Request, response: Response, ws: WorkspaceDep) -> dict[str, Any]:
    """Who you are, the CSRF token to send as `X-CSRF-Token`, and whether login is on."""
    info = page_session(ws, request, response)
    return _session_answer(ws, info)


@router.post("/login")
def login(body: LoginIn, request: Request, who: CallerDep, ws: WorkspaceDep) -> JSONResponse:
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


@router.post("/logout", status_code=204)
def logout(request: Request, who: CallerDep, ws: WorkspaceDep) -> Response:
    ws.auth.check_csrf(who, request.headers.get(CSRF_HEADER))
    if who.cookie:
        ws.store.end_session(who.cookie)
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/")
    return response


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
