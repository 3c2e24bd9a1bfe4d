"""A team's working day in a real browser, on SQLite and PostgreSQL: passage decisions shown as
decided, notes kept as drafts, two analysts on one report (a stale decision explained), the
model switch confirmed, indicators reviewed, history and comments, metadata, and many reports
(full-text search, filters, order, several selected, a duplicate pointed at its original);
the matrix and the first suggestion where they must be at 1366 and 1024 pixels."""

from __future__ import annotations

import http.cookiejar
import json
import re
import shutil
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Tab, WorkspaceServer, open_tab

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "apt-report.md"
PASSWORD = "correct horse battery"
ACCEPTED = re.compile(r"\baccepted\b")


class Api:
    """The REST API as a script uses it: a session cookie and its CSRF token, or a token."""

    def __init__(self, base: str, token: str | None = None) -> None:
        self.base = base
        cookies = urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        self.opener = urllib.request.build_opener(cookies)
        self.headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        else:
            self.headers["X-CSRF-Token"] = self.call("GET", "/api/session")["csrf_token"]

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data, self.headers, method=method)
        try:
            with self.opener.open(request, timeout=120) as answer:
                raw = answer.read()
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{method} {path}: {error.code} {error.read()[:300]!r}") from None
        return json.loads(raw) if raw else None


def add_sample(api: Api, title: str, case: str = "", **extra: Any) -> dict[str, Any]:
    """The sample report (with `case`: a line naming it, so that the shared server's other
    copies of the sample are not the same text)."""
    text = SAMPLE.read_text(encoding="utf-8") + (f"\n\nCase {case}.\n" if case else "")
    return api.call("POST", "/api/reports", {"title": title, "text": text, **extra})


def card(tab: Tab, technique: str) -> Any:
    return tab.page.locator(f'#suggestions .card[data-technique="{technique}"]')


def clean(tab: Tab) -> None:
    assert not tab.page_errors and not tab.csp_violations(), tab.page_errors


# ---- defects 1 and 3, on the shared server (no users: everyone is the local admin) -----------------


def test_a_passage_decision_shows_as_decided(tab: Tab, server: WorkspaceServer) -> None:
    """Defect 1: accepting one passage accepts the technique — the card's badge and the
    matrix say so, after a reload too."""
    from playwright.sync_api import expect

    report = add_sample(Api(server.url), "Passages")
    tab.goto(f"/reports/{report['id']}")
    page = tab.page
    first = page.locator("#suggestions .card").first
    technique = first.get_attribute("data-technique")
    first.locator("button.passage-accept").first.click()
    for reloaded in (False, True):
        if reloaded:
            page.reload()
        decided = card(tab, technique)
        expect(decided).to_have_class(ACCEPTED)
        expect(decided.locator(".state .badge")).to_have_text("Accepted")
        expect(decided.locator(".state")).to_contain_text("by passage: 1 of")
        cell = page.locator(f'#matrix .cell[data-technique="{technique}"]').first
        expect(cell).to_have_class(ACCEPTED)
    clean(tab)


def test_a_note_typed_without_deciding_survives_reload(tab: Tab, server: WorkspaceServer):
    """Defect 3: a note typed without pressing Accept or Reject (and a comment not posted yet)
    is kept as a draft: there after a reload; posted, the draft is spent."""
    from playwright.sync_api import expect

    report = add_sample(Api(server.url), "Drafts")
    tab.goto(f"/reports/{report['id']}")
    page = tab.page
    second = page.locator("#suggestions .card").nth(1)
    other = second.get_attribute("data-technique")
    with page.expect_request(lambda r: r.url.endswith("/drafts") and r.method == "PUT"):
        second.locator("input.note").fill("check the loader's hash first")
    page.click("#tab-comments")
    with page.expect_request(lambda r: r.url.endswith("/drafts") and r.method == "PUT"):
        page.fill("#comment-text", "ask the SOC")
    page.reload()
    expect(card(tab, other).locator("input.note")).to_have_value("check the loader's hash first")
    expect(card(tab, other).locator(".state .badge")).to_have_text("Pending")  # nothing decided
    page.click("#tab-comments")
    expect(page.locator("#comment-text")).to_have_value("ask the SOC")
    page.click("#comment-form button[type=submit]")
    expect(page.locator("#comments")).to_contain_text("ask the SOC")
    expect(page.locator("#tab-comments")).to_contain_text("1")
    page.reload()
    page.click("#tab-comments")
    expect(page.locator("#comment-text")).to_have_value("")  # posted: the draft is spent
    clean(tab)


# ---- indicators, history, metadata, many reports -----------------------------------------------


def test_indicators_history_and_metadata(tab: Tab, server: WorkspaceServer) -> None:
    from playwright.sync_api import expect

    report = add_sample(Api(server.url), "Indicators and history")
    tab.goto(f"/reports/{report['id']}")
    page = tab.page
    expect(page.locator("#suggestions .card").first).to_be_visible()
    page.click("#tab-indicators")
    ip = page.locator('#indicators .card[data-value="185.220.101.47"]')
    expect(ip.locator(".ioc-value")).to_have_text("185.220.101[.]47")  # defanged on screen
    ip.locator("button.place").first.click()
    expect(page.locator("#report-text .ioc-mark.focus").first).to_have_text("185.220.101[.]47")
    ip.locator("input.note").fill("the C2 server")
    ip.locator("button.accept").click()
    expect(ip.locator(".state")).to_contain_text("Indicator by local")
    run_key = page.locator('#indicators .card[data-type="registry_key"]').first
    expect(run_key).to_have_class(re.compile(r"\bcontext\b"))  # pre-marked by the lists
    expect(run_key.locator(".state")).to_contain_text("pre-marked: a registry key every")
    xlsm = page.locator('#indicators .card[data-value="invoice_0342.xlsm"]')
    xlsm.locator("button.reject").click()
    expect(xlsm.locator(".state .badge")).to_have_text("Not an indicator")

    page.click("#meta-menu summary")
    page.select_option("#meta-tlp", "red")
    page.fill("#meta-tags", "apt, logistics")
    page.fill("#meta-org", "Example CERT")
    page.fill("#meta-published", "2026-03-14")
    page.click("#meta-form button[type=submit]")
    expect(page.locator("#report-tlp")).to_have_text("TLP:RED")
    expect(page.locator("#report-meta")).to_contain_text("tags: apt, logistics")
    expect(page.locator("#report-meta")).to_contain_text("published 2026-03-14")

    page.click("#tab-history")
    history = page.locator("#history")
    expect(history).to_contain_text("indicator ipv4 185.220.101.47: pending → accepted")
    expect(history).to_contain_text("TLP: TLP:AMBER → TLP:RED")
    expect(history.locator("li").first.locator(".who")).to_have_text("local")
    expect(history.locator("li").first.locator("time")).to_have_text("just now")

    page.click("#export-menu summary")
    with page.expect_download() as event:
        page.click('button[data-format="json"]')
    exported = json.loads(Path(event.value.path()).read_text(encoding="utf-8"))
    verdicts = {i["value"]: i["review"] for i in exported["indicators"]}
    assert verdicts["185.220.101.47"] == "accepted"
    assert verdicts["invoice_0342.xlsm"] == "rejected"  # recorded; never sent as an indicator
    assert exported["document"]["tlp"] == "red"
    assert any(e["kind"] == "indicator" for e in exported["review"]["history"])
    page.click("#export-menu summary")
    with page.expect_download() as event:
        page.click('button[data-format="docx"]')
    assert event.value.suggested_filename.endswith(".docx")
    clean(tab)


def test_many_reports_search_filter_sort_select_and_duplicates(
    tab: Tab, server: WorkspaceServer
) -> None:
    from playwright.sync_api import expect

    api = Api(server.url)
    case = f"zephyrine{uuid.uuid4().hex[:8]}"
    first = add_sample(api, "Glass Harbor original", case, tlp="green", tags=[case])
    copy = add_sample(api, "Glass Harbor again", case)
    page = tab.page
    tab.goto(f"/reports/{copy['id']}")
    warning = page.locator("#duplicates")
    expect(warning).to_contain_text("same text")
    warning.get_by_role("link", name="Glass Harbor original").click()
    page.wait_for_url(f"**/reports/{first['id']}")

    tab.goto("/")
    rows = page.locator("#reports-body tr")
    expect(page.locator("#list-summary")).not_to_be_empty()
    page.fill("#search-q", f"mimikatz {case}")  # words of the text
    expect(rows).to_have_count(2)
    page.fill("#search-q", f"185.220.101.47 {case}")  # an indicator value, written defanged
    expect(rows).to_have_count(2)
    page.fill("#search-q", "185.220.101.47")
    expect(rows.filter(has_text="Glass Harbor again")).to_have_count(1)
    page.fill("#search-q", case)
    page.select_option("#search-tlp", "green")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Glass Harbor original")
    page.select_option("#search-tlp", "")
    page.fill("#search-q", "")
    page.fill("#search-tag", case)
    expect(rows).to_have_count(1)
    page.fill("#search-tag", "")
    page.fill("#search-q", case)
    expect(rows).to_have_count(2)
    page.click('th[data-sort="title"] button')
    expect(page.locator('th[data-sort="title"]')).to_have_attribute("aria-sort", "ascending")
    expect(rows.first).to_contain_text("Glass Harbor again")
    page.click('th[data-sort="title"] button')
    expect(rows.first).to_contain_text("Glass Harbor original")
    assert "sort=-title" in page.url

    page.check("#pick-all")
    expect(page.locator("#bulk-count")).to_have_text("2 selected")
    page.click("#bulk-export summary")
    with page.expect_download() as event:
        page.click('button[data-bulk-format="navigator"]')
    layer = json.loads(Path(event.value.path()).read_text(encoding="utf-8"))
    assert layer["gradient"]["maxValue"] == 2
    page.click("#bulk-reviewed")
    expect(rows.first.locator(".badge")).to_have_text("reviewed")
    expect(rows.nth(1).locator(".badge")).to_have_text("reviewed")
    clean(tab)


def test_the_page_fits_laptop_windows(tab: Tab, server: WorkspaceServer, screenshots: Path):
    """The matrix never scrolls sideways at 1366 (nor 1920) pixels; at 1024 × 768 the first
    suggestion, with its Accept button, is on screen without scrolling."""
    from playwright.sync_api import expect

    report = add_sample(Api(server.url), "Layout")
    page = tab.page
    which = server.db_url.split(":", 1)[0].split("+")[0]
    for width, height in ((1920, 1080), (1366, 768), (1024, 768)):
        page.set_viewport_size({"width": width, "height": height})
        tab.goto(f"/reports/{report['id']}")
        first = page.locator("#suggestions .card").first
        expect(first).to_be_visible()
        sizes = page.evaluate(
            "() => { const m = document.getElementById('matrix');"
            " return [m.scrollWidth, m.clientWidth, document.documentElement.scrollWidth,"
            " window.innerWidth]; }"
        )
        assert sizes[0] <= sizes[1] and sizes[2] <= sizes[3], f"sideways at {width}: {sizes}"
        box = first.locator("button.accept").bounding_box()
        assert box is not None and box["y"] + box["height"] <= height, f"below the fold: {box}"
        page.screenshot(path=str(screenshots / f"review-{width}x{height}-{which}.png"))
    folded = page.locator("#matrix .fold").first
    if folded.count():
        folded.click()
        expect(folded).to_have_attribute("aria-expanded", "true")
    clean(tab)


# ---- two analysts, and the model switch: a server with users --------------------------------------


@pytest.fixture(scope="module")
def team_server(
    database_url: str, real_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[WorkspaceServer, dict[str, str]]]:
    """A server with alice and bob (analysts) and adam (admin), two models side by side, on
    this database (a fresh one); answers the server and each user's API token."""
    from mitremap.web.workspace.auth import hash_password
    from mitremap.web.workspace.db import Database
    from mitremap.web.workspace.store import Store

    folder = tmp_path_factory.mktemp("team")
    url = database_url
    if url.startswith("sqlite"):
        url = f"sqlite:///{folder / 'team.db'}"
    else:
        from tests.postgres import create_database

        url = create_database(url.rsplit("/", 1)[0], "team_workday")
    for name in ("default", "second"):
        shutil.copytree(real_model_path, folder / "cache" / "models" / name)
    database = Database(url)
    store = Store(database)
    tokens = {}
    for name, role in (("alice", "analyst"), ("bob", "analyst"), ("adam", "admin")):
        store.add_user(name, role, hash_password(PASSWORD))
        tokens[name] = store.issue_token(name)
    database.close()
    running = WorkspaceServer(
        url,
        folder / "cache" / "models" / "default",
        folder / "serve.log",
        env={"MITREMAP_CACHE": str(folder / "cache")},
    )
    running.start()
    yield running, tokens
    running.stop()


def sign_in(tab: Tab, name: str) -> None:
    tab.page.wait_for_url("**/login*")
    tab.page.fill("#login-name", name)
    tab.page.fill("#login-password", PASSWORD)
    tab.page.click("#login-form button[type=submit]")


def test_two_analysts_a_stale_decision_is_explained_not_saved(browser: Any, team_server) -> None:
    """Defect 4: Bob accepts while Alice's page still shows Pending; her rejection is refused,
    the page says "changed by bob just now" and shows Bob's acceptance."""
    from playwright.sync_api import expect

    server, tokens = team_server
    bob = Api(server.url, tokens["bob"])
    report = add_sample(bob, "Two analysts")
    with open_tab(browser, server.url) as tab:
        tab.goto(f"/reports/{report['id']}")
        sign_in(tab, "alice")
        page = tab.page
        first = page.locator("#suggestions .card").first
        expect(first.locator(".state .badge")).to_have_text("Pending")
        technique = first.get_attribute("data-technique")
        bob.call("POST", f"/api/reports/{report['id']}/decisions",
                 {"technique": technique, "action": "accept"})  # fmt: skip
        first.locator("button.reject").click()
        message = page.locator("#messages .message").last
        expect(message).to_contain_text("changed by bob just now")
        expect(card(tab, technique)).to_have_class(ACCEPTED)  # refreshed: bob's acceptance
        expect(card(tab, technique).locator(".state")).to_contain_text("Accepted by bob")
        decisions = bob.call("GET", f"/api/reports/{report['id']}/decisions")["items"]
        assert [(d["action"], d["user"]) for d in decisions] == [("accept", "bob")]
        card(tab, technique).locator("button.reject").click()  # now on the current version
        expect(card(tab, technique).locator(".state")).to_contain_text("Rejected by alice")
        clean(tab)


def test_the_model_switch_asks_first_and_is_recorded(browser: Any, team_server) -> None:
    """Defect 5: switching the model for everyone asks for confirmation; the history says who."""
    from playwright.sync_api import expect

    server, tokens = team_server
    adam = Api(server.url, tokens["adam"])
    with open_tab(browser, server.url) as tab:
        tab.goto("/")
        sign_in(tab, "adam")
        page = tab.page
        select = page.locator("#model-select")
        expect(select).to_contain_text("default")
        page.select_option("#model-select", "second")
        dialog = page.locator("#confirm-model")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text("“second” instead of “default”")
        dialog.get_by_role("button", name="Cancel").click()
        expect(select).to_have_value("default")
        assert adam.call("GET", "/api/history")["items"] == []
        page.select_option("#model-select", "second")
        dialog.get_by_role("button", name="Switch the model").click()
        expect(page.locator("#messages")).to_contain_text("“second” is now in use")
        expect(select.locator("option:checked")).to_contain_text("active")
        items = adam.call("GET", "/api/history")["items"]
        assert [(e["kind"], e["before"], e["after"], e["user"]) for e in items] == [
            ("model", "default", "second", "adam")
        ]
        assert tab.dialogs == []  # a page dialog, not a browser prompt
        clean(tab)
