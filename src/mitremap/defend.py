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
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mitremap.similar import KINDS, NOTE, WORDING, SimilarAdversary, Similarity, overlap_label

if TYPE_CHECKING:
    from mitremap.attack import AttackKB, DataComponent, DetectionStrategy, Mitigation

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

    def to_dict(self) -> dict[str, Any]:
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


def _prioritised_dict(p: PrioritisedMitigation) -> dict[str, Any]:
    return {
        "id": p.mitigation.id,
        "name": p.mitigation.name,
        "webpage_link": p.mitigation.url,
        "score": round(p.score, 4),
        "techniques": [
            {
                "technique": c.technique,
                "confidence": round(c.confidence, 4),
                "how": c.how,
                **({"from_parent": c.from_parent} if c.from_parent else {}),
            }
            for c in p.covers
        ],
    }


def _detection_dict(t: TechniqueDefence, confidences: Mapping[str, float]) -> dict[str, Any]:
    out: dict[str, Any] = {
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
    if any(m.from_parent for m in t.mitigations):
        out["mitigations_from_parent"] = t.mitigations[0].from_parent
    return out


def _source_dict(s: Any) -> dict[str, str]:
    out = {"name": s.name, "channel": s.channel}
    if s.data_component:
        out["data_component"] = s.data_component
    return out


# ---- Markdown and HTML sections (read the JSON form, like every exporter) --------------------


def _md(text: Any) -> str:
    """Text safe in a Markdown table cell (and free of raw HTML)."""
    text = html.escape(" ".join(str(text).split()), quote=False)
    for char in "\\|`*_[]<>":
        text = text.replace(char, "\\" + char)
    return text


def _link_md(ident: str, url: str) -> str:
    return f"[{_md(ident)}]({url})" if url.startswith("https://attack.mitre.org/") else _md(ident)


def _techniques_label(m: dict[str, Any]) -> str:
    return ", ".join(
        t["technique"] + (f" (via {t['from_parent']})" if t.get("from_parent") else "")
        for t in m.get("techniques", ())
    )


def _log_sources(strategy: dict[str, Any]) -> list[str]:
    names = {
        f"{s.get('name', '')} {s.get('channel', '')}".strip()
        for a in strategy.get("analytics", ())
        for s in a.get("log_sources", ())
    }
    return sorted(names)


def markdown_section(data: Mapping[str, Any], limit: int = 15) -> str:
    """The `defend` object of an analysis' JSON as Markdown: prioritised mitigations,
    detections per technique and techniques in common with known adversaries."""
    lines = [f"## How to defend (ATT&CK {_md(data.get('attack_version', ''))})", ""]
    mitigations = list(data.get("mitigations", ()))
    if mitigations:
        lines += [
            "Mitigations ordered by how many of the report's techniques they cover, "
            "weighted by confidence (a parent's mitigation, marked *via*, counts half).",
            "",
            "| mitigation | name | score | techniques covered |",
            "|---|---|---|---|",
        ]
        for m in mitigations[:limit]:
            lines.append(
                f"| {_link_md(m['id'], m.get('webpage_link', ''))} | {_md(m.get('name', ''))} | "
                f"{float(m.get('score', 0)):.2f} | {_md(_techniques_label(m))} |"
            )
    else:
        lines.append("No ATT&CK mitigation covers the report's techniques.")
    if data.get("uncovered"):
        lines += ["", f"No ATT&CK mitigation for: {_md(', '.join(data['uncovered']))}."]
    detections = list(data.get("detections", ()))
    if detections:
        lines += [
            "",
            "### Detections",
            "",
            "| technique | detection | log sources |",
            "|---|---|---|",
        ]
        for d in detections:
            for s in d.get("strategies", ()) or d.get("data_components", ()):
                lines.append(
                    f"| {_md(d['technique'])} | {_link_md(s['id'], s.get('webpage_link', ''))} "
                    f"{_md(s.get('name', ''))} | {_md('; '.join(_log_sources(s)))} |"
                )
    similar = list(data.get("similar", ()))
    if similar:
        lines += ["", f"### {WORDING.capitalize()} …", "", _md(data.get("similar_note", NOTE)), ""]
        lines += ["| id | name | kind | in common |", "|---|---|---|---|"]
        for s in similar:
            common = ", ".join(overlap_label(o) for o in s.get("techniques_in_common", ()))
            lines.append(
                f"| {_link_md(s['id'], s.get('webpage_link', ''))} | {_md(s.get('name', ''))} | "
                f"{_md(s.get('kind', ''))} | {_md(common)} |"
            )
    return "\n".join(lines) + "\n"


def _link_html(ident: str, url: str) -> str:
    esc = html.escape
    if url.startswith("https://attack.mitre.org/"):
        return f'<a href="{esc(url)}" target="_blank" rel="noopener noreferrer">{esc(ident)}</a>'
    return esc(ident)


def html_section(data: Mapping[str, Any], limit: int = 15) -> str:
    """The `defend` object as an HTML fragment (every value escaped; no scripts)."""
    esc = html.escape
    parts = [f"<h2>How to defend (ATT&amp;CK {esc(str(data.get('attack_version', '')))})</h2>"]
    mitigations = list(data.get("mitigations", ()))
    if mitigations:
        parts.append(
            '<p class="muted">Mitigations ordered by how many of the report\'s techniques they '
            "cover, weighted by confidence (a parent's mitigation, marked via, counts half).</p>"
            "<table><tr><th>mitigation</th><th>name</th><th>score</th>"
            "<th>techniques covered</th></tr>"
        )
        parts += [
            f"<tr><td>{_link_html(m['id'], m.get('webpage_link', ''))}</td>"
            f"<td>{esc(m.get('name', ''))}</td>"
            f'<td class="conf">{float(m.get("score", 0)):.2f}</td>'
            f"<td>{esc(_techniques_label(m))}</td></tr>"
            for m in mitigations[:limit]
        ]
        parts.append("</table>")
    else:
        parts.append("<p>No ATT&amp;CK mitigation covers the report's techniques.</p>")
    detections = [
        (d, s)
        for d in data.get("detections", ())
        for s in d.get("strategies", ()) or d.get("data_components", ())
    ]
    if detections:
        parts.append(
            "<h3>Detections</h3><table><tr><th>technique</th><th>detection</th>"
            "<th>log sources</th></tr>"
        )
        parts += [
            f"<tr><td>{esc(d['technique'])}</td>"
            f"<td>{_link_html(s['id'], s.get('webpage_link', ''))} {esc(s.get('name', ''))}</td>"
            f"<td>{esc('; '.join(_log_sources(s)))}</td></tr>"
            for d, s in detections
        ]
        parts.append("</table>")
    similar = list(data.get("similar", ()))
    if similar:
        parts.append(
            f"<h3>{esc(WORDING.capitalize())} …</h3>"
            f'<p class="muted">{esc(str(data.get("similar_note", NOTE)))}</p>'
            "<table><tr><th>id</th><th>name</th><th>kind</th><th>in common</th></tr>"
        )
        parts += [
            f"<tr><td>{_link_html(s['id'], s.get('webpage_link', ''))}</td>"
            f"<td>{esc(s.get('name', ''))}</td><td>{esc(s.get('kind', ''))}</td>"
            f"<td>{esc(', '.join(overlap_label(o) for o in s.get('techniques_in_common', ())))}</td>"
            "</tr>"
            for s in similar
        ]
        parts.append("</table>")
    return "\n".join(parts)
