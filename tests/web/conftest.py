"""The web tests' own fixtures: every workspace database a test opens is closed when it ends;
the common workspace client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def databases_closed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The apps the tests make are never shut down (a `TestClient` outside `with`), and the
    app does not close its database itself: a PostgreSQL connection left in an engine's pool is
    "deleted while still open" (a ResourceWarning, so an error here) when it is collected."""
    from mitremap.web.workspace.db import Database

    opened: list[Database] = []
    init = Database.__init__

    def tracked(self: Database, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(Database, "__init__", tracked)
    yield
    for database in opened:
        database.close()


@pytest.fixture
def client(mm: Any, db_url: str, tmp_path: Any) -> Any:
    """A workspace on loopback with no login (suggestions shown down to 0.3), called as a
    browser calls it; a test file that needs another workspace defines its own `client`."""
    from mitremap.web.app import create_app
    from tests.web.clients import browser

    app = create_app(mm, database=db_url, models_dir=tmp_path / "models", threshold=0.3)
    return browser(app)
