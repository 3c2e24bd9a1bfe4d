"""STIX 2.1: the one bundle builder, for `analyze -f stix` and `iocs -f stix`.

What the bundle says is what the report says, and nothing more:
- a `report` (made by the `identity` MitreMap) whose `object_refs` hold everything below;
- ATT&CK's own `attack-pattern` objects — its STIX ids, names, ids and tactics (as
  `kill_chain_phases`) from the ATT&CK knowledge base — so a consumer that holds ATT&CK merges
  them instead of duplicating them, and a `note` per technique with the evidence and confidence;
- one `indicator` (a STIX pattern) per distinct indicator, one `vulnerability` per CVE;
- an `indicates` relationship only where an indicator sits inside a technique's evidence, and
  `targets` only where a CVE sits inside the evidence of an exploitation technique;
- when the analysis' JSON carries them (the review workspace's metadata), the report's TLP as
  a marking on everything MitreMap makes and its tags as the report's `labels`.

Every id is stable: SDOs take a UUIDv4 (as the spec asks of them) whose bits come from a
SHA-256 of their content, so the same report gives the same bundle, and the same indicator in two
reports is one object. Timestamps come from the document (`report_time`), never from `now()`.
The bundle passes `stix2-validator --strict`, which is why external references carry no URL
(strict asks for a hash of what a URL points to).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import TYPE_CHECKING, Any

from mitremap import __version__
from mitremap.errors import MissingExtraError, MitreMapError
from mitremap.export._base import (
    EPOCH,
    Exportable,
    origin,
    read,
    report_time,
    tactic_names,
    tactic_shortname,
    tags,
    title,
    tlp,
)

if TYPE_CHECKING:
    from mitremap.attack import AttackKB

_SIMPLE = {
    "ipv4": "ipv4-addr:value",
    "ipv6": "ipv6-addr:value",
    "domain": "domain-name:value",
    "onion": "domain-name:value",
    "url": "url:value",
    "email": "email-addr:value",
    "mac": "mac-addr:value",
    "md5": "file:hashes.MD5",
    "sha1": "file:hashes.'SHA-1'",
    "sha256": "file:hashes.'SHA-256'",
    "sha512": "file:hashes.'SHA-512'",
    "ssdeep": "file:hashes.SSDEEP",
    "file_name": "file:name",
    "registry_key": "windows-registry-key:key",
    "user_agent": "network-traffic:extensions.'http-request-ext'.request_header.'User-Agent'",
}

IDENTITY_NAME = "MitreMap"


def _quote(value: str) -> str:
    """A STIX pattern string literal: backslashes and quotes escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def stix_pattern(kind: str, value: str) -> str | None:
    """The STIX 2.1 pattern for an indicator, or None for types STIX has no object for
    (a CVE is a `vulnerability` and an ATT&CK id an `attack-pattern`, not observables;
    cryptocurrency wallets, JA3, imphash, ARNs and YARA rule names have no STIX observable)."""
    if kind in _SIMPLE:
        if kind == "url" and "://" not in value:
            value = "http://" + value  # STIX url:value wants an absolute URL
        if kind == "onion" and not value.endswith(".onion"):
            value += ".onion"
        return f"[{_SIMPLE[kind]} = {_quote(value)}]"
    if kind == "asn":
        return f"[autonomous-system:number = {int(value[2:])}]"
    if kind in ("windows_path", "unix_path"):
        separator = "\\" if kind == "windows_path" else "/"
        folder, _, name = value.rstrip(separator).rpartition(separator)
        if "." in name and folder:
            return (
                f"[file:name = {_quote(name)} AND "
                f"file:parent_directory_ref.path = {_quote(folder)}]"
            )
        return f"[directory:path = {_quote(value)}]"
    return None


def stable_id(kind: str, *content: str) -> str:
    """`kind--UUID`: a UUIDv4 whose bits are a SHA-256 of `content`, so the same content always
    gets the same id (strict STIX asks SDOs for version 4)."""
    digest = hashlib.sha256("\x1f".join((kind, *content)).encode("utf-8")).digest()
    return f"{kind}--{uuid.UUID(bytes=digest[:16], version=4)}"


def _stix2() -> Any:
    try:
        import stix2
    except ImportError:
        raise MissingExtraError("stix2", "stix", "STIX export") from None
    return stix2


def _attack(version: str | None) -> AttackKB:
    """ATT&CK as `mitremap.data` finds it (its cached index loads in about 0.1 s)."""
    from mitremap.attack import load_attack

    return load_attack(version=version)


def _inside(start: int, end: int, spans: list[tuple[int, int]]) -> bool:
    return any(a <= start and end <= b for a, b in spans)


def to_stix(analysis: Exportable, kb: AttackKB | None = None) -> dict[str, Any]:
    """The STIX 2.1 bundle of an analysis (see the module docstring). `kb`: the ATT&CK knowledge
    base to take attack-patterns from (default: the version the model was trained on)."""
    stix2 = _stix2().v21
    data, text = read(analysis)
    when = report_time(data)
    hits = data.get("techniques", ())
    if hits and kb is None:
        kb = _attack(data.get("model", {}).get("attack_version") or None)
    tool = stix2.Identity(
        id=stable_id("identity", IDENTITY_NAME),
        created=EPOCH,
        modified=EPOCH,
        name=IDENTITY_NAME,
        identity_class="system",
        description="MitreMap maps threat reports to ATT&CK techniques and extracts indicators.",
    )
    marking = _tlp_marking(stix2, tlp(data))
    marks = {"object_marking_refs": [marking.id]} if marking is not None else {}
    mine = {"created_by_ref": tool.id, "created": EPOCH, "modified": EPOCH, **marks}
    patterns = {t["technique"]: _attack_pattern(stix2, t, kb) for t in hits}
    evidence = {
        t["technique"]: [(e["start"], e["end"]) for e in t.get("evidence", ())] for t in hits
    }
    notes = [_note(stix2, t, patterns[t["technique"]].id, tool.id, when, marks) for t in hits]

    indicators: dict[str, Any] = {}
    vulnerabilities: dict[str, Any] = {}
    links: dict[tuple[str, str, str], None] = {}  # (type, source, target), in first-seen order
    for item in data.get("indicators") or ():
        kind, value, start, end = item["type"], item["value"], item["start"], item["end"]
        if kind == "cve":
            name = value.upper()
            found = vulnerabilities.get(name) or stix2.Vulnerability(
                id=stable_id("vulnerability", name),
                name=name,
                external_references=[{"source_name": "cve", "external_id": name}],
                **mine,
            )
            vulnerabilities[name] = found
            for tid, spans in evidence.items():
                if _inside(start, end, spans) and patterns[tid].name.startswith("Exploit"):
                    links[("targets", patterns[tid].id, found.id)] = None
            continue
        pattern = stix_pattern(kind, value)
        if pattern is None:
            continue
        found = indicators.get(pattern) or _indicator(stix2, kind, value, pattern, item, mine)
        indicators[pattern] = found
        for tid, spans in evidence.items():
            if _inside(start, end, spans):
                links[("indicates", found.id, patterns[tid].id)] = None

    relationships = [
        stix2.Relationship(
            id=stable_id("relationship", kind, source, target),
            relationship_type=kind,
            source_ref=source,
            target_ref=target,
            **mine,
        )
        for kind, source, target in links
    ]
    objects = [
        *patterns.values(),
        *notes,
        *indicators.values(),
        *vulnerabilities.values(),
        *relationships,
    ]
    if not objects:
        raise MitreMapError("Nothing to export as STIX: no technique or indicator was found")
    refs = [o.id for o in objects]
    name = title(data)[:250]
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    report = stix2.Report(
        id=stable_id("report", name, digest, *sorted(refs)),
        created_by_ref=tool.id,
        created=when,
        modified=when,
        name=name,
        description=(
            f"ATT&CK techniques (confidence ≥ {data.get('threshold', 0.6)}) and indicators"
            if hits
            else "Indicators of compromise"
        )
        + f" that MitreMap {__version__} found in {origin(data) or 'a report'}.",
        published=when,
        report_types=["threat-report"],
        object_refs=refs,
        **({"labels": tags(data)} if tags(data) else {}),
        **marks,
    )
    markings = [marking] if marking is not None else []
    bundle = stix2.Bundle(tool, *markings, *objects, report, id=stable_id("bundle", report.id))
    return dict(json.loads(bundle.serialize()))


_TLP = {"clear": "TLP_WHITE", "green": "TLP_GREEN", "amber": "TLP_AMBER", "red": "TLP_RED"}


def _tlp_marking(stix2: Any, marking: str | None) -> Any:
    """STIX 2.1's own TLP marking definitions (TLP:CLEAR is its WHITE; AMBER+STRICT, which it
    has no definition for, is marked AMBER, the nearest that shares no less)."""
    if marking is None:
        return None
    return getattr(stix2, _TLP["amber" if marking == "amber+strict" else marking])


def _attack_pattern(stix2: Any, hit: dict[str, Any], kb: AttackKB | None) -> Any:
    """ATT&CK's own attack-pattern for a hit; one with a stable id of ours when the knowledge
    base does not know the technique (an id from another ATT&CK version)."""
    tid = hit["technique"]
    known = kb.get(tid) if kb is not None else None
    if known is not None and known.stix_id:
        ident, name, tactics = known.stix_id, known.name, [t.shortname for t in known.tactics]
    else:
        ident = stable_id("attack-pattern", tid)
        name = hit.get("technique_name") or tid
        tactics = [tactic_shortname(t) for t in tactic_names(hit)]
    return stix2.AttackPattern(
        id=ident,
        created=EPOCH,  # older than ATT&CK's own copy, which a consumer therefore keeps
        modified=EPOCH,
        name=name,
        external_references=[{"source_name": "mitre-attack", "external_id": tid}],
        kill_chain_phases=[
            {"kill_chain_name": "mitre-attack", "phase_name": phase} for phase in tactics
        ],
    )


def _note(
    stix2: Any,
    hit: dict[str, Any],
    pattern_id: str,
    tool_id: str,
    when: Any,
    marks: dict[str, Any] | None = None,
) -> Any:
    """A technique's evidence passages and confidence, about its attack-pattern."""
    tid = hit["technique"]
    confidence = max(0, min(100, round(100 * float(hit.get("confidence_score", 0)))))
    passages = [
        f"[{float(e.get('confidence', 0)):.2f}] " + " ".join(e.get("text", "").split())
        for e in hit.get("evidence", ())
    ]
    content = "\n\n".join(passages) or "No passage: implied by a sub-technique."
    abstract = f"Evidence for {tid} {hit.get('technique_name', '')}".strip()
    return stix2.Note(
        id=stable_id("note", tid, str(confidence), content),
        created_by_ref=tool_id,
        created=when,
        modified=when,
        abstract=abstract,
        content=content,
        confidence=confidence,
        object_refs=[pattern_id],
        **(marks or {}),
    )


def _indicator(
    stix2: Any, kind: str, value: str, pattern: str, item: dict[str, Any], mine: dict[str, Any]
) -> Any:
    private = bool(item.get("private"))
    return stix2.Indicator(
        id=stable_id("indicator", pattern),
        name=f"{kind}: {value}"[:250],
        description=f"A {kind.replace('_', ' ')} written in a threat report"
        + (" (a private, internal or documentation value)." if private else "."),
        pattern=pattern,
        pattern_type="stix",
        valid_from=EPOCH,
        indicator_types=["unknown" if private else "malicious-activity"],
        labels=[kind],
        **mine,
    )
