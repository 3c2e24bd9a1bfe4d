"""The workspace learning from its analysts, in a real browser on SQLite and PostgreSQL: a
decision shows on the next report as evidence ("accepted by local in report N"), the quick
update runs from the reports page and says what it learned, and every report is analysed again
with what appeared and disappeared."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import WorkspaceServer, open_tab
from tests.browser.test_review_workday import SAMPLE, Api

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PASSAGE = (
    "When the victim enabled macros, the document ran a PowerShell command that downloaded a "
    "second-stage loader from hxxps://cdn.freight-docs[.]com/update/ldr.bin."
)
ALIKE = (
    "Once macros were enabled, the document ran a PowerShell command that downloaded a "
    "second-stage loader from hxxps://cdn.freight-docs[.]com/update/ldr.bin."
)


@pytest.fixture(scope="module")
def learning_server(
    database_url: str, real_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkspaceServer]:
    """A server whose models folder is its own (a quick update is saved there)."""
    folder = tmp_path_factory.mktemp("learning")
    url = database_url
    if url.startswith("sqlite"):
        url = f"sqlite:///{folder / 'learning.db'}"
    else:
        from tests.postgres import create_database

        url = create_database(url.rsplit("/", 1)[0], "learning_flow")
    shutil.copytree(real_model_path, folder / "cache" / "models" / "default")
    running = WorkspaceServer(
        url,
        folder / "cache" / "models" / "default",
        folder / "serve.log",
        env={"MITREMAP_CACHE": str(folder / "cache")},
    )
    running.start()
    yield running
    running.stop()


def test_reviews_count_at_once_and_the_model_learns_from_the_page(
    browser: Any, learning_server: WorkspaceServer, screenshots: Path
) -> None:
    from playwright.sync_api import expect

    api = Api(learning_server.url)
    text = SAMPLE.read_text(encoding="utf-8")
    first = api.call("POST", "/api/reports", {"title": "Glass Harbor", "text": text})
    start = text.index(PASSAGE)
    api.call(
        "POST",
        f"/api/reports/{first['id']}/decisions",
        {"technique": "T1059.001", "action": "add", "start": start, "end": start + len(PASSAGE)},
    )
    api.call("PATCH", f"/api/reports/{first['id']}", {"status": "reviewed"})
    second = api.call("POST", "/api/reports", {"title": "Alike", "text": ALIKE})
    with open_tab(browser, learning_server.url) as tab:
        page = tab.page
        tab.goto(f"/reports/{second['id']}")
        card = page.locator('#suggestions .card[data-technique="T1059.001"]')
        card.locator("details summary").first.click()
        note = card.locator(".reviewed-note")
        expect(note).to_contain_text(f"accepted by local in report {first['id']}")
        expect(note.locator("a")).to_have_attribute("href", f"/reports/{first['id']}")

        api.call(  # the second report reviewed too: two reports make a before/after figure
            "POST",
            f"/api/reports/{second['id']}/decisions",
            {"technique": "T1059.001", "action": "add", "start": 0, "end": len(ALIKE)},
        )
        api.call("PATCH", f"/api/reports/{second['id']}", {"status": "reviewed"})
        tab.goto("/")
        page.locator("#quick-update").click()
        expect(page.locator("#retrain-message")).to_contain_text("done", timeout=120_000)
        learned = page.locator("#model-learning")
        expect(learned).to_be_visible()
        expect(learned).to_contain_text("Quick update from 2 reviewed passages")
        expect(learned).to_contain_text("per-report F1 on 2 reviewed reports")
        assert "updated-" in page.locator("#model-select").input_value()

        page.locator("#reanalyse-all").click()
        expect(page.locator("#reanalyse-message")).to_have_text(
            "2 of 2 reports analysed again", timeout=60_000
        )
        page.screenshot(path=str(screenshots / "learning-reports-page.png"), full_page=True)
        assert not tab.page_errors and not tab.csp_violations(), tab.page_errors
