"""The ATT&CK knowledge base: techniques, tactics, groups, software, campaigns and procedures.

`AttackKB` is built from an ATT&CK Enterprise STIX 2.x bundle (plain or gzip). Parsing the
34 MB bundle takes about half a second; a compact JSON index of what MitreMap uses is cached
beside the user cache so that later loads skip it. The index is keyed by the bundle's path,
size and modification time, so a changed bundle is parsed again.
"""

from __future__ import annotations

import difflib
import gzip
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mitremap.errors import DataError, UnknownTechniqueError
from mitremap.sources import DEFAULT_ATTACK_VERSION

ATTACK_URL = "https://attack.mitre.org"
_INDEX_SCHEMA = 1  # bump when the cached index layout changes

_TECHNIQUE_ID = re.compile(r"^T\d{4}(?:\.\d{3})?$")
_TACTIC_ID = re.compile(r"^TA\d{4}$")
_CITATION = re.compile(r"\s*\(Citation:[^)]*\)")
_MARKDOWN_LINK = re.compile(r"\[([^\]]+)\]\((?:https?://[^)\s]+)\)")
_VERSION_IN_NAME = re.compile(r"(\d+\.\d+)")


@dataclass(frozen=True)
class Tactic:
    """An ATT&CK tactic (the "why" of a technique), e.g. TA0002 Execution."""

    id: str
    name: str
    shortname: str

    @property
    def url(self) -> str:
        return f"{ATTACK_URL}/tactics/{self.id}/"


@dataclass(frozen=True)
class Technique:
    """An ATT&CK technique or sub-technique."""

    id: str
    name: str
    tactics: tuple[Tactic, ...]
    url: str
    is_subtechnique: bool
    parent: str | None
    description: str
    platforms: tuple[str, ...]
    deprecated: bool = False
    revoked: bool = False
    stix_id: str = ""

    @property
    def active(self) -> bool:
        return not (self.deprecated or self.revoked)

    @property
    def tactic_names(self) -> list[str]:
        return [t.name for t in self.tactics]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "tactics": [{"id": t.id, "name": t.name} for t in self.tactics],
            "url": self.url,
            "is_subtechnique": self.is_subtechnique,
            "parent": self.parent,
            "platforms": list(self.platforms),
            "deprecated": self.deprecated,
            "revoked": self.revoked,
            "description": self.description,
        }


@dataclass(frozen=True)
class Entity:
    """A group, software (malware or tool) or campaign, with its aliases."""

    id: str
    name: str
    kind: str  # "group" | "malware" | "tool" | "campaign"
    aliases: tuple[str, ...] = ()
    description: str = ""
    stix_id: str = ""

    @property
    def url(self) -> str:
        path = {"group": "groups", "campaign": "campaigns"}.get(self.kind, "software")
        return f"{ATTACK_URL}/{path}/{self.id}/"


@dataclass(frozen=True)
class Procedure:
    """A procedure example: how one group, software or campaign used one technique."""

    technique: str
    text: str
    source_id: str
    source_name: str


@dataclass(frozen=True)
class SearchResult:
    """One `AttackKB.search` match: a technique, tactic or entity, and the name that matched."""

    id: str
    name: str
    kind: str
    matched: str
    score: float


def technique_url(technique_id: str) -> str:
    """The ATT&CK page of a technique: T1053.005 → https://attack.mitre.org/techniques/T1053/005/."""
    return f"{ATTACK_URL}/techniques/{technique_id.replace('.', '/')}/"


def clean_attack_text(text: str) -> str:
    """Strip `(Citation: …)` markers and turn ATT&CK's markdown links into their names."""
    text = _CITATION.sub("", text)
    text = _MARKDOWN_LINK.sub(r"\1", text)
    return re.sub(r"[ \t]+", " ", text).strip()


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

    # ---- construction ---------------------------------------------------------------
    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], version: str | None = None, cache_dir: Path | None = None
    ) -> AttackKB:
        """Load a bundle, using (and refreshing) the compact index in `cache_dir` when given."""
        path = Path(path)
        if not path.is_file():
            raise DataError(f"ATT&CK bundle not found: {path}")
        index_path = _index_path(path, cache_dir) if cache_dir is not None else None
        if index_path is not None and index_path.is_file():
            try:
                kb = cls._from_index(json.loads(index_path.read_text(encoding="utf-8")))
                if version is None or kb.version == version:
                    return kb
            except (ValueError, KeyError, TypeError):
                pass  # a stale or damaged index is rebuilt below
        kb = cls.from_bundle(_read_bundle(path), version=version or _version_from_name(path))
        kb.source = str(path)
        if index_path is not None:
            _write_atomically(index_path, json.dumps(kb._to_index(), separators=(",", ":")))
        return kb

    @classmethod
    def from_bundle(cls, bundle: dict[str, Any], version: str | None = None) -> AttackKB:
        """Build from a parsed STIX bundle (dict with an `objects` list)."""
        return _parse_bundle(bundle, version)

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

    # ---- cached index -----------------------------------------------------------------
    def _to_index(self) -> dict[str, Any]:
        return {
            "schema": _INDEX_SCHEMA,
            "version": self.version,
            "source": self.source,
            "tactics": [asdict(t) for t in self.tactics],
            "techniques": [
                [
                    t.id,
                    t.name,
                    [x.id for x in t.tactics],
                    t.is_subtechnique,
                    t.parent,
                    t.description,
                    list(t.platforms),
                    t.deprecated,
                    t.revoked,
                    t.stix_id,
                ]
                for t in self._techniques.values()
            ],
            "entities": [
                [e.id, e.name, e.kind, list(e.aliases), e.description, e.stix_id]
                for e in self.entities
            ],
            "procedures": [
                [p.technique, p.text, p.source_id, p.source_name] for p in self.procedures
            ],
            "revoked": self.revoked_map,
        }

    @classmethod
    def _from_index(cls, data: dict[str, Any]) -> AttackKB:
        if data.get("schema") != _INDEX_SCHEMA:
            raise ValueError("old index schema")
        tactics = [Tactic(**t) for t in data["tactics"]]
        by_id = {t.id: t for t in tactics}
        techniques = {
            row[0]: Technique(
                id=row[0],
                name=row[1],
                tactics=tuple(by_id[x] for x in row[2]),
                url=technique_url(row[0]),
                is_subtechnique=row[3],
                parent=row[4],
                description=row[5],
                platforms=tuple(row[6]),
                deprecated=row[7],
                revoked=row[8],
                stix_id=row[9],
            )
            for row in data["techniques"]
        }
        entities = [Entity(r[0], r[1], r[2], tuple(r[3]), r[4], r[5]) for r in data["entities"]]
        return cls(
            version=data["version"],
            tactics=tactics,
            _techniques=techniques,
            groups=[e for e in entities if e.kind == "group"],
            software=[e for e in entities if e.kind in ("malware", "tool")],
            campaigns=[e for e in entities if e.kind == "campaign"],
            procedures=[Procedure(*row) for row in data["procedures"]],
            revoked_map=dict(data["revoked"]),
            source=data.get("source", ""),
        )


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


# ---- parsing ----------------------------------------------------------------------------


def _read_bundle(path: Path) -> dict[str, Any]:
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
            return ref.get("external_id")
    return None


def _parse_bundle(bundle: dict[str, Any], version: str | None) -> AttackKB:
    objects = [o for o in bundle.get("objects", ()) if isinstance(o, dict)]
    by_stix: dict[str, dict[str, Any]] = {o["id"]: o for o in objects if "id" in o}

    collection = next((o for o in objects if o.get("type") == "x-mitre-collection"), None)
    if collection and collection.get("x_mitre_version"):
        version = str(collection["x_mitre_version"])

    # Tactics, in matrix order when the bundle has a matrix.
    tactic_objs = [o for o in objects if o.get("type") == "x-mitre-tactic"]
    matrix = next((o for o in objects if o.get("type") == "x-mitre-matrix"), None)
    if matrix and matrix.get("tactic_refs"):
        order = {ref: i for i, ref in enumerate(matrix["tactic_refs"])}
        tactic_objs.sort(key=lambda o: order.get(o["id"], len(order)))
    tactics = [
        Tactic(
            id=_external_id(o) or o["id"], name=o["name"], shortname=o.get("x_mitre_shortname", "")
        )
        for o in tactic_objs
        if not o.get("x_mitre_deprecated") and not o.get("revoked")
    ]
    by_short = {t.shortname: t for t in tactics}

    techniques: dict[str, Technique] = {}
    stix_to_tid: dict[str, str] = {}
    for o in objects:
        if o.get("type") != "attack-pattern":
            continue
        tid = _external_id(o)
        if not tid or not _TECHNIQUE_ID.match(tid):
            continue
        phases = [
            by_short[p["phase_name"]]
            for p in o.get("kill_chain_phases", ())
            if p.get("phase_name") in by_short
        ]
        is_sub = bool(o.get("x_mitre_is_subtechnique")) or "." in tid
        technique = Technique(
            id=tid,
            name=o.get("name", tid),
            tactics=tuple(sorted(set(phases), key=tactics.index)),
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
        stix_to_tid[o["id"]] = tid

    revoked_map: dict[str, str] = {}
    procedures: list[Procedure] = []
    for o in objects:
        if o.get("type") != "relationship" or o.get("revoked") or o.get("x_mitre_deprecated"):
            continue
        kind = o.get("relationship_type")
        if kind == "revoked-by":
            src, dst = stix_to_tid.get(o["source_ref"]), stix_to_tid.get(o["target_ref"])
            if src and dst and src != dst:
                revoked_map[src] = dst
        elif kind == "uses" and o.get("target_ref", "").startswith("attack-pattern--"):
            tid = stix_to_tid.get(o["target_ref"])
            source = by_stix.get(o.get("source_ref", ""))
            text = clean_attack_text(o.get("description", ""))
            if tid and source and text and not source.get("revoked"):
                procedures.append(
                    Procedure(
                        tid, text, _external_id(source) or source["id"], source.get("name", "")
                    )
                )

    entities: dict[str, list[Entity]] = {"group": [], "software": [], "campaign": []}
    kinds = {"intrusion-set": "group", "malware": "malware", "tool": "tool", "campaign": "campaign"}
    for o in objects:
        kind = kinds.get(o.get("type", ""))
        if not kind or o.get("revoked") or o.get("x_mitre_deprecated"):
            continue
        aliases = [
            a for a in (*o.get("aliases", ()), *o.get("x_mitre_aliases", ())) if a != o.get("name")
        ]
        entity = Entity(
            id=_external_id(o) or o["id"],
            name=o.get("name", ""),
            kind=kind,
            aliases=tuple(dict.fromkeys(aliases)),
            description=clean_attack_text(o.get("description", "")),
            stix_id=o["id"],
        )
        entities["software" if kind in ("malware", "tool") else kind].append(entity)

    return AttackKB(
        version=version or "unknown",
        tactics=tactics,
        _techniques=dict(sorted(techniques.items())),
        groups=sorted(entities["group"], key=lambda e: e.id),
        software=sorted(entities["software"], key=lambda e: e.id),
        campaigns=sorted(entities["campaign"], key=lambda e: e.id),
        procedures=procedures,
        revoked_map=revoked_map,
    )


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


def _index_path(bundle: Path, cache_dir: Path) -> Path:
    stat = bundle.stat()
    key = f"{bundle.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{_INDEX_SCHEMA}"
    return cache_dir / f"attack-{hashlib.sha256(key.encode()).hexdigest()[:20]}.json"


def _write_atomically(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so readers never see half a file."""
    from mitremap.errors import OutputError
    from mitremap.files import write_text

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, text)
    except (OSError, OutputError):
        pass  # the cache is an optimisation: a read-only cache folder must not stop a load
