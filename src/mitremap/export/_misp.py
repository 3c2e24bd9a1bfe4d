"""A MISP event (PyMISP's JSON, `{"Event": …}`), as MISP imports it and PyMISP loads it.

Indicators become MISP's own objects where MISP has one — `file` (a path, a file name, a hash),
`url` (with its host and scheme), `domain-ip` (a domain, an IP address) — and attributes of
MISP's own types otherwise (a CVE, a registry key, a named pipe, an e-mail address …), each
with MISP's default category and IDS flag; a known-benign value (`iocs.benign`: system
programs, folders every host has, vendor domains, the report's own address, private values) is
never flagged for IDS and says why in its comment, or is left out (`ExportOptions.benign`).
Techniques become the `mitre-attack-pattern` galaxy tags analysts filter on, on the event and on
each indicator that sits inside a technique's evidence; a TLP 2.0 tag marks the event when one
is chosen, with the event's distribution and threat level (`ExportOptions`). The report travels
whole as an attachment, and the MitreMap summary (techniques, evidence, indicators) as an event
report. Uuids are stable (see `stable_id`), so importing the same report again updates the
event instead of copying it.
"""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

from mitremap.errors import MissingExtraError
from mitremap.export._base import (
    DEFAULT_OPTIONS,
    Exportable,
    ExportOptions,
    read,
    report_tags,
    report_time,
    source_url,
    title,
)
from mitremap.export._markdown import to_markdown
from mitremap.export._stix import is_named_pipe, stable_id

if TYPE_CHECKING:
    from mitremap.schema import IndicatorJSON

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


DISTRIBUTIONS = {0: "your organisation only", 1: "this community only", 2: "connected communities",
                 3: "all communities", 5: "inherit"}  # fmt: skip
"""MISP's event distribution levels (4, a sharing group, needs a group MISP knows)."""
THREAT_LEVELS = {1: "high", 2: "medium", 3: "low", 4: "undefined"}

_FILE_HASHES = {"md5", "sha1", "sha256", "sha512", "ssdeep", "imphash"}


def galaxy_tag(technique_id: str, name: str) -> str:
    """The tag of MISP's `mitre-attack-pattern` galaxy cluster for a technique."""
    return f'misp-galaxy:mitre-attack-pattern="{name} - {technique_id}"'


def to_misp(analysis: Exportable, options: ExportOptions = DEFAULT_OPTIONS) -> dict[str, Any]:
    """The analysis as one MISP event (see the module docstring)."""
    try:
        from pymisp import MISPEvent
    except ImportError:
        raise MissingExtraError("pymisp", "misp", "MISP export") from None
    data, text = read(analysis, options)
    name = title(data)
    event = MISPEvent()
    event.uuid = stable_id("misp-event", name, text).split("--")[1]
    event.info = f"MitreMap: {name}"[:1000]
    event.set_date(report_time(data).date())
    event.distribution = options.misp_distribution
    event.threat_level_id = options.misp_threat_level
    event.analysis = 0  # initial: a machine's reading, for an analyst to review
    if options.tlp:
        event.add_tag(f"tlp:{options.tlp}")
    for tag in report_tags(data):  # the report's own (the review workspace's)
        event.add_tag(tag)
    hits = data.get("techniques", ())
    tags = {t["technique"]: galaxy_tag(t["technique"], t.get("technique_name") or "") for t in hits}
    for t in hits:
        event.add_tag(tags[t["technique"]])
    source = source_url(data)
    if source:
        _attribute(event, "link", source, comment="the report", to_ids=False)
    _indicators(event, data.get("indicators") or (), hits, tags, source, options)
    if text:
        _attribute(
            event,
            "attachment",
            "report.txt",
            data=io.BytesIO(text.encode("utf-8", "replace")),
            comment="the report's text as MitreMap read it",
        )
    report = event.add_event_report(f"MitreMap: {name}"[:255], to_markdown(analysis, options))
    report.uuid = stable_id("misp-report", event.uuid).split("--")[1]
    return {"Event": json.loads(event.to_json())}


def _indicators(
    event: Any,
    indicators: Any,
    hits: Any,
    tags: dict[str, str],
    source: str | None,
    options: ExportOptions,
) -> None:
    """Each distinct indicator once: as an object where MISP has one, else an attribute."""
    from mitremap.iocs.benign import benign_reason

    seen: set[tuple[str, str]] = set()
    for item in indicators:
        kind = item["type"]
        value = item["value"].upper() if kind == "cve" else item["value"]
        if (kind, value) in seen:
            continue
        seen.add((kind, value))
        reason = None if kind == "cve" else benign_reason(item, source)
        if reason is not None and options.benign == "omit":
            continue
        comment = kind + (f" (known-benign context: {reason})" if reason else "")
        attribute = _object(event, item, value, comment, reason is None)
        if attribute is None:
            misp_type = MISP_TYPES.get(kind, "text")
            if kind == "windows_path" and is_named_pipe(value):
                misp_type = "named pipe"
            ids = reason is None and _ids_by_default(event, misp_type)
            attribute = _attribute(event, misp_type, value, to_ids=ids, comment=comment)
        for t in _techniques_around(item, hits):
            attribute.add_tag(tags[t])


def _ids_by_default(event: Any, misp_type: str) -> bool:
    return misp_type != "text" and bool(event.describe_types["sane_defaults"][misp_type]["to_ids"])


def _object(event: Any, item: IndicatorJSON, value: str, comment: str, ids: bool) -> Any:
    """A MISP object for a file, a URL, a domain or an IP address (its main attribute, for the
    technique tags); None for other types."""
    from pymisp import MISPObject

    kind = item["type"]
    if kind in ("windows_path", "unix_path") and not is_named_pipe(value):
        separator = "\\" if kind == "windows_path" else "/"
        folder, _, name = value.rstrip(separator).rpartition(separator)
        if not (name and folder):
            return _add_object(event, MISPObject("file"), [("path", value, ids)], comment)
        parts = [("filename", name, ids), ("fullpath", value, False), ("path", folder, False)]
        return _add_object(event, MISPObject("file"), parts, comment)
    if kind == "file_name":
        return _add_object(event, MISPObject("file"), [("filename", value, ids)], comment)
    if kind in _FILE_HASHES:
        return _add_object(event, MISPObject("file"), [(kind, value, ids)], comment)
    if kind == "url":
        scheme, _, rest = value.partition("://")
        host = rest.split("/", 1)[0].rsplit("@", 1)[-1].split(":", 1)[0]
        parts = [("url", value, ids)]
        parts += [("scheme", scheme, False)] if rest else []
        if host:
            parts.append(("ip" if _is_ip(host) else "domain", host, False))
        return _add_object(event, MISPObject("url"), parts, comment)
    if kind in ("domain", "onion"):
        return _add_object(event, MISPObject("domain-ip"), [("domain", value, ids)], comment)
    if kind in ("ipv4", "ipv6"):
        return _add_object(event, MISPObject("domain-ip"), [("ip", value, ids)], comment)
    return None


def _add_object(event: Any, obj: Any, parts: list[tuple[str, str, bool]], comment: str) -> Any:
    """Add `obj` with its attributes (the first is the indicator itself); its first attribute."""
    obj.uuid = stable_id("misp-object", event.uuid, obj.name, parts[0][1]).split("--")[1]
    obj.comment = comment
    first = None
    for relation, value, ids in parts:
        attribute = obj.add_attribute(relation, value=value, to_ids=ids)
        attribute.uuid = stable_id("misp-attribute", obj.uuid, relation, value).split("--")[1]
        first = first or attribute
    event.add_object(obj)
    return first


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _techniques_around(item: IndicatorJSON, hits: Any) -> list[str]:
    """The techniques whose evidence holds the indicator."""
    return [
        t["technique"]
        for t in hits
        if any(
            e["start"] <= item["start"] and item["end"] <= e["end"] for e in t.get("evidence", ())
        )
    ]


def _attribute(event: Any, kind: str, value: str, **options: Any) -> Any:
    attribute = event.add_attribute(kind, value, **options)
    attribute.uuid = stable_id("misp-attribute", event.uuid, kind, value).split("--")[1]
    return attribute
