"""The web app's guards and the stateless API (analyze, iocs, health), with a stand-in model
(the real model's output is tested elsewhere; the workspace in tests/web/test_workspace_*.py)."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

from mitremap.web.app import create_app
from tests.fakes import StandIn, as_model
from tests.web.clients import browser

LOCAL = "http://127.0.0.1"  # the tests' server name: production accepts no "testserver"


@pytest.fixture
def model() -> StandIn:
    return StandIn()


@pytest.fixture
def database(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'workspace.db'}"


@pytest.fixture
def client(model, database) -> TestClient:
    return TestClient(create_app(model, max_bytes=10_000, database=database), base_url=LOCAL)


def error(response) -> tuple[int, str, str]:
    """(status, code, message) of an answer in the one error shape."""
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    return response.status_code, body["error"]["code"], body["error"]["message"]


def test_analyze_json_follows_the_cli_schema(client, model):
    response = client.post(
        "/api/analyze", json={"text": "It created a scheduled task.", "threshold": 0.7}
    )
    assert response.status_code == 200
    data = response.json()
    assert {"document", "model", "threshold", "techniques"} <= set(data)
    assert data["techniques"][0]["technique"] == "T1053.005"
    call = model.calls[0]
    assert call["threshold"] == 0.7 and call["window"] == 3 and call["iocs"] is True
    assert call["document"].text == "It created a scheduled task."


def test_health_reports_the_loaded_models_card_and_database(client):
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["model"]["attack_version"] == "18.1"
    assert health["database"] == "sqlite"


def test_health_gives_a_real_models_card(mm, database):
    """A loaded MitreMap's card (it was always null before)."""
    client = TestClient(create_app(mm, database=database), base_url=LOCAL)
    health = client.get("/api/health").json()
    assert health["model"]["backend"] == "linear" and "trained_at" in health["model"]


def test_analyze_in_export_formats(client):
    layer = client.post("/api/analyze", json={"text": "x", "format": "navigator"}).json()
    assert layer["domain"] == "enterprise-attack" and layer["versions"]["layer"] == "4.5"
    csv = client.post("/api/analyze", json={"text": "x", "format": "csv"})
    assert (
        csv.headers["content-type"].startswith("text/csv") and "\ntechnique,T1053.005," in csv.text
    )


@pytest.mark.parametrize(
    ("payload", "status", "code", "message"),
    [
        ({"text": "   "}, 400, "bad_request", "empty"),
        ({"text": "x", "format": "pdf"}, 400, "bad_request", "Unknown format"),
        ({"text": "x" * 20_000}, 413, "too_large", "larger than"),
        ({"text": "x", "threshold": 2}, 422, "validation_error", "threshold"),
        ({}, 422, "validation_error", "text"),
    ],
)
def test_bad_requests_are_one_line_errors(client, payload, status, code, message):
    got = error(client.post("/api/analyze", json=payload))
    assert got[:2] == (status, code) and message in got[2] and "\n" not in got[2]


def test_validation_errors(client):
    assert client.post("/api/analyze", json={"text": "x", "threshold": 2}).status_code == 422
    assert client.post("/api/analyze", json={}).status_code == 422


def test_file_upload(client, model):
    files = {"file": ("report.txt", b"The loader ran rundll32.\n", "text/plain")}
    response = client.post("/api/analyze/file", files=files, data={"window": "2"})
    assert response.status_code == 200
    assert model.calls[0]["document"].text.strip() == "The loader ran rundll32."
    assert model.calls[0]["window"] == 2
    binary = {"file": ("x.bin", bytes(range(256)) * 4, "application/octet-stream")}
    response = client.post("/api/analyze/file", files=binary)
    assert response.status_code == 400 and "binary" in error(response)[2]


def test_iocs_endpoint_uses_the_real_extractor(client):
    response = client.post("/api/iocs", json={"text": "C2 at 185.220.101[.]47 and evil[.]com"})
    values = {(i["type"], i["value"]) for i in response.json()["indicators"]}
    assert ("ipv4", "185.220.101.47") in values and ("domain", "evil.com") in values
    assert "warnings" not in response.json()


def test_iocs_endpoint_lists_indicators_up_to_the_budget(client, monkeypatch):
    from mitremap.iocs import extract

    monkeypatch.setattr(extract, "MAX_INDICATORS", 2)
    answer = client.post("/api/iocs", json={"text": "1.2.3.4, 5.6.7.8 and 9.9.9.9"}).json()
    assert [i["value"] for i in answer["indicators"]] == ["1.2.3.4", "5.6.7.8"]
    assert answer["warnings"] == ["only the first 2 indicators are listed"]


def test_the_html_export_escapes_the_document(client):
    page = client.post(
        "/api/analyze", json={"text": "<script>alert(1)</script> a task", "format": "html"}
    )
    assert page.status_code == 200 and "<script>alert" not in page.text


def test_the_status_comes_from_the_errors_type_not_its_words(client):
    """A file that cannot be read is 400 even when its name says "too large"."""
    response = client.post(
        "/api/analyze/file", files={"file": ("too large.txt", bytes(range(256)) * 8)}
    )
    status, code, message = error(response)
    assert (status, code) == (400, "bad_request") and message.startswith("too large.txt: ")


def test_oversized_request_is_refused_before_reading(client):
    response = client.post(
        "/api/iocs",
        content=b"{" + b" " * 200_000 + b"}",
        headers={"content-type": "application/json"},
    )
    assert error(response)[:2] == (413, "too_large")


def test_a_body_without_a_length_is_bounded_too(client):
    """Chunked uploads carry no Content-Length: the limit holds as the bytes arrive."""

    def chunks():
        yield b'{"text": "'
        for _ in range(40):
            yield b"x" * 8192
        yield b'"}'

    response = client.post(
        "/api/analyze", content=chunks(), headers={"content-type": "application/json"}
    )
    assert error(response)[:2] == (413, "too_large")


def test_every_answer_carries_the_security_headers(client):
    for response in (
        client.get("/"),
        client.get("/api/health"),
        client.post("/api/iocs", json={}),
        client.get("/api/nowhere"),
        client.get("/docs"),
    ):
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert "script-src 'self';" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"


def test_a_foreign_host_or_origin_is_refused(client):
    rebinding = client.get("/api/health", headers={"host": "attacker.example"})
    assert rebinding.status_code == 400 and "Host" in error(rebinding)[2]
    posted = client.post(
        "/api/analyze", json={"text": "x"}, headers={"origin": "https://evil.example"}
    )
    assert posted.status_code == 403
    same = client.post("/api/analyze", json={"text": "x"}, headers={"origin": "http://localhost"})
    assert same.status_code == 200


def test_the_test_clients_default_host_is_not_a_loopback_name(client):
    refused = TestClient(client.app).get("/api/health")  # Host: testserver
    assert error(refused)[:2] == (400, "bad_request")


def test_no_page_and_no_anonymous_request_writes_a_session_row(client):
    """3,000 cookie-less page and session requests once left 3,000 rows (12 h each): a page
    now only sets the pre-login CSRF cookie; a row is made at login (tests of that in
    test_workspace_accounts.py)."""
    from sqlalchemy import func, select

    from mitremap.web.workspace.models import BrowserSession

    def sessions() -> int:
        with client.app.state.workspace.store.db.session() as s:
            return int(s.scalar(select(func.count()).select_from(BrowserSession)) or 0)

    def cookieless(path: str):
        client.cookies.clear()
        return client.get(path, follow_redirects=False)

    for n in range(30):
        assert cookieless(f"/no/such/page/{n}").status_code == 404
    for path in ("/reports/abc", "/reports/0", "/loginx", "/static/nothing.js"):
        assert "mitremap_csrf" not in cookieless(path).cookies
    for _ in range(50):
        for path in ("/", "/reports/7", "/login", "/admin", "/docs", "/api/session"):
            answer = cookieless(path)
            assert answer.status_code in (200, 303) and "mitremap_csrf" in answer.cookies, path
            assert "mitremap_session" not in answer.cookies
    assert sessions() == 0


def test_a_report_page_with_an_id_that_is_not_one_is_an_html_404(client):
    for path in ("/reports/abc", "/reports/0", "/reports/-1", "/reports/99999999999999999999"):
        page = client.get(path)
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
        assert (
            "Not found" in page.text
            and "script-src 'self'" in (page.headers["content-security-policy"])
        )
    assert client.get("/reports/12").status_code == 200


def test_lone_surrogates_and_nan_thresholds_are_not_server_errors(client, model):
    import json as jsonlib

    surrogate = client.post(
        "/api/analyze",
        content=jsonlib.dumps({"text": "It ran \ud800 schtasks."}),
        headers={"content-type": "application/json"},
    )
    assert surrogate.status_code == 200
    assert model.calls[0]["document"].text == "It ran ? schtasks."  # one character for one
    nan = client.post(
        "/api/analyze",
        content='{"text": "x", "threshold": NaN}',
        headers={"content-type": "application/json"},
    )
    assert nan.status_code == 422


def test_health_answers_while_a_slow_analysis_runs(database):
    import threading
    import time

    from mitremap.web.app import create_app

    class Slow(StandIn):
        def analyze(self, document, **options):
            time.sleep(1.5)
            return super().analyze(document, **options)

    client = TestClient(
        create_app(as_model(Slow()), max_bytes=10_000, database=database), base_url=LOCAL
    )
    worker = threading.Thread(target=lambda: client.post("/api/analyze", json={"text": "x"}))
    worker.start()
    time.sleep(0.2)
    started = time.perf_counter()
    assert client.get("/api/health").status_code == 200
    assert time.perf_counter() - started < 1.0  # not queued behind the analysis
    worker.join()


def test_a_full_queue_answers_503_and_a_slow_analysis_504(monkeypatch, database):
    import time

    from mitremap.web import app

    class Slow(StandIn):
        def analyze(self, document, **options):
            time.sleep(0.5)
            options["deadline"].check()
            return super().analyze(document, **options)

    client = TestClient(
        app.create_app(as_model(Slow()), max_bytes=10_000, time_limit_s=0.1, database=database),
        base_url=LOCAL,
    )
    assert error(client.post("/api/analyze", json={"text": "x"}))[:2] == (504, "timeout")
    monkeypatch.setattr(app, "QUEUE", 0)
    busy = TestClient(
        app.create_app(as_model(StandIn()), max_bytes=10_000, database=database),
        base_url=LOCAL,
    )
    assert error(busy.post("/api/analyze", json={"text": "x"}))[:2] == (503, "busy")


def test_the_time_limit_stops_the_work_so_the_worker_is_free_at_the_504(database):
    """The work is given the request's deadline and stops itself there: when the 504 goes
    out, no thread is still analysing (before, it ran on after the answer)."""
    import threading
    import time

    from mitremap.web import app as web

    running = threading.Event()

    class Endless(StandIn):
        def analyze(self, document, **options):
            running.set()
            try:
                while True:  # a loop that can run long, checking its deadline as it goes
                    options["deadline"].check("analysing")
                    time.sleep(0.01)
            finally:
                running.clear()

    app = web.create_app(as_model(Endless()), max_bytes=10_000, time_limit_s=0.3, database=database)
    client = TestClient(app, base_url=LOCAL)
    started = time.perf_counter()
    answer = client.post("/api/analyze", json={"text": "x"})
    assert error(answer)[:2] == (504, "timeout")
    assert time.perf_counter() - started < 2.0
    assert not running.is_set()


def test_adding_and_reanalysing_a_report_stop_at_the_time_limit_too(database):
    """The reports' work (an add, an analysis again) is given the request's deadline as well:
    each answers 504 at the limit with no thread still analysing, and the report added before
    is left as it was."""
    import threading
    import time

    from mitremap.web.app import create_app

    running = threading.Event()

    class Endless(StandIn):
        endless = False

        def analyze(self, document, **options):
            if not self.endless:
                return super().analyze(document, **options)
            running.set()
            try:
                while True:
                    options["deadline"].check("analysing")
                    time.sleep(0.01)
            finally:
                running.clear()

    model = Endless()
    app = create_app(as_model(model), max_bytes=10_000, time_limit_s=0.3, database=database)
    client = browser(app)
    added = client.post("/api/reports", json={"text": "It ran schtasks."})
    assert added.status_code == 201
    model.endless = True
    for path in ("/api/reports", f"/api/reports/{added.json()['id']}/analyze"):
        started = time.perf_counter()
        answer = client.post(path, json={"text": "It ran schtasks again."})
        assert error(answer)[:2] == (504, "timeout")
        assert time.perf_counter() - started < 2.0
        assert not running.is_set()
    assert [r["id"] for r in client.get("/api/reports").json()["items"]] == [added.json()["id"]]


@pytest.mark.slow
def test_a_hostile_pdf_upload_is_stopped_at_the_time_limit_and_leaves_nothing_running(
    mm, database, tmp_path
):
    """The issue's PDF, smaller (pages sharing one content stream that takes pypdf seconds):
    each upload answers 504 at the time limit with its reader killed, so the uploads that
    follow, and normal adds, find the workers free."""
    import time

    pytest.importorskip("pypdf")
    psutil = pytest.importorskip("psutil")
    from mitremap.web.app import create_app
    from tests import hostile

    pdf = hostile.pdf_shared_stream(tmp_path / "shared.pdf", 50, 5_000_000).read_bytes()
    app = create_app(mm, max_bytes=10_000_000, time_limit_s=1.0, database=database)
    client = TestClient(app, base_url=LOCAL)
    threads = len(psutil.Process().threads())
    for _ in range(3):
        started = time.perf_counter()
        files = {"file": ("shared.pdf", pdf, "application/pdf")}
        assert error(client.post("/api/analyze/file", files=files))[:2] == (504, "timeout")
        assert time.perf_counter() - started < 3
    readers = [
        child
        for child in psutil.Process().children(recursive=True)
        if "mitremap.documents.pdf" in " ".join(child.cmdline())
    ]
    assert readers == []
    started = time.perf_counter()
    assert client.post("/api/analyze", json={"text": "It ran schtasks."}).status_code == 200
    assert time.perf_counter() - started < 0.5
    assert len(psutil.Process().threads()) <= threads + 2  # the pool's threads, no runaways


class Sleepy(StandIn):
    """Takes 1.5 s on the text "slow": longer than the real server's request timeout."""

    def analyze(self, document, **options):
        import time

        if document.text == "slow":
            time.sleep(1.5)
        return super().analyze(document, **options)


@pytest.fixture
def real_server(database):
    """The app on a real uvicorn server (loopback, a free port) with the guarded protocol."""
    import socket
    import threading
    import time

    uvicorn = pytest.importorskip("uvicorn")
    from mitremap.web.app import create_app
    from mitremap.web.middleware import guarded_protocol

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        create_app(as_model(Sleepy()), max_bytes=10_000_000, database=database),
        host="127.0.0.1",
        port=port,
        log_level="error",
        http=guarded_protocol(request_timeout=1.0, per_client=3),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield port
    server.should_exit = True
    thread.join(timeout=10)


def _dropped_within(sock, seconds: float) -> bool:
    import time

    sock.settimeout(seconds)
    started = time.monotonic()
    try:
        data = sock.recv(1024)
    except TimeoutError:
        return False
    return data == b"" and time.monotonic() - started <= seconds


def test_slow_headers_and_short_bodies_are_dropped(real_server):
    import socket

    slow = socket.create_connection(("127.0.0.1", real_server))
    slow.sendall(b"POST /api/analyze HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers never end
    assert _dropped_within(slow, 3.0)
    short = socket.create_connection(("127.0.0.1", real_server))
    short.sendall(
        b"POST /api/analyze HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b'Content-Length: 9000000\r\n\r\n{"text": "x'  # 11 bytes of the 9 MB declared
    )
    assert _dropped_within(short, 3.0)
    slow.close()
    short.close()


def test_a_whole_request_is_answered_however_long_its_work(real_server):
    """The request timeout is for the request to arrive, not for its answer: a request sent
    with `Connection: close` (h11 then says MUST_CLOSE, not DONE) was dropped when its work
    took longer than the timeout."""
    import http.client

    for connection in ("close", "keep-alive"):
        client = http.client.HTTPConnection("127.0.0.1", real_server, timeout=10)
        headers = {"Content-Type": "application/json", "Connection": connection}
        client.request("POST", "/api/analyze", body='{"text": "slow"}', headers=headers)
        assert client.getresponse().status == 200
        client.close()


def test_one_client_cannot_hold_every_connection(real_server):
    import socket

    held = [socket.create_connection(("127.0.0.1", real_server)) for _ in range(3)]
    extra = socket.create_connection(("127.0.0.1", real_server))
    assert _dropped_within(extra, 0.9)  # refused at once, before the request timeout
    for sock in (*held, extra):
        sock.close()


def test_every_error_status_has_the_one_shape(mm, database):
    """400, 401, 403, 404, 409, 413, 422 and 500, each from a real path of the app."""
    from mitremap.web.workspace.auth import hash_password
    from mitremap.web.workspace.db import Database
    from mitremap.web.workspace.store import Store

    db = Database(database)
    Store(db).add_user("ann", "analyst", hash_password("a long password"))
    app = create_app(mm, max_bytes=10_000, database=db)

    @app.get("/api/boom")
    def boom() -> None:
        raise RuntimeError("a secret detail")

    client = TestClient(app, raise_server_exceptions=False, base_url=LOCAL)
    assert error(client.get("/api/reports"))[:2] == (401, "unauthorized")
    token = client.get("/api/session").json()["csrf_token"]
    assert error(client.post("/api/login", json={"name": "ann", "password": "x" * 12}))[:2] == (
        403,
        "forbidden",
    )
    csrf = {"X-CSRF-Token": token}
    login = client.post(
        "/api/login", json={"name": "ann", "password": "a long password"}, headers=csrf
    )
    csrf = {"X-CSRF-Token": login.json()["csrf_token"]}
    assert error(client.post("/api/reports", json={"text": " "}, headers=csrf))[:2] == (
        400,
        "bad_request",
    )
    assert error(client.delete("/api/reports/1", headers=csrf))[:2] == (403, "forbidden")
    assert error(client.get("/api/reports/999"))[:2] == (404, "not_found")
    assert error(client.get("/api/no/such/route"))[:2] == (404, "not_found")
    assert error(client.post("/api/reports", json={"text": "x" * 20_000}, headers=csrf))[:2] == (
        413,
        "too_large",
    )
    assert error(client.get("/api/reports?per_page=1000"))[:2] == (422, "validation_error")
    assert error(client.patch("/api/reports/1", json={"status": 3}, headers=csrf))[:2] == (
        422,
        "validation_error",
    )
    assert error(client.put("/api/reports/1", json={}, headers=csrf))[:2] == (
        405,
        "method_not_allowed",
    )
    status, code, message = error(client.get("/api/boom"))
    assert (status, code) == (500, "internal_error") and "secret" not in message
    db.close()


def test_a_second_retraining_is_a_conflict(mm, database):
    import threading

    release = threading.Event()

    def trainer(reviewed, progress):
        release.wait(10)
        raise RuntimeError("stopped by the test")

    app = create_app(mm, database=database, trainer=trainer)
    client = TestClient(app, base_url=LOCAL)
    csrf = {"X-CSRF-Token": client.get("/api/session").json()["csrf_token"]}
    assert client.post("/api/retrain", headers=csrf).status_code == 202
    assert error(client.post("/api/retrain", headers=csrf))[:2] == (409, "conflict")
    release.set()
    app.state.workspace.retrainer.thread.join(10)


def test_the_api_docs_work_offline(client):
    """/docs is served whole by this server: no external script, style or font, no inline
    script (the CSP forbids it), Swagger UI's validator badge off."""
    import re

    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    refs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert refs and all(r.startswith("/") and not r.startswith("//") for r in refs)
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page.text)  # no inline script
    for ref in refs:
        asset = client.get(ref)
        assert asset.status_code == 200 and len(asset.content) > 100, ref
    assert "validatorUrl: null" in client.get("/docs/init.js").text
    assert client.get("/docs/assets/..%2Fpyproject.toml").status_code == 404
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/reports",
        "/api/reports/{report_id}",
        "/api/reports/{report_id}/decisions",
        "/api/reports/{report_id}/export",
        "/api/attack/search",
        "/api/retrain",
        "/api/models",
        "/api/session",
    ):
        assert path in paths, path


def test_the_api_docs_render_in_a_browser_with_no_outside_request(real_server, browser):
    """Chromium loads /docs from the real server: Swagger UI renders the operations under
    the Content-Security-Policy, and every request the page makes stays on this server."""
    base = f"http://127.0.0.1:{real_server}"
    requests, problems = [], []
    page = browser.new_page()
    try:
        page.on("request", lambda r: requests.append(r.url))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(base + "/docs")
        page.wait_for_selector(".opblock", timeout=20_000)
        assert page.locator(".opblock").count() >= 20
    finally:
        page.close()
    assert problems == []
    assert requests and all(r.startswith(base + "/") for r in requests), requests
