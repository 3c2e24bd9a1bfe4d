"""What the analysts decided, read back: the state of each technique of a report, and the
reviewed passages as labelled training text.

Decisions are rows, only ever inserted; for each technique and passage (or the technique as
a whole) the latest one is in force, and `clear` withdraws it. A technique is *accepted* by a
decision on it or on any of its passages, *rejected* by a decision on it or when every one of
its evidence passages is rejected, and *pending* otherwise.

As training text (`reviewed_passages`), every decided passage is a `LabelledText` labelled with
the techniques accepted or added there. A rejection is evidence against the technique for that
passage: the passage is kept with only the techniques accepted there, and with none it is a
negative example.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mitremap.documents import Document
from mitremap.training.corpus import LabelledText

SOURCE = "reviews"


@dataclass(frozen=True)
class DecisionRow:
    """One decision as stored: on a technique (`start`/`end` None) or on one passage."""

    id: int
    technique: str
    action: str  # accept | reject | add | clear
    start: int | None
    end: int | None
    note: str
    user: str
    at: datetime

    @property
    def span(self) -> tuple[int, int] | None:
        return None if self.start is None or self.end is None else (self.start, self.end)

    def to_dict(self) -> dict[str, Any]:
        return {
            "technique": self.technique,
            "action": self.action,
            "start": self.start,
            "end": self.end,
            "note": self.note,
            "user": self.user,
            "at": iso(self.at),
        }


@dataclass(frozen=True)
class SuggestionRow:
    """A technique the model suggested, with evidence passages (start, end, confidence)."""

    technique: str
    technique_name: str
    tactics: tuple[str, ...]
    confidence: float
    evidence: tuple[tuple[int, int, float], ...] = ()
    attributions: tuple[tuple[int, int, float], ...] = ()


@dataclass
class TechniqueReview:
    """A suggested (or decided) technique with the decisions in force on it."""

    suggestion: SuggestionRow
    above_threshold: bool
    decision: DecisionRow | None = None
    passages: list[DecisionRow] = field(default_factory=list)  # accept/reject per passage

    @property
    def technique(self) -> str:
        return self.suggestion.technique

    @property
    def state(self) -> str:
        """'accepted', 'rejected' or 'pending'."""
        if self.decision is not None:
            return "accepted" if self.decision.action == "accept" else "rejected"
        if any(p.action == "accept" for p in self.passages):
            return "accepted"
        evidence = {(a, b) for a, b, _ in self.suggestion.evidence}
        rejected = {p.span for p in self.passages if p.action == "reject"}
        if (evidence and evidence <= rejected) or (not evidence and rejected):
            return "rejected"
        return "pending"

    def accepted_spans(self) -> list[tuple[int, int]]:
        """The passages this technique is confirmed at: accepted passages, and when the whole
        technique is accepted, its evidence passages not rejected one by one."""
        rejected = {p.span for p in self.passages if p.action == "reject"}
        spans = [p.span for p in self.passages if p.action == "accept" and p.span]
        if self.decision is not None and self.decision.action == "accept":
            spans += [(a, b) for a, b, _ in self.suggestion.evidence if (a, b) not in rejected]
        return list(dict.fromkeys(spans))

    def rejected_spans(self) -> list[tuple[int, int]]:
        """The passages this technique is refused at."""
        accepted = {p.span for p in self.passages if p.action == "accept"}
        spans = [p.span for p in self.passages if p.action == "reject" and p.span]
        if self.decision is not None and self.decision.action == "reject":
            spans += [(a, b) for a, b, _ in self.suggestion.evidence if (a, b) not in accepted]
        return list(dict.fromkeys(spans))


@dataclass
class Review:
    """A report's review: each technique's state, and the techniques analysts added."""

    techniques: list[TechniqueReview]
    added: list[DecisionRow]

    def count(self, state: str) -> int:
        if state == "pending":
            return sum(1 for t in self.techniques if t.state == "pending" and t.above_threshold)
        return sum(1 for t in self.techniques if t.state == state)

    @property
    def technique_ids(self) -> list[str]:
        """Accepted and added techniques: what the reviewed report says it describes."""
        ids = {t.technique for t in self.techniques if t.state == "accepted"}
        return sorted(ids | {a.technique for a in self.added})


def in_force(decisions: Iterable[DecisionRow]) -> list[DecisionRow]:
    """The latest decision per (technique, passage), in the order they were made; a `clear`
    withdraws what it names (an add, or an accept/reject)."""
    latest: dict[tuple[str, int | None, int | None, bool], DecisionRow] = {}
    for d in sorted(decisions, key=lambda d: d.id):
        if d.action == "clear":
            for is_add in (False, True):
                latest.pop((d.technique, d.start, d.end, is_add), None)
            continue
        latest[(d.technique, d.start, d.end, d.action == "add")] = d
    return sorted(latest.values(), key=lambda d: d.id)


def review(
    suggestions: Sequence[SuggestionRow],
    decisions: Iterable[DecisionRow],
    threshold: float,
    describe: Mapping[str, tuple[str, tuple[str, ...]]] | None = None,
) -> Review:
    """Join the latest analysis' suggestions with the decisions in force. A technique decided
    on but not suggested (say, by an earlier model) is kept, with confidence 0; `describe`
    gives its name and tactics."""
    current = in_force(decisions)
    by_id: dict[str, TechniqueReview] = {}
    for s in sorted(suggestions, key=lambda s: -s.confidence):
        by_id.setdefault(s.technique, TechniqueReview(s, s.confidence >= threshold))
    added = [d for d in current if d.action == "add"]
    for d in current:
        if d.action == "add":
            continue
        entry = by_id.get(d.technique)
        if entry is None:
            name, tactics = (describe or {}).get(d.technique, (d.technique, ()))
            entry = by_id[d.technique] = TechniqueReview(
                SuggestionRow(d.technique, name, tuple(tactics), 0.0), False
            )
        if d.span is None:
            entry.decision = d
        else:
            entry.passages.append(d)
    return Review(list(by_id.values()), added)


def reviewed_passages(
    text: str, state: Review, report_id: int, title: str = ""
) -> list[LabelledText]:
    """Every decided passage of one report as training text (see the module docstring)."""
    labels: dict[tuple[int, int], list[str]] = {}
    against: dict[tuple[int, int], list[str]] = {}
    for t in state.techniques:
        for span in t.accepted_spans():
            labels.setdefault(span, []).append(t.technique)
        for span in t.rejected_spans():
            against.setdefault(span, []).append(t.technique)
    for a in state.added:
        if a.span is not None:
            labels.setdefault(a.span, []).append(a.technique)
    out = []
    for start, end in sorted(set(labels) | set(against)):
        passage = text[start:end].strip()
        if not passage:
            continue
        accepted = tuple(dict.fromkeys(labels.get((start, end), ())))
        refused = [x for x in dict.fromkeys(against.get((start, end), ())) if x not in accepted]
        out.append(
            LabelledText(
                passage,
                accepted,
                SOURCE,
                f"report{report_id}:{start}-{end}",
                {"report": report_id, "title": title, "start": start, "end": end}
                | ({"rejected": refused} if refused else {}),
            )
        )
    return out


@dataclass
class ReviewedResult:
    """A reviewed report as the exporters read it (`to_dict()` in the CLI's JSON schema, and
    `document`): the accepted techniques (evidence without the rejected passages) and the added
    ones (confidence 1.0: an analyst's mapping), rejected and pending ones left out; the JSON
    records every decision under `review`."""

    document: Document
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return self.data


def reviewed_result(
    document: Document,
    state: Review,
    *,
    status: str,
    decisions: Sequence[DecisionRow],
    model: dict[str, Any],
    threshold: float,
    window: int,
    indicators: list[Any],
    describe: Mapping[str, tuple[str, tuple[str, ...]]],
) -> ReviewedResult:
    from mitremap.attack import technique_url

    text = document.text

    def evidence(spans: Iterable[tuple[int, int]], confidence: dict[tuple[int, int], float]):
        return [
            {"start": a, "end": b, "confidence": confidence.get((a, b), 1.0), "text": text[a:b]}
            for a, b in sorted(set(spans))
        ]

    techniques: dict[str, dict[str, Any]] = {}
    for t in state.techniques:
        if t.state != "accepted":
            continue
        s = t.suggestion
        confidence = {(a, b): round(c, 4) for a, b, c in s.evidence}
        techniques[s.technique] = {
            "technique": s.technique,
            "technique_name": s.technique_name,
            "tactics": list(s.tactics),
            "webpage_link": technique_url(s.technique),
            "confidence_score": round(s.confidence, 4) if s.confidence else 1.0,
            "evidence": evidence(t.accepted_spans(), confidence),
            "review": "accepted",
        }
    known = {t: {(e["start"], e["end"]) for e in v["evidence"]} for t, v in techniques.items()}
    for a in state.added:
        span = [a.span] if a.span else []
        if a.technique in techniques:
            fresh = [
                e for e in evidence(span, {}) if (e["start"], e["end"]) not in known[a.technique]
            ]
            techniques[a.technique]["evidence"] += fresh
            known[a.technique].update((e["start"], e["end"]) for e in fresh)
            continue
        name, tactics = describe.get(a.technique, (a.technique, ()))
        techniques[a.technique] = {
            "technique": a.technique,
            "technique_name": name,
            "tactics": list(tactics),
            "webpage_link": technique_url(a.technique),
            "confidence_score": 1.0,
            "evidence": evidence(span, {}),
            "review": "added",
        }
        known[a.technique] = set(span)
    data: dict[str, Any] = {
        "document": document.to_dict(),
        "model": model,
        "threshold": threshold,
        "window": window,
        "techniques": sorted(techniques.values(), key=lambda t: -t["confidence_score"]),
        "indicators": indicators,
        "review": {
            "status": status,
            "decisions": [{"id": d.id, **d.to_dict()} for d in decisions],
        },
    }
    return ReviewedResult(document, data)


def iso(moment: datetime) -> str:
    """UTC ISO 8601 with a Z (SQLite hands back naive datetimes: they are UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
