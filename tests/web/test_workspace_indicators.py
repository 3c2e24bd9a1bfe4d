"""Indicators reviewed like techniques, through the REST API on SQLite and PostgreSQL: listed
one per value with where they occur, accepted or rejected ("not an indicator"), recorded in the
history, stale when decided on meanwhile, and rejected ones left out of the reviewed exports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("fastapi")


TEXT = (
    "A scheduled task named Updater was registered with schtasks /create. "
    "Beacons went to 185.220.101[.]47 every minute; later to 185.220.101.47 again. "
    "The loader came from hxxps://cdn.freight-docs[.]com/update/ldr.bin and ran cmd.exe."
)


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
    assert {("185.220.101.47", "accepted"), ("cmd.exe", "rejected")} <= values
    assert [d["action"] for d in exported["review"]["indicator_decisions"]] == ["accept", "reject"]
    csv = client.get(f"/api/reports/{report}/export?format=csv").text
    assert "185.220.101.47" in csv and "cmd.exe" not in csv  # a table of indicators: not it
    client.post(f"/api/reports/{report}/decisions", json={"technique": "T1053.005",
                                                          "action": "accept"})  # fmt: skip
    bundle = client.get(f"/api/reports/{report}/export?format=stix").json()
    patterns = " ".join(o.get("pattern", "") for o in bundle["objects"])
    assert "185.220.101.47" in patterns and "cmd.exe" not in patterns
    observed = json.dumps([o for o in bundle["objects"] if o["type"] in ("file", "note")])
    assert "cmd.exe" in observed  # sent as observed context, with the reason
    assert "as an analyst reviewed it" in observed
    omitted = client.get(f"/api/reports/{report}/export?format=stix&benign=omit").json()
    kinds = ("file", "observed-data", "indicator")
    assert "cmd.exe" not in json.dumps([o for o in omitted["objects"] if o["type"] in kinds])
    event = client.get(f"/api/reports/{report}/export?format=misp").json()["Event"]
    attributes = event.get("Attribute", []) + [
        a for o in event.get("Object", []) for a in o.get("Attribute", [])
    ]
    ids = {a["value"]: a["to_ids"] for a in attributes}
    assert ids["185.220.101.47"] is True and ids["cmd.exe"] is False
    assert client.get(f"/api/reports/{report}/export?format=stix&benign=x").status_code == 422

    cleared = client.post(url, json={"type": "file_name", "value": "cmd.exe", "action": "clear"})
    assert cleared.json()["indicator"]["state"] == "pending"
    exported = client.get(f"/api/reports/{report}/export?format=json").json()
    assert "cmd.exe" in {i["value"] for i in exported["indicators"]}


SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "apt-report.md"
OWN_URL = "https://research.contoso-sec.com/reports/glass-harbor"
CONTEXT = (
    "\n\nOn each host the loader started cmd.exe and powershell.exe, and hid as svchost.exe. "
    "Its manifest names http://schemas.microsoft.com/SMI/2005/WindowsSettings. "
    f"This report was first published at {OWN_URL}.\n"
)


def test_a_reviewed_export_of_the_sample_sends_no_benign_value_as_an_indicator(client, mm):
    """The bar: no system binary, no vendor or schema domain and not the report's own URL as a
    STIX indicator or a MISP to_ids attribute; an analyst's acceptance overrides the lists."""
    from mitremap.documents import Document

    text = SAMPLE.read_text(encoding="utf-8") + CONTEXT
    document = Document(text, "Glass Harbor", OWN_URL, "text/html")
    analysis = mm.analyze(document, threshold=0.2, explain=True, iocs=True).to_dict()
    store = client.app.state.workspace.store
    report = store.add_report(
        document, analysis, source=OWN_URL, user="local", model_name="tiny", threshold=0.3
    )["id"]
    shown = {(i["type"], i["value"]): i["benign"] for i in store.detail(report)["indicator_review"]}
    assert shown[("file_name", "cmd.exe")] == "a Windows system program every host has"
    assert shown[("url", OWN_URL)] == "the report's own address"
    assert shown[("ipv4", "185.220.101.47")] is None
    benign = {"cmd.exe", "powershell.exe", "svchost.exe", OWN_URL, "research.contoso-sec.com"}
    benign |= {v for (t, v) in shown if "schemas.microsoft.com" in v}

    def exported() -> tuple[set[str], set[str]]:
        bundle = client.get(f"/api/reports/{report}/export?format=stix").json()
        patterns = " ".join(o["pattern"] for o in bundle["objects"] if o["type"] == "indicator")
        event = client.get(f"/api/reports/{report}/export?format=misp").json()["Event"]
        attributes = event.get("Attribute", []) + [
            a for o in event.get("Object", []) for a in o.get("Attribute", [])
        ]
        return {v for v in benign | {"185.220.101.47"} if v in patterns}, {
            a["value"] for a in attributes if a["to_ids"]
        }

    in_stix, to_ids = exported()
    assert in_stix == {"185.220.101.47"}, in_stix
    assert not (to_ids & benign), to_ids & benign
    assert "185.220.101.47" in to_ids
    url = f"/api/reports/{report}/indicators/decisions"
    client.post(url, json={"type": "file_name", "value": "svchost.exe", "action": "accept",
                           "note": "masquerading"})  # fmt: skip
    in_stix, to_ids = exported()
    assert in_stix == {"185.220.101.47", "svchost.exe"} and "svchost.exe" in to_ids
