"""What every route depends on: the workspace (made once by `web.app.create_app`, injected with
`Depends`), who is calling, and the role checks.

A role check (`Viewer`, `Reader`, `Analyst`, `Admin`) answers 401 without a user, 403 for a
user below the role, and, for a change made with the session cookie, 403 without the CSRF
token (`auth.Auth.require`).
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Protocol, TypeVar

from fastapi import Depends, Path, Request

from mitremap.web.workspace.accounts import UserInfo
from mitremap.web.workspace.auth import COOKIE, CSRF_COOKIE, CSRF_HEADER, Auth, Caller
from mitremap.web.workspace.errors import ForbiddenError, TooLargeError
from mitremap.web.workspace.memory import WorkspaceMemory
from mitremap.web.workspace.registry import ModelRegistry
from mitremap.web.workspace.retrain import Retrainer
from mitremap.web.workspace.store import Store

T = TypeVar("T")


class Runner(Protocol):
    """Runs blocking work in the worker pool, called with its Deadline as its last argument
    (`web.app.WorkerPool`); typed so a route gets back what its work returns."""

    def __call__(self, function: Callable[..., T], *args: Any) -> Awaitable[T]: ...


@dataclass
class Workspace:
    """What the routes need, made once by the app factory (`app.state.workspace`)."""

    store: Store
    auth: Auth
    registry: ModelRegistry
    retrainer: Retrainer
    memory: WorkspaceMemory
    run: Runner
    max_bytes: int
    threshold: float = 0.6
    secure_cookies: bool = False  # always Secure (else only over HTTPS)
    allow_private_urls: bool = True
    database: str = "sqlite"


def workspace(request: Request) -> Workspace:
    """The app's workspace, for `Depends`."""
    found: Workspace = request.app.state.workspace
    return found


WorkspaceDep = Annotated[Workspace, Depends(workspace)]


def caller(request: Request, ws: WorkspaceDep) -> Caller:
    """Who sends the request: the session cookie's user, an API token's, the local user,
    or nobody (resolved once per request)."""
    found: Caller | None = getattr(request.state, "caller", None)
    if found is None:
        found = ws.auth.caller(
            request.cookies.get(COOKIE),
            request.cookies.get(CSRF_COOKIE),
            request.headers.get("authorization"),
        )
        request.state.caller = found
    return found


CallerDep = Annotated[Caller, Depends(caller)]


def needs(role: str, changes: bool = True) -> Any:
    """A dependency: the user, when they have `role` (and, for a change made with the
    session cookie, the CSRF token). `changes=False`: a request that changes nothing even
    when it is a POST (an analysis that is not kept) needs no CSRF token."""

    def check(request: Request, ws: WorkspaceDep, who: CallerDep) -> UserInfo:
        method = request.method if changes else "GET"
        return ws.auth.require(who, role, method, request.headers.get(CSRF_HEADER))

    return Depends(check)


def needs_browser(role: str) -> Any:
    """A dependency like `needs(role)`, refusing API tokens: users and tokens are managed
    from a signed-in page or the command line, so a leaked token cannot make more."""

    def check(request: Request, ws: WorkspaceDep, who: CallerDep) -> UserInfo:
        user = ws.auth.require(who, role, request.method, request.headers.get(CSRF_HEADER))
        if who.via == "token":
            raise ForbiddenError("manage users and tokens from a signed-in page or the CLI")
        return user

    return Depends(check)


Viewer = Annotated[UserInfo, needs("viewer")]
Reader = Annotated[UserInfo, needs("viewer", changes=False)]
Analyst = Annotated[UserInfo, needs("analyst")]
Admin = Annotated[UserInfo, needs("admin")]
ReportId = Annotated[int, Path(ge=1, le=2**62)]


def clean(text: str) -> str:
    """Text that encodes: a lone surrogate becomes '?', one character for one."""
    return text.encode("utf-8", "replace").decode("utf-8")


def check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise TooLargeError(f"the input is larger than the {max_bytes // 2**20} MB limit")
