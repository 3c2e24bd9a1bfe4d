"""A report's metadata: TLP 2.0 (default configurable), tags, source organisation and the
publication date it states (editable); the STIX and MISP exports carry them."""

from __future__ import annotations

import json
from datetime import date

import pytest

pytest.importorskip("fastapi")


from mitremap.documents.dates import stated_date
from mitremap.web.workspace.errors import InvalidError
from mitremap.web.workspace.metadata import (
    check_tlp,
    clean_tags,
    parse_date,
    text_hash,
)
from tests.tiny import REPORT


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Published: 2024-03-12\nThe actor …", date(2024, 3, 12)),
        ("# Title\n**Published** on March 5, 2024\n", date(2024, 3, 5)),
        ("The report was published on 3 March 2024 by the team.", date(2024, 3, 3)),
        ("---\ntitle: x\ndate: 2023-11-02\n---\n", date(2023, 11, 2)),
        ("Posted on Sept. 9th, 2022", date(2022, 9, 9)),
        ("The attack began on 2024-01-01 and lasted a week.", None),  # not the report's date
        ("Publication date: 31 February 2024", None),  # no such day
        ("Date: 12/03/2024", None),  # day or month first? not guessed
        ("Published: 1066-10-14", None),  # not a threat report's
    ],
)
def test_the_publication_date_is_read_where_the_report_states_it(text, found):
    assert stated_date(text) == found


def test_a_readers_date_comes_first_and_checks_are_strict():
    assert stated_date("Published: 2024-03-12", "2021-05-06T10:00:00+00:00") == date(2021, 5, 6)
    assert check_tlp("TLP:AMBER+STRICT") == "amber+strict" and check_tlp("white") == "clear"
    with pytest.raises(InvalidError, match="unknown TLP"):
        check_tlp("purple")
    assert clean_tags(" apt29 , Phishing,apt29,, APT29 ") == ["apt29", "Phishing"]
    with pytest.raises(InvalidError):
        clean_tags(["x" * 65])
    assert parse_date("") is None and parse_date("2024-02-29") == date(2024, 2, 29)
    with pytest.raises(InvalidError, match="YYYY-MM-DD"):
        parse_date("yesterday")
    assert text_hash("A  Report\r\nabout X") == text_hash("a report about x ")
    assert text_hash("a report") != text_hash("another report")


def test_metadata_is_set_at_adding_edited_and_recorded(client):
    assert client.get("/api/settings").json()["default_tlp"] == "amber"
    assert client.patch("/api/settings", json={"default_tlp": "green"}).status_code == 200
    made = client.post("/api/reports", json={"text": REPORT}).json()
    assert made["tlp"] == "green" and made["tags"] == [] and made["source_org"] == ""
    assert made["published"] == "2024-03-03"  # "published on 3 March 2024" in its text
    given = client.post(
        "/api/reports",
        json={"text": REPORT, "tlp": "red", "tags": ["apt29", "phishing"],
              "source_org": "CERT-EU", "published": "2023-01-02"},
    ).json()  # fmt: skip
    assert (given["tlp"], given["tags"], given["source_org"], given["published"]) == (
        "red", ["apt29", "phishing"], "CERT-EU", "2023-01-02",
    )  # fmt: skip
    url = f"/api/reports/{made['id']}"
    changed = client.patch(
        url, json={"tlp": "amber+strict", "tags": "apt29, loader", "source_org": " Example  CERT ",
                   "published": ""},
    ).json()  # fmt: skip
    assert changed["tlp"] == "amber+strict" and changed["tags"] == ["apt29", "loader"]
    assert changed["source_org"] == "Example CERT" and changed["published"] is None
    bad = client.patch(url, json={"tlp": "purple"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"
    assert client.patch(url, json={"published": "soon"}).status_code == 422
    history = client.get(f"{url}/history").json()["items"]
    edits = {(e["subject"], e["before"], e["after"]) for e in history if e["kind"] == "metadata"}
    assert edits == {
        ("tlp", "green", "amber+strict"),
        ("tags", "", "apt29, loader"),
        ("source_org", "", "Example CERT"),
        ("published", "2024-03-03", ""),
    }
    workspace = client.get("/api/history").json()["items"]
    assert [(e["subject"], e["before"], e["after"]) for e in workspace] == [
        ("default_tlp", "amber", "green")
    ]
    upload = client.post(
        "/api/reports",
        files={"file": ("r.txt", REPORT.encode(), "text/plain")},
        data={"tags": "a, b", "tlp": "clear"},
    ).json()
    assert upload["tags"] == ["a", "b"] and upload["tlp"] == "clear"


def test_stix_and_misp_exports_carry_tlp_tags_and_the_date(client):
    made = client.post(
        "/api/reports",
        json={"text": REPORT, "tlp": "amber", "tags": ["apt29"], "published": "2023-05-06"},
    ).json()
    report = made["id"]
    client.post(f"/api/reports/{report}/decisions", json={"technique": "T1059", "action": "accept"})
    text = client.get(f"/api/reports/{report}/export?format=stix").text
    bundle = json.loads(text)
    by_type: dict[str, list] = {}
    for o in bundle["objects"]:
        by_type.setdefault(o["type"], []).append(o)
    marking = by_type["marking-definition"][0]
    assert marking["definition"] == {"tlp": "amber"}
    stix_report = by_type["report"][0]
    assert stix_report["object_marking_refs"] == [marking["id"]]
    assert stix_report["labels"] == ["apt29"]
    assert stix_report["published"].startswith("2023-05-06")
    assert all(marking["id"] in o.get("object_marking_refs", ()) for o in by_type["note"])
    validator = pytest.importorskip("stix2validator")
    results = validator.validate_string(text, validator.ValidationOptions(strict=True))
    assert results.is_valid, [e.message for r in results.object_results for e in r.errors]

    pymisp = pytest.importorskip("pymisp")
    event = client.get(f"/api/reports/{report}/export?format=misp").json()
    tags = {t["name"] for t in event["Event"]["Tag"]}
    assert {"tlp:amber", "apt29"} <= tags
    assert event["Event"]["date"] == "2023-05-06"
    loaded = pymisp.MISPEvent()
    loaded.load(event)  # PyMISP reads it
    exported = client.get(f"/api/reports/{report}/export?format=json").json()["document"]
    assert (exported["tlp"], exported["tags"], exported["published"]) == (
        "amber", ["apt29"], "2023-05-06",
    )  # fmt: skip
