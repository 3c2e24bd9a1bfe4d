"""Accounts that follow the database, on SQLite and PostgreSQL: a user added to a running
server locks it on the next request; a server reachable through `--allow-host` needs users;
Secure cookies over HTTPS and behind a trusted proxy; login throttling counted atomically
in the database, per name and per address, across restarts; session rows only at login;
API tokens with a role, an expiry, a list and revocation; the users-and-tokens API, audited.
"""

from __future__ import annotations

import io
import threading
from datetime import timedelta

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("pwdlib")

from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from mitremap.web.app import create_app
from mitremap.web.workspace.auth import MAX_FAILED_LOGINS, MAX_FAILED_PER_ADDRESS, hash_password
from mitremap.web.workspace.db import Database
from mitremap.web.workspace.models import ApiToken, AuditEvent, BrowserSession, LoginAttempt
from mitremap.web.workspace.store import Store
from tests.tiny import REPORT
from tests.web.clients import browser

PASSWORD = "correct horse battery"
HTTPS = "https://127.0.0.1"


def sessions(store: Store) -> int:
    with store.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(BrowserSession)) or 0)


def page_client(app, base: str = HTTPS, address: str = "testclient") -> TestClient:
    """A browser before login: the pre-login cookie and its CSRF token."""
    return browser(app, base, address)


def login(app, name: str, password: str = PASSWORD, address: str = "testclient"):
    client = page_client(app, address=address)
    answer = client.post("/api/login", json={"name": name, "password": password})
    if answer.status_code == 200:
        client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
    return client, answer


@pytest.fixture
def team(db_url, mm):
    """A database with three users (one per role) and an app on it."""
    database = Database(db_url)
    store = Store(database)
    hashed = hash_password(PASSWORD)
    for name, role in (("vera", "viewer"), ("ana", "analyst"), ("adam", "admin")):
        store.add_user(name, role, hashed)
    yield create_app(mm, database=database, threshold=0.3)
    database.close()


# ---- authentication follows the database ------------------------------------------------


def test_a_user_added_to_a_running_server_locks_it_on_the_next_request(
    db_url, mm, cli, monkeypatch
):
    app = create_app(mm, database=db_url, threshold=0.3)
    local = page_client(app, base="http://127.0.0.1")
    assert local.get("/api/session").json()["user"] == {"name": "local", "role": "admin"}
    assert local.post("/api/reports", json={"text": REPORT}).status_code == 201
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    added = cli(
        "serve", "user", "add", "alice", "--role", "admin", "--password-stdin", "--db", db_url
    )
    assert added.code == 0, added.err
    # the very next request: no more local admin, for the page that was open too
    assert local.get("/api/reports").status_code == 401
    assert local.post("/api/reports", json={"text": REPORT}).status_code == 401
    assert local.delete("/api/reports/1").status_code == 401
    assert local.get("/api/session").json() == {
        "user": None,
        "csrf_token": local.headers["X-CSRF-Token"],
        "auth": True,
    }
    alice, answer = login(app, "alice")
    assert answer.status_code == 200 and alice.get("/api/reports").json()["total"] == 1
    assert "from its next request" in added.out  # what the command says is what happens


def test_removing_the_last_user_opens_a_loopback_server_again(db_url, mm, monkeypatch):
    monkeypatch.setattr("mitremap.web.workspace.auth.LOGIN_STATE_TTL_S", 0.0)
    store = Store(Database(db_url))
    store.add_user("alice", "admin", hash_password(PASSWORD))
    app = create_app(mm, database=db_url)
    client = page_client(app, base="http://127.0.0.1")
    assert client.get("/api/reports").status_code == 401
    store.remove_user("alice")
    assert client.get("/api/reports").status_code == 200


def test_allow_host_without_users_refuses_to_start(cli, tmp_path, monkeypatch, mm):
    import uvicorn

    started: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: started.update(app=app, **options))
    monkeypatch.setattr("mitremap.analysis.MitreMap.load", lambda *a, **k: mm)
    url = f"sqlite:///{tmp_path / 'w.db'}"
    refused = cli("serve", "--allow-host", "mitremap.example", "--db", url)
    assert refused.code == 1 and "needs users" in refused.err and "mitremap.example" in refused.err
    assert "Traceback" not in refused.err and not started
    assert cli("serve", "--allow-host", "localhost", "--db", url).code == 0  # still loopback
    assert started["app"].state.workspace.auth.forced is None
    Store(Database(url)).add_user("adam", "admin", hash_password(PASSWORD))
    answer = cli(
        "serve", "--allow-host", "mitremap.example", "--forwarded-allow-ips", "127.0.0.1",
        "--db", url,
    )  # fmt: skip
    assert answer.code == 0, answer.err
    ws = started["app"].state.workspace
    assert ws.auth.forced is True and ws.secure_cookies and not ws.allow_private_urls
    assert started["proxy_headers"] is False  # the app believes only --forwarded-allow-ips


def test_cookies_are_secure_over_https_and_behind_a_trusted_proxy(tmp_path, mm):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    Store(Database(url)).add_user("ana", "analyst", hash_password(PASSWORD))

    def cookies(app, base: str, headers: dict[str, str] | None = None) -> list[str]:
        client = TestClient(app, base_url=base)
        csrf = client.get("/api/session", headers=headers)
        client.cookies.clear()  # as the browser sends it (over HTTPS, to the proxy)
        client.cookies.set("mitremap_csrf", csrf.cookies["mitremap_csrf"])
        answer = client.post(
            "/api/login",
            json={"name": "ana", "password": PASSWORD},
            headers={"X-CSRF-Token": csrf.json()["csrf_token"], **(headers or {})},
        )
        assert answer.status_code == 200, answer.text
        return [c.lower() for c in (csrf.headers["set-cookie"], answer.headers["set-cookie"])]

    direct = create_app(mm, database=url)
    assert all("secure" not in c for c in cookies(direct, "http://127.0.0.1"))
    assert all("; secure" in c for c in cookies(direct, HTTPS))  # TLS to the server itself
    proxied = {"X-Forwarded-Proto": "https"}
    # an untrusted sender of X-Forwarded-Proto is not believed
    assert all("secure" not in c for c in cookies(direct, "http://127.0.0.1", proxied))
    behind = create_app(mm, database=url, forwarded_allow_ips=("testclient",))
    assert all("; secure" in c for c in cookies(behind, "http://127.0.0.1", proxied))
    assert all("secure" not in c for c in cookies(behind, "http://127.0.0.1"))
    for cookie in cookies(behind, "http://127.0.0.1", proxied):
        assert "httponly" in cookie and "samesite=strict" in cookie


# ---- sessions only when needed ----------------------------------------------------------


def test_the_sign_in_form_writes_no_row_login_writes_one_logout_removes_it(team):
    store = team.state.workspace.store
    for _ in range(150):
        for path in ("/login", "/api/session", "/"):
            TestClient(team, base_url=HTTPS).get(path, follow_redirects=False)
    assert sessions(store) == 0
    client, answer = login(team, "ana")
    assert answer.status_code == 200 and sessions(store) == 1
    assert "mitremap_session" in answer.cookies
    assert client.post("/api/logout").status_code == 204
    assert sessions(store) == 0 and client.get("/api/reports").status_code == 401


def test_the_no_login_mode_writes_no_session_row(db_url, mm):
    app = create_app(mm, database=db_url, threshold=0.3)
    client = page_client(app, base="http://127.0.0.1")
    report = client.post("/api/reports", json={"text": REPORT})
    assert report.status_code == 201
    decision = client.post(
        f"/api/reports/{report.json()['id']}/decisions",
        json={"technique": "T1059", "action": "accept"},
    )
    assert decision.status_code == 201 and decision.json()["decision"]["user"] == "local"
    assert sessions(app.state.workspace.store) == 0
    assert client.patch("/api/users/local", json={"role": "viewer"}).status_code == 400
    # the CSRF token is bound to this browser's cookie: another browser's token fails
    other = page_client(app, base="http://127.0.0.1")
    stolen = {"X-CSRF-Token": other.headers["X-CSRF-Token"]}
    assert client.post("/api/reports", json={"text": REPORT}, headers=stolen).status_code == 403


def test_expired_rows_are_purged(team, mm):
    store = team.state.workspace.store
    login(team, "ana")
    login(team, "zed", "wrong password!")
    with store.db.session() as s:
        s.execute(update(BrowserSession).values(expires_at=BrowserSession.created_at))
        s.execute(
            update(LoginAttempt).values(window_start=LoginAttempt.window_start - timedelta(hours=1))
        )
    create_app(mm, database=store.db)  # a start purges them (and a running server, hourly)
    with store.db.session() as s:
        assert s.scalar(select(func.count()).select_from(BrowserSession)) == 0
        assert s.scalar(select(func.count()).select_from(LoginAttempt)) == 0


# ---- throttling in the database ---------------------------------------------------------


def test_parallel_guesses_for_one_name_check_at_most_five(team):
    """30 clients at once, each a wrong then the right password for one name: at most 5
    passwords are checked, every other attempt is 429 (once, 29 were checked)."""
    clients = [page_client(team) for _ in range(30)]
    start = threading.Barrier(len(clients))
    statuses: list[int] = []

    def attempt(client: TestClient) -> None:
        start.wait()
        for password in ("not the password", PASSWORD):
            answer = client.post("/api/login", json={"name": "ana", "password": password})
            statuses.append(answer.status_code)

    threads = [threading.Thread(target=attempt, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(statuses) == 60
    assert statuses.count(401) <= MAX_FAILED_LOGINS and statuses.count(200) == 0
    assert statuses.count(429) == 60 - statuses.count(401)


def test_one_address_guessing_many_names_is_throttled_across_a_restart(team, mm):
    statuses = [
        login(team, f"user{n}", "a wrong password", address="203.0.113.5")[1].status_code
        for n in range(20)
    ]
    assert statuses == [401] * MAX_FAILED_PER_ADDRESS + [429] * (20 - MAX_FAILED_PER_ADDRESS)
    refused = login(team, "ana", address="203.0.113.5")[1]
    assert refused.status_code == 429 and "from this address" in refused.json()["error"]["message"]
    assert login(team, "ana", address="198.51.100.7")[1].status_code == 200  # others may
    restarted = create_app(mm, database=team.state.workspace.store.db)
    assert login(restarted, "ana", address="203.0.113.5")[1].status_code == 429


def test_a_name_stays_throttled_after_a_restart(team, mm):
    for n in range(MAX_FAILED_LOGINS):
        assert login(team, "vera", "wrong password!", address=f"192.0.2.{n}")[1].status_code == 401
    restarted = create_app(mm, database=team.state.workspace.store.db)
    refused = login(restarted, "Vera", address="192.0.2.99")[1]
    assert refused.status_code == 429 and "for this user" in refused.json()["error"]["message"]


# ---- API tokens -------------------------------------------------------------------------


def bearer(app, token: str) -> TestClient:
    client = TestClient(app, base_url=HTTPS)
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def test_a_viewer_token_for_an_analyst_reads_but_cannot_write(team):
    ana, _ = login(team, "ana")
    made = ana.post("/api/tokens", json={"label": "feed", "role": "viewer", "expires_days": 30})
    assert made.status_code == 201, made.text
    assert made.json()["item"]["role"] == "viewer" and made.json()["item"]["expires_at"]
    feed = bearer(team, made.json()["token"])
    assert feed.get("/api/reports").status_code == 200
    assert feed.post("/api/reports", json={"text": REPORT}).status_code == 403
    too_high = ana.post("/api/tokens", json={"label": "x", "role": "admin"})
    assert (
        too_high.status_code == 422 and "at most their role" in too_high.json()["error"]["message"]
    )
    # a token cannot make tokens or users
    assert feed.post("/api/tokens", json={"label": "more"}).status_code == 403


def test_tokens_are_listed_expire_follow_the_user_and_are_revoked_one_by_one(team):
    store = team.state.workspace.store
    ana, _ = login(team, "ana")
    first = ana.post("/api/tokens", json={"label": "nightly import"}).json()
    second = ana.post("/api/tokens", json={"label": "feed", "expires_days": 1}).json()
    assert (
        bearer(team, first["token"]).post("/api/reports", json={"text": REPORT}).status_code == 201
    )
    listed = {t["label"]: t for t in ana.get("/api/tokens").json()["items"]}
    assert set(listed) == {"nightly import", "feed"}
    assert listed["nightly import"]["last_used_at"] and listed["feed"]["last_used_at"] is None
    assert listed["nightly import"]["created_at"] and listed["nightly import"]["role"] == "analyst"
    assert "token" not in listed["feed"]
    with store.db.session() as s:  # a day later
        s.execute(
            update(ApiToken)
            .where(ApiToken.id == second["item"]["id"])
            .values(expires_at=ApiToken.created_at)
        )
    expired = bearer(team, second["token"]).get("/api/reports")
    assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]
    store.set_role("ana", "viewer", actor="test")  # the user's role caps the token's
    assert (
        bearer(team, first["token"]).post("/api/reports", json={"text": REPORT}).status_code == 403
    )
    assert ana.delete(f"/api/tokens/{first['item']['id']}").status_code == 204
    assert bearer(team, first["token"]).get("/api/reports").status_code == 401
    vera, _ = login(team, "vera")  # someone else's token is not there for you
    assert vera.delete(f"/api/tokens/{second['item']['id']}").status_code == 404
    assert vera.get("/api/tokens?all=true").status_code == 403
    adam, _ = login(team, "adam")
    assert len(adam.get("/api/tokens?all=true").json()["items"]) == 1
    actions = [e["action"] for e in adam.get("/api/audit").json()["items"]]
    assert actions[:4] == ["token.revoke", "user.role", "token.issue", "token.issue"]


def test_a_disabled_users_token_and_session_stop_at_once(team):
    ana, _ = login(team, "ana")
    token = ana.post("/api/tokens", json={"label": "ci"}).json()["token"]
    adam, _ = login(team, "adam")
    assert adam.patch("/api/users/ana", json={"disabled": True}).status_code == 200
    assert ana.get("/api/reports").status_code == 401
    assert bearer(team, token).get("/api/reports").status_code == 401
    assert login(team, "ana")[1].status_code == 401
    assert adam.patch("/api/users/ana", json={"disabled": False}).status_code == 200
    assert bearer(team, token).get("/api/reports").status_code == 200


def test_token_commands(cli, tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'team.db'}"
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert cli("serve", "user", "add", "ana", "--password-stdin", "--db", url).code == 0
    feed = cli("serve", "token", "ana", "--label", "feed", "--role", "viewer",
               "--expires-days", "30", "--db", url)  # fmt: skip
    ci = cli("serve", "token", "ana", "--label", "ci", "--db", url)
    assert feed.code == ci.code == 0 and feed.out.startswith("mm_")
    assert cli("serve", "token", "ana", "--role", "admin", "--db", url).code == 1
    listed = cli("serve", "tokens", "list", "--db", url).out.splitlines()
    assert len(listed) == 2 and "\tviewer\tfeed\t" in listed[1] and "never used" in listed[1]
    assert "expires never" in listed[0] and "expires 20" in listed[1]
    first_id = listed[1].split("\t")[0].lstrip("#")
    assert cli("serve", "tokens", "revoke", first_id, "--db", url).code == 0
    store = Store(Database(url))
    assert store.token_user(feed.out.strip()) is None
    user = store.token_user(ci.out.strip())
    assert user is not None and user.name == "ana"
    assert cli("serve", "tokens", "revoke", first_id, "--db", url).code == 1
    actors = {e["actor"] for e in store.audit_events()["items"]}
    assert all(a.startswith("cli") for a in actors)


# ---- users, from the admin page's API ---------------------------------------------------


def test_admins_manage_users_and_everything_is_audited(team):
    adam, _ = login(team, "adam")
    ana, _ = login(team, "ana")
    assert ana.get("/api/users").status_code == 403
    assert ana.post("/api/users", json={"name": "x", "password": PASSWORD}).status_code == 403
    added = adam.post("/api/users", json={"name": "bob", "role": "viewer", "password": PASSWORD})
    assert added.status_code == 201 and added.json()["role"] == "viewer"
    assert adam.post("/api/users", json={"name": "bob", "password": PASSWORD}).status_code == 409
    assert adam.post("/api/users", json={"name": "c", "password": "short"}).status_code == 422
    assert adam.patch("/api/users/bob", json={"role": "analyst"}).json()["role"] == "analyst"
    bob, _ = login(team, "bob")
    assert bob.post("/api/reports", json={"text": REPORT}).status_code == 201
    new = "another long password"
    assert adam.post("/api/users/bob/password", json={"password": new}).status_code == 204
    assert bob.get("/api/reports").status_code == 401  # their sessions ended
    assert login(team, "bob", new)[1].status_code == 200
    # the last admin who can log in stays
    demoted = adam.patch("/api/users/adam", json={"role": "analyst"})
    assert demoted.status_code == 409 and "no admin" in demoted.json()["error"]["message"]
    assert adam.patch("/api/users/adam", json={"disabled": True}).status_code == 400
    audit = adam.get("/api/audit").json()["items"]
    assert [(e["actor"], e["action"], e["target"]) for e in audit[:3]] == [
        ("adam", "password.reset", "bob"),
        ("adam", "user.role", "bob"),
        ("adam", "user.add", "bob"),
    ]
    assert audit[1]["detail"] == "viewer → analyst"


def test_everyone_changes_their_own_password(team):
    ana, _ = login(team, "ana")
    other_browser, _ = login(team, "ana")
    wrong = ana.post(
        "/api/account/password", json={"current": "nope nope nope", "password": "x" * 12}
    )
    assert wrong.status_code == 403 and "current password is wrong" in wrong.text
    new = "a brand new password"
    assert (
        ana.post("/api/account/password", json={"current": PASSWORD, "password": new}).status_code
        == 204
    )
    assert ana.get("/api/reports").status_code == 200  # this session stays
    assert other_browser.get("/api/reports").status_code == 401  # the others end
    assert login(team, "ana", new)[1].status_code == 200
    adam, _ = login(team, "adam")
    assert adam.get("/api/audit").json()["items"][0]["action"] == "password.change"


def test_the_audit_log_is_a_table_of_its_own(team):
    Store(team.state.workspace.store.db).add_user("cli-made", "viewer", None, actor="cli:root")
    with team.state.workspace.store.db.session() as s:
        row = s.scalar(select(AuditEvent).order_by(AuditEvent.id.desc()))
        assert (row.actor, row.action, row.target) == ("cli:root", "user.add", "cli-made")
