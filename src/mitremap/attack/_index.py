"""The knowledge base's on-disk index: what MitreMap uses of a bundle, as compact JSON.

Keyed by the bundle's path, size and modification time and by `INDEX_SCHEMA`, so a changed
bundle, or an index of another layout, is parsed again.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    technique_url,
)

if TYPE_CHECKING:
    from mitremap.attack import AttackKB

INDEX_SCHEMA = 2  # bump when the cached index layout changes (2: mitigations, detections)


def to_index(kb: AttackKB, *, compact: bool = False) -> dict[str, Any]:
    """The compact JSON index of a knowledge base. `compact`: without what only training and
    reading need (procedure texts, the descriptions of groups and software), for a model to
    carry (`mitremap.classify.knowledge`): who uses what stays, as procedures without text."""
    return {
        "schema": INDEX_SCHEMA,
        "version": kb.version,
        "source": kb.source,
        "tactics": [asdict(t) for t in kb.tactics],
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
            for t in kb._techniques.values()
        ],
        "entities": [
            [e.id, e.name, e.kind, list(e.aliases), "" if compact else e.description, e.stix_id]
            for e in kb.entities
        ],
        "procedures": _procedure_rows(kb, compact),
        "revoked": kb.revoked_map,
        "mitigations": [[m.id, m.name, m.description] for m in kb.mitigations.values()],
        "mitigated_by": kb.mitigated_by,
        "detection_strategies": [
            [d.id, d.name, [_analytic_row(a) for a in d.analytics]]
            for d in kb.detection_strategies.values()
        ],
        "data_components": [
            [c.id, c.name, c.description, [list(s) for s in _source_rows(c.log_sources)]]
            for c in kb.data_components.values()
        ],
        "detected_by": kb.detected_by,
        "software_used": kb.software_used,
        "attributed_to": kb.attributed_to,
    }


def _procedure_rows(kb: AttackKB, compact: bool) -> list[list[str]]:
    if not compact:
        return [[p.technique, p.text, p.source_id, p.source_name] for p in kb.procedures]
    pairs = {(p.technique, p.source_id): p.source_name for p in kb.procedures}
    return [[technique, "", source, name] for (technique, source), name in sorted(pairs.items())]


def from_index(data: dict[str, Any]) -> dict[str, Any]:
    """`AttackKB`'s constructor arguments from an index; ValueError for another schema."""
    if not isinstance(data, dict) or data.get("schema") != INDEX_SCHEMA:
        raise ValueError("old index schema")
    tactics = [Tactic(**t) for t in data["tactics"]]
    by_id = {t.id: t for t in tactics}
    techniques = {row[0]: _technique_from_row(row, by_id) for row in data["techniques"]}
    entities = [Entity(r[0], r[1], r[2], tuple(r[3]), r[4], r[5]) for r in data["entities"]]
    return dict(
        version=data["version"],
        tactics=tactics,
        _techniques=techniques,
        groups=[e for e in entities if e.kind == "group"],
        software=[e for e in entities if e.kind in ("malware", "tool")],
        campaigns=[e for e in entities if e.kind == "campaign"],
        procedures=[Procedure(*row) for row in data["procedures"]],
        revoked_map=dict(data["revoked"]),
        source=data.get("source", ""),
        **_defence_from_index(data),
    )


def _technique_from_row(row: list[Any], tactics: dict[str, Tactic]) -> Technique:
    return Technique(
        id=row[0],
        name=row[1],
        tactics=tuple(tactics[x] for x in row[2]),
        url=technique_url(row[0]),
        is_subtechnique=row[3],
        parent=row[4],
        description=row[5],
        platforms=tuple(row[6]),
        deprecated=row[7],
        revoked=row[8],
        stix_id=row[9],
    )


def _defence_from_index(data: dict[str, Any]) -> dict[str, Any]:
    """The cached index's mitigations, detections and links, as `AttackKB` arguments."""
    return {
        "mitigations": {r[0]: Mitigation(*r) for r in data["mitigations"]},
        "mitigated_by": {k: [(m, how) for m, how in v] for k, v in data["mitigated_by"].items()},
        "detection_strategies": {
            r[0]: DetectionStrategy(r[0], r[1], tuple(_analytic_from_row(a) for a in r[2]))
            for r in data["detection_strategies"]
        },
        "data_components": {
            r[0]: DataComponent(r[0], r[1], r[2], tuple(LogSource(*x) for x in r[3]))
            for r in data["data_components"]
        },
        "detected_by": data["detected_by"],
        "software_used": data["software_used"],
        "attributed_to": data["attributed_to"],
    }


def _source_rows(sources: tuple[LogSource, ...]) -> list[tuple[str, str, str]]:
    return [(s.name, s.channel, s.data_component) for s in sources]


def _analytic_row(a: Analytic) -> list[Any]:
    return [a.id, list(a.platforms), a.description, [list(s) for s in _source_rows(a.log_sources)]]


def _analytic_from_row(row: list[Any]) -> Analytic:
    return Analytic(row[0], tuple(row[1]), row[2], tuple(LogSource(*s) for s in row[3]))


def index_path(bundle: Path, cache_dir: Path) -> Path:
    stat = bundle.stat()
    key = f"{bundle.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{INDEX_SCHEMA}"
    return cache_dir / f"attack-{hashlib.sha256(key.encode()).hexdigest()[:20]}.json"


def write_atomically(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so readers never see half a file."""
    from mitremap.errors import OutputError
    from mitremap.files import write_text

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, text)
    except (OSError, OutputError):
        pass  # the cache is an optimisation: a read-only cache folder must not stop a load
