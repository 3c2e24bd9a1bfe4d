"""A throwaway PostgreSQL server for the test session (Debian's `postgresql` binaries).

`initdb` refuses to run as root, so as root the server runs as `nobody`. The data folder is a
fresh temporary folder; the server listens on 127.0.0.1 at a free port and is stopped (and the
folder removed) when the session ends. `fsync=off`: nothing here needs to survive a crash.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def server_binaries() -> Path | None:
    """The folder with initdb and pg_ctl: $PG_BINDIR, PATH, or Debian's versioned folder."""
    candidates = [os.environ.get("PG_BINDIR", "")]
    found = shutil.which("initdb")
    candidates.append(str(Path(found).parent) if found else "")
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for folder in filter(None, candidates):
        if (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_server() -> Iterator[str]:
    """Start a server; yield its URL (`postgresql+psycopg://postgres@127.0.0.1:PORT`)."""
    binaries = server_binaries()
    if binaries is None:
        raise FileNotFoundError("no PostgreSQL server binaries (apt-get install postgresql)")
    as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    user = "nobody" if as_root else None
    root = Path(tempfile.mkdtemp(prefix="mitremap-pg-"))
    data = root / "data"
    if as_root:
        shutil.chown(root, user="nobody")
    port = _free_port()

    def run(*args: str) -> None:
        subprocess.run(args, check=True, user=user, cwd=root, capture_output=True, timeout=120)

    try:
        run(
            str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        run(
            str(binaries / "pg_ctl"), "-D", str(data), "-o", options,
            "-l", str(root / "log"), "-w", "-t", "60", "start",
        )  # fmt: skip
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
        finally:
            run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def create_database(server_url: str, name: str) -> str:
    """A new empty database on the server; its URL."""
    from sqlalchemy import create_engine, text

    engine = create_engine(f"{server_url}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return f"{server_url}/{name}"
