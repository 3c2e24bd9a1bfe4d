"""Two analyses compared: techniques only in A, only in B, and in both, with confidences.

Why: comparing two campaigns (or one report before and after an update) technique by technique
is the analyst's standard move, usually done by hand in ATT&CK Navigator; this does it on the
analyses' JSON form (`Analysis.to_dict()`, the CLI's `--format json`) and writes the three sets
as one Navigator layer (`mitremap.export.diff_layer`). Two analyses may come from different ATT&CK versions: every id is read
in the knowledge base given, so an id revoked since (T1086) counts as its replacement
(T1059.001) and a deprecated one stays as it is, and each such reading is reported.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mitremap.errors import InputError
from mitremap.schema import SCHEMA_VERSION

if TYPE_CHECKING:
    from mitremap.attack import AttackKB
    from mitremap.schema import DiffJSON, IdChangeJSON, TechniqueDiffJSON

_TECHNIQUE_ID = re.compile(r"^T\d{4}(?:\.\d{3})?$")
MAX_TECHNIQUES = 5_000  # an analysis lists at most a few hundred; more is not an analysis


@dataclass(frozen=True)
class TechniqueDiff:
    """A technique and its confidence in each analysis (None where it is absent)."""

    technique: str
    name: str
    a: float | None
    b: float | None
    tactics: tuple[str, ...] = ()  # tactic shortnames, for the layer

    @property
    def side(self) -> str:
        if self.a is not None and self.b is not None:
            return "both"
        return "only_a" if self.a is not None else "only_b"

    def to_dict(self) -> TechniqueDiffJSON:
        out: TechniqueDiffJSON = {
            "technique": self.technique,
            "technique_name": self.name,
            "tactics": list(self.tactics),
        }
        if self.a is not None:
            out["confidence_a"] = round(self.a, 4)
        if self.b is not None:
            out["confidence_b"] = round(self.b, 4)
        return out


@dataclass(frozen=True)
class IdChange:
    """An id read differently in today's ATT&CK: revoked (→ replacement), deprecated, unknown."""

    analysis: str  # "A" | "B"
    was: str
    now: str | None
    why: str  # "revoked" | "deprecated" | "unknown"

    def to_dict(self) -> IdChangeJSON:
        return {
            "analysis": self.analysis,
            "was": self.was,
            "now": self.now,
            "why": self.why,
        }


@dataclass(frozen=True)
class AnalysisDiff:
    """The comparison: three sets of techniques and every id read differently."""

    a_name: str
    b_name: str
    attack_version: str
    techniques: tuple[TechniqueDiff, ...]
    changes: tuple[IdChange, ...] = ()

    def of(self, side: str) -> list[TechniqueDiff]:
        """One set, best first: `only_a`, `only_b` or `both`."""
        return [t for t in self.techniques if t.side == side]

    def to_dict(self) -> DiffJSON:
        return {
            "schema_version": SCHEMA_VERSION,
            "a": self.a_name,
            "b": self.b_name,
            "attack_version": self.attack_version,
            "only_a": [t.to_dict() for t in self.of("only_a")],
            "only_b": [t.to_dict() for t in self.of("only_b")],
            "both": [t.to_dict() for t in self.of("both")],
            "changes": [c.to_dict() for c in self.changes],
        }


def diff_analyses(
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    kb: AttackKB | None = None,
    names: tuple[str, str] = ("A", "B"),
) -> AnalysisDiff:
    """Compare two analyses' JSON forms; with `kb`, ids are read in its ATT&CK version."""
    changes: list[IdChange] = []
    found: list[dict[str, tuple[float, str]]] = []
    for label, data in (("A", a), ("B", b)):
        techniques, changed = _techniques(label, data, kb)
        found.append(techniques)
        changes += changed
    ids = set(found[0]) | set(found[1])
    rows = [
        TechniqueDiff(
            t,
            (found[0].get(t) or found[1].get(t) or (0.0, t))[1],
            found[0][t][0] if t in found[0] else None,
            found[1][t][0] if t in found[1] else None,
            tuple(x.shortname for x in kb[t].tactics) if kb is not None and t in kb else (),
        )
        for t in ids
    ]
    rows.sort(key=lambda r: (-max(r.a or 0.0, r.b or 0.0), r.technique))
    version = kb.version if kb is not None else _version(a) or _version(b) or "unknown"
    return AnalysisDiff(names[0], names[1], version, tuple(rows), tuple(changes))


def _version(data: Mapping[str, Any]) -> str:
    model = data.get("model")
    return str(model.get("attack_version") or "") if isinstance(model, Mapping) else ""


def _techniques(
    label: str, data: Mapping[str, Any], kb: AttackKB | None
) -> tuple[dict[str, tuple[float, str]], list[IdChange]]:
    """An analysis' techniques as current id → (confidence, name), and the ids read anew."""
    hits = data.get("techniques")
    if not isinstance(hits, list) or len(hits) > MAX_TECHNIQUES:
        raise InputError(f"{label}: not a MitreMap analysis (no list of techniques)")
    out: dict[str, tuple[float, str]] = {}
    changes: list[IdChange] = []
    for hit in hits:
        ident, confidence, name = _hit(label, hit)
        current, change = _current(label, ident, kb)
        if change is not None:
            changes.append(change)
        if kb is not None and current in kb:
            name = kb[current].name
        if current not in out or out[current][0] < confidence:
            out[current] = (confidence, name)
    return out, changes


def _hit(label: str, hit: Any) -> tuple[str, float, str]:
    ident = hit.get("technique") if isinstance(hit, Mapping) else None
    confidence = hit.get("confidence_score") if isinstance(hit, Mapping) else None
    if not isinstance(ident, str) or not _TECHNIQUE_ID.match(ident):
        raise InputError(f"{label}: not a MitreMap analysis (a technique without an ATT&CK id)")
    if not isinstance(confidence, int | float) or not 0 <= confidence <= 1:
        raise InputError(f"{label}: {ident} has no confidence between 0 and 1")
    name = hit.get("technique_name")
    return ident, float(confidence), name if isinstance(name, str) else ident


def _current(label: str, ident: str, kb: AttackKB | None) -> tuple[str, IdChange | None]:
    if kb is None:
        return ident, None
    technique = kb.get(ident)
    if technique is None:
        return ident, IdChange(label, ident, None, "unknown")
    if technique.revoked:
        now = kb.resolve(ident)
        return now.id, IdChange(label, ident, now.id if now.active else None, "revoked")
    if technique.deprecated:
        return ident, IdChange(label, ident, None, "deprecated")
    return ident, None
