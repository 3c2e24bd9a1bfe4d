"""Indicators reviewed like techniques, through the REST API on SQLite and PostgreSQL: listed
one per value with where they occur, accepted or rejected ("not an indicator"), recorded in the
history, stale when decided on meanwhile, and rejected ones left out of the reviewed exports."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient

from mitremap.web.app import create_app

TEXT = (
    "A scheduled task named Updater was registered with schtasks /create. "
    "Beacons went to 185.220.101[.]47 every minute; later to 185.220.101.47 again. "
    "The loader came from hxxps://cdn.freight-docs[.]com/update/ldr.bin and ran cmd.exe."
)


@pytest.fixture
def client(mm, db_url, tmp_path):
    app = create_app(mm, database=db_url, models_dir=tmp_path / "models", threshold=0.3)
    made = TestClient(app, base_url="http://127.0.0.1")
    made.headers["X-CSRF-Token"] = made.get("/api/session").json()["csrf_token"]
    return made


def test_indicators_are_listed_decided_recorded_and_exported_as_reviewed(client):
    detail = client.post("/api/reports", json={"text": TEXT}).json()
    report = detail["id"]
    listed = {(i["type"], i["value"]): i for i in detail["indicator_review"]}
    ip = listed[("ipv4", "185.220.101.47")]
    assert ip["state"] == "pending" and ip["decision"] is None
    assert [o["raw"] for o in ip["occurrences"]] == ["185.220.101[.]47", "185.220.101.47"]
    for o in ip["occurrences"]:  # offsets into the text, as everywhere
        assert TEXT[o["start"] : o["end"]] == o["raw"]
    assert ("file_name", "cmd.exe") in listed

    url = f"/api/reports/{report}/indicators/decisions"
    version = client.get(f"/api/reports/{report}").headers["etag"]
    accepted = client.post(url, json={"type": "ipv4", "value": "185.220.101.47",
                                      "action": "accept", "note": "C2"},
                           headers={"If-Match": version})  # fmt: skip
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["indicator"]["state"] == "accepted"
    assert accepted.json()["report"]["status"] == "in_review"
    rejected = client.post(url, json={"type": "file_name", "value": "cmd.exe",
                                      "action": "reject", "note": "a system binary"})  # fmt: skip
    assert rejected.json()["indicator"]["state"] == "rejected"
    stale = client.post(url, json={"type": "ipv4", "value": "185.220.101.47", "action": "reject"},
                        headers={"If-Match": version})  # fmt: skip
    assert stale.status_code == 409
    assert stale.json()["error"]["current"]["indicator"]["state"] == "accepted"
    unknown = client.post(url, json={"type": "ipv4", "value": "10.9.9.9", "action": "accept"})
    assert unknown.status_code == 422
    assert client.post(url, json={"type": "ipv4", "value": "185.220.101.47",
                                  "action": "add"}).status_code == 422  # fmt: skip

    shown = {(i["type"], i["value"]): i for i in client.get(
        f"/api/reports/{report}").json()["indicator_review"]}  # fmt: skip
    assert shown[("ipv4", "185.220.101.47")]["decision"]["note"] == "C2"
    assert shown[("file_name", "cmd.exe")]["state"] == "rejected"
    lines = [
        (e["subject"], e["before"], e["after"])
        for e in client.get(f"/api/reports/{report}/history").json()["items"]
        if e["kind"] == "indicator"
    ]
    assert lines == [
        ("indicator:ipv4:185.220.101.47", "pending", "accepted"),
        ("indicator:file_name:cmd.exe", "pending", "rejected"),
    ]

    exported = client.get(f"/api/reports/{report}/export?format=json").json()
    values = {(i["value"], i["review"]) for i in exported["indicators"]}
    assert ("185.220.101.47", "accepted") in values
    assert "cmd.exe" not in {v for v, _ in values}  # rejected: not an indicator
    assert [d["action"] for d in exported["review"]["indicator_decisions"]] == ["accept", "reject"]
    client.post(f"/api/reports/{report}/decisions", json={"technique": "T1053.005",
                                                          "action": "accept"})  # fmt: skip
    bundle = client.get(f"/api/reports/{report}/export?format=stix").json()
    patterns = " ".join(o.get("pattern", "") for o in bundle["objects"])
    assert "185.220.101.47" in patterns and "cmd.exe" not in patterns

    cleared = client.post(url, json={"type": "file_name", "value": "cmd.exe", "action": "clear"})
    assert cleared.json()["indicator"]["state"] == "pending"
    exported = client.get(f"/api/reports/{report}/export?format=json").json()
    assert "cmd.exe" in {i["value"] for i in exported["indicators"]}
