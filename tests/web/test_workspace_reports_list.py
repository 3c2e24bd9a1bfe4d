"""Many reports at once, through the REST API on SQLite and PostgreSQL: full-text search over
the text and the indicator values, filters, sortable columns, bulk actions, the duplicate
warning, and several reports exported as one Navigator layer, STIX bundle or MISP collection."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient

from tests.tiny import REPORT

MIMIKATZ = (
    "The operators dumped credentials with Mimikatz. Beacons went to 185.220.101[.]47 and "
    "hxxps://cdn.freight-docs[.]com/update/ldr.bin. A scheduled task named Updater was "
    "registered with schtasks /create."
)


def ids(client: TestClient, query: str) -> list[int]:
    answer = client.get(f"/api/reports?{query}")
    assert answer.status_code == 200, answer.text
    return [r["id"] for r in answer.json()["items"]]


def test_full_text_search_finds_words_of_the_text_and_indicator_values(client):
    plain = client.post("/api/reports", json={"text": REPORT, "title": "Plain"}).json()["id"]
    dumped = client.post("/api/reports", json={"text": MIMIKATZ, "title": "Dump"}).json()["id"]
    assert ids(client, "q=mimikatz") == [dumped]  # a word of the text, any case
    assert ids(client, "q=185.220.101.47") == [dumped]  # written defanged, found refanged
    assert ids(client, "q=cdn.freight-docs.com") == [dumped]
    assert ids(client, "q=schtasks") == sorted([plain, dumped], reverse=True)
    assert ids(client, "q=schtasks mimikatz") == [dumped]  # every word must be there
    assert ids(client, "q=Plain") == [plain]  # the title
    assert ids(client, "q=T1053.005") != []  # a technique id
    for odd in ('"', "*", "NEAR(", "a OR", "'; drop table reports; --", "-x", ":"):
        assert client.get("/api/reports", params={"q": odd}).status_code == 200, odd
    client.patch(f"/api/reports/{dumped}", json={"title": "Renamed loader"})
    assert ids(client, "q=renamed") == [dumped]  # the index follows a new title
    assert client.delete(f"/api/reports/{dumped}").status_code == 204
    assert ids(client, "q=mimikatz") == []


def test_filters_and_sortable_columns(client):
    a = client.post("/api/reports", json={"text": REPORT, "title": "b report", "tags": ["apt"],
                                          "tlp": "red"}).json()["id"]  # fmt: skip
    b = client.post("/api/reports", json={"text": MIMIKATZ, "title": "A report",
                                          "tags": ["crime"]}).json()["id"]  # fmt: skip
    c = client.post("/api/reports", json={"text": REPORT + " more", "title": "c report",
                                          "tlp": "clear"}).json()["id"]  # fmt: skip
    client.post(f"/api/reports/{c}/decisions", json={"technique": "T1059", "action": "accept"})
    client.post(f"/api/reports/{c}/decisions", json={"technique": "T1053.005", "action": "accept"})
    client.post(f"/api/reports/{a}/decisions", json={"technique": "T1059", "action": "accept"})
    client.patch(f"/api/reports/{b}", json={"status": "reviewed"})
    assert ids(client, "sort=title") == [b, a, c]  # case folded
    assert ids(client, "sort=-title") == [c, a, b]
    assert ids(client, "sort=-accepted")[0] == c
    assert ids(client, "sort=status") == [a, c, b]  # in review before reviewed
    assert ids(client, "sort=tlp") == [c, b, a]  # clear, amber, red
    assert ids(client, "sort=created") == [a, b, c]
    assert ids(client, "tag=APT") == [a]
    assert ids(client, "tlp=red") == [a]
    assert ids(client, "status=reviewed") == [b]
    assert ids(client, "technique=T1059&sort=created") == [a, c]
    assert ids(client, "technique=T1059&tlp=clear") == [c]
    bad = client.get("/api/reports?sort=text")
    assert bad.status_code == 422 and "unknown order" in bad.json()["error"]["message"]
    assert client.get("/api/reports?tlp=purple").status_code == 422


def test_bulk_actions(client, db_url):
    made = [client.post("/api/reports", json={"text": REPORT}).json()["id"] for _ in range(3)]
    answer = client.post("/api/reports/bulk", json={"ids": [*made[:2], 999], "action":
                                                    "mark_reviewed"})  # fmt: skip
    assert answer.status_code == 200
    assert answer.json() == {"action": "mark_reviewed", "done": made[:2], "missing": [999]}
    assert sorted(ids(client, "status=reviewed")) == sorted(made[:2])
    history = client.get(f"/api/reports/{made[0]}/history").json()["items"]
    assert ("new", "reviewed") in {(e["before"], e["after"]) for e in history}
    deleted = client.post("/api/reports/bulk", json={"ids": made[1:], "action": "delete"})
    assert deleted.json()["done"] == made[1:]
    assert ids(client, "") == [made[0]]
    assert client.post("/api/reports/bulk", json={"ids": [1], "action": "burn"}).status_code == 422
    assert client.post("/api/reports/bulk", json={"ids": [], "action": "delete"}).status_code == 422


def test_a_duplicate_is_pointed_at_its_original(client):
    first = client.post("/api/reports", json={"text": REPORT, "title": "First"}).json()
    assert first["duplicates"] == []
    again = client.post(
        "/api/reports",
        files={"file": ("copy.txt", ("  " + REPORT.upper() + "\n").encode(), "text/plain")},
    ).json()
    assert again["duplicates"] == [
        {
            "id": first["id"],
            "title": "First",
            "created_at": first["created_at"],
            "created_by": "local",
            "reason": "same text",
        }
    ]
    assert client.get(f"/api/reports/{first['id']}").json()["duplicates"][0]["id"] == again["id"]
    other = client.post("/api/reports", json={"text": MIMIKATZ}).json()
    assert other["duplicates"] == []


def test_several_reports_export_as_one_layer_bundle_and_collection(client):
    a = client.post("/api/reports", json={"text": REPORT, "title": "Alpha"}).json()["id"]
    b = client.post("/api/reports", json={"text": MIMIKATZ, "title": "Beta"}).json()["id"]
    for report in (a, b):
        client.post(f"/api/reports/{report}/decisions",
                    json={"technique": "T1053.005", "action": "accept"})  # fmt: skip
    client.post(f"/api/reports/{a}/decisions", json={"technique": "T1059", "action": "accept"})
    answer = client.get(f"/api/reports/export?ids={a},{b}&format=navigator")
    assert answer.status_code == 200
    assert 'filename="reports-2-reviewed.layer.json"' in answer.headers["content-disposition"]
    layer = answer.json()
    scores = {t["techniqueID"]: t["score"] for t in layer["techniques"] if "score" in t}
    assert scores == {"T1053.005": 2, "T1059": 1}
    assert layer["gradient"]["maxValue"] == 2
    navlayers = pytest.importorskip("mitreattack.navlayers")
    navlayers.Layer().from_dict(layer)  # MITRE's own layer library reads it

    text = client.get(f"/api/reports/export?ids={a},{b}&format=stix").text
    bundle = json.loads(text)
    assert sorted(o["name"] for o in bundle["objects"] if o["type"] == "report") == [
        "Alpha",
        "Beta",
    ]
    patterns = [o for o in bundle["objects"] if o["type"] == "attack-pattern"]
    assert len(patterns) == len({o["id"] for o in patterns}) == 2  # shared objects once
    validator = pytest.importorskip("stix2validator")
    results = validator.validate_string(text, validator.ValidationOptions(strict=True))
    assert results.is_valid, [e.message for r in results.object_results for e in r.errors]

    pymisp = pytest.importorskip("pymisp")
    events = client.get(f"/api/reports/export?ids={a},{b}&format=misp").json()["response"]
    assert len(events) == 2
    for event in events:
        pymisp.MISPEvent().load(event)
    assert client.get(f"/api/reports/export?ids={a},999&format=json").status_code == 404
    assert client.get(f"/api/reports/export?ids={a}&format=csv").status_code == 422
    assert client.get("/api/reports/export?ids=a,b&format=json").status_code == 422
