"""`mitremap serve`: the review workspace and REST API; `serve user …`, `serve token`,
`serve tokens …` and `serve export-reviews` manage its users, API tokens and reviewed
passages (each change to a user or token is in the audit log, as `cli:<OS user>`)."""

from __future__ import annotations

import getpass
import ipaddress
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mitremap.cli.common import console, err_console
from mitremap.errors import MissingExtraError, MitreMapError

if TYPE_CHECKING:
    from mitremap.web.workspace.store import Store

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
tokens = typer.Typer(help="API tokens: list them, revoke one.", no_args_is_help=True)
app.add_typer(tokens, name="tokens")


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
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            "--forwarded-allow-ips",
            help="Reverse proxies (comma-separated addresses or networks, or '*') whose "
            "X-Forwarded-Proto and X-Forwarded-For are believed (default: none).",
            metavar="ADDRESSES",
        ),
    ] = "",
) -> None:
    """Serve the review workspace: reports, review pages, exports, retraining, REST API."""
    ctx.obj = {"db": db}
    if ctx.invoked_subcommand is not None:
        return
    try:
        import uvicorn
    except ImportError as exc:
        raise MissingExtraError("uvicorn", "web", "mitremap serve") from exc
    from mitremap.web.middleware import guarded_protocol

    hosts = (host, *(allow_host or ()))
    database, app_, local = _app(db, hosts, model, max_mb, forwarded_allow_ips)
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
        proxy_headers=False,  # the app believes only --forwarded-allow-ips
    )


def _app(
    db: str | None, hosts: tuple[str, ...], model: Path | None, max_mb: int, proxies: str
) -> tuple[Any, Any, bool]:
    """The database, the app, and whether it is reachable only on loopback (the first of
    `hosts` is the bind address, the rest the --allow-host names). Reachable any other way,
    it needs users: login always on, Secure cookies, only public URLs imported."""
    from mitremap.web.app import LOOPBACK_HOSTS, create_app
    from mitremap.web.workspace.db import Database
    from mitremap.web.workspace.store import Store

    database = Database(db)
    reachable = [h for h in hosts if not is_loopback(h)]
    local = not reachable
    if not local and not Store(database).has_login_users():
        raise MitreMapError(
            f"a server reachable as {reachable[0]} needs users: add one with `mitremap serve "
            "user add NAME --role admin` (or serve on 127.0.0.1 without --allow-host)"
        )
    mitremap = None
    if model is not None:
        from mitremap.analysis import MitreMap

        mitremap = MitreMap.load(model)
    app_ = create_app(
        mitremap,
        max_bytes=max_mb * 2**20,
        allowed_hosts=(*LOOPBACK_HOSTS, *hosts),
        database=database,
        auth=None if local else True,
        secure_cookies=not local,
        model_path=model,
        allow_private_urls=local,
        forwarded_allow_ips=tuple(p.strip() for p in proxies.split(",") if p.strip()),
    )
    return database, app_, local


def _store(ctx: typer.Context, db: str | None) -> Store:
    from mitremap.web.workspace.db import Database
    from mitremap.web.workspace.store import Store

    return Store(Database(db or (ctx.obj or {}).get("db")))


def _actor() -> str:
    """Who the audit log names for a command: `cli:<OS user>`."""
    try:
        return f"cli:{getpass.getuser()}"[:64]
    except (KeyError, OSError):
        return "cli"


def _password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input.")
]


@users.command("add")
def user_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user name (letters, digits, . _ @ -).")],
    role: Annotated[
        str, typer.Option(help="viewer, analyst or admin.", metavar="ROLE")
    ] = "analyst",
    password_stdin: PasswordStdin = False,
    db: DbOption = None,
) -> None:
    """Add a user who logs in with a password (asked for, or read from stdin)."""
    from mitremap.web.workspace.auth import hash_password

    password = _password(password_stdin)
    store = _store(ctx, db)
    store.add_user(name, role, hash_password(password), actor=_actor())
    console.print(
        f"added {name} ({role}); a server on this database asks for a login from its next request",
        highlight=False,
    )


@users.command("list")
def user_list(ctx: typer.Context, db: DbOption = None) -> None:
    """The users and their roles."""
    for user in _store(ctx, db).users():
        login = "password" if user.has_password else "no login"
        state = "\tdisabled" if user.disabled else ""
        typer.echo(f"{user.name}\t{user.role}\t{login}{state}")


@users.command("remove")
def user_remove(
    ctx: typer.Context, name: Annotated[str, typer.Argument()], db: DbOption = None
) -> None:
    """Remove a user (their sessions and API tokens end with them)."""
    _store(ctx, db).remove_user(name, actor=_actor())
    console.print(f"removed {name}", highlight=False)


@users.command("role")
def user_role(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument()],
    role: Annotated[str, typer.Argument(help="viewer, analyst or admin.")],
    db: DbOption = None,
) -> None:
    """Change a user's role (their sessions and tokens follow at once)."""
    _store(ctx, db).set_role(name, role, actor=_actor())
    console.print(f"{name} is now {role}", highlight=False)


@users.command("disable")
def user_disable(
    ctx: typer.Context, name: Annotated[str, typer.Argument()], db: DbOption = None
) -> None:
    """Disable a user: they cannot log in, their sessions end and their tokens stop."""
    _store(ctx, db).set_disabled(name, True, actor=_actor())
    console.print(f"disabled {name}", highlight=False)


@users.command("enable")
def user_enable(
    ctx: typer.Context, name: Annotated[str, typer.Argument()], db: DbOption = None
) -> None:
    """Enable a disabled user again."""
    _store(ctx, db).set_disabled(name, False, actor=_actor())
    console.print(f"enabled {name}", highlight=False)


@users.command("password")
def user_password(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument()],
    password_stdin: PasswordStdin = False,
    db: DbOption = None,
) -> None:
    """Set a user's password (their sessions end)."""
    from mitremap.web.workspace.auth import hash_password

    hashed = hash_password(_password(password_stdin))
    _store(ctx, db).set_password(name, hashed, actor=_actor())
    console.print(f"new password for {name}", highlight=False)


@app.command("token")
def token(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user the token acts as.")],
    label: Annotated[str, typer.Option(help="What the token is for.", metavar="TEXT")] = "",
    role: Annotated[
        str | None,
        typer.Option(help="At most the user's role (default: the user's).", metavar="ROLE"),
    ] = None,
    expires_days: Annotated[
        float | None,
        typer.Option("--expires-days", help="Expire after DAYS (default: never).", metavar="DAYS"),
    ] = None,
    db: DbOption = None,
) -> None:
    """Issue an API token for scripts (`Authorization: Bearer TOKEN`); shown only once."""
    store = _store(ctx, db)
    typer.echo(store.issue_token(name, label, role=role, expires_days=expires_days, actor=_actor()))


@tokens.command("list")
def tokens_list(
    ctx: typer.Context,
    user: Annotated[
        str | None, typer.Option(help="Only this user's tokens.", metavar="NAME")
    ] = None,
    db: DbOption = None,
) -> None:
    """API tokens: id, user, role, label, created, last used, expiry (never the token)."""
    for t in _store(ctx, db).tokens(user):
        item = t.to_dict()
        expires = item["expires_at"] or "never"
        if t.expired:
            expires = f"expired {expires}"
        cells = [
            f"#{t.id}", t.user, t.role, t.label or "-", item["created_at"],
            item["last_used_at"] or "never used", f"expires {expires}",
        ]  # fmt: skip
        typer.echo("\t".join(cells))


@tokens.command("revoke")
def tokens_revoke(
    ctx: typer.Context,
    token_id: Annotated[int, typer.Argument(help="The token's id (see `tokens list`).")],
    db: DbOption = None,
) -> None:
    """Revoke one API token (scripts using it get 401 from the next request)."""
    _store(ctx, db).revoke_token(token_id, actor=_actor())
    console.print(f"revoked token #{token_id}", highlight=False)


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
