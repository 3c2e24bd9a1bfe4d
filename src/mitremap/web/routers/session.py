"""Sessions: who you are, logging in and out.

A page request (`GET /`, `/login`, `/reports/{id}`, `/admin`; see `middleware.PAGE_PATHS`)
and `GET /api/session` get the caller and its CSRF token from `page_session`, which puts
`csrf_token`, `user` and `auth` on `request.state` for the pages to render. Showing a page
writes nothing to the database: a browser that is not logged in gets a random
`mitremap_csrf` cookie, its CSRF token derived from it (`auth.Auth.anonymous_csrf`); the
session row is made at login.
"""

import secrets
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from mitremap.web.routers.deps import CallerDep, Workspace, WorkspaceDep, caller
from mitremap.web.workspace.accounts import SESSION_LIFETIME
from mitremap.web.workspace.auth import COOKIE, CSRF_COOKIE, CSRF_HEADER, Caller
from mitremap.web.workspace.errors import BadRequestError

router = APIRouter(prefix="/api", tags=["session"])
CSRF_COOKIE_AGE_S = 30 * 24 * 3600  # the pre-login cookie proves nothing by itself


class LoginIn(BaseModel):
    name: str = Field(..., max_length=64)
    password: str = Field(..., max_length=1024)


@router.get("/session")
def session(request: Request, response: Response, ws: WorkspaceDep) -> dict[str, Any]:
    """Who you are, the CSRF token to send as `X-CSRF-Token`, and whether login is on."""
    who = page_session(ws, request, response)
    return _session_answer(ws, who)


@router.post("/login")
def login(body: LoginIn, request: Request, who: CallerDep, ws: WorkspaceDep) -> JSONResponse:
    """Log in (the page's CSRF token is needed); answers like `GET /api/session`. Failed
    logins are limited per user name and per client address (429 past the limit)."""
    if not ws.auth.enabled:
        raise BadRequestError("this server runs without users: there is nothing to log in to")
    ws.auth.check_csrf(who, request.headers.get(CSRF_HEADER))
    address = request.client.host if request.client else ""
    token, info = ws.auth.login(body.name, body.password, address)
    if who.cookie:
        ws.store.end_session(who.cookie)  # a new session id at login: no fixation
    user = info.user
    response = JSONResponse(
        {
            "user": {"name": user.name, "role": user.role} if user else None,
            "csrf_token": info.csrf_token,
            "auth": True,
        }
    )
    set_cookie(request, ws, response, COOKIE, token, int(SESSION_LIFETIME.total_seconds()))
    return response


@router.post("/logout", status_code=204)
def logout(request: Request, who: CallerDep, ws: WorkspaceDep) -> Response:
    ws.auth.check_csrf(who, request.headers.get(CSRF_HEADER))
    if who.cookie:
        ws.store.end_session(who.cookie)
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/")
    return response


def page_session(ws: Workspace, request: Request, response: Response) -> Caller:
    """The caller of a page, with a CSRF token: a browser that is neither logged in nor has
    the `mitremap_csrf` cookie gets one (set on `response`; no database row). Also puts
    `csrf_token`, `user` and `auth` on `request.state` for pages."""
    who = caller(request, ws)
    if who.via in ("anonymous", "local") and not who.csrf:
        value = secrets.token_urlsafe(32)
        set_cookie(request, ws, response, CSRF_COOKIE, value, CSRF_COOKIE_AGE_S)
        who = replace(who, csrf=ws.auth.anonymous_csrf(value))
        request.state.caller = who
    user = who.user
    request.state.csrf_token = who.csrf
    request.state.user = {"name": user.name, "role": user.role} if user else None
    request.state.auth = ws.auth.enabled
    return who


def _session_answer(ws: Workspace, who: Caller) -> dict[str, Any]:
    user = who.user
    return {
        "user": {"name": user.name, "role": user.role} if user else None,
        "csrf_token": who.csrf,
        "auth": ws.auth.enabled,
    }


def set_cookie(
    request: Request, ws: Workspace, response: Response, name: str, value: str, max_age: int
) -> None:
    """An HttpOnly, SameSite=Strict cookie, Secure when the request came over HTTPS (itself,
    or through a trusted proxy that says so: `create_app(forwarded_allow_ips=…)`) or when
    the server always asks for it."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=ws.secure_cookies or request.url.scheme == "https",
    )
