"""The review workspace's REST API with a real (tiny) model, on SQLite and PostgreSQL:
add a report, review it, reload, restart, export; uploads, URLs and hostile names."""

from __future__ import annotations

import json
import threading

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")

from fastapi.testclient import TestClient

from mitremap.web.app import create_app
from tests.tiny import REPORT
from tests.web.clients import browser

HOSTILE = '<script>alert(1)</script> "><img src=x onerror=alert(2)>'


@pytest.fixture
def make_app(mm, db_url, tmp_path):
    def make(**options):
        options = {"threshold": 0.3, "max_bytes": 200_000, **options}
        return create_app(mm, database=db_url, models_dir=tmp_path / "models", **options)

    return make


def suggestion(detail, technique):
    return next(s for s in detail["suggestions"] if s["technique"] == technique)


def test_add_review_reload_restart_export(make_app):
    client = browser(make_app())
    created = client.post("/api/reports", json={"text": REPORT, "title": "Tiny report"})
    assert created.status_code == 201
    detail = created.json()
    report = detail["id"]
    assert detail["status"] == "new" and detail["text"] == REPORT and detail["threshold"] == 0.3
    task = suggestion(detail, "T1053.005")
    assert task["above_threshold"] and task["evidence"] and task["attributions"]
    assert task["url"] == "https://attack.mitre.org/techniques/T1053/005/"
    assert (
        REPORT[task["evidence"][0]["start"] : task["evidence"][0]["end"]]
        == (task["evidence"][0]["text"])
    )

    def decide(**body):
        answer = client.post(f"/api/reports/{report}/decisions", json=body)
        assert answer.status_code == 201, answer.text
        return answer.json()

    first = decide(technique="T1053.005", action="accept", note="clear schtasks use")
    assert first["report"]["status"] == "in_review" and first["report"]["accepted"] == 1
    decide(technique="T1059", action="reject")
    start = REPORT.index("Thanks to our colleagues")
    decide(technique="T1053", action="add", start=start, end=start + 24)
    assert client.patch(f"/api/reports/{report}", json={"status": "reviewed"}).json()["status"] == (
        "reviewed"
    )

    def check(client: TestClient) -> None:
        detail = client.get(f"/api/reports/{report}").json()
        assert suggestion(detail, "T1053.005")["decision"]["note"] == "clear schtasks use"
        assert suggestion(detail, "T1053.005")["decision"]["user"] == "local"
        assert suggestion(detail, "T1059")["state"] == "rejected"
        assert [(a["technique"], a["start"]) for a in detail["added"]] == [("T1053", start)]
        assert detail["status"] == "reviewed" and detail["techniques"] == ["T1053", "T1053.005"]
        listed = client.get("/api/reports").json()["items"][0]
        assert (listed["accepted"], listed["rejected"], listed["added"]) == (1, 1, 1)

    check(client)
    check(browser(make_app()))  # a restarted server reads the same database

    exported = client.get(f"/api/reports/{report}/export?format=json")
    assert exported.headers["content-disposition"] == (
        f'attachment; filename="report-{report}-reviewed.json"'
    )
    data = exported.json()
    assert {t["technique"] for t in data["techniques"]} == {"T1053.005", "T1053"}  # no T1059
    assert [d["action"] for d in data["review"]["decisions"]] == ["accept", "reject", "add"]
    layer = client.get(f"/api/reports/{report}/export?format=navigator").json()
    assert {t["techniqueID"] for t in layer["techniques"] if t.get("score", 1) > 0} >= {
        "T1053.005",
        "T1053",
    }
    assert "T1059" not in {t["techniqueID"] for t in layer["techniques"]}
    stix = client.get(f"/api/reports/{report}/export?format=stix").json()
    assert stix["type"] == "bundle"
    for fmt, kind in (("csv", "text/csv"), ("markdown", "text/markdown"), ("html", "text/html")):
        answer = client.get(f"/api/reports/{report}/export?format={fmt}")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith(kind)
    assert client.get(f"/api/reports/{report}/export?format=pdf").status_code == 400


def test_the_stix_export_validates(make_app):
    validator = pytest.importorskip("stix2validator")
    client = browser(make_app())
    report = client.post("/api/reports", json={"text": REPORT}).json()["id"]
    client.post(f"/api/reports/{report}/decisions", json={"technique": "T1059", "action": "accept"})
    bundle = client.get(f"/api/reports/{report}/export?format=stix").text
    results = validator.validate_string(bundle, validator.ValidationOptions(strict=True))
    assert results.is_valid, [e.message for e in results.errors]
    dated = next(o for o in json.loads(bundle)["objects"] if o["type"] == "report")
    assert not dated["published"].startswith("1970")  # dated when the report was added


def test_decisions_are_checked(make_app):
    client = browser(make_app())
    report = client.post("/api/reports", json={"text": REPORT}).json()["id"]
    url = f"/api/reports/{report}/decisions"
    unknown = client.post(url, json={"technique": "T9999", "action": "accept"})
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "validation_error"
    outside = client.post(
        url, json={"technique": "T1059", "action": "add", "start": 5, "end": len(REPORT) + 5}
    )
    assert outside.status_code == 422 and "outside" in outside.json()["error"]["message"]
    assert client.post(url, json={"technique": "T1059", "action": "add"}).status_code == 422
    assert client.post(url, json={"technique": "T1059", "action": "nope"}).status_code == 422
    assert (
        client.post(
            "/api/reports/999/decisions", json={"technique": "T1059", "action": "accept"}
        ).status_code
        == 404
    )


def test_two_clients_deciding_at_once_lose_nothing(make_app):
    app = make_app()
    first, second = browser(app), browser(app)
    report = first.post("/api/reports", json={"text": REPORT}).json()["id"]
    failures: list[int] = []

    def work(client: TestClient, offset: int) -> None:
        for i in range(15):
            answer = client.post(
                f"/api/reports/{report}/decisions",
                json={"technique": "T1059", "action": "add", "start": offset + i, "end": 200},
            )
            if answer.status_code != 201:
                failures.append(answer.status_code)

    threads = [
        threading.Thread(target=work, args=(c, n * 15)) for n, c in enumerate((first, second))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert len(first.get(f"/api/reports/{report}/decisions").json()["items"]) == 30
    assert len(first.get(f"/api/reports/{report}").json()["added"]) == 30


def test_list_search_paginate_delete(make_app):
    client = browser(make_app())
    ids = [
        client.post("/api/reports", json={"text": REPORT, "title": f"report {n}"}).json()["id"]
        for n in range(3)
    ]
    client.post(
        f"/api/reports/{ids[0]}/decisions", json={"technique": "T1053.005", "action": "accept"}
    )
    page = client.get("/api/reports?per_page=2&page=1").json()
    assert page["total"] == 3 and len(page["items"]) == 2 and page["per_page"] == 2
    assert page["items"][0]["id"] == ids[0]  # the most recently changed first
    assert client.get("/api/reports?q=report 2").json()["items"][0]["id"] == ids[2]
    assert client.get("/api/reports?status=in_review").json()["total"] == 1
    assert client.delete(f"/api/reports/{ids[1]}").status_code == 204
    assert client.get(f"/api/reports/{ids[1]}").status_code == 404
    assert client.get("/api/reports").json()["total"] == 2


def test_upload_with_a_hostile_name_and_text(make_app):
    client = browser(make_app())
    name = f"{HOSTILE}../../etc/passwd.txt"
    body = f"{HOSTILE}\n{REPORT}".encode()
    answer = client.post(
        "/api/reports", files={"file": (name, body, "text/plain")}, data={"title": HOSTILE}
    )
    assert answer.status_code == 201, answer.text
    detail = answer.json()
    assert detail["title"] == HOSTILE and detail["text"].startswith(HOSTILE)  # kept as data
    assert "/" not in detail["source"] and detail["source"].endswith("passwd.txt")
    exported = client.get(f"/api/reports/{detail['id']}/export?format=html")
    assert exported.headers["content-disposition"] == (
        f'attachment; filename="report-{detail["id"]}-reviewed.html"'
    )
    assert "<script>alert" not in exported.text and "<img src=x" not in exported.text
    assert "&lt;script&gt;" in exported.text
    too_big = client.post("/api/reports", files={"file": ("big.txt", b"a " * 150_000)})
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "too_large"
    binary = client.post("/api/reports", files={"file": ("x.bin", bytes(range(256)) * 8)})
    assert binary.status_code == 400


def test_a_report_from_a_url(make_app):
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"<html><head><title>Blog post</title></head><body><p>{REPORT}</p></body></html>"
            if self.path == "/big.html":  # past the server's 200 KB limit
                body = "<html><body><p>" + "a " * 150_000 + "</p></body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{site.server_address[1]}/post.html"
    try:
        detail = browser(make_app()).post("/api/reports", json={"url": url}).json()
        assert detail["source"] == url and detail["title"] == "Blog post"
        assert "scheduled task" in detail["text"]
        big = browser(make_app()).post("/api/reports", json={"url": url.replace("post", "big")})
        assert big.status_code == 413 and big.json()["error"]["code"] == "too_large"
        shared = browser(make_app(allow_private_urls=False))
        refused = shared.post("/api/reports", json={"url": url})
        assert refused.status_code == 400 and "not a public address" in refused.text
        assert shared.post("/api/reports", json={"url": "file:///etc/passwd"}).status_code == 400
    finally:
        site.shutdown()
        site.server_close()


def test_a_url_import_cannot_be_redirected_to_a_private_address(make_app, monkeypatch):
    """The address policy holds on every hop: a public page that redirects into the network
    behind the server is refused (here 127.0.0.1 plays the public site)."""
    import http.server
    from urllib.parse import parse_qs, quote, urlsplit

    from mitremap.web.routers import reports

    requested = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requested.append(self.path)
            if self.path.startswith("/go?"):
                self.send_response(302)
                self.send_header("Location", parse_qs(urlsplit(self.path).query)["to"][0])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = (
                f"<html><head><title>Moved post</title></head><body><p>{REPORT}</p></body></html>"
            )
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    def public_or_the_test_site(host, address):
        if str(address) != "127.0.0.1":
            raise reports.BadRequestError(f"{host} is not a public address")

    monkeypatch.setattr(reports, "_public_address", public_or_the_test_site)
    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{site.server_address[1]}"
    shared = browser(make_app(allow_private_urls=False))
    try:

        def via_redirect(target: str):
            requested.clear()
            return shared.post("/api/reports", json={"url": f"{base}/go?to={quote(target)}"})

        moved = via_redirect("/post.html")
        assert moved.status_code == 201, moved.text
        assert moved.json()["title"] == "Moved post" and requested[1:] == ["/post.html"]
        for inside in ("http://127.0.0.2:1/", "http://[::1]:1/", "http://10.1.2.3/admin"):
            refused = via_redirect(inside)
            assert refused.status_code == 400, (inside, refused.text)
            assert set(refused.json()) == {"error"}
            assert refused.json()["error"]["code"] == "bad_request"
            assert "not a public address" in refused.json()["error"]["message"]
            assert len(requested) == 1  # the redirect, and nothing after it
        assert via_redirect("ftp://127.0.0.1/x").status_code == 400
        assert via_redirect(f"{base}:notaport/x").status_code == 400
    finally:
        site.shutdown()
        site.server_close()


@pytest.mark.parametrize("url", ["http://example.com:99999/a", "https://example.com:port/a"])
def test_a_url_with_a_bad_port_is_a_bad_request(make_app, url):
    for private in (False, True):  # a shared server answered 500
        refused = browser(make_app(allow_private_urls=private)).post(
            "/api/reports", json={"url": url}
        )
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "bad_request"
        assert "port" in refused.json()["error"]["message"]


def test_reanalysis_by_a_new_model_keeps_the_decisions(make_app, mm, tmp_path):
    from dataclasses import replace

    from mitremap.analysis import MitreMap
    from mitremap.training.fit import train_linear
    from tests.tiny import SETTINGS, items, reports

    app = make_app()
    client = browser(app)
    report = client.post("/api/reports", json={"text": REPORT}).json()["id"]
    client.post(f"/api/reports/{report}/decisions", json={"technique": "T1059", "action": "reject"})
    other = train_linear(
        items(), reports=reports(), settings=replace(SETTINGS, max_char_features=2000)
    )
    other.save(tmp_path / "models" / "other")
    client.post("/api/models/other/activate")
    assert app.state.workspace.registry.current is not mm
    again = client.post(f"/api/reports/{report}/analyze").json()
    assert again["model"]["name"] == "other"
    assert suggestion(again, "T1059")["state"] == "rejected"
    assert isinstance(app.state.workspace.registry.current, MitreMap)


def test_decisions_on_techniques_the_new_model_lacks_can_still_be_changed(make_app):
    from mitremap.web.workspace.registry import Catalog

    app = make_app()
    client = browser(app)
    report = client.post("/api/reports", json={"text": REPORT}).json()
    url = f"/api/reports/{report['id']}/decisions"
    suggested = report["suggestions"][0]["technique"]
    assert client.post(url, json={"technique": "T1059", "action": "reject"}).status_code == 201
    app.state.workspace.registry.catalog = Catalog({})  # a model that knows none of them

    def decide(technique, action, **passage):
        return client.post(url, json={"technique": technique, "action": action, **passage})

    assert decide("T1059", "clear").status_code == 201  # decided before
    assert decide("T1059", "accept").status_code == 201
    assert decide(suggested, "reject").status_code == 201  # suggested by the analysis
    assert decide("T1110", "accept").status_code == 422  # neither known nor on the report
    added = decide(suggested, "add", start=0, end=5)  # adding needs the model to know it
    assert added.status_code == 422 and "this model knows" in added.json()["error"]["message"]


def test_a_report_is_stored_with_the_name_of_the_model_that_analysed_it(make_app, tmp_path):
    """A model switch while the report waits for a worker: the analysis and the model's name
    come from the same model."""
    from dataclasses import replace

    from mitremap.training.fit import train_linear
    from tests.tiny import SETTINGS, items, reports

    train_linear(
        items(), reports=reports(), settings=replace(SETTINGS, max_char_features=2000)
    ).save(tmp_path / "models" / "other")
    app = make_app()
    client = browser(app)
    ws = app.state.workspace
    queued = ws.run

    async def switched_while_queued(function, *args):
        ws.registry.activate("other")
        return await queued(function, *args)

    ws.run = switched_while_queued
    detail = client.post("/api/reports", json={"text": REPORT}).json()
    assert detail["model"]["name"] == "other"
    assert detail["model"] == ws.registry.current.card | {"name": "other"}


def test_attack_search_over_the_models_catalogue(make_app):
    client = browser(make_app())
    items = client.get("/api/attack/search?q=scheduled").json()["items"]
    assert items[0] == {
        "id": "T1053.005",
        "name": "Scheduled Task",
        "tactics": ["Execution"],
        "url": "https://attack.mitre.org/techniques/T1053/005/",
    }
    assert client.get("/api/attack/search?q=T1059").json()["items"][0]["id"] == "T1059"
    assert client.get("/api/attack/search?q=").json()["items"] == []


@pytest.mark.integration
def test_attack_search_finds_sub_techniques_in_the_real_catalogue(real_mm, tmp_path):
    client = browser(create_app(real_mm, database=f"sqlite:///{tmp_path / 'w.db'}"))
    found = client.get("/api/attack/search?q=powershell").json()["items"]
    assert found[0]["id"] == "T1059.001" and found[0]["name"] == "PowerShell"
    assert found[0]["tactics"] == ["Execution"]
    by_parent = client.get("/api/attack/search?q=command and scripting").json()["items"]
    assert {"T1059", "T1059.001", "T1059.003"} <= {i["id"] for i in by_parent}
    assert client.get("/api/attack/search?q=t1053.005").json()["items"][0]["id"] == "T1053.005"


def test_reviewed_passages_download_in_the_shared_schema(make_app, tmp_path):
    from mitremap.training.corpus import read_jsonl

    client = browser(make_app())
    report = client.post("/api/reports", json={"text": REPORT}).json()["id"]
    client.post(
        f"/api/reports/{report}/decisions", json={"technique": "T1053.005", "action": "accept"}
    )
    client.post(f"/api/reports/{report}/decisions", json={"technique": "T1059", "action": "reject"})
    answer = client.get("/api/reviews/export")
    assert answer.headers["content-disposition"].endswith('filename="reviewed-passages.jsonl"')
    path = tmp_path / "reviews.jsonl"
    path.write_text(answer.text, encoding="utf-8")
    records = list(read_jsonl(path))
    assert {r.labels for r in records} == {("T1053.005",), ()}
    assert all(
        set(json.loads(line)) == {"source", "id", "text", "labels", "meta"}
        for line in answer.text.splitlines()
    )


@pytest.mark.integration
def test_technique_lookup_loads_attck_once_for_the_model(make_app, shared_data, monkeypatch):
    import mitremap.attack

    calls = []
    real = mitremap.attack.load_attack

    def recorded(**options):
        calls.append(options)
        return real(**options)

    monkeypatch.setattr(mitremap.attack, "load_attack", recorded)
    client = browser(make_app())
    for _ in range(3):
        found = client.get("/api/techniques/T1053.005")
        assert found.status_code == 200 and found.json()["name"] == "Scheduled Task"
    missing = client.get("/api/techniques/T9999")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert len(calls) <= 1  # once per model (zero when the model already holds it)
