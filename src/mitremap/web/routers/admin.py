"""Users and API tokens: what the admin page (`/admin`) does, and scripts may read.

- Admins list users, add one, change a role, reset a password, disable or enable a user.
  An admin cannot leave the server without an enabled admin who can log in.
- Everyone signed in changes their own password (the current one is needed, and counted
  like a login) and lists, makes and revokes their own API tokens; admins see and revoke
  every token. A token's role is at most its user's; it may expire.
- Every change is in the audit log (`GET /api/audit`, admins), with who made it and when;
  the `mitremap serve user …` and `serve token(s) …` commands write there too.

Changes are made from a signed-in page (session cookie and CSRF token) or, with no login on
a loopback server, as the local user — never with an API token, so a leaked token cannot
mint more tokens or users.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from mitremap.web.routers.deps import (
    Admin,
    CallerDep,
    Viewer,
    Workspace,
    WorkspaceDep,
    needs_browser,
)
from mitremap.web.workspace.accounts import MAX_TOKEN_DAYS, UserInfo
from mitremap.web.workspace.auth import LOCAL_USER, hash_password
from mitremap.web.workspace.errors import BadRequestError, ForbiddenError, UnauthorizedError

router = APIRouter(prefix="/api", tags=["users and tokens"])

AdminChange = Annotated[UserInfo, needs_browser("admin")]
Member = Annotated[UserInfo, needs_browser("viewer")]
UserName = Annotated[str, Path(max_length=64)]


class UserIn(BaseModel):
    name: str = Field(..., max_length=64)
    role: str = Field("analyst", description="viewer, analyst or admin")
    password: str = Field(..., max_length=1024)


class UserPatch(BaseModel):
    role: str | None = Field(None, description="viewer, analyst or admin")
    disabled: bool | None = None


class PasswordIn(BaseModel):
    password: str = Field(..., max_length=1024)


class OwnPasswordIn(BaseModel):
    current: str = Field(..., max_length=1024)
    password: str = Field(..., max_length=1024)


class TokenIn(BaseModel):
    label: str = Field("", max_length=100)
    role: str | None = Field(None, description="at most the user's role; empty: the user's")
    expires_days: float | None = Field(None, gt=0, le=MAX_TOKEN_DAYS, allow_inf_nan=False)
    user: str | None = Field(None, max_length=64, description="admins: another user's token")


@router.get("/users")
def users(_: Admin, ws: WorkspaceDep) -> dict[str, Any]:
    """Every user: name, role, whether they can log in, whether they are disabled."""
    return {"items": [u.to_dict() for u in ws.store.users()], "auth": ws.auth.enabled}


@router.post("/users", status_code=201)
def add_user(body: UserIn, admin: AdminChange, ws: WorkspaceDep) -> dict[str, Any]:
    """Add a user who logs in with a password. The first one turns login on (on the
    next request) for a server that ran without."""
    hashed = hash_password(body.password)
    return ws.store.add_user(body.name, body.role, hashed, actor=admin.name).to_dict()


@router.patch("/users/{name}")
def change_user(
    name: UserName, body: UserPatch, admin: AdminChange, ws: WorkspaceDep
) -> dict[str, Any]:
    """Change a user's role, or disable (their sessions end, their tokens stop) or enable
    them."""
    _not_the_local_user(ws, name)
    if body.role is not None:
        ws.store.set_role(name, body.role, actor=admin.name, keep_an_admin=True)
    if body.disabled is not None:
        if body.disabled and name == admin.name:
            raise BadRequestError("you cannot disable yourself")
        ws.store.set_disabled(name, body.disabled, actor=admin.name, keep_an_admin=True)
    return next(u.to_dict() for u in ws.store.users() if u.name == name)


@router.post("/users/{name}/password", status_code=204)
def reset_password(
    name: UserName, body: PasswordIn, admin: AdminChange, ws: WorkspaceDep
) -> Response:
    """Set a user's password (their sessions end)."""
    _not_the_local_user(ws, name)
    ws.store.set_password(name, hash_password(body.password), actor=admin.name)
    return Response(status_code=204)


@router.post("/account/password", status_code=204)
def change_own_password(
    body: OwnPasswordIn, request: Request, user: Member, who: CallerDep, ws: WorkspaceDep
) -> Response:
    """Change your own password (the current one is needed, counted like a login: a wrong
    one is 403); your other sessions end."""
    if user.name == LOCAL_USER and not user.has_password:
        raise BadRequestError("the local user has no password: add users to use logins")
    address = request.client.host if request.client else ""
    try:
        ws.auth.check_password(user.name, body.current, address)
    except UnauthorizedError:  # not 401: the caller is signed in, only the password is wrong
        raise ForbiddenError("the current password is wrong") from None
    hashed = hash_password(body.password)
    ws.store.set_password(user.name, hashed, actor=user.name, keep_session=who.cookie)
    return Response(status_code=204)


@router.get("/tokens")
def tokens(
    user: Viewer,
    ws: WorkspaceDep,
    owner: Annotated[str | None, Query(alias="user", max_length=64)] = None,
    everyone: Annotated[bool, Query(alias="all")] = False,
) -> dict[str, Any]:
    """API tokens: your own; admins: `?user=NAME` or `?all=true` (label, role, created,
    last used, expiry — never the token itself)."""
    if (everyone or (owner and owner != user.name)) and user.role != "admin":
        raise ForbiddenError("only admins see other users' tokens")
    found = ws.store.tokens(None if everyone else owner or user.name)
    return {"items": [t.to_dict() for t in found]}


@router.post("/tokens", status_code=201)
def new_token(body: TokenIn, user: Member, ws: WorkspaceDep) -> dict[str, Any]:
    """A new API token, shown this once: for you, or (admins) for another user."""
    owner = body.user or user.name
    if owner != user.name and user.role != "admin":
        raise ForbiddenError("only admins make tokens for other users")
    token, info = ws.store.new_token(
        owner,
        body.label,
        role=body.role or None,
        expires_days=body.expires_days,
        actor=user.name,
    )
    return {"token": token, "item": info.to_dict()}


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(
    token_id: Annotated[int, Path(ge=1, le=2**62)], user: Member, ws: WorkspaceDep
) -> Response:
    """Revoke a token: your own, or (admins) anyone's."""
    owner = None if user.role == "admin" else user.name
    ws.store.revoke_token(token_id, actor=user.name, owner=owner)
    return Response(status_code=204)


@router.get("/audit")
def audit(
    _: Admin,
    ws: WorkspaceDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Who changed which user or token, and when (newest first)."""
    return ws.store.audit_events(page, per_page)


def _not_the_local_user(ws: Workspace, name: str) -> None:
    """The no-login mode's own user (`local`, no password) is not managed here: add users
    instead."""
    if name == LOCAL_USER and not any(u.has_password for u in ws.store.users() if u.name == name):
        raise BadRequestError("the local user is the no-login mode's own user; add users instead")
