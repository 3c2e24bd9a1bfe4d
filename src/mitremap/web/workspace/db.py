"""The workspace database: an engine and sessions from a URL, the schema brought up to date
by the Alembic migrations at start-up.

SQLite by default (a file in the user data folder: one analyst, nothing to set up); any
`postgresql+psycopg://…` URL for a team.

- Writes (`session()`) on SQLite start with `BEGIN IMMEDIATE`, so concurrent writers queue
  for the lock (up to `busy_timeout`) instead of failing; reads (`session(read=True)`) start a
  plain deferred transaction, which in WAL mode never waits for a writer and never makes one
  wait (on PostgreSQL they are autocommit statements).
- The migrations run under a lock (a PostgreSQL advisory lock, a lock file beside a SQLite
  database), so servers started at once on an empty database make the schema once; a
  database stamped by a newer MitreMap is a one-line error naming its version.
- A failure while serving says the database failed and nothing about where it is (a
  PostgreSQL message names the host and port): the details go to the server log.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.orm import Session, sessionmaker

from mitremap.web.workspace.errors import ConflictError, DatabaseError

DB_FILE = "workspace.db"
BUSY_TIMEOUT_S = 30
MIGRATION_LOCK = 0x6D6D6D67  # the PostgreSQL advisory lock key the migrations run under
POOL_SIZE = 20  # PostgreSQL connections kept open (the server runs up to 40 request threads)
POOL_OVERFLOW = 20
READ_ONLY = "mitremap_read"  # the execution option that marks a reading session
UNAVAILABLE = "the database is unavailable or failed; try again shortly"

log = logging.getLogger("mitremap.server")


def default_url() -> str:
    """`sqlite:///<user data folder>/workspace.db` (e.g. ~/.local/share/mitremap)."""
    from platformdirs import user_data_dir

    return f"sqlite:///{Path(user_data_dir('mitremap', appauthor=False)) / DB_FILE}"


def kind(url: str) -> str:
    """'sqlite' or 'postgresql', as /api/health says it."""
    return make_url(url).get_backend_name()


class Database:
    """An engine, session factories for writing and reading, and the migrations run once
    when it opens."""

    def __init__(self, url: str | None = None, *, migrate: bool = True) -> None:
        self.url = url or default_url()
        self.engine = _engine(self.url)
        self.kind = self.engine.dialect.name
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # PostgreSQL reads in autocommit: under READ COMMITTED every statement sees its own
        # snapshot anyway, and it saves the BEGIN and COMMIT round trips
        reader = self.engine.execution_options(
            **{READ_ONLY: True},
            **({"isolation_level": "AUTOCOMMIT"} if self.kind == "postgresql" else {}),
        )
        self._reads = sessionmaker(reader, expire_on_commit=False)
        if migrate:
            try:
                self.upgrade()
            except BaseException:  # e.g. a schema newer than ours: no connection left open
                self.engine.dispose()
                raise

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (`alembic upgrade head`), one process at
        a time; a schema newer than this MitreMap's is refused, naming its version."""
        from alembic import command

        config = _alembic_config()
        try:
            with _file_lock(self._lock_path()), self.engine.begin() as connection:
                if self.kind == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
                    )
                self._refuse_newer(connection, config)
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except SQLAlchemyError as exc:
            raise DatabaseError(
                f"cannot open the database {self.safe_url}: {_reason(exc)}"
            ) from exc

    def revision(self) -> str | None:
        """The schema version the database is stamped with (None: none yet)."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def _refuse_newer(self, connection: Connection, config: Any) -> None:
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory
        from alembic.util.exc import CommandError

        from mitremap import __version__

        scripts = ScriptDirectory.from_config(config)
        for version in MigrationContext.configure(connection).get_current_heads():
            try:
                found = scripts.get_revision(version)
            except CommandError:
                found = None
            if found is None:
                raise DatabaseError(
                    f"the database {self.safe_url} has schema version {version!r}, newer than "
                    f"this MitreMap ({__version__}) knows: upgrade MitreMap, or use another "
                    "database"
                )

    def _lock_path(self) -> Path | None:
        if self.kind != "sqlite":
            return None
        path = make_url(self.url).database
        return Path(path).expanduser().with_name(Path(path).name + ".lock") if path else None

    @contextmanager
    def session(self, *, read: bool = False) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on error. `read`: it
        only reads — on SQLite a deferred transaction that takes no write lock (WAL readers
        see the last commit and neither wait for writers nor hold them up), on PostgreSQL
        autocommit statements."""
        factory = self._reads if read else self._sessions
        with factory() as session, _translated(), session.begin():
            yield session

    @property
    def safe_url(self) -> str:
        """The URL without its password, for the operator's messages (never an API client's)."""
        return make_url(self.url).render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()


@contextmanager
def _translated() -> Iterator[None]:
    """Database errors as workspace errors: a constraint broken by a concurrent change is a
    409; a connection or server failure a 503 whose message names no host (the log does)."""
    try:
        yield
    except IntegrityError as exc:  # e.g. a decision on a report deleted meanwhile
        raise ConflictError(
            "the change conflicts with another one made meanwhile; reload and try again"
        ) from exc
    except (OperationalError, InterfaceError) as exc:
        log.warning("database failure: %s", _reason(exc))
        raise DatabaseError(UNAVAILABLE) from exc


def _alembic_config() -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    return config


def head_revision() -> str:
    """The newest schema version this MitreMap makes."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    return str(head)


@contextmanager
def _file_lock(path: Path | None) -> Iterator[None]:
    """An exclusive lock on `path` (created when missing) while the block runs; nothing where
    there is no file to lock (PostgreSQL, an in-memory SQLite) or no `fcntl` (Windows, where
    SQLite's own `BEGIN IMMEDIATE` still serialises the migrations)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Linux or macOS
        fcntl = None  # type: ignore[assignment]
    if path is None or fcntl is None:
        yield
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a+b")
    except OSError as exc:
        raise DatabaseError(f"cannot create {path}: {exc.strerror or exc}") from exc
    with handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


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
            return create_engine(
                parsed,
                pool_pre_ping=True,
                pool_size=POOL_SIZE,
                max_overflow=POOL_OVERFLOW,
                pool_timeout=BUSY_TIMEOUT_S,
            )
        except ImportError as exc:
            raise DatabaseError(
                "PostgreSQL needs the 'psycopg' package: pip install 'mitremap[postgres]'"
            ) from exc
    raise DatabaseError(f"unsupported database {backend!r}; use sqlite or postgresql")


def _sqlite_connect(connection: Any, _: Any) -> None:
    connection.isolation_level = None  # SQLAlchemy's `begin` event starts transactions
    cursor = connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    # in WAL mode NORMAL syncs at checkpoints, not at every commit: a crash of the process
    # loses nothing; a power cut may lose the last commits, never the database
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    read_only = connection.get_execution_options().get(READ_ONLY, False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _reason(exc: Exception) -> str:
    original = getattr(exc, "orig", None) or exc
    return " ".join(str(original).split())[:300]
