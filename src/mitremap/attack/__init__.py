"""The ATT&CK knowledge base: techniques, tactics, groups, software, campaigns and procedures,
and what defends against a technique (mitigations, detection strategies with their analytics).

`AttackKB` is built from an ATT&CK Enterprise STIX 2.x bundle (plain or gzip). Parsing the
34 MB bundle takes well under a second; a compact JSON index of what MitreMap uses is cached
beside the user cache so that later loads skip it (`_index`: keyed by the bundle's path, size
and modification time, so a changed bundle is parsed again).

The bundle is read one object kind at a time (`_bundle`); its relationships become plain
id → ids tables. The questions asked of them (how to defend, who works alike) are answered in
`mitremap.defend` and `mitremap.similar`, not here; the objects are in `_objects`.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mitremap.attack import _index
from mitremap.attack._bundle import parse_bundle, read_bundle
from mitremap.attack._objects import (
    ATTACK_URL,
    Analytic,
    DataComponent,
    DetectionStrategy,
    Entity,
    LogSource,
    Mitigation,
    Procedure,
    SearchResult,
    Tactic,
    Technique,
    clean_attack_text,
    technique_url,
)
from mitremap.errors import DataError, UnknownTechniqueError
from mitremap.sources import DEFAULT_ATTACK_VERSION

__all__ = [
    "ATTACK_URL",
    "Analytic",
    "AttackKB",
    "DataComponent",
    "DetectionStrategy",
    "Entity",
    "LogSource",
    "Mitigation",
    "Procedure",
    "SearchResult",
    "Tactic",
    "Technique",
    "clean_attack_text",
    "load_attack",
    "technique_url",
]

_VERSION_IN_NAME = re.compile(r"(\d+\.\d+)")


@dataclass
class AttackKB:
    """ATT&CK Enterprise as MitreMap uses it. Build with `load_attack` or `AttackKB.from_file`."""

    version: str
    tactics: list[Tactic]
    _techniques: dict[str, Technique]
    groups: list[Entity] = field(default_factory=list)
    software: list[Entity] = field(default_factory=list)
    campaigns: list[Entity] = field(default_factory=list)
    procedures: list[Procedure] = field(default_factory=list)
    revoked_map: dict[str, str] = field(default_factory=dict)
    source: str = ""
    mitigations: dict[str, Mitigation] = field(default_factory=dict)
    # technique id → (mitigation id, how it applies to this technique), as ATT&CK links them
    mitigated_by: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    detection_strategies: dict[str, DetectionStrategy] = field(default_factory=dict)
    data_components: dict[str, DataComponent] = field(default_factory=dict)
    # technique id → ids of the detection strategies (or, before ATT&CK 18, data components)
    detected_by: dict[str, list[str]] = field(default_factory=dict)
    # group or campaign id → ids of the software it uses; campaign id → group ids
    software_used: dict[str, list[str]] = field(default_factory=dict)
    attributed_to: dict[str, list[str]] = field(default_factory=dict)

    # ---- construction ---------------------------------------------------------------
    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], version: str | None = None, cache_dir: Path | None = None
    ) -> AttackKB:
        """Load a bundle, using (and refreshing) the compact index in `cache_dir` when given."""
        path = Path(path)
        if not path.is_file():
            raise DataError(f"ATT&CK bundle not found: {path}")
        index = _index.index_path(path, cache_dir) if cache_dir is not None else None
        if index is not None and index.is_file():
            try:
                kb = cls(**_index.from_index(json.loads(index.read_text(encoding="utf-8"))))
                if version is None or kb.version == version:
                    return kb
            except (ValueError, KeyError, TypeError):
                pass  # a stale or damaged index is rebuilt below
        kb = cls.from_bundle(read_bundle(path), version=version or _version_from_name(path))
        kb.source = str(path)
        if index is not None:
            _index.write_atomically(index, json.dumps(_index.to_index(kb), separators=(",", ":")))
        return kb

    @classmethod
    def from_bundle(cls, bundle: dict[str, Any], version: str | None = None) -> AttackKB:
        """Build from a parsed STIX bundle (dict with an `objects` list)."""
        return cls(**parse_bundle(bundle, version))

    # ---- look-ups ---------------------------------------------------------------------
    def __getitem__(self, technique_id: str) -> Technique:
        technique = self._techniques.get(_normalise_id(technique_id))
        if technique is None:
            raise UnknownTechniqueError(self._unknown_message(technique_id))
        return technique

    def __contains__(self, technique_id: object) -> bool:
        return isinstance(technique_id, str) and _normalise_id(technique_id) in self._techniques

    def __len__(self) -> int:
        return len(self._techniques)

    def __iter__(self) -> Iterator[Technique]:
        return iter(self._techniques.values())

    def get(self, technique_id: str, default: Technique | None = None) -> Technique | None:
        return self._techniques.get(_normalise_id(technique_id), default)

    def resolve(self, technique_id: str) -> Technique:
        """The current technique for an id: revoked ids follow `revoked-by` to their replacement."""
        current = _normalise_id(technique_id)
        seen = set()
        while current in self.revoked_map and current not in seen:
            seen.add(current)
            current = self.revoked_map[current]
        return self[current]

    def techniques(self, active_only: bool = True) -> list[Technique]:
        """All techniques and sub-techniques, sorted by id; by default without revoked/deprecated."""
        items = sorted(self._techniques.values(), key=lambda t: t.id)
        return [t for t in items if t.active] if active_only else items

    def subtechniques(self, technique_id: str) -> list[Technique]:
        parent = self[technique_id].id
        return [t for t in self.techniques() if t.parent == parent]

    def tactic(self, key: str) -> Tactic:
        """A tactic by id (TA0002), name (Execution) or shortname (execution)."""
        lowered = key.strip().lower()
        for tactic in self.tactics:
            if lowered in (tactic.id.lower(), tactic.name.lower(), tactic.shortname):
                return tactic
        raise UnknownTechniqueError(f"Unknown ATT&CK tactic {key!r} in ATT&CK {self.version}")

    @property
    def entities(self) -> list[Entity]:
        return [*self.groups, *self.software, *self.campaigns]

    def search(self, query: str, limit: int = 10) -> list[SearchResult]:
        """Techniques, tactics, groups, software and campaigns whose id, name or alias matches.

        Exact and substring matches rank first, then close spellings (difflib).
        """
        words = query.strip().lower()
        if not words:
            return []
        candidates: list[tuple[str, str, str, str]] = []  # id, name, kind, text to match
        for t in self.techniques():
            candidates.append((t.id, t.name, "technique", t.id))
            candidates.append((t.id, t.name, "technique", t.name))
            if t.parent:
                parent = self._techniques.get(t.parent)
                if parent is not None:
                    candidates.append((t.id, t.name, "technique", f"{parent.name}: {t.name}"))
        for tactic in self.tactics:
            candidates.append((tactic.id, tactic.name, "tactic", tactic.name))
            candidates.append((tactic.id, tactic.name, "tactic", tactic.id))
        for e in self.entities:
            for name in (e.id, e.name, *e.aliases):
                candidates.append((e.id, e.name, e.kind, name))
        scored: dict[str, SearchResult] = {}
        for ident, name, kind, text in candidates:
            score = _match_score(words, text.lower())
            if score > 0 and (ident not in scored or scored[ident].score < score):
                scored[ident] = SearchResult(ident, name, kind, text, score)
        ranked = sorted(scored.values(), key=lambda r: (-r.score, r.id))
        return ranked[:limit]

    def procedures_for(self, technique_id: str) -> list[Procedure]:
        tid = self[technique_id].id
        return [p for p in self.procedures if p.technique == tid]

    def closest_ids(self, technique_id: str, n: int = 3) -> list[str]:
        pool = list(self._techniques) + [t.id for t in self.tactics]
        return difflib.get_close_matches(technique_id.strip().upper(), pool, n=n, cutoff=0.5)

    def _unknown_message(self, technique_id: str) -> str:
        message = f"Unknown ATT&CK id {technique_id!r} in ATT&CK {self.version}"
        close = self.closest_ids(technique_id)
        if close:
            names = ", ".join(f"{i} ({self._name_of(i)})" for i in close)
            message += f"; closest: {names}"
        return message

    def _name_of(self, ident: str) -> str:
        if ident in self._techniques:
            return self._techniques[ident].name
        return next((t.name for t in self.tactics if t.id == ident), "")


def load_attack(
    path: str | os.PathLike[str] | None = None,
    version: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
) -> AttackKB:
    """Load ATT&CK Enterprise: from `path`, or wherever `mitremap.data` finds the bundle."""
    from mitremap.data import DataResolver

    resolver = DataResolver(data_dir=data_dir)
    if path is None:
        path = resolver.attack_bundle(version or DEFAULT_ATTACK_VERSION)
    cache_dir = resolver.cache_dir / "attack-index" if use_cache else None
    return AttackKB.from_file(path, version=version, cache_dir=cache_dir)


def _normalise_id(technique_id: str) -> str:
    return technique_id.strip().upper().replace("/", ".")


def _match_score(query: str, text: str) -> float:
    if query == text:
        return 3.0
    if text.startswith(query):
        return 2.0 + len(query) / max(len(text), 1)
    if query in text:
        return 1.5 + len(query) / max(len(text), 1)
    words = query.split()
    if len(words) > 1 and all(w in text for w in words):
        return 1.2
    ratio = difflib.SequenceMatcher(None, query, text).ratio()
    return ratio if ratio >= 0.75 else 0.0


def _version_from_name(path: Path) -> str | None:
    match = _VERSION_IN_NAME.search(path.name)
    return match.group(1) if match else None
