"""The users-and-tokens page (`/admin`) in Chromium, on SQLite and PostgreSQL: an admin adds a
user, changes a role, resets a password, disables and enables a user, makes a viewer token
for a feed, sees when it was last used and revokes it, and reads it all in the audit log; an
analyst changes their own password and manages their own tokens; on a loopback server without
users, the first user added turns sign-in on at the next request."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Tab, WorkspaceServer, open_tab

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def team_server(
    request: pytest.FixtureRequest,
    real_model_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[WorkspaceServer]:
    """A server whose database has an admin and an analyst (login required)."""
    from mitremap.web.workspace.auth import hash_password
    from mitremap.web.workspace.db import Database
    from mitremap.web.workspace.store import Store

    folder = tmp_path_factory.mktemp(f"admin-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'workspace.db'}"
    else:
        from tests.postgres import create_database

        server = request.getfixturevalue("postgres_server")
        url = create_database(server, f"admin_{uuid.uuid4().hex[:12]}")
    database = Database(url)
    for name, role in (("root", "admin"), ("ana", "analyst")):
        Store(database).add_user(name, role, hash_password(PASSWORD))
    database.close()
    running = WorkspaceServer(url, real_model_path, folder / "serve.log")
    running.start()
    yield running
    running.stop()


def sign_in(tab: Tab, name: str, password: str = PASSWORD, then: str = "/admin") -> None:
    tab.goto(f"/login?next={then}")
    tab.page.fill("#login-name", name)
    tab.page.fill("#login-password", password)
    tab.page.click("#login-form button[type=submit]")
    tab.page.wait_for_url(f"**{then}")


def api(base: str, path: str, token: str) -> int:
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            json.load(answer)
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def user_row(tab: Tab, name: str) -> Any:
    return tab.page.locator(f'#users-body tr[data-user="{name}"]')


def test_an_admin_manages_users_and_tokens(
    browser: Any, team_server: WorkspaceServer, screenshots: Path
) -> None:
    from playwright.sync_api import expect

    with open_tab(browser, team_server.url) as tab:
        page = tab.page
        sign_in(tab, "root")
        expect(page.locator("#users-section")).to_be_visible()
        expect(page.locator("#no-login-note")).to_be_hidden()
        expect(user_row(tab, "ana")).to_contain_text("password")

        page.fill("#user-name", "bob")
        page.select_option("#user-role", "viewer")
        page.fill("#user-password", PASSWORD)
        page.click("#user-submit")
        expect(page.locator("#messages")).to_contain_text("Added bob.")
        bob = user_row(tab, "bob")
        expect(bob.locator("select")).to_have_value("viewer")

        bob.locator("select").select_option("analyst")
        expect(page.locator("#messages")).to_contain_text("bob is now analyst.")

        bob.get_by_role("button", name="Reset the password of bob").click()
        page.fill("#reset-password", "a new long password")
        page.locator("#reset-dialog button[value=reset]").click()
        expect(page.locator("#messages")).to_contain_text("New password set for bob")

        bob.get_by_role("button", name="Disable bob").click()
        expect(user_row(tab, "bob")).to_contain_text("disabled")
        expect(user_row(tab, "bob")).to_have_class(re.compile(r"\bdisabled\b"))
        user_row(tab, "bob").get_by_role("button", name="Enable bob").click()
        expect(user_row(tab, "bob")).not_to_contain_text("disabled")

        # a viewer token for a feed, shown once, then listed without its value
        page.fill("#token-label", "threat feed")
        page.select_option("#token-role", "viewer")
        page.select_option("#token-expires", "30")
        page.click("#token-submit")
        expect(page.locator("#token-created")).to_be_visible()
        token = page.locator("#token-value").input_value()
        assert token.startswith("mm_")
        row = page.locator("#tokens-body tr", has_text="threat feed")
        expect(row).to_contain_text("viewer")
        expect(row.locator("td").nth(4)).to_have_text("never")
        assert api(team_server.url, "/api/reports", token) == 200
        page.reload()
        row = page.locator("#tokens-body tr", has_text="threat feed")
        expect(row.locator("td").nth(4)).not_to_have_text("never")  # last used: just now
        assert token not in page.content()

        audit = page.locator("#audit-body")
        for action in ("user.add", "user.role", "password.reset", "user.disable", "token.issue"):
            expect(audit).to_contain_text(action)
        page.screenshot(path=str(screenshots / "admin.png"), full_page=True)

        row.get_by_role("button", name="Revoke the token “threat feed”").click()
        page.locator("#revoke-dialog button[value=revoke]").click()
        expect(page.locator("#messages")).to_contain_text("Revoked “threat feed”.")
        expect(page.locator("#tokens-body")).not_to_contain_text("threat feed")
        assert api(team_server.url, "/api/reports", token) == 401
        expect(audit).to_contain_text("token.revoke")
        assert tab.page_errors == [] and tab.csp_violations() == [] and tab.dialogs == []


def test_an_analyst_changes_their_password_and_keeps_their_own_tokens(
    browser: Any, team_server: WorkspaceServer
) -> None:
    from playwright.sync_api import expect

    new = f"another password {uuid.uuid4().hex[:6]}"
    with open_tab(browser, team_server.url) as tab:
        page = tab.page
        sign_in(tab, "ana")
        expect(page.locator("#tokens-section")).to_be_visible()
        expect(page.locator("#users-section")).to_be_hidden()
        expect(page.locator("#audit-section")).to_be_hidden()
        expect(page.locator("#token-role option[value=admin]")).to_be_hidden()

        page.fill("#token-label", "my script")
        page.click("#token-submit")
        expect(page.locator("#tokens-body")).to_contain_text("my script")

        page.fill("#password-current", "not my password")
        page.fill("#password-new", new)
        page.fill("#password-again", new)
        page.click("#password-submit")
        expect(page.locator("#messages")).to_contain_text("the current password is wrong")
        page.fill("#password-current", PASSWORD)
        page.fill("#password-new", new)
        page.fill("#password-again", new)
        page.click("#password-submit")
        expect(page.locator("#messages")).to_contain_text("Your password is changed")
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url("**/login")
        sign_in(tab, "ana", new)
        expect(page.locator("#tokens-body")).to_contain_text("my script")
        assert tab.page_errors == [] and tab.csp_violations() == []


@pytest.fixture
def local_server(
    real_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkspaceServer]:
    """A loopback server without users (no login), on its own SQLite database."""
    folder = tmp_path_factory.mktemp("local-admin")
    running = WorkspaceServer(
        f"sqlite:///{folder / 'workspace.db'}", real_model_path, folder / "serve.log"
    )
    running.start()
    yield running
    running.stop()


def test_the_first_user_turns_sign_in_on_at_the_next_request(
    browser: Any, local_server: WorkspaceServer
) -> None:
    from playwright.sync_api import expect

    with open_tab(browser, local_server.url) as tab:
        page = tab.page
        tab.goto("/admin")
        expect(page.locator("#account")).to_contain_text("local · admin")
        expect(page.locator("#no-login-note")).to_be_visible()
        expect(page.locator("#password-section")).to_be_hidden()
        page.fill("#user-name", "first")
        page.select_option("#user-role", "admin")
        page.fill("#user-password", PASSWORD)
        page.click("#user-submit")
        # the page's next call needed a login (polled: a navigation may be restarted)
        expect(page).to_have_url(re.compile(r"/login\?next=%2Fadmin$"))
        page.fill("#login-name", "first")
        page.fill("#login-password", PASSWORD)
        page.click("#login-form button[type=submit]")
        page.wait_for_url("**/admin")
        expect(page.locator("#account")).to_contain_text("first · admin")
        expect(page.locator("#password-section")).to_be_visible()
        expect(user_row(tab, "first")).to_contain_text("password")
        assert tab.page_errors == [] and tab.csp_violations() == []
