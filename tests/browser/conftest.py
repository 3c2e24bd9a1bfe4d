"""Browser tests: the real `mitremap serve` (a subprocess on a free loopback port, the hermetic
test model, a real database) driven by Playwright through Debian's chromium.

One server per database per session (SQLite, then PostgreSQL on the session's throwaway
PostgreSQL server from `tests/conftest.py`); each test gets a fresh browser
context that records console errors, page errors and JavaScript dialogs, so a test can assert
that nothing was blocked by the Content-Security-Policy and no injected script ran.
Screenshots go to $MITREMAP_SCREENSHOTS, else `tests/browser/screenshots/` (not committed).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
START_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class WorkspaceServer:
    """`mitremap serve --db URL --model PATH` as a child process; restartable on its port."""

    def __init__(
        self, db_url: str, model: Path, log: Path, env: dict[str, str] | None = None
    ) -> None:
        self.db_url, self.model, self.log = db_url, model, log
        self.env = {**os.environ, **env} if env else None  # e.g. MITREMAP_CACHE: its models
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [
            sys.executable, "-m", "mitremap", "serve", "--port", str(self.port),
            "--db", self.db_url, "--model", str(self.model),
        ]  # fmt: skip
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=self.env
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"mitremap serve exited with {self.process.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(self.url + "/api/health", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        pytest.fail(f"mitremap serve did not answer within {START_TIMEOUT_S:.0f} s:\n{self.tail()}")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('workspace') / 'workspace.db'}"
    from tests.postgres import create_database

    server = request.getfixturevalue("postgres_server")  # tests/conftest.py: one per session
    return create_database(server, "browser_workspace")


@pytest.fixture(scope="session")
def server(
    database_url: str, real_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkspaceServer]:
    """The real server on this database; stopped at the end of the session."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    running = WorkspaceServer(database_url, real_model_path, log)
    running.start()
    yield running
    running.stop()


@dataclass
class Tab:
    """A page in a fresh browser context, with what it reported."""

    page: Any
    base: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def goto(self, path: str) -> None:
        self.page.goto(self.base + path)

    def csp_violations(self) -> list[str]:
        return [m for m in self.console_errors if "Content Security Policy" in m]


@contextmanager
def open_tab(browser: Any, base: str) -> Iterator[Tab]:
    """A page in a fresh browser context (its own cookies) at 1280 × 900."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    opened = Tab(page, base)
    page.on(
        "console", lambda m: opened.console_errors.append(m.text) if m.type == "error" else None
    )
    page.on("pageerror", lambda e: opened.page_errors.append(str(e)))

    def on_dialog(dialog: Any) -> None:
        opened.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    try:
        yield opened
    finally:
        context.close()


@pytest.fixture
def tab(browser: Any, server: WorkspaceServer) -> Iterator[Tab]:
    with open_tab(browser, server.url) as opened:
        yield opened


@pytest.fixture(scope="session")
def screenshots() -> Path:
    folder = Path(os.environ.get("MITREMAP_SCREENSHOTS") or HERE / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
