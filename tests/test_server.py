"""The web app and REST API, with a stand-in model (the real model's output is tested elsewhere)."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

from mitremap.server import create_app
from tests.fakes import StandIn


@pytest.fixture
def model() -> StandIn:
    return StandIn()


@pytest.fixture
def client(model) -> TestClient:
    return TestClient(create_app(model, max_bytes=10_000))


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


def test_health_reports_the_loaded_models_card(client):
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["model"]["attack_version"] == "18.1"


def test_analyze_in_export_formats(client):
    layer = client.post("/api/analyze", json={"text": "x", "format": "navigator"}).json()
    assert layer["domain"] == "enterprise-attack" and layer["versions"]["layer"] == "4.5"
    csv = client.post("/api/analyze", json={"text": "x", "format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv") and csv.text.startswith("record,")


@pytest.mark.parametrize(
    ("payload", "status", "message"),
    [
        ({"text": "   "}, 400, "empty"),
        ({"text": "x", "format": "pdf"}, 400, "Unknown format"),
        ({"text": "x" * 20_000}, 413, "larger than"),
    ],
)
def test_bad_requests_are_one_line_errors(client, payload, status, message):
    response = client.post("/api/analyze", json=payload)
    assert response.status_code == status and message in response.json()["error"]


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
    assert response.status_code == 400 and "binary" in response.json()["error"]


def test_iocs_endpoint_uses_the_real_extractor(client):
    response = client.post("/api/iocs", json={"text": "C2 at 185.220.101[.]47 and evil[.]com"})
    values = {(i["type"], i["value"]) for i in response.json()["indicators"]}
    assert ("ipv4", "185.220.101.47") in values and ("domain", "evil.com") in values


def test_form_and_html_report_escape_the_document(client):
    assert "<form" in client.get("/").text
    page = client.post("/report", data={"text": "<script>alert(1)</script> a task"})
    assert page.status_code == 200 and "<script>alert" not in page.text
    error = client.post("/report", data={"text": ""})
    assert error.status_code == 400 and "empty" in error.text


def test_oversized_request_is_refused_before_reading(client):
    response = client.post(
        "/api/iocs",
        content=b"{" + b" " * 200_000 + b"}",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413


def test_every_answer_carries_the_security_headers(client):
    for response in (client.get("/"), client.get("/api/health"), client.post("/api/iocs", json={})):
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"


def test_a_foreign_host_or_origin_is_refused(client):
    rebinding = client.get("/api/health", headers={"host": "attacker.example"})
    assert rebinding.status_code == 400 and "Host" in rebinding.json()["error"]
    posted = client.post(
        "/api/analyze", json={"text": "x"}, headers={"origin": "https://evil.example"}
    )
    assert posted.status_code == 403
    same = client.post("/api/analyze", json={"text": "x"}, headers={"origin": "http://localhost"})
    assert same.status_code == 200


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


def test_health_answers_while_a_slow_analysis_runs():
    import threading
    import time

    from mitremap.server import create_app

    class Slow(StandIn):
        def analyze(self, document, **options):
            time.sleep(1.5)
            return super().analyze(document, **options)

    client = TestClient(create_app(Slow(), max_bytes=10_000))
    worker = threading.Thread(target=lambda: client.post("/api/analyze", json={"text": "x"}))
    worker.start()
    time.sleep(0.2)
    started = time.perf_counter()
    assert client.get("/api/health").status_code == 200
    assert time.perf_counter() - started < 1.0  # not queued behind the analysis
    worker.join()


def test_a_full_queue_answers_503_and_a_slow_analysis_504(monkeypatch):
    import time

    from mitremap import server

    class Slow(StandIn):
        def analyze(self, document, **options):
            time.sleep(0.5)
            return super().analyze(document, **options)

    client = TestClient(server.create_app(Slow(), max_bytes=10_000, time_limit_s=0.1))
    assert client.post("/api/analyze", json={"text": "x"}).status_code == 504
    monkeypatch.setattr(server, "QUEUE", 0)
    busy = TestClient(server.create_app(StandIn(), max_bytes=10_000))
    assert busy.post("/api/analyze", json={"text": "x"}).status_code == 503


@pytest.fixture
def real_server():
    """The app on a real uvicorn server (loopback, a free port) with the guarded protocol."""
    import socket
    import threading
    import time

    uvicorn = pytest.importorskip("uvicorn")
    from mitremap.server import create_app, guarded_protocol

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        create_app(StandIn(), max_bytes=10_000_000),
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


def test_one_client_cannot_hold_every_connection(real_server):
    import socket

    held = [socket.create_connection(("127.0.0.1", real_server)) for _ in range(3)]
    extra = socket.create_connection(("127.0.0.1", real_server))
    assert _dropped_within(extra, 0.9)  # refused at once, before the request timeout
    for sock in (*held, extra):
        sock.close()
