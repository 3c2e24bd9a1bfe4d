"""`mitremap serve`: the review workspace and REST API; `serve user …`, `serve token`,
`serve export-reviews` manage its users, API tokens and reviewed passages."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path
from typing import Annotated

import typer

from mitremap.cli.common import console, err_console
from mitremap.errors import MissingExtraError, MitreMapError

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="MITREMAP_DB",
        help="Database URL: sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST/DB "
        "(default: a SQLite file in the user data folder).",
        metavar="URL",
    ),
]

app = typer.Typer(
    help="Serve the review workspace (web pages at /, REST API at /api, docs at /docs).",
    invoke_without_command=True,
    no_args_is_help=False,
)
users = typer.Typer(help="Users who can log in (then login is required).", no_args_is_help=True)
app.add_typer(users, name="user")


def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@app.callback()
def serve(
    ctx: typer.Context,
    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on (0.0.0.0 for every interface: needs users).",
            metavar="ADDRESS",
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, metavar="PORT")] = 8000,
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            "-m",
            help="Model folder (default: the active or the default model).",
            metavar="DIR",
        ),
    ] = None,
    max_mb: Annotated[
        int, typer.Option("--max-mb", min=1, help="Largest accepted input, in MB.", metavar="MB")
    ] = 10,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-host",
            help="A host name clients may use to reach the server (repeat); loopback always.",
            metavar="NAME",
        ),
    ] = None,
    db: DbOption = None,
    ssl_certfile: Annotated[
        Path | None,
        typer.Option("--ssl-certfile", help="Serve HTTPS with this certificate.", metavar="FILE"),
    ] = None,
    ssl_keyfile: Annotated[
        Path | None,
        typer.Option("--ssl-keyfile", help="The certificate's private key.", metavar="FILE"),
    ] = None,
) -> None:
    """Serve the review workspace: reports, review pages, exports, retraining, REST API."""
    ctx.obj = {"db": db}
    if ctx.invoked_subcommand is not None:
        return
    try:
        import uvicorn
    except ImportError as exc:
        raise MissingExtraError("uvicorn", "web", "mitremap serve") from exc
    from mitremap.web.app import LOOPBACK_HOSTS, create_app
    from mitremap.web.middleware import guarded_protocol
    from mitremap.web.workspace.db import Database
    from mitremap.web.workspace.store import Store

    database = Database(db)
    local = is_loopback(host)
    if not local and not Store(database).has_login_users():
        raise MitreMapError(
            f"serving on {host} needs users: add one with `mitremap serve user add NAME "
            "--role admin` (or serve on 127.0.0.1)"
        )
    mitremap = None
    if model is not None:
        from mitremap.analysis import MitreMap

        mitremap = MitreMap.load(model)
    hosts = (*LOOPBACK_HOSTS, host, *(allow_host or ()))
    app_ = create_app(
        mitremap,
        max_bytes=max_mb * 2**20,
        allowed_hosts=hosts,
        database=database,
        auth=None if local else True,
        secure_cookies=not local,
        model_path=model,
        allow_private_urls=local,
    )
    scheme = "https" if ssl_certfile else "http"
    console.print(
        f"MitreMap on {scheme}://{host}:{port}/ (database: {database.safe_url}; Ctrl-C to stop)",
        highlight=False,
    )
    if not local and not ssl_certfile:
        err_console.print(
            "note: off loopback the session cookie is Secure: browsers need HTTPS "
            "(--ssl-certfile/--ssl-keyfile, or a reverse proxy that terminates TLS)",
            highlight=False,
        )
    uvicorn.run(
        app_,
        host=host,
        port=port,
        log_level="warning",
        http=guarded_protocol(request_timeout=30.0),  # slow or stalled requests are dropped
        timeout_keep_alive=5,  # an idle connection is closed after 5 s
        limit_concurrency=64,  # beyond that, 503 at once instead of piling up
        ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
    )


def _store(ctx: typer.Context, db: str | None):
    from mitremap.web.workspace.db import Database
    from mitremap.web.workspace.store import Store

    return Store(Database(db or (ctx.obj or {}).get("db")))


@users.command("add")
def user_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user name (letters, digits, . _ @ -).")],
    role: Annotated[
        str, typer.Option(help="viewer, analyst or admin.", metavar="ROLE")
    ] = "analyst",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Add a user who logs in with a password (asked for, or read from stdin)."""
    from mitremap.web.workspace.auth import hash_password

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    store = _store(ctx, db)
    store.add_user(name, role, hash_password(password))
    console.print(f"added {name} ({role}); the server now asks for a login", highlight=False)


@users.command("list")
def user_list(ctx: typer.Context, db: DbOption = None) -> None:
    """The users and their roles."""
    for user in _store(ctx, db).users():
        login = "password" if user.has_password else "no login"
        typer.echo(f"{user.name}\t{user.role}\t{login}")


@users.command("remove")
def user_remove(
    ctx: typer.Context, name: Annotated[str, typer.Argument()], db: DbOption = None
) -> None:
    """Remove a user (their sessions and API tokens end with them)."""
    _store(ctx, db).remove_user(name)
    console.print(f"removed {name}", highlight=False)


@app.command("token")
def token(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user the token acts as.")],
    label: Annotated[str, typer.Option(help="What the token is for.", metavar="TEXT")] = "",
    db: DbOption = None,
) -> None:
    """Issue an API token for scripts (`Authorization: Bearer TOKEN`); shown only once."""
    typer.echo(_store(ctx, db).issue_token(name, label))


@app.command("export-reviews")
def export_reviews(
    ctx: typer.Context,
    output: Annotated[Path, typer.Argument(help="The JSONL file to write.")],
    db: DbOption = None,
) -> None:
    """Write every reviewed passage as labelled training text (the shared JSONL schema:
    text, labels, source, id, meta), e.g. for `mitremap train --add FILE`."""
    from mitremap.training.corpus import write_jsonl

    count = write_jsonl(_store(ctx, db).reviewed_passages(), output)
    console.print(f"wrote {count} reviewed passages to {output}", highlight=False)


def register(main: typer.Typer) -> None:
    main.add_typer(app, name="serve")
