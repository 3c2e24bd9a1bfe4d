"""`mitremap serve`: the web app and REST API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mitremap.cli.common import console


def serve(
    host: Annotated[
        str, typer.Option(help="Address to listen on (0.0.0.0 for every interface).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    model: Annotated[
        Path | None,
        typer.Option("--model", "-m", help="Model folder (default: the cached default model)."),
    ] = None,
    max_mb: Annotated[
        int, typer.Option("--max-mb", min=1, help="Largest accepted input, in MB.")
    ] = 10,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-host",
            help="A host name clients may use to reach the server (repeat); loopback always.",
            metavar="NAME",
        ),
    ] = None,
) -> None:
    """Serve the web app (a form at /) and the REST API (/api/analyze, /api/iocs …)."""
    from mitremap.errors import MissingExtraError
    from mitremap.server import create_app

    try:
        import uvicorn
    except ImportError as exc:
        raise MissingExtraError("uvicorn", "web", "mitremap serve") from exc
    from mitremap.analysis import MitreMap
    from mitremap.server import LOOPBACK_HOSTS, guarded_protocol

    hosts = (*LOOPBACK_HOSTS, host, *(allow_host or ()))
    app = create_app(MitreMap.load(model), max_bytes=max_mb * 2**20, allowed_hosts=hosts)
    console.print(f"MitreMap on http://{host}:{port}/ (Ctrl-C to stop)", highlight=False)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        http=guarded_protocol(request_timeout=30.0),  # slow or stalled requests are dropped
        timeout_keep_alive=5,  # an idle connection is closed after 5 s
        limit_concurrency=64,  # beyond that, 503 at once instead of piling up
    )


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
