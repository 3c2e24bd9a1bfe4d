"""The MISP event, loaded back with PyMISP (`MISPEvent().load`), as MISP itself would read it."""

from __future__ import annotations

import json

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


def _indicators() -> list[dict]:
    from mitremap.iocs import extract_iocs

    return [i.to_dict() for i in extract_iocs(TEXT)]


def _load(analysis) -> pymisp.MISPEvent:
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


def test_indicators_become_attributes_of_misps_types():
    event = _load(_analysis())
    found = {(a.type, a.value): a for a in event.attributes}
    expected = {
        ("email-src", "invoices@freight-docs.com"): True,
        ("ip-dst", "185.220.101.47"): True,
        ("url", "https://cdn.freight-docs.com/ldr.bin"): True,
        ("md5", "5d41402abc4b2a76b9719d911017c592"): True,
        ("vulnerability", "CVE-2021-44228"): False,  # context, not a signature
        ("ip-dst", "10.0.0.5"): False,  # private: never an IDS signature
        ("filename", "C:\\Users\\Public\\msupdate.exe"): True,
        ("regkey", "HKEY_CURRENT_USER\\Software\\Microsoft\\Windows\\CurrentVersion\\Run"): True,
        ("btc", "1FeexV6bAHb8ybZjqQMjJrcCrHGW9sb6uF"): True,
        ("link", "https://example.org/glass-harbor"): False,
    }
    for key, to_ids in expected.items():
        assert key in found, (key, sorted(found))
        assert found[key].to_ids is to_ids, key
    assert found[("ip-dst", "185.220.101.47")].category == "Network activity"
    assert len(found) == len(event.attributes)  # each value once


def test_techniques_are_the_galaxy_tags_analysts_use():
    event = _load(_analysis())
    assert sorted(t.name for t in event.tags) == [
        'misp-galaxy:mitre-attack-pattern="Spearphishing Attachment - T1566.001"',
        'misp-galaxy:mitre-attack-pattern="Web Protocols - T1071.001"',
    ]
    tagged = {a.value for a in event.attributes if a.tags}
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
