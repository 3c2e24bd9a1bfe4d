"""The workspace database: an engine and sessions from a URL, the schema brought up to date
by the Alembic migrations at start-up.

SQLite by default (a file in the user data folder: one analyst, nothing to set up); any
`postgresql+psycopg://…` URL for a team. SQLite transactions start with `BEGIN IMMEDIATE`,
so concurrent writers queue for the lock (up to `busy_timeout`) instead of failing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from mitremap.web.workspace.errors import ConflictError, DatabaseError

DB_FILE = "workspace.db"
BUSY_TIMEOUT_S = 30


def default_url() -> str:
    """`sqlite:///<user data folder>/workspace.db` (e.g. ~/.local/share/mitremap)."""
    from platformdirs import user_data_dir

    return f"sqlite:///{Path(user_data_dir('mitremap', appauthor=False)) / DB_FILE}"


def kind(url: str) -> str:
    """'sqlite' or 'postgresql', as /api/health says it."""
    return make_url(url).get_backend_name()


class Database:
    """An engine, a session factory, and the migrations run once when it opens."""

    def __init__(self, url: str | None = None, *, migrate: bool = True) -> None:
        self.url = url or default_url()
        self.engine = _engine(self.url)
        self.kind = self.engine.dialect.name
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # reads: SQLite's deferred BEGIN (a snapshot in WAL mode), so they never wait for, nor
        # hold up, the one writer
        reader = self.engine.execution_options(mitremap_read=True)
        self._reads = sessionmaker(reader, expire_on_commit=False)
        if migrate:
            self.upgrade()

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (`alembic upgrade head`)."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        try:
            with self.engine.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except SQLAlchemyError as exc:
            raise DatabaseError(
                f"cannot open the database {self.safe_url}: {_reason(exc)}"
            ) from exc

    @contextmanager
    def session(self, *, read: bool = False) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on error. `read`: it
        only reads (on SQLite it then takes no write lock)."""
        with (self._reads if read else self._sessions)() as session:
            try:
                with session.begin():
                    yield session
            except IntegrityError as exc:  # e.g. a decision on a report deleted meanwhile
                raise ConflictError(
                    "the change conflicts with another one made meanwhile; reload and try again"
                ) from exc
            except OperationalError as exc:
                raise DatabaseError(f"the database failed: {_reason(exc)}") from exc

    @property
    def safe_url(self) -> str:
        """The URL without its password, for messages."""
        return make_url(self.url).render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()


def _engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseError(
            f"{url!r} is not a database URL; use sqlite:///PATH or postgresql+psycopg://…"
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        path = parsed.database
        if path and path != ":memory:":
            folder = Path(path).expanduser().parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseError(f"cannot create {folder}: {exc.strerror or exc}") from exc
        engine = create_engine(
            parsed, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_S}
        )
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if backend == "postgresql":
        try:
            return create_engine(parsed, pool_pre_ping=True)
        except ImportError as exc:
            raise DatabaseError(
                "PostgreSQL needs the 'psycopg' package: pip install 'mitremap[postgres]'"
            ) from exc
    raise DatabaseError(f"unsupported database {backend!r}; use sqlite or postgresql")


def _sqlite_connect(connection: Any, _: Any) -> None:
    connection.isolation_level = None  # SQLAlchemy's `begin` event starts transactions
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    read = connection.get_execution_options().get("mitremap_read", False)
    connection.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")


def _reason(exc: Exception) -> str:
    original = getattr(exc, "orig", None) or exc
    return " ".join(str(original).split())[:300]
