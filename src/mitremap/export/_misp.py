"""A MISP event (PyMISP's JSON, `{"Event": …}`), as MISP imports it and PyMISP loads it.

Indicators become attributes of MISP's own types (category and IDS flag from MISP's defaults;
a private or documentation value is never flagged for IDS); techniques become the
`mitre-attack-pattern` galaxy tags analysts filter on, on the event and on each attribute that
sits inside a technique's evidence; the report travels whole as an attachment, and the
MitreMap summary (techniques, evidence, indicators) as an event report. Uuids are stable (see
`stable_id`), so importing the same report again updates the event instead of copying it.
"""

from __future__ import annotations

import io
import json
from typing import Any

from mitremap.errors import MissingExtraError
from mitremap.export._base import Exportable, origin, read, report_time, title, tlp
from mitremap.export._base import tags as report_tags
from mitremap.export._markdown import to_markdown
from mitremap.export._stix import stable_id

MISP_TYPES = {
    "url": "url",
    "domain": "domain",
    "onion": "domain",
    "ipv4": "ip-dst",
    "ipv6": "ip-dst",
    "email": "email-src",
    "md5": "md5",
    "sha1": "sha1",
    "sha256": "sha256",
    "sha512": "sha512",
    "ssdeep": "ssdeep",
    "imphash": "imphash",
    "ja3": "ja3-fingerprint-md5",
    "cve": "vulnerability",
    "mac": "mac-address",
    "asn": "AS",
    "bitcoin": "btc",
    "monero": "xmr",
    "dashcoin": "dash",
    "windows_path": "filename",  # MISP's filename holds a path too
    "unix_path": "filename",
    "file_name": "filename",
    "registry_key": "regkey",
    "user_agent": "user-agent",
}
"""MitreMap indicator type → MISP attribute type; other types go in as `text`, never IDS."""


def galaxy_tag(technique_id: str, name: str) -> str:
    """The tag of MISP's `mitre-attack-pattern` galaxy cluster for a technique."""
    return f'misp-galaxy:mitre-attack-pattern="{name} - {technique_id}"'


def to_misp(analysis: Exportable) -> dict[str, Any]:
    """The analysis as one MISP event (see the module docstring)."""
    try:
        from pymisp import MISPEvent
    except ImportError:
        raise MissingExtraError("pymisp", "misp", "MISP export") from None
    data, text = read(analysis)
    name = title(data)
    event = MISPEvent()
    event.uuid = stable_id("misp-event", name, text).split("--")[1]
    event.info = f"MitreMap: {name}"[:1000]
    event.set_date(report_time(data).date())
    marking = tlp(data)
    for tag in ([f"tlp:{marking}"] if marking else []) + report_tags(data):
        event.add_tag(tag)  # the review workspace's TLP and tags
    hits = data.get("techniques", ())
    tags = {t["technique"]: galaxy_tag(t["technique"], t.get("technique_name") or "") for t in hits}
    for t in hits:
        event.add_tag(tags[t["technique"]])
    source = origin(data)
    if source.startswith(("http://", "https://")):
        _attribute(event, "link", source, comment="the report", to_ids=False)
    seen: set[tuple[str, str]] = set()
    for item in data.get("indicators") or ():
        kind = MISP_TYPES.get(item["type"], "text")
        value = item["value"].upper() if item["type"] == "cve" else item["value"]
        if (kind, value) in seen:
            continue
        seen.add((kind, value))
        ids = (
            kind != "text"
            and not item.get("private")
            and event.describe_types["sane_defaults"][kind]["to_ids"]
        )
        attribute = _attribute(
            event,
            kind,
            value,
            to_ids=bool(ids),
            comment=item["type"]
            + (" (private or documentation value)" if item.get("private") else ""),
        )
        for t in hits:
            if any(
                e["start"] <= item["start"] and item["end"] <= e["end"]
                for e in t.get("evidence", ())
            ):
                attribute.add_tag(tags[t["technique"]])
    if text:
        _attribute(
            event,
            "attachment",
            "report.txt",
            data=io.BytesIO(text.encode("utf-8", "replace")),
            comment="the report's text as MitreMap read it",
        )
    report = event.add_event_report(f"MitreMap: {name}"[:255], to_markdown(analysis))
    report.uuid = stable_id("misp-report", event.uuid).split("--")[1]
    return {"Event": json.loads(event.to_json())}


def _attribute(event: Any, kind: str, value: str, **options: Any) -> Any:
    attribute = event.add_attribute(kind, value, **options)
    attribute.uuid = stable_id("misp-attribute", event.uuid, kind, value).split("--")[1]
    return attribute
