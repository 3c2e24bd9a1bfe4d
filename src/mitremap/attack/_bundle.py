"""Reading an ATT&CK STIX bundle: one function per object kind, one reader per relationship.

Relationships become plain id → ids tables (`_Links`); what they answer is asked elsewhere.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mitremap.attack._objects import (
    Analytic,
    DataComponent,
    DetectionStrategy,
    Entity,
    LogSource,
    Mitigation,
    Procedure,
    Tactic,
    Technique,
    clean_attack_text,
    technique_url,
)
from mitremap.errors import DataError

_TECHNIQUE_ID = re.compile(r"^T\d{4}(?:\.\d{3})?$")


def read_bundle(path: Path) -> dict[str, Any]:
    """Read a STIX bundle, plain or gzip, with a one-line error for every way it can be wrong."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"Cannot read ATT&CK bundle {path}: {exc.strerror or exc}") from exc
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"ATT&CK bundle {path} is a damaged or truncated gzip file") from exc
    if not raw.strip():
        raise DataError(f"ATT&CK bundle {path} is empty")
    try:
        bundle = json.loads(raw)
    except UnicodeDecodeError as exc:
        raise DataError(f"ATT&CK bundle {path} is not text (not a JSON STIX bundle)") from exc
    except json.JSONDecodeError as exc:
        stripped = raw.strip()
        if stripped[:1] in (b"{", b"[") and exc.pos >= len(stripped) - 1:
            what = "is truncated (the JSON ends early)"
        else:
            what = f"is not valid JSON (line {exc.lineno}, column {exc.colno})"
        raise DataError(f"ATT&CK bundle {path} {what}") from exc
    if not isinstance(bundle, dict) or not isinstance(bundle.get("objects"), list):
        raise DataError(f"{path} is not a STIX bundle (no 'objects' list)")
    if not any(
        isinstance(o, dict) and o.get("type") == "attack-pattern" for o in bundle["objects"]
    ):
        raise DataError(f"{path} holds no ATT&CK techniques (no attack-pattern objects)")
    return bundle


def _external_id(obj: dict[str, Any]) -> str | None:
    for ref in obj.get("external_references", ()):
        if ref.get("source_name") in ("mitre-attack", "mitre-ics-attack", "mitre-mobile-attack"):
            found = ref.get("external_id")
            return found if isinstance(found, str) else None
    return None


def _current(obj: dict[str, Any]) -> bool:
    """Neither revoked nor deprecated."""
    return not (obj.get("revoked") or obj.get("x_mitre_deprecated"))


class _Bundle:
    """A bundle's objects by type, and every object's ATT&CK id by its STIX id."""

    def __init__(self, bundle: dict[str, Any]) -> None:
        self.by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.by_stix: dict[str, dict[str, Any]] = {}
        for o in bundle.get("objects", ()):
            if isinstance(o, dict) and isinstance(o.get("id"), str):
                self.by_type[str(o.get("type", ""))].append(o)
                self.by_stix[o["id"]] = o
        self.ids = {stix: _external_id(o) or stix for stix, o in self.by_stix.items()}

    def of(self, kind: str, current: bool = True) -> list[dict[str, Any]]:
        """The objects of one type; by default without revoked or deprecated ones."""
        objects = self.by_type.get(kind, [])
        return [o for o in objects if _current(o)] if current else objects


def parse_bundle(bundle: dict[str, Any], version: str | None) -> dict[str, Any]:
    """Everything `AttackKB` holds, read from a bundle, as its constructor's arguments."""
    b = _Bundle(bundle)
    collection = next(iter(b.of("x-mitre-collection", current=False)), None)
    if collection and collection.get("x_mitre_version"):
        version = str(collection["x_mitre_version"])
    tactics = _parse_tactics(b)
    techniques = _parse_techniques(b, tactics)
    entities = _parse_entities(b)
    links = _Links(b, set(techniques))
    links.read(b.of("relationship"))
    return dict(
        version=version or "unknown",
        tactics=tactics,
        _techniques=dict(sorted(techniques.items())),
        groups=entities["group"],
        software=entities["software"],
        campaigns=entities["campaign"],
        procedures=links.procedures,
        revoked_map=links.revoked_map,
        mitigations=_parse_mitigations(b),
        mitigated_by={tid: sorted(found) for tid, found in links.mitigated_by.items()},
        detection_strategies=_parse_detection_strategies(b),
        data_components=_parse_data_components(b),
        detected_by=dict(links.detected_by),
        software_used=dict(links.software_used),
        attributed_to=dict(links.attributed_to),
    )


def _parse_tactics(b: _Bundle) -> list[Tactic]:
    """Tactics, in matrix order when the bundle has a matrix."""
    objects = b.of("x-mitre-tactic")
    matrix = next(iter(b.of("x-mitre-matrix", current=False)), None)
    if matrix and matrix.get("tactic_refs"):
        order = {ref: i for i, ref in enumerate(matrix["tactic_refs"])}
        objects.sort(key=lambda o: order.get(o["id"], len(order)))
    return [
        Tactic(id=b.ids[o["id"]], name=o["name"], shortname=o.get("x_mitre_shortname", ""))
        for o in objects
    ]


def _parse_techniques(b: _Bundle, tactics: list[Tactic]) -> dict[str, Technique]:
    """Techniques and sub-techniques by ATT&CK id, revoked and deprecated ones included
    (they are flagged: old analyses name them)."""
    by_short = {t.shortname: t for t in tactics}
    techniques: dict[str, Technique] = {}
    for o in b.of("attack-pattern", current=False):
        tid = _external_id(o)
        if not tid or not _TECHNIQUE_ID.match(tid):
            continue
        phases = {
            by_short[p["phase_name"]]
            for p in o.get("kill_chain_phases", ())
            if p.get("phase_name") in by_short
        }
        is_sub = bool(o.get("x_mitre_is_subtechnique")) or "." in tid
        technique = Technique(
            id=tid,
            name=o.get("name", tid),
            tactics=tuple(sorted(phases, key=tactics.index)),
            url=technique_url(tid),
            is_subtechnique=is_sub,
            parent=tid.split(".")[0] if is_sub else None,
            description=clean_attack_text(o.get("description", "")),
            platforms=tuple(o.get("x_mitre_platforms", ())),
            deprecated=bool(o.get("x_mitre_deprecated")),
            revoked=bool(o.get("revoked")),
            stix_id=o["id"],
        )
        # Ids can repeat across revoked copies: keep the active one.
        if tid not in techniques or (technique.active and not techniques[tid].active):
            techniques[tid] = technique
    return techniques


_ENTITY_KINDS = {
    "intrusion-set": "group",
    "malware": "malware",
    "tool": "tool",
    "campaign": "campaign",
}


def _parse_entities(b: _Bundle) -> dict[str, list[Entity]]:
    """Groups, software (malware and tools) and campaigns, each list sorted by id."""
    out: dict[str, list[Entity]] = {"group": [], "software": [], "campaign": []}
    for stix_type, kind in _ENTITY_KINDS.items():
        for o in b.of(stix_type):
            names = (*o.get("aliases", ()), *o.get("x_mitre_aliases", ()))
            entity = Entity(
                id=b.ids[o["id"]],
                name=o.get("name", ""),
                kind=kind,
                aliases=tuple(dict.fromkeys(a for a in names if a != o.get("name"))),
                description=clean_attack_text(o.get("description", "")),
                stix_id=o["id"],
            )
            out["software" if kind in ("malware", "tool") else kind].append(entity)
    return {kind: sorted(entities, key=lambda e: e.id) for kind, entities in out.items()}


def _parse_mitigations(b: _Bundle) -> dict[str, Mitigation]:
    """Current mitigations (the deprecated pre-2019 per-technique ones are left out)."""
    found = (
        Mitigation(b.ids[o["id"]], o.get("name", ""), clean_attack_text(o.get("description", "")))
        for o in b.of("course-of-action")
    )
    return {m.id: m for m in sorted(found, key=lambda m: m.id)}


def _log_sources(b: _Bundle, rows: Any) -> tuple[LogSource, ...]:
    return tuple(
        LogSource(
            str(r.get("name", "")),
            str(r.get("channel", "")),
            b.ids.get(r.get("x_mitre_data_component_ref", ""), ""),
        )
        for r in rows or ()
        if isinstance(r, dict)
    )


def _parse_detection_strategies(b: _Bundle) -> dict[str, DetectionStrategy]:
    """ATT&CK 18's detection strategies, each with its analytics and their log sources."""
    analytics = {
        o["id"]: Analytic(
            id=b.ids[o["id"]],
            platforms=tuple(o.get("x_mitre_platforms", ())),
            description=clean_attack_text(o.get("description", "")),
            log_sources=_log_sources(b, o.get("x_mitre_log_source_references")),
        )
        for o in b.of("x-mitre-analytic")
    }
    found = (
        DetectionStrategy(
            b.ids[o["id"]],
            o.get("name", ""),
            tuple(analytics[r] for r in o.get("x_mitre_analytic_refs", ()) if r in analytics),
        )
        for o in b.of("x-mitre-detection-strategy")
    )
    return {d.id: d for d in sorted(found, key=lambda d: d.id)}


def _parse_data_components(b: _Bundle) -> dict[str, DataComponent]:
    found = (
        DataComponent(
            b.ids[o["id"]],
            o.get("name", ""),
            clean_attack_text(o.get("description", "")),
            _log_sources(b, o.get("x_mitre_log_sources")),
        )
        for o in b.of("x-mitre-data-component")
    )
    return {c.id: c for c in sorted(found, key=lambda c: c.id)}


class _Links:
    """The relationships MitreMap keeps, read into id → ids tables, one reader per kind."""

    def __init__(self, b: _Bundle, technique_ids: set[str]) -> None:
        self._b = b
        self._techniques = technique_ids
        self.revoked_map: dict[str, str] = {}
        self.procedures: list[Procedure] = []
        self.mitigated_by: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self.detected_by: dict[str, list[str]] = defaultdict(list)
        self.software_used: dict[str, list[str]] = defaultdict(list)
        self.attributed_to: dict[str, list[str]] = defaultdict(list)
        self._readers: dict[str, Callable[[dict[str, Any], dict[str, Any], dict[str, Any]], None]]
        self._readers = {
            "revoked-by": self._revoked_by,
            "uses": self._uses,
            "mitigates": self._mitigates,
            "detects": self._detects,
            "attributed-to": self._attributed_to,
        }

    def read(self, relationships: list[dict[str, Any]]) -> None:
        for o in relationships:
            reader = self._readers.get(o.get("relationship_type", ""))
            source = self._b.by_stix.get(o.get("source_ref", ""))
            target = self._b.by_stix.get(o.get("target_ref", ""))
            if reader is not None and source is not None and target is not None:
                reader(o, source, target)

    def _technique(self, obj: dict[str, Any]) -> str | None:
        tid = self._b.ids[obj["id"]]
        return tid if obj.get("type") == "attack-pattern" and tid in self._techniques else None

    def _revoked_by(
        self, _: dict[str, Any], source: dict[str, Any], target: dict[str, Any]
    ) -> None:
        old, new = self._technique(source), self._technique(target)
        if old and new and old != new:
            self.revoked_map[old] = new

    def _uses(self, o: dict[str, Any], source: dict[str, Any], target: dict[str, Any]) -> None:
        if not (_current(source) and _current(target)):
            return
        user = self._b.ids[source["id"]]
        if target.get("type") in ("malware", "tool"):
            self.software_used[user].append(self._b.ids[target["id"]])
            return
        tid = self._technique(target)
        text = clean_attack_text(o.get("description", ""))
        if tid and text:
            self.procedures.append(Procedure(tid, text, user, source.get("name", "")))

    def _mitigates(self, o: dict[str, Any], source: dict[str, Any], target: dict[str, Any]) -> None:
        tid = self._technique(target)
        if tid and _current(source):
            how = clean_attack_text(o.get("description", ""))
            self.mitigated_by[tid].append((self._b.ids[source["id"]], how))

    def _detects(self, _: dict[str, Any], source: dict[str, Any], target: dict[str, Any]) -> None:
        tid = self._technique(target)
        if tid and _current(source):
            self.detected_by[tid].append(self._b.ids[source["id"]])

    def _attributed_to(
        self, _: dict[str, Any], source: dict[str, Any], target: dict[str, Any]
    ) -> None:
        if _current(source) and _current(target):
            self.attributed_to[self._b.ids[source["id"]]].append(self._b.ids[target["id"]])
