"""What the analysts decided, read back: the state of each technique of a report, and the
reviewed passages as labelled training text.

Decisions are rows, only ever inserted; for each technique and passage (or the technique as
a whole) the latest one is in force, and `clear` withdraws it. A technique is *accepted* by a
decision on it or on any of its passages, *rejected* by a decision on it or when every one of
its evidence passages is rejected, and *pending* otherwise.

As training text (`reviewed_passages`), every decided passage is a `LabelledText` labelled with
the techniques accepted or added there, overlapping passages united into one multi-label item.
A rejection is evidence against that technique only, for that passage (`meta["rejected"]`):
never "no technique". A reviewed report as a whole (`reviewed_report`) says which techniques
it describes and where: it calibrates retraining, and its outcomes (accepted or added,
rejected) are the workspace's label priors (`mitremap.classify.memory.LabelPriors`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mitremap.documents import Document
from mitremap.schema import EvidenceJSON
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
    # per evidence passage: the reviewed passage it was recalled from (who, where), or None
    reviewed: tuple[dict[str, Any] | None, ...] = ()


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

    def deciders(self, span: tuple[int, int]) -> list[DecisionRow]:
        """The decisions in force that speak about `span` (its own, or the technique's)."""
        own = [p for p in self.passages if p.span == span]
        return own or ([self.decision] if self.decision is not None else [])

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


def summary_counts(state: Review) -> dict[str, Any]:
    """The review in numbers, as the report row keeps them and the list shows them."""
    return {
        "accepted": state.count("accepted"),
        "pending": state.count("pending"),
        "rejected": state.count("rejected"),
        "added": len(state.added),
        "techniques": state.technique_ids,
    }


def technique_state(state: Review, technique: str) -> str:
    """'accepted', 'rejected', 'pending' or, for a technique only added, 'added'; 'none' when
    the report neither suggests nor decides it."""
    for t in state.techniques:
        if t.technique == technique:
            return t.state
    return "added" if any(a.technique == technique for a in state.added) else "none"


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
    """Every decided passage of one report as training text (see the module docstring).

    Passages that overlap are one item, their techniques united: a technique added to a
    sentence inside a passage accepted as another is a second label of that passage, never a
    contradiction (nor a negative for the passage that contains it). A passage where
    techniques were only rejected has no label and `meta["rejected"]`: it is evidence
    against those techniques only. `meta` also says who decided last, and when."""
    decided: dict[tuple[int, int], _Decided] = {}
    for t in state.techniques:
        for span in t.accepted_spans():
            decided.setdefault(span, _Decided()).accept(t.technique, t.deciders(span))
        for span in t.rejected_spans():
            decided.setdefault(span, _Decided()).reject(t.technique, t.deciders(span))
    for a in state.added:
        if a.span is not None:
            decided.setdefault(a.span, _Decided()).accept(a.technique, [a])
    out = []
    for start, end, group in _united(decided):
        passage = text[start:end].strip()
        if not passage:
            continue
        refused = [x for x in group.rejected if x not in group.accepted]
        last = max(group.by, key=lambda d: d.id) if group.by else None
        meta: dict[str, Any] = {
            "report": report_id,
            "title": title,
            "start": start,
            "end": end,
            "doc_title": report_key(report_id),  # held out with its report in calibration
        }
        if refused:
            meta["rejected"] = refused
        if last is not None:
            meta |= {"user": last.user, "at": iso(last.at)}
        out.append(
            LabelledText(
                passage, tuple(group.accepted), SOURCE, f"report{report_id}:{start}-{end}", meta
            )
        )
    return out


@dataclass(frozen=True)
class IndicatorDecisionRow:
    """One verdict on an indicator value, as stored."""

    id: int
    type: str
    value: str
    action: str  # accept | reject | clear
    note: str
    user: str
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "value": self.value,
            "action": self.action,
            "note": self.note,
            "user": self.user,
            "at": iso(self.at),
        }


@dataclass
class IndicatorReview:
    """One indicator value of a report, every place it occurs, and the verdict in force."""

    type: str
    value: str
    occurrences: list[dict[str, Any]]  # {start, end, raw}
    decision: IndicatorDecisionRow | None = None

    @property
    def state(self) -> str:
        """'accepted', 'rejected' (not an indicator) or 'pending'."""
        if self.decision is None:
            return "pending"
        return "accepted" if self.decision.action == "accept" else "rejected"


def indicator_review(
    indicators: Iterable[dict[str, Any]], decisions: Iterable[IndicatorDecisionRow]
) -> list[IndicatorReview]:
    """The report's indicators, one entry per (type, value) in order of first occurrence, each
    with the latest verdict on it (`clear` withdraws it)."""
    found: dict[tuple[str, str], IndicatorReview] = {}
    for item in indicators:
        key = (str(item.get("type", "")), str(item.get("value", "")))
        entry = found.setdefault(key, IndicatorReview(*key, []))
        entry.occurrences.append(
            {"start": item.get("start"), "end": item.get("end"), "raw": item.get("raw", key[1])}
            | ({"private": True} if item.get("private") else {})
        )
    latest: dict[tuple[str, str], IndicatorDecisionRow | None] = {}
    for d in sorted(decisions, key=lambda d: d.id):
        latest[(d.type, d.value)] = None if d.action == "clear" else d
    for key, decision in latest.items():
        if key in found:
            found[key].decision = decision
    return list(found.values())


@dataclass(frozen=True)
class ReviewRecord:
    """What the reviewed JSON records beside the techniques: the report's metadata, every
    decision, the history and the comments."""

    status: str
    decisions: Sequence[DecisionRow]
    indicator_decisions: Sequence[IndicatorDecisionRow] = ()
    history: Sequence[dict[str, Any]] = ()
    comments: Sequence[dict[str, Any]] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    keep_rejected: bool = False  # rejected indicators kept (marked), for context in STIX/MISP


@dataclass
class _Decided:
    """The techniques accepted and rejected at one passage, and the decisions that said so."""

    accepted: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    by: list[DecisionRow] = field(default_factory=list)

    def accept(self, technique: str, by: Iterable[DecisionRow]) -> None:
        if technique not in self.accepted:
            self.accepted.append(technique)
        self.by.extend(by)

    def reject(self, technique: str, by: Iterable[DecisionRow]) -> None:
        if technique not in self.rejected:
            self.rejected.append(technique)
        self.by.extend(by)


def _united(
    decided: dict[tuple[int, int], _Decided],
) -> list[tuple[int, int, _Decided]]:
    """Overlapping passages as one, their decisions united."""
    out: list[tuple[int, int, _Decided]] = []
    for (start, end), group in sorted(decided.items()):
        if out and start < out[-1][1]:
            first, last, united = out[-1]
            for x in group.accepted:
                united.accept(x, ())
            for x in group.rejected:
                united.reject(x, ())
            united.by.extend(group.by)
            out[-1] = (first, max(last, end), united)
        else:
            out.append(
                (start, end, _Decided(list(group.accepted), list(group.rejected), list(group.by)))
            )
    return out


@dataclass(frozen=True)
class ReportReview:
    """One report's review as learning reads it: its decided passages (training text), the
    techniques it was found to describe (accepted or added) and those rejected as a whole."""

    report: int
    status: str
    passages: tuple[LabelledText, ...]
    accepted: frozenset[str]
    rejected: frozenset[str]

    def as_report(self, text: str) -> LabelledText:
        """The reviewed report as an annotated report (its techniques and where each is
        described), to calibrate a retrained model on."""
        spans = [
            {"start": p.meta["start"], "end": p.meta["end"], "label": label}
            for p in self.passages
            for label in p.labels or ("",)  # a rejected-only passage: no technique, but not
            # "no technique" either: its sentences are not negatives of the report
        ]
        return LabelledText(
            text, tuple(sorted(self.accepted)), SOURCE, report_key(self.report), {"spans": spans}
        )


def report_key(report_id: int) -> str:
    """A reviewed report's id among training texts (its passages name it as `doc_title`)."""
    return f"review:{report_id}"


def report_review(
    text: str, state: Review, report_id: int, title: str, status: str
) -> ReportReview:
    rejected = {t.technique for t in state.techniques if t.state == "rejected"}
    accepted = set(state.technique_ids)
    return ReportReview(
        report_id,
        status,
        tuple(reviewed_passages(text, state, report_id, title)),
        frozenset(accepted),
        frozenset(rejected - accepted),
    )


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
    record: ReviewRecord,
    model: dict[str, Any],
    threshold: float,
    window: int,
    indicators: list[Any],
    describe: Mapping[str, tuple[str, tuple[str, ...]]],
) -> ReviewedResult:
    from mitremap.attack import technique_url

    text = document.text

    def evidence(
        spans: Iterable[tuple[int, int]], confidence: dict[tuple[int, int], float]
    ) -> list[EvidenceJSON]:
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
        "document": document.to_dict() | record.metadata,
        "model": model,
        "threshold": threshold,
        "window": window,
        "techniques": sorted(techniques.values(), key=lambda t: -t["confidence_score"]),
        "indicators": reviewed_indicators(
            indicators, record.indicator_decisions, keep_rejected=record.keep_rejected
        ),
        "review": {
            "status": record.status,
            "decisions": [{"id": d.id, **d.to_dict()} for d in record.decisions],
            "indicator_decisions": [
                {"id": d.id, **d.to_dict()} for d in record.indicator_decisions
            ],
            "history": list(record.history),
            "comments": list(record.comments),
        },
    }
    return ReviewedResult(document, data)


def reviewed_indicators(
    indicators: list[Any],
    decisions: Sequence[IndicatorDecisionRow],
    *,
    keep_rejected: bool = False,
) -> list[dict[str, Any]]:
    """The indicators as reviewed, each with its verdict (`review`: accepted, rejected or
    pending), which the exporters honour (`iocs.benign.benign_reason`: accepted is an
    indicator, rejected is context). A rejected one is left out unless `keep_rejected` (STIX
    and MISP then send it as observed context, never as an indicator)."""
    states = {
        (r.type, r.value): r.state for r in indicator_review(indicators, decisions) if r.decision
    }
    out = []
    for item in indicators:
        verdict = states.get((str(item.get("type")), str(item.get("value"))), "pending")
        if verdict != "rejected" or keep_rejected:
            out.append({**item, "review": verdict})
    return out


def iso(moment: datetime) -> str:
    """UTC ISO 8601 with a Z (SQLite hands back naive datetimes: they are UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
