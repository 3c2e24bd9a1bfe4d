"""STIX 2.1: the one bundle builder, for `analyze -f stix` and `iocs -f stix`.

What the bundle says is what the report says, and nothing more:
- a `report` (made by the `identity` MitreMap) whose `object_refs` hold everything below,
  `published` at the report's own date when it states one, else when it was analysed;
- ATT&CK's own `attack-pattern` objects — its STIX ids, names, ids and tactics (as
  `kill_chain_phases`) from the ATT&CK knowledge base — so a consumer that holds ATT&CK merges
  them instead of duplicating them, and a `note` per technique with the evidence and confidence;
- ATT&CK software the report names, as ATT&CK's own `malware` / `tool` objects, with a `uses`
  relationship to a technique only where the report names the software in (or right beside)
  that technique's evidence and ATT&CK lists the software as using it (malware uses the
  attack-pattern; the attack-pattern uses a tool: STIX's own directions): what this report
  shows the software doing, never who is behind it;
- one `indicator` (a STIX pattern) per distinct indicator that may be one, one `vulnerability`
  per CVE; known-benign values (`iocs.benign`: system programs, folders every host has, vendor
  domains, the report's own address …) are never indicators: they go out as `observed-data`
  with a `note` saying why, or not at all (`ExportOptions.benign`);
- an `indicates` relationship only where an indicator sits inside a technique's evidence, and
  `targets` only where a CVE sits inside the evidence of an exploitation technique;
- with `ExportOptions.tlp`, the TLP marking on every object MitreMap makes; the report's own
  tags (`document.tags`, the review workspace's) as its `labels`.

Every id is stable: SDOs take a UUIDv4 (as the spec asks of them) whose bits come from a
SHA-256 of their content, so the same report gives the same bundle, and the same indicator in two
reports is one object. The bundle passes `stix2-validator --strict`, which is why external
references carry no URL (strict asks for a hash of what a URL points to).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from typing import TYPE_CHECKING, Any

from mitremap import __version__
from mitremap.errors import MissingExtraError, MitreMapError
from mitremap.export._base import (
    DEFAULT_OPTIONS,
    EPOCH,
    Exportable,
    ExportOptions,
    origin,
    read,
    report_tags,
    report_time,
    source_url,
    tactic_names,
    tactic_shortname,
    title,
)

if TYPE_CHECKING:
    from mitremap.attack import AttackKB
    from mitremap.schema import AnalysisJSON, EntityJSON, IndicatorJSON, TechniqueJSON

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
NEAR_CHARS = 200
"""Software named this close to a technique's evidence passage is named "beside" it."""
_PIPE = re.compile(r"^\\\\[^\\]+\\pipe\\", re.IGNORECASE)


def is_named_pipe(value: str) -> bool:
    """A Windows named pipe (`\\\\.\\pipe\\msagent_12`): a file in the pipe namespace, not a
    folder."""
    found = _PIPE.match(value)
    return found is not None and len(value) > found.end()


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
    pipe = _PIPE.match(value) if kind == "windows_path" else None
    if pipe is not None and is_named_pipe(value):  # a file of the pipe file system
        return (
            f"[file:name = {_quote(value[pipe.end() :])} AND "
            f"file:parent_directory_ref.path = {_quote(pipe.group(0)[:-1])}]"
        )
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
    """ATT&CK as a model's results are read in (a local bundle, else the default model's own
    knowledge; its cached index loads in about 0.1 s)."""
    from mitremap.classify.knowledge import attack_for_model

    return attack_for_model(version)


def _inside(start: int, end: int, spans: list[tuple[int, int]]) -> bool:
    return any(a <= start and end <= b for a, b in spans)


class _Builder:
    """One bundle's objects, made in the order the report is read."""

    def __init__(self, stix2: Any, data: AnalysisJSON, options: ExportOptions) -> None:
        self.stix2, self.data, self.options = stix2, data, options
        self.when = report_time(data)
        self.tool = stix2.Identity(
            id=stable_id("identity", IDENTITY_NAME),
            created=EPOCH,
            modified=EPOCH,
            name=IDENTITY_NAME,
            identity_class="system",
            description="MitreMap maps threat reports to ATT&CK techniques and extracts "
            "indicators.",
        )
        self.marking = _tlp_marking(stix2, options.tlp)
        self.mine: dict[str, Any] = {"created_by_ref": self.tool.id, "created": EPOCH}
        self.mine["modified"] = EPOCH
        if self.marking is not None:
            self.mine["object_marking_refs"] = [self.marking.id]
        self.objects: dict[str, Any] = {}  # id → object, in first-made order
        self.links: dict[tuple[str, str, str], float | None] = {}  # (type, source, target)

    def add(self, obj: Any) -> Any:
        return self.objects.setdefault(obj.id, obj)

    def marked(self) -> dict[str, Any]:
        """The TLP marking of an object made at the report's time (none without TLP)."""
        return {"object_marking_refs": [self.marking.id]} if self.marking is not None else {}

    def relationship(self, kind: str, source: str, target: str) -> Any:
        confidence = self.links[(kind, source, target)]
        extra = {"confidence": round(100 * confidence)} if confidence is not None else {}
        return self.stix2.Relationship(
            id=stable_id("relationship", kind, source, target),
            relationship_type=kind,
            source_ref=source,
            target_ref=target,
            **self.mine,
            **extra,
        )


def to_stix(
    analysis: Exportable, kb: AttackKB | None = None, options: ExportOptions = DEFAULT_OPTIONS
) -> dict[str, Any]:
    """The STIX 2.1 bundle of an analysis (see the module docstring). `kb` (or `options.kb`):
    the ATT&CK knowledge base to take ATT&CK's objects from (default: as the model's results
    are read, `classify.knowledge.attack_for_model`)."""
    stix2 = _stix2().v21
    data, text = read(analysis, options)
    hits = data.get("techniques", ())
    kb = kb or options.kb
    named = [e for e in data.get("entities") or () if e.get("kind") in ("malware", "tool")]
    if (hits or named) and kb is None:
        kb = _attack(data.get("model", {}).get("attack_version") or None)
    b = _Builder(stix2, data, options)
    objects = _objects(b, data, named, kb)
    if not objects:
        raise MitreMapError("Nothing to export as STIX: no technique or indicator was found")
    report = _report(b, data, text, [o.id for o in objects])
    marking = [b.marking] if b.marking is not None else []
    bundle = stix2.Bundle(b.tool, *marking, *objects, report, id=stable_id("bundle", report.id))
    return dict(json.loads(bundle.serialize()))


def _objects(
    b: _Builder, data: AnalysisJSON, named: list[EntityJSON], kb: AttackKB | None
) -> list[Any]:
    """Everything the report holds, in the order it is read: each technique's attack-pattern
    and note, the software named, the indicators; then the relationships between them."""
    hits = data.get("techniques", ())
    patterns = {t["technique"]: b.add(_attack_pattern(b.stix2, t, kb)) for t in hits}
    evidence = {
        t["technique"]: [(e["start"], e["end"]) for e in t.get("evidence", ())] for t in hits
    }
    for t in hits:
        b.add(_note(b.stix2, t, patterns[t["technique"]].id, b))
    _software(b, named, hits, patterns, kb)
    _indicators(b, data, evidence, patterns)
    objects = list(b.objects.values())
    objects += [b.relationship(*link) for link in b.links]
    return objects


def _report(b: _Builder, data: AnalysisJSON, text: str, refs: list[str]) -> Any:
    """The `report` that holds every other object: its id stable in the report's title, text
    and objects; its labels the report's own tags."""
    name = title(data)[:250]
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    found = (
        f"ATT&CK techniques (confidence ≥ {data.get('threshold', 0.6)}) and indicators"
        if data.get("techniques")
        else "Indicators of compromise"
    )
    tags = report_tags(data)
    return b.stix2.Report(
        id=stable_id("report", name, digest, *sorted(refs)),
        created_by_ref=b.tool.id,
        created=b.when,
        modified=b.when,
        name=name,
        description=found + f" that MitreMap {__version__} found in {origin(data) or 'a report'}.",
        published=b.when,
        report_types=["threat-report"],
        object_refs=refs,
        **({"labels": tags} if tags else {}),
        **b.marked(),
    )


_TLP = {"clear": "TLP_WHITE", "green": "TLP_GREEN", "amber": "TLP_AMBER", "red": "TLP_RED"}


def _tlp_marking(stix2: Any, tlp: str | None) -> Any:
    """STIX 2.1's own TLP marking definitions (TLP:CLEAR is its WHITE; AMBER+STRICT, which it
    has no definition for, is marked AMBER, the nearest that shares no less)."""
    if tlp is None:
        return None
    return getattr(stix2, _TLP["amber" if tlp == "amber+strict" else tlp])


def _software(
    b: _Builder,
    named: list[Any],
    hits: Any,
    patterns: dict[str, Any],
    kb: AttackKB | None,
) -> None:
    """ATT&CK's malware and tool objects for the software the report names, and `uses` where
    it names one in or beside the evidence of a technique ATT&CK says it uses."""
    known = {e.id: e for e in kb.software} if kb is not None else {}
    made: dict[str, Any] = {}
    for entity in named:
        if entity["id"] not in made:
            made[entity["id"]] = b.add(_software_object(b.stix2, entity, known.get(entity["id"])))
    for t in hits:
        users = {s["id"] for s in t.get("named_software_known_to_use", ()) if s["id"] in made}
        passages = [(e["start"], e["end"]) for e in t.get("evidence", ())]
        for entity in named:
            if entity["id"] in users and _beside(entity["start"], entity["end"], passages):
                software, pattern = made[entity["id"]], patterns[t["technique"]]
                # STIX's own directions: malware uses an attack-pattern, an attack-pattern
                # uses a tool
                link = (
                    ("uses", software.id, pattern.id)
                    if software.type == "malware"
                    else ("uses", pattern.id, software.id)
                )
                b.links[link] = max(b.links.get(link) or 0.0, float(t["confidence_score"]))


def _beside(start: int, end: int, passages: list[tuple[int, int]]) -> bool:
    return any(a - NEAR_CHARS <= start and end <= b + NEAR_CHARS for a, b in passages)


def _software_object(stix2: Any, entity: Any, known: Any) -> Any:
    """ATT&CK's own object for a named software (a stable id of ours when the knowledge base
    does not know it)."""
    kind = known.kind if known is not None else entity["kind"]
    ident = known.stix_id if known is not None and known.stix_id else stable_id(kind, entity["id"])
    common = {
        "id": ident,
        "created": EPOCH,  # older than ATT&CK's own copy, which a consumer therefore keeps
        "modified": EPOCH,
        "name": known.name if known is not None else entity["name"],
        "external_references": [{"source_name": "mitre-attack", "external_id": entity["id"]}],
    }
    if kind == "malware":
        return stix2.Malware(is_family=True, **common)
    return stix2.Tool(**common)


def _indicators(
    b: _Builder,
    data: AnalysisJSON,
    evidence: dict[str, list[tuple[int, int]]],
    patterns: dict[str, Any],
) -> None:
    """Indicators (and CVEs) where they may be ones; known-benign values as observed context."""
    from mitremap.iocs.benign import benign_reason

    source = source_url(data)
    context: dict[str, tuple[list[Any], str]] = {}  # observed-data id → (objects, why)
    for item in data.get("indicators") or ():
        if item["type"] == "cve":
            _cve(b, item, evidence, patterns)
            continue
        reason = benign_reason(item, source)
        if reason is None:
            _add_indicator(b, item, evidence, patterns)
        elif b.options.benign == "context":
            observed = _observed(b, item["type"], item["value"])
            if observed is not None:
                context.setdefault(observed[-1].id, (observed, reason))
    if context:
        for observed, _ in context.values():
            for obj in observed:
                b.add(obj)
        b.add(_context_note(b, {k: (objects[:-1], why) for k, (objects, why) in context.items()}))


def _cve(
    b: _Builder,
    item: IndicatorJSON,
    evidence: dict[str, list[tuple[int, int]]],
    patterns: dict[str, Any],
) -> None:
    """A CVE as a `vulnerability`, which an exploitation technique `targets` when the CVE sits
    inside its evidence."""
    found = b.add(_vulnerability(b, item["value"].upper()))
    for tid, spans in evidence.items():
        if _inside(item["start"], item["end"], spans) and patterns[tid].name.startswith("Exploit"):
            b.links[("targets", patterns[tid].id, found.id)] = None


def _add_indicator(
    b: _Builder,
    item: IndicatorJSON,
    evidence: dict[str, list[tuple[int, int]]],
    patterns: dict[str, Any],
) -> None:
    """An indicator (when STIX has a pattern for its type), which `indicates` each technique
    whose evidence it sits inside."""
    kind, value = item["type"], item["value"]
    pattern = stix_pattern(kind, value)
    if pattern is None:
        return
    found = b.add(_indicator(b.stix2, kind, value, pattern, item, b.mine))
    for tid, spans in evidence.items():
        if _inside(item["start"], item["end"], spans):
            b.links[("indicates", found.id, patterns[tid].id)] = None


def _vulnerability(b: _Builder, name: str) -> Any:
    return b.stix2.Vulnerability(
        id=stable_id("vulnerability", name),
        name=name,
        external_references=[{"source_name": "cve", "external_id": name}],
        **b.mine,
    )


def _observables(stix2: Any, kind: str, value: str) -> list[Any]:
    """STIX cyber-observables for a value (the last one is the value itself); none for types
    STIX has no object for."""
    simple = {
        "ipv4": stix2.IPv4Address,
        "ipv6": stix2.IPv6Address,
        "domain": stix2.DomainName,
        "url": stix2.URL,
        "email": stix2.EmailAddress,
        "mac": stix2.MACAddress,
    }
    hashes = {"md5": "MD5", "sha1": "SHA-1", "sha256": "SHA-256", "sha512": "SHA-512"}
    if kind in simple:
        return [simple[kind](value=value)]
    if kind in hashes:
        return [stix2.File(hashes={hashes[kind]: value})]
    if kind == "file_name":
        return [stix2.File(name=value)]
    if kind == "registry_key":
        return [stix2.WindowsRegistryKey(key=full_hive(value))]
    if kind in ("windows_path", "unix_path"):
        separator = "\\" if kind == "windows_path" else "/"
        folder, _, name = value.rstrip(separator).rpartition(separator)
        if "." in name and folder:
            parent = stix2.Directory(path=folder)
            return [parent, stix2.File(name=name, parent_directory_ref=parent.id)]
        return [stix2.Directory(path=value)]
    return []


_HIVES = {
    "HKCU": "HKEY_CURRENT_USER",
    "HKLM": "HKEY_LOCAL_MACHINE",
    "HKCR": "HKEY_CLASSES_ROOT",
    "HKU": "HKEY_USERS",
    "HKCC": "HKEY_CURRENT_CONFIG",
}


def full_hive(key: str) -> str:
    """A registry key with its hive written out (STIX asks for `HKEY_CURRENT_USER\\…`)."""
    hive, sep, rest = key.partition("\\")
    return _HIVES.get(hive.upper(), hive) + sep + rest


def _observed(b: _Builder, kind: str, value: str) -> list[Any] | None:
    """A known-benign value as `observed-data` (after its observables), or None."""
    found = _observables(b.stix2, kind, value)
    if not found:
        return None
    observed = b.stix2.ObservedData(
        id=stable_id("observed-data", kind, value),
        first_observed=b.when,
        last_observed=b.when,
        number_observed=1,
        object_refs=[o.id for o in found],
        labels=["benign-context"],
        **b.mine,
    )
    return [*found, observed]


def _context_note(b: _Builder, context: dict[str, tuple[list[Any], str]]) -> Any:
    """Why each observed value is context, not an indicator."""
    lines = [f"{_label(observables)}: {why}" for observables, why in context.values()]
    return b.stix2.Note(
        id=stable_id("note", "benign-context", *sorted(context)),
        created_by_ref=b.tool.id,
        created=b.when,
        modified=b.when,
        abstract="Known-benign values the report names: context, not indicators",
        content="\n".join(lines),
        object_refs=sorted(context),
        **b.marked(),
    )


def _label(observables: list[Any]) -> str:
    """How a note names an observed value (a file by its path or hash, a key by its name)."""
    last = observables[-1]
    for field in ("value", "key", "path"):
        if field in last:
            return str(last[field])
    if "name" in last:
        parent = observables[0] if len(observables) > 1 else None
        return f"{parent['path']}\\{last['name']}" if parent is not None else str(last["name"])
    return ", ".join(str(v) for v in (last.get("hashes") or {}).values())


def _attack_pattern(stix2: Any, hit: TechniqueJSON, kb: AttackKB | None) -> Any:
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


def _note(stix2: Any, hit: TechniqueJSON, pattern_id: str, b: _Builder) -> Any:
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
        created_by_ref=b.tool.id,
        created=b.when,
        modified=b.when,
        abstract=abstract,
        content=content,
        confidence=confidence,
        object_refs=[pattern_id],
        **b.marked(),
    )


def _indicator(
    stix2: Any,
    kind: str,
    value: str,
    pattern: str,
    item: IndicatorJSON,
    mine: dict[str, Any],
) -> Any:
    label = "named-pipe" if kind == "windows_path" and is_named_pipe(value) else kind
    return stix2.Indicator(
        id=stable_id("indicator", pattern),
        name=f"{label.replace('-', '_')}: {value}"[:250],
        description=f"A {label.replace('_', ' ').replace('-', ' ')} written in a threat report.",
        pattern=pattern,
        pattern_type="stix",
        valid_from=EPOCH,
        indicator_types=["malicious-activity"],
        labels=[label],
        **mine,
    )
