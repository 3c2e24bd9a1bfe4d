"""Signing in when the server has users (roles shape what the pages offer), adding a report
from a web address, and the retrain button's progress."""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.browser.conftest import Tab, WorkspaceServer, open_tab

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "apt-report.md"
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def auth_server(
    real_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkspaceServer]:
    """A server whose database has users, so login is required (SQLite: the login flow does
    not depend on the database; the review flow runs on both)."""
    folder = tmp_path_factory.mktemp("auth")
    url = f"sqlite:///{folder / 'workspace.db'}"
    from mitremap.web.workspace.auth import hash_password
    from mitremap.web.workspace.db import Database
    from mitremap.web.workspace.store import Store

    database = Database(url)  # as `mitremap serve user add` does, without two processes
    for name, role in (("ana", "analyst"), ("vic", "viewer")):
        Store(database).add_user(name, role, hash_password(PASSWORD))
    database.close()
    running = WorkspaceServer(url, real_model_path, folder / "serve.log")
    running.start()
    yield running
    running.stop()


def sign_in(tab: Tab, name: str, password: str = PASSWORD) -> None:
    tab.page.fill("#login-name", name)
    tab.page.fill("#login-password", password)
    tab.page.click("#login-form button[type=submit]")


def test_users_sign_in_and_roles_shape_the_pages(browser: Any, auth_server: WorkspaceServer):
    from playwright.sync_api import expect

    with open_tab(browser, auth_server.url) as tab:
        page = tab.page
        tab.goto("/")
        page.wait_for_url("**/login?next=%2F")
        sign_in(tab, "ana", "wrong password!")
        expect(page.locator("#messages .message")).to_contain_text("wrong user name or password")
        expect(page.locator("#login-name")).to_have_value("ana")
        sign_in(tab, "ana")
        page.wait_for_url(re.compile(r"/$"))
        expect(page.locator("#account")).to_contain_text("ana · analyst")
        expect(page.locator("#add-section")).to_be_visible()
        expect(page.locator("#model-section")).to_be_hidden()  # admins only
        page.fill("#add-title", "signed-in report")
        page.fill("#add-text", SAMPLE.read_text(encoding="utf-8"))
        page.click("#add-submit")
        page.wait_for_url("**/reports/*")
        review = page.url
        first = page.locator("#suggestions .card").first
        first.locator("button.accept").click()
        expect(first).to_have_class(re.compile(r"\baccepted\b"))
        expect(first.locator(".state")).to_contain_text("Accepted by ana")
        tab.goto("/")
        expect(page.locator("#reports-body button", has_text="Delete")).to_have_count(0)
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url("**/login")
        assert tab.page_errors == [] and tab.csp_violations() == []

    with open_tab(browser, auth_server.url) as tab:
        page = tab.page
        page.goto(review)
        page.wait_for_url("**/login?next=*")
        sign_in(tab, "vic")
        page.wait_for_url(review)  # back where the viewer was going
        card = page.locator("#suggestions .card").first
        expect(card).to_have_class(re.compile(r"\baccepted\b"))
        expect(card.locator("button.accept")).to_be_disabled()
        expect(page.locator("#add-technique")).to_be_hidden()
        expect(page.locator("#report-status")).to_be_disabled()
        page.locator("#report-text").focus()
        page.keyboard.press("r")  # a viewer's shortcut changes nothing
        page.reload()
        expect(page.locator("#suggestions .card").first).to_have_class(re.compile(r"\baccepted\b"))
        tab.goto("/")
        expect(page.locator("#add-section")).to_be_hidden()
        assert tab.page_errors == [] and tab.csp_violations() == []


def test_signing_in_never_leaves_this_server(browser: Any, auth_server: WorkspaceServer):
    """`next` is followed only to a page here: not `/%09/evil.example`, which passed a check
    on its first characters but is `//evil.example` once the browser drops the tab."""
    with open_tab(browser, auth_server.url) as tab:
        page = tab.page
        elsewhere: list[str] = []

        def only_here(route: Any) -> None:  # a request elsewhere fails, and is counted
            if urlsplit(route.request.url).hostname == "127.0.0.1":
                route.continue_()
            else:
                elsewhere.append(route.request.url)
                route.abort()

        page.route("**/*", only_here)
        tab.goto("/login?next=/%09/evil.example")
        sign_in(tab, "vic")
        page.wait_for_url(auth_server.url + "/")
        for next_page in (
            "//evil.example/",
            "/%5C/evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
        ):
            tab.goto(f"/login?next={next_page}")  # signed in: the page sends you on at once
            page.wait_for_url(auth_server.url + "/")
        tab.goto("/login?next=%2Freports%2F1%3Fa%3D1%23top")
        page.wait_for_url(auth_server.url + "/reports/1?a=1#top")
        assert tab.page_errors == [] and tab.dialogs == [] and elsewhere == []


@pytest.fixture(scope="module")
def report_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The sample report as a web page on a loopback HTTP server."""
    folder = tmp_path_factory.mktemp("site")
    body = "".join(f"<p>{p}</p>" for p in SAMPLE.read_text(encoding="utf-8").split("\n\n"))
    (folder / "glass-harbor.html").write_text(
        f"<!DOCTYPE html><html><head><title>Glass Harbor on the web</title></head>"
        f"<body><article>{body}</article></body></html>",
        encoding="utf-8",
    )

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, *args: Any) -> None:
            pass

    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{site.server_address[1]}/glass-harbor.html"
    site.shutdown()
    site.server_close()


def test_a_report_from_a_web_address(tab: Tab, report_site: str) -> None:
    from playwright.sync_api import expect

    page = tab.page
    tab.goto("/")
    page.check('input[name="source"][value="url"]')
    expect(page.locator("#add-text")).to_be_hidden()
    page.fill("#add-url", report_site)
    page.click("#add-submit")
    page.wait_for_url("**/reports/*")
    expect(page.locator("#suggestions .card").first).to_be_visible()
    expect(page.locator("#report-text")).to_contain_text("LSASS memory")
    expect(page.locator("#report-meta a", has_text="original")).to_have_attribute(
        "href", report_site
    )


def test_retrain_shows_progress_then_the_new_model(tab: Tab) -> None:
    """The button's polling, against a stand-in job (a real retraining takes minutes)."""
    from playwright.sync_api import expect

    page = tab.page
    polls: list[str] = []

    def job(state: str, progress: float, message: str) -> dict[str, Any]:
        return {
            "job": {
                "id": "j1",
                "state": state,
                "progress": progress,
                "message": message,
                "model": "retrained-1" if state == "done" else None,
            }
        }

    page.route(
        "**/api/retrain",
        lambda route: route.fulfill(status=202, json=job("queued", 0.0, "waiting")),
    )

    def poll(route: Any) -> None:
        polls.append(route.request.url)
        if len(polls) < 2:
            route.fulfill(json=job("running", 0.5, "training on 12 reviewed passages"))
        else:
            route.fulfill(json=job("done", 1.0, "saved"))

    page.route("**/api/retrain/j1", poll)
    tab.goto("/")
    select = page.locator("#model-select")
    expect(select.locator("option")).not_to_have_count(0)  # the real /api/models
    expect(select).to_contain_text("active")
    page.click("#retrain")
    expect(page.locator("#retrain-message")).to_contain_text("training on 12 reviewed passages")
    expect(page.locator("#retrain")).to_be_disabled()
    expect(page.locator("#messages")).to_contain_text("retrained-1", timeout=10_000)
    expect(page.locator("#retrain")).to_be_enabled()
    assert page.locator("#retrain-bar").evaluate("bar => bar.value") == 1
    assert len(polls) >= 2
