"""The web app: the analysts' review workspace and the REST API (FastAPI; the `web` extra).
Run it with `mitremap serve`.

The app factory puts together what the workspace package provides — the database and its
service layer (`workspace.store`), who may do what (`workspace.auth`), the models
(`workspace.registry`), retraining (`workspace.retrain`) — with the routes under `/api` (one
router per resource in `web.routers`, the workspace injected with `Depends`), the pages
(`web.pages`, when present) and the offline API docs at `/docs` (`web.docs`), behind the
guards of `web.middleware`. Documents are read and analysed in a small worker pool off the
event loop (a large upload never stalls the rest), with a queue limit (503 when full) and a
time limit (504) that stops the work itself (a `Deadline` passed into it), so the worker is
free again when the 504 goes out.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mitremap.deadline import Deadline
from mitremap.errors import MissingExtraError
from mitremap.errors import TimeLimitError as WorkTimeLimitError
from mitremap.web.workspace.errors import BusyError, TimeLimitError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from mitremap.analysis import MitreMap
    from mitremap.web.routers.deps import Workspace
    from mitremap.web.workspace.db import Database
    from mitremap.web.workspace.registry import ModelRegistry
    from mitremap.web.workspace.retrain import Trainer
    from mitremap.web.workspace.store import Store

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
WORKERS = 2  # analyses at once
QUEUE = 16  # analyses waiting or running before new ones get 503
TIME_LIMIT_S = 120.0
GRACE_S = 5.0  # past the deadline, stop waiting for work that did not stop itself
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
DESCRIPTION = (
    "Map threat reports to MITRE ATT&CK techniques, review the mappings, "
    "extract indicators of compromise. Scripts authenticate with "
    "`Authorization: Bearer <API token>`; browsers with the session cookie and "
    '`X-CSRF-Token`. Every error is `{"error": {"code", "message"}}`.'
)

T = TypeVar("T")


def create_app(
    mitremap: MitreMap | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS,
    time_limit_s: float = TIME_LIMIT_S,
    *,
    database: Database | str | None = None,
    auth: bool | None = None,
    secure_cookies: bool = False,
    model_path: Path | None = None,
    models_dir: Path | None = None,
    trainer: Trainer | None = None,
    threshold: float = 0.6,
    allow_private_urls: bool = True,
    forwarded_allow_ips: tuple[str, ...] = (),
) -> FastAPI:
    """The FastAPI app.

    `mitremap`: a loaded `MitreMap` (default: the database's active model, else the cached
    default model) found at `model_path`; `database`: a `Database` or URL (default: the
    SQLite file in the user data folder); `auth`: require login always (True), never
    (False), or (None, the default) as soon as the database has a user with a password —
    read from the database, so users added while the server runs count at once;
    `secure_cookies`: mark cookies Secure on every answer (else only on requests that came
    over HTTPS); `forwarded_allow_ips`: the proxies (addresses, networks, or '*') whose
    `X-Forwarded-Proto` and `X-Forwarded-For` are believed — the client's scheme and address
    then come from them; `models_dir`: where models live and retraining saves new ones
    (default: the user cache's models folder); `trainer`: what retraining runs (default: the
    default recipe plus the reviewed passages); `allowed_hosts`: the names a request's `Host`
    may carry."""
    try:
        from fastapi import FastAPI
    except ImportError as exc:
        raise MissingExtraError("fastapi", "web", "The web app") from exc
    try:
        from mitremap.web import middleware
        from mitremap.web.routers.deps import Workspace
        from mitremap.web.workspace.auth import Auth
        from mitremap.web.workspace.memory import WorkspaceMemory
        from mitremap.web.workspace.retrain import Retrainer
    except ImportError as exc:
        raise MissingExtraError(exc.name or "sqlalchemy", "web", "The web app") from exc
    from mitremap import __version__

    store, registry = _open(database, mitremap, model_path, models_dir)
    ws = Workspace(
        store=store,
        auth=Auth(store, enabled=auth),
        registry=registry,
        retrainer=Retrainer(store, registry, trainer, threshold),
        memory=WorkspaceMemory(store),
        run=WorkerPool(WORKERS, QUEUE, time_limit_s),
        max_bytes=max_bytes,
        threshold=threshold,
        secure_cookies=secure_cookies,
        allow_private_urls=allow_private_urls,
        database=store.db.kind,
    )
    app = FastAPI(
        title="MitreMap",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        description=DESCRIPTION,
    )
    app.state.workspace = ws
    _add_routes(app, ws, allowed_hosts)
    from mitremap.web.routers import taxii

    app.add_middleware(
        middleware.BodyLimit, limit=max_bytes + 64 * 1024, shapes={"/taxii2/": taxii.error_shape}
    )
    if forwarded_allow_ips:
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(forwarded_allow_ips))
    return app


def _add_routes(app: FastAPI, ws: Workspace, allowed_hosts: tuple[str, ...]) -> None:
    """The error handlers and guards, the API routers, the docs and the pages."""
    from mitremap.web import middleware
    from mitremap.web.docs import add_docs
    from mitremap.web.routers import (
        admin,
        analysis,
        attack,
        decisions,
        models,
        reports,
        session,
        taxii,
    )

    middleware.add_error_handlers(app)
    middleware.add_guard(app, allowed_hosts, lambda r, out: session.page_session(ws, r, out))
    for resource in (session, admin, analysis, attack, reports, decisions, models, taxii):
        app.include_router(resource.router)
    add_docs(app)
    _add_pages(app)


def _open(
    database: Database | str | None,
    mitremap: MitreMap | None,
    model_path: Path | None,
    models_dir: Path | None,
) -> tuple[Store, ModelRegistry]:
    """The store on the database, and the models: the one given, else the database's active
    model, else the cached default model."""
    from mitremap.analysis import MitreMap, default_model_path
    from mitremap.web.workspace.db import Database
    from mitremap.web.workspace.registry import ModelRegistry
    from mitremap.web.workspace.retrain import ACTIVE_MODEL
    from mitremap.web.workspace.store import Store

    store = Store(database if isinstance(database, Database) else Database(database))
    store.fail_interrupted_jobs()
    folder = Path(models_dir) if models_dir else default_model_path().parent
    if mitremap is None:
        active = store.setting(ACTIVE_MODEL)
        path = folder / active if active and (folder / active / "manifest.json").is_file() else None
        model_path = path or model_path or default_model_path()
        mitremap = MitreMap.load(model_path)
    return store, ModelRegistry(folder, mitremap, model_path)


def _add_pages(app: FastAPI) -> None:
    """The review pages, or (without them) a home page that points at the API docs."""
    try:
        from mitremap.web.pages import add_pages
    except ImportError:
        from fastapi.responses import HTMLResponse

        @app.get("/", include_in_schema=False)
        def home() -> HTMLResponse:
            return HTMLResponse(
                "<!DOCTYPE html><meta charset='utf-8'><title>MitreMap</title>"
                "<p>MitreMap's REST API is running: see <a href='/docs'>/docs</a>.</p>"
            )

    else:
        add_pages(app)


class WorkerPool:
    """Blocking work (reading a document, analysing it) run off the event loop: `workers` at
    once, at most `queue` waiting or running (503 past it), each within `time_limit_s` (504).

    The work is called with a `Deadline` as its last argument and stops itself there (a
    `TimeLimitError`), so the worker is free again when the 504 goes out; waiting for it ends
    `GRACE_S` later in any case.
    """

    def __init__(self, workers: int, queue: int, time_limit_s: float) -> None:
        import anyio

        self.limiter = anyio.CapacityLimiter(workers)
        self.queue = queue
        self.time_limit_s = time_limit_s
        self.pending = 0

    async def __call__(self, function: Callable[..., T], *args: Any) -> T:
        import anyio.to_thread

        if self.pending >= self.queue:
            raise BusyError("the server is busy; try again shortly")
        self.pending += 1
        deadline = Deadline.after(self.time_limit_s)
        try:
            work = functools.partial(function, *args, deadline)
            call = anyio.to_thread.run_sync(work, limiter=self.limiter)
            return await asyncio.wait_for(call, timeout=self.time_limit_s + GRACE_S)
        except (TimeoutError, WorkTimeLimitError) as exc:
            raise TimeLimitError(
                f"the analysis took longer than {self.time_limit_s:.0f} s"
            ) from exc
        finally:
            self.pending -= 1
