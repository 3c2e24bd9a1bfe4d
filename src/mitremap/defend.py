"""After the mapping: what defends against a report's techniques, and who else uses them.

Why: an analyst's next questions after "which techniques?" are "what do we do about them?" and
"who works like this?". ATT&CK already answers both with relationships (`mitigates`,
`detects`, `uses`); this module asks them for a whole report:

- per technique, its mitigations (with ATT&CK's words on how each applies to it) and its
  detection strategies with their analytics and log sources (or, for bundles before ATT&CK 18,
  its data components);
- one prioritised list of mitigations: ordered by how many of the report's techniques each
  covers, weighted by confidence;
- groups, campaigns and software with techniques in common (`mitremap.similar`).

Sub-techniques inherit nothing silently: ATT&CK links mitigations to sub-techniques directly.
Only a sub-technique with none of its own borrows its parent's, marked `from_parent`, and in
the prioritised list such a borrowed link counts `PARENT_WEIGHT` of the technique's confidence.

The defence is shown by the front ends from its JSON form (`to_dict`): Markdown and HTML in
`mitremap.export`, terminal tables in `mitremap.cli.render`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mitremap.similar import KINDS, NOTE, SimilarAdversary, Similarity

if TYPE_CHECKING:
    from mitremap.attack import AttackKB, DataComponent, DetectionStrategy, LogSource, Mitigation
    from mitremap.schema import (
        CoveredJSON,
        DefenceJSON,
        DetectionJSON,
        LogSourceJSON,
        MitigationJSON,
    )

PARENT_WEIGHT = 0.5
"""A mitigation borrowed from a sub-technique's parent counts this share of its confidence."""


@dataclass(frozen=True)
class AppliedMitigation:
    """A mitigation as ATT&CK applies it to one technique."""

    mitigation: Mitigation
    how: str  # ATT&CK's words for this technique
    from_parent: str | None = None  # the parent's id when borrowed from it


@dataclass(frozen=True)
class TechniqueDefence:
    """What ATT&CK says defends against one technique."""

    technique: str
    name: str
    mitigations: tuple[AppliedMitigation, ...]
    detections: tuple[DetectionStrategy, ...]
    data_components: tuple[DataComponent, ...] = ()  # where no detection strategy exists
    detections_from_parent: str | None = None


@dataclass(frozen=True)
class Covered:
    """A report technique covered by a prioritised mitigation."""

    technique: str
    confidence: float
    how: str = ""
    from_parent: str | None = None


@dataclass(frozen=True)
class PrioritisedMitigation:
    """A mitigation with the report's techniques it covers; `score` orders the list."""

    mitigation: Mitigation
    score: float  # sum of the covered techniques' confidences (borrowed: × PARENT_WEIGHT)
    covers: tuple[Covered, ...]


@dataclass(frozen=True)
class Defence:
    """Mitigations, detections and similar adversaries for a report's techniques."""

    attack_version: str
    mitigations: tuple[PrioritisedMitigation, ...]
    techniques: tuple[TechniqueDefence, ...]
    confidences: Mapping[str, float]
    similar: tuple[SimilarAdversary, ...] = ()
    replaced: Mapping[str, str] | None = None  # revoked id in the analysis → current id
    unknown: tuple[str, ...] = ()  # ids this ATT&CK version does not know

    @property
    def uncovered(self) -> list[str]:
        """The report's techniques that no mitigation covers (ATT&CK lists none)."""
        return [t.technique for t in self.techniques if not t.mitigations]

    def to_dict(self) -> DefenceJSON:
        return {
            "attack_version": self.attack_version,
            "mitigations": [_prioritised_dict(m) for m in self.mitigations],
            "uncovered": self.uncovered,
            "detections": [_detection_dict(t, self.confidences) for t in self.techniques],
            "similar": [s.to_dict() for s in self.similar],
            "similar_note": NOTE,
            "replaced": dict(self.replaced or {}),
            "unknown": list(self.unknown),
        }

    def to_frame(self) -> Any:
        """The prioritised mitigations as a pandas DataFrame."""
        try:
            import pandas as pd
        except ImportError as exc:
            from mitremap.errors import MissingExtraError

            raise MissingExtraError("pandas", "pandas", "Defence.to_frame") from exc
        rows = [
            {
                "mitigation": m.mitigation.id,
                "name": m.mitigation.name,
                "score": round(m.score, 4),
                "techniques": ", ".join(_covered_label(c) for c in m.covers),
                "webpage_link": m.mitigation.url,
            }
            for m in self.mitigations
        ]
        return pd.DataFrame(
            rows, columns=["mitigation", "name", "score", "techniques", "webpage_link"]
        )


def technique_defence(kb: AttackKB, technique_id: str) -> TechniqueDefence:
    """Mitigations and detections of one technique (a revoked id: of its replacement)."""
    technique = kb.resolve(technique_id)
    mitigations = _mitigations(kb, technique.id, None)
    if not mitigations and technique.parent:
        mitigations = _mitigations(kb, technique.parent, technique.parent)
    strategies, components = _detections(kb, technique.id)
    borrowed = None
    if not (strategies or components) and technique.parent:
        strategies, components = _detections(kb, technique.parent)
        borrowed = technique.parent if strategies or components else None
    return TechniqueDefence(
        technique.id, technique.name, mitigations, strategies, components, borrowed
    )


def _mitigations(
    kb: AttackKB, technique: str, from_parent: str | None
) -> tuple[AppliedMitigation, ...]:
    return tuple(
        AppliedMitigation(kb.mitigations[m], how, from_parent)
        for m, how in kb.mitigated_by.get(technique, ())
        if m in kb.mitigations
    )


def _detections(
    kb: AttackKB, technique: str
) -> tuple[tuple[DetectionStrategy, ...], tuple[DataComponent, ...]]:
    ids = kb.detected_by.get(technique, ())
    strategies = tuple(kb.detection_strategies[i] for i in ids if i in kb.detection_strategies)
    components = tuple(kb.data_components[i] for i in ids if i in kb.data_components)
    return strategies, () if strategies else components


def defend(
    techniques: Mapping[str, float],
    kb: AttackKB,
    *,
    similarity: Similarity | None = None,
    top_similar: int = 5,
) -> Defence:
    """Defence for a report's techniques (id → confidence), with the `top_similar` groups,
    campaigns and software with most techniques in common (each kind ranked on its own: a
    small tool's profile and a group's are not alike). Ids revoked since the analysis are read
    as their replacements (listed in `replaced`); ids this ATT&CK does not know are listed."""
    confidences: dict[str, float] = {}
    replaced: dict[str, str] = {}
    unknown: list[str] = []
    for ident, confidence in techniques.items():
        current = kb.resolve(ident).id if ident in kb else None
        if current is None:
            unknown.append(ident)
            continue
        if current != ident:
            replaced[ident] = current
        confidences[current] = max(confidences.get(current, 0.0), float(confidence))
    ordered = sorted(confidences, key=lambda t: (-confidences[t], t))
    per_technique = tuple(technique_defence(kb, t) for t in ordered)
    similarity = similarity or Similarity.from_attack(kb)
    return Defence(
        attack_version=kb.version,
        mitigations=prioritise(per_technique, confidences),
        techniques=per_technique,
        confidences=confidences,
        similar=tuple(
            found
            for kind in KINDS
            for found in similarity.rank(confidences, kinds=(kind,), top=top_similar)
        ),
        replaced=replaced,
        unknown=tuple(unknown),
    )


def prioritise(
    techniques: tuple[TechniqueDefence, ...], confidences: Mapping[str, float]
) -> tuple[PrioritisedMitigation, ...]:
    """Mitigations by the confidence-weighted number of the techniques they cover (a borrowed
    parent link counts `PARENT_WEIGHT`), then by how many, then by id."""
    covers: dict[str, list[Covered]] = {}
    mitigations: dict[str, Mitigation] = {}
    for t in techniques:
        for applied in t.mitigations:
            mitigations[applied.mitigation.id] = applied.mitigation
            covers.setdefault(applied.mitigation.id, []).append(
                Covered(t.technique, confidences[t.technique], applied.how, applied.from_parent)
            )
    ranked = [
        PrioritisedMitigation(
            mitigations[m],
            sum(c.confidence * (PARENT_WEIGHT if c.from_parent else 1.0) for c in found),
            tuple(found),
        )
        for m, found in covers.items()
    ]
    ranked.sort(key=lambda p: (-round(p.score, 9), -len(p.covers), p.mitigation.id))
    return tuple(ranked)


# ---- JSON form ------------------------------------------------------------------------------


def _covered_label(c: Covered) -> str:
    return f"{c.technique} (via {c.from_parent})" if c.from_parent else c.technique


def _prioritised_dict(p: PrioritisedMitigation) -> MitigationJSON:
    return {
        "id": p.mitigation.id,
        "name": p.mitigation.name,
        "webpage_link": p.mitigation.url,
        "score": round(p.score, 4),
        "techniques": [_covered_dict(c) for c in p.covers],
    }


def _covered_dict(c: Covered) -> CoveredJSON:
    out: CoveredJSON = {
        "technique": c.technique,
        "confidence": round(c.confidence, 4),
        "how": c.how,
    }
    if c.from_parent:
        out["from_parent"] = c.from_parent
    return out


def _detection_dict(t: TechniqueDefence, confidences: Mapping[str, float]) -> DetectionJSON:
    out: DetectionJSON = {
        "technique": t.technique,
        "technique_name": t.name,
        "confidence": round(confidences.get(t.technique, 0.0), 4),
        "mitigations": [m.mitigation.id for m in t.mitigations],
        "strategies": [
            {
                "id": d.id,
                "name": d.name,
                "webpage_link": d.url,
                "analytics": [
                    {
                        "id": a.id,
                        "platforms": list(a.platforms),
                        "description": a.description,
                        "log_sources": [_source_dict(s) for s in a.log_sources],
                    }
                    for a in d.analytics
                ],
            }
            for d in t.detections
        ],
    }
    if t.data_components:
        out["data_components"] = [
            {
                "id": c.id,
                "name": c.name,
                "webpage_link": c.url,
                "log_sources": [_source_dict(s) for s in c.log_sources],
            }
            for c in t.data_components
        ]
    if t.detections_from_parent:
        out["detections_from_parent"] = t.detections_from_parent
    borrowed = next((m.from_parent for m in t.mitigations if m.from_parent), None)
    if borrowed:
        out["mitigations_from_parent"] = borrowed
    return out


def _source_dict(s: LogSource) -> LogSourceJSON:
    out: LogSourceJSON = {"name": s.name, "channel": s.channel}
    if s.data_component:
        out["data_component"] = s.data_component
    return out
