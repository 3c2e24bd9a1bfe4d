"""Who may do what: the local user on loopback, logins, roles, API tokens, CSRF, cookies, and
the `mitremap serve` commands that manage users and tokens."""

from __future__ import annotations

import io
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("pwdlib")

from fastapi.testclient import TestClient

from mitremap.web.app import create_app
from mitremap.web.workspace.auth import hash_password, verify_password
from mitremap.web.workspace.db import Database
from mitremap.web.workspace.store import Store
from tests.tiny import REPORT

PASSWORD = "correct horse battery"


@pytest.fixture
def database(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'workspace.db'}")
    yield db
    db.close()


@pytest.fixture
def team(database, mm):
    """A server with three users, one per role (login required)."""
    store = Store(database)
    hashed = hash_password(PASSWORD)
    for name, role in (("vera", "viewer"), ("ana", "analyst"), ("adam", "admin")):
        store.add_user(name, role, hashed)
    return create_app(mm, database=database, threshold=0.3, secure_cookies=True)


def login(app, name: str) -> TestClient:
    client = TestClient(app, base_url="https://127.0.0.1")  # Secure cookies need https
    csrf = client.get("/api/session").json()["csrf_token"]
    answer = client.post(
        "/api/login", json={"name": name, "password": PASSWORD}, headers={"X-CSRF-Token": csrf}
    )
    assert answer.status_code == 200, answer.text
    client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
    return client


def test_passwords_are_hashed_with_argon2():
    hashed = hash_password(PASSWORD)
    assert hashed.startswith("$argon2id$") and PASSWORD not in hashed
    assert verify_password(PASSWORD, hashed) and not verify_password(PASSWORD + "!", hashed)
    assert not verify_password(PASSWORD, "not a hash")
    with pytest.raises(Exception, match="at least"):
        hash_password("short")


def test_on_loopback_without_users_everyone_is_the_local_admin(database, mm):
    client = TestClient(create_app(mm, database=database), base_url="http://127.0.0.1")
    session = client.get("/api/session").json()
    assert session["user"] == {"name": "local", "role": "admin"} and session["auth"] is False
    assert client.get("/api/reports").status_code == 200  # reading needs nothing
    # a write with no session and no token is refused: a page elsewhere cannot post here
    bare = TestClient(client.app, base_url="http://127.0.0.1")
    assert bare.post("/api/reports", json={"text": REPORT}).status_code == 401
    assert client.post("/api/reports", json={"text": REPORT}).status_code == 403  # no CSRF
    answer = client.post(
        "/api/reports", json={"text": REPORT}, headers={"X-CSRF-Token": session["csrf_token"]}
    )
    assert answer.status_code == 201
    wrong = client.post("/api/reports", json={"text": REPORT}, headers={"X-CSRF-Token": "guess"})
    assert wrong.status_code == 403


def test_the_session_cookie_is_httponly_strict_and_secure_off_loopback(team, database, mm):
    client = TestClient(team, base_url="https://127.0.0.1")
    first = client.get("/api/session")
    cookie = first.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie
    assert first.json() == {"user": None, "csrf_token": first.json()["csrf_token"], "auth": True}
    local = TestClient(
        create_app(mm, database=Database(database.url), auth=False), base_url="http://127.0.0.1"
    )
    assert "secure" not in local.get("/api/session").headers["set-cookie"].lower()
    page = client.get("/docs")  # a page starts a session too and carries its token
    assert 'name="csrf-token"' in page.text


def test_login_roles_and_logout(team):
    anonymous = TestClient(team, base_url="https://127.0.0.1")
    assert anonymous.get("/api/reports").status_code == 401
    csrf = anonymous.get("/api/session").json()["csrf_token"]
    bad = anonymous.post(
        "/api/login",
        json={"name": "ana", "password": "wrong password"},
        headers={"X-CSRF-Token": csrf},
    )
    assert (
        bad.status_code == 401 and bad.json()["error"]["message"] == "wrong user name or password"
    )
    nobody = anonymous.post(
        "/api/login", json={"name": "zed", "password": PASSWORD}, headers={"X-CSRF-Token": csrf}
    )
    assert nobody.json()["error"]["message"] == "wrong user name or password"

    viewer, analyst, admin = login(team, "vera"), login(team, "ana"), login(team, "adam")
    assert viewer.get("/api/session").json()["user"] == {"name": "vera", "role": "viewer"}
    assert viewer.post("/api/reports", json={"text": REPORT}).status_code == 403
    created = analyst.post("/api/reports", json={"text": REPORT})
    assert created.status_code == 201
    report = created.json()["id"]
    assert viewer.get(f"/api/reports/{report}").status_code == 200
    decision = analyst.post(
        f"/api/reports/{report}/decisions", json={"technique": "T1059", "action": "accept"}
    )
    assert decision.json()["decision"]["user"] == "ana"
    assert analyst.delete(f"/api/reports/{report}").status_code == 403
    assert analyst.post("/api/retrain").status_code == 403
    assert admin.delete(f"/api/reports/{report}").status_code == 204
    assert analyst.post("/api/logout").status_code == 204
    assert analyst.get("/api/reports").status_code == 401


def test_login_starts_a_new_session(team):
    client = TestClient(team, base_url="https://127.0.0.1")
    before = client.get("/api/session").json()["csrf_token"]
    answer = client.post(
        "/api/login", json={"name": "ana", "password": PASSWORD}, headers={"X-CSRF-Token": before}
    )
    assert answer.json()["csrf_token"] != before  # no session fixation
    assert (
        client.post(
            "/api/reports", json={"text": REPORT}, headers={"X-CSRF-Token": before}
        ).status_code
        == 403
    )


def test_api_tokens_for_scripts(team, database):
    token = Store(database).issue_token("ana", "nightly import")
    script = TestClient(team, base_url="https://127.0.0.1")
    auth = {"Authorization": f"Bearer {token}"}
    assert script.post("/api/reports", json={"text": REPORT}, headers=auth).status_code == 201
    assert script.get("/api/reports", headers=auth).json()["total"] == 1
    bad = script.get("/api/reports", headers={"Authorization": "Bearer mm_nope"})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "unauthorized"
    assert script.get("/api/reports", headers={"Authorization": "Basic eDp5"}).status_code == 401


def test_cross_origin_writes_are_refused_even_with_a_session(team):
    client = login(team, "ana")
    answer = client.post(
        "/api/reports", json={"text": REPORT}, headers={"Origin": "https://evil.example"}
    )
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "forbidden"
    site = client.post(
        "/api/reports", json={"text": REPORT}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert site.status_code == 403


# ---- the commands ------------------------------------------------------------------------


def test_serve_user_and_token_commands(cli, tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'team.db'}"
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    added = cli("serve", "user", "add", "ana", "--role", "analyst", "--password-stdin", "--db", url)
    assert added.code == 0, added.err
    listed = cli("serve", "--db", url, "user", "list")
    assert listed.code == 0 and listed.out.split() == ["ana", "analyst", "password"]
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    again = cli("serve", "user", "add", "ana", "--password-stdin", "--db", url)
    assert again.code == 1 and "exists already" in again.err
    issued = cli("serve", "token", "ana", "--db", url)
    token = issued.out.strip()
    assert issued.code == 0 and token.startswith("mm_")
    store = Store(Database(url))
    user = store.token_user(token)
    assert user is not None and user.name == "ana" and store.has_login_users()
    assert cli("serve", "token", "nobody", "--db", url).code == 1
    assert cli("serve", "user", "remove", "ana", "--db", url).code == 0
    assert store.token_user(token) is None


def test_serve_refuses_other_addresses_without_users(cli, tmp_path, monkeypatch):
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("started without users"))
    url = f"sqlite:///{tmp_path / 'w.db'}"
    refused = cli("serve", "--host", "0.0.0.0", "--db", url)
    assert refused.code == 1 and "needs users" in refused.err and "Traceback" not in refused.err


def test_serve_on_another_address_with_users_runs_with_login(cli, tmp_path, monkeypatch, mm):
    import uvicorn

    started: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: started.update(app=app, **options))
    monkeypatch.setattr("mitremap.analysis.MitreMap.load", lambda *a, **k: mm)
    url = f"sqlite:///{tmp_path / 'w.db'}"
    Store(Database(url)).add_user("adam", "admin", hash_password(PASSWORD))
    answer = cli("serve", "--host", "0.0.0.0", "--db", url, "--allow-host", "mitremap.example")
    assert answer.code == 0, answer.err
    ws = started["app"].state.workspace
    assert ws.auth.enabled and ws.secure_cookies and not ws.allow_private_urls
    assert "HTTPS" in answer.err


def test_a_bad_database_url_is_one_line(cli, tmp_path):
    answer = cli("serve", "user", "list", "--db", "mysql://x/y")
    assert answer.code == 1 and "unsupported database" in answer.err
    answer = cli("serve", "user", "list", "--db", "nonsense")
    assert answer.code == 1 and "not a database URL" in answer.err


def test_password_guessing_is_refused_after_five_failures(team):
    from mitremap.web.workspace.auth import MAX_FAILED_LOGINS

    client = TestClient(team, base_url="https://127.0.0.1")
    csrf = {"X-CSRF-Token": client.get("/api/session").json()["csrf_token"]}
    for _ in range(MAX_FAILED_LOGINS):
        wrong = client.post(
            "/api/login", json={"name": "vera", "password": "guess" * 3}, headers=csrf
        )
        assert wrong.status_code == 401
    refused = client.post("/api/login", json={"name": "Vera", "password": PASSWORD}, headers=csrf)
    assert refused.status_code == 429  # even the right password, for a while
    assert refused.json()["error"]["code"] == "too_many_requests"
    assert "try again in" in refused.json()["error"]["message"]
    other = client.post("/api/login", json={"name": "ana", "password": PASSWORD}, headers=csrf)
    assert other.status_code == 200  # other users are not locked out
