"""The MISP event, loaded back with PyMISP (`MISPEvent().load`), as MISP itself would read it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mitremap import export
from mitremap.documents import Document
from tests.fakes import FakeAnalysis, make_analysis

pymisp = pytest.importorskip("pymisp")

TEXT = (
    "Mail came from invoices@freight-docs.com with invoice.xlsm attached. "
    "C2 traffic went to 185.220.101.47 and to hxxps://cdn.freight-docs[.]com/ldr.bin. "
    "Hash 5d41402abc4b2a76b9719d911017c592 and CVE-2021-44228; an internal host 10.0.0.5. "
    "The loader sat in C:\\Users\\Public\\msupdate.exe and a Run key "
    "HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run; wallet 1FeexV6bAHb8ybZjqQMjJrcCrHGW9sb6uF."
)


def _indicators() -> list[dict[str, Any]]:
    from mitremap.iocs import extract_iocs

    return [dict(i.to_dict()) for i in extract_iocs(TEXT)]


def _load(analysis) -> Any:  # a pymisp.MISPEvent
    event = pymisp.MISPEvent()
    event.load(export.render(analysis, "misp", iocs=True))
    return event


def _analysis() -> FakeAnalysis:
    first = TEXT.index("C2 traffic")
    end = TEXT.index("ldr.bin.") + len("ldr.bin.")
    return FakeAnalysis(
        Document(TEXT, title="Glass Harbor", origin="https://example.org/glass-harbor"),
        techniques=[
            {
                "technique": "T1071.001",
                "technique_name": "Web Protocols",
                "tactics": ["Command and Control"],
                "webpage_link": "https://attack.mitre.org/techniques/T1071/001/",
                "confidence_score": 0.8,
                "evidence": [
                    {"start": first, "end": end, "confidence": 0.8, "text": TEXT[first:end]}
                ],
            },
            {
                "technique": "T1566.001",
                "technique_name": "Spearphishing Attachment",
                "tactics": ["Initial Access"],
                "webpage_link": "https://attack.mitre.org/techniques/T1566/001/",
                "confidence_score": 0.7,
                "evidence": [],
            },
        ],
        indicators=_indicators(),
    )


def _all(event) -> dict:
    """Every attribute of the event, its objects' included: (type, value) → attribute."""
    inside = [a for o in event.objects for a in o.attributes]
    return {(a.type, a.value): a for a in [*event.attributes, *inside]}


def test_indicators_become_misps_objects_and_attributes():
    event = _load(_analysis())
    found = _all(event)
    expected = {
        ("email-src", "invoices@freight-docs.com"): True,
        ("ip-dst", "185.220.101.47"): True,
        ("url", "https://cdn.freight-docs.com/ldr.bin"): True,
        ("domain", "cdn.freight-docs.com"): False,  # the URL's host, part of the URL object
        ("md5", "5d41402abc4b2a76b9719d911017c592"): True,
        ("vulnerability", "CVE-2021-44228"): False,  # context, not a signature
        ("ip-dst", "10.0.0.5"): False,  # private: never an IDS signature
        ("filename", "msupdate.exe"): True,
        ("text", "C:\\Users\\Public\\msupdate.exe"): False,  # its full path, beside it
        # a key every Windows host has: context, not a signature
        ("regkey", "HKEY_CURRENT_USER\\Software\\Microsoft\\Windows\\CurrentVersion\\Run"): False,
        ("btc", "1FeexV6bAHb8ybZjqQMjJrcCrHGW9sb6uF"): True,
        ("link", "https://example.org/glass-harbor"): False,
    }
    for key, to_ids in expected.items():
        assert key in found, (key, sorted(found))
        assert found[key].to_ids is to_ids, key
    assert found[("ip-dst", "185.220.101.47")].category == "Network activity"
    objects = {o.name: o for o in event.objects}
    names = sorted(o.name for o in event.objects)  # the path, invoice.xlsm, the hash: files
    assert names == ["domain-ip", "domain-ip", "file", "file", "file", "url"]
    assert [a.object_relation for a in objects["url"].attributes] == ["url", "scheme", "domain"]
    run_key = found[
        ("regkey", "HKEY_CURRENT_USER\\Software\\Microsoft\\Windows\\CurrentVersion\\Run")
    ]
    assert "known-benign context: a registry key every Windows host has" in run_key.comment
    values = [(a.type, a.value) for a in event.attributes]
    assert len(values) == len(set(values))  # each value once


def test_benign_values_can_be_left_out_and_the_event_says_who_may_see_it():
    from mitremap.export import ExportOptions

    options = ExportOptions(benign="omit", tlp="amber+strict", misp_distribution=1,
                            misp_threat_level=2)  # fmt: skip
    event = pymisp.MISPEvent()
    event.load(export.render(_analysis(), "misp", iocs=True, options=options))
    found = _all(event)
    assert ("ip-dst", "10.0.0.5") not in found and (
        "btc",
        "1FeexV6bAHb8ybZjqQMjJrcCrHGW9sb6uF",
    ) in found
    assert not any("CurrentVersion" in str(value) for _, value in found)
    assert int(event.distribution) == 1 and int(event.threat_level_id) == 2
    assert "tlp:amber+strict" in [t.name for t in event.tags]


def test_a_named_pipe_is_misps_named_pipe():
    text = "The beacon talked over \\\\.\\pipe\\msagent_12 to its peers."
    from mitremap.iocs import extract_iocs

    pipe = FakeAnalysis(
        Document(text, title="p"), [], [dict(i.to_dict()) for i in extract_iocs(text)]
    )
    found = _all(_load(pipe))
    assert ("named pipe", "\\\\.\\pipe\\msagent_12") in found


def test_techniques_are_the_galaxy_tags_analysts_use():
    event = _load(_analysis())
    assert sorted(t.name for t in event.tags) == [
        'misp-galaxy:mitre-attack-pattern="Spearphishing Attachment - T1566.001"',
        'misp-galaxy:mitre-attack-pattern="Web Protocols - T1071.001"',
    ]
    tagged = {a.value for a in _all(event).values() if a.tags}
    assert tagged == {"185.220.101.47", "https://cdn.freight-docs.com/ldr.bin"}  # in its evidence


def test_the_report_travels_as_an_attachment_and_a_summary():
    event = _load(_analysis())
    (attachment,) = [a for a in event.attributes if a.type == "attachment"]
    assert attachment.value == "report.txt" and attachment.data.getvalue().decode() == TEXT
    (report,) = event.event_reports
    assert "| [T1071.001](https://attack.mitre.org/techniques/T1071/001/) |" in report.content
    assert event.info == "MitreMap: Glass Harbor"


def test_uuids_are_stable_and_the_markup_stays_text():
    first = json.loads(export.render(make_analysis(), "misp"))
    assert json.loads(export.render(make_analysis(), "misp")) == first
    event = pymisp.MISPEvent()
    event.load(first)
    (report,) = event.event_reports
    assert "<script>" not in report.content and "&lt;script&gt;" in report.content


def test_an_empty_analysis_is_an_empty_event():
    empty = FakeAnalysis(Document("nothing here", title="quiet"), techniques=[], indicators=[])
    event = _load(empty)
    assert event.tags == [] and [a.type for a in event.attributes] == ["attachment"]
