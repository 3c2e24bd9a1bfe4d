"""The public API: `MitreMap.load().analyze(report)` → techniques with confidence and evidence.

A report is split into sentences, read in overlapping windows of `window` sentences (stride 1,
as the model was calibrated), and scored once per window and once per sentence. A technique's
report-level confidence comes from the model's report calibration (its best windows and
sentences, and any named software known to use it); its evidence is the sentences that support
it best; named software is listed beside it. A very long document is read in segments
(`SEGMENT_CHARS`, `SEGMENT_SENTENCES`), so memory does not grow with its size, and at most
`MAX_SENTENCES` sentences are read, so millions of one-letter lines cost no more than a long
report (the rest is left out, and the document's warnings say so). A `deadline` stops the work
itself (`TimeLimitError`), checked between segments, passes and explanations. The threshold is
never changed behind the user's back: when nothing passes, `Analysis.message` says so and names
the best candidate.

Handed a review memory (`analyze(…, memory=…)`, see `mitremap.classify.memory`), the analysis
also reads what analysts decided about similar passages: the report confidence is revised by it,
and each hit lists the reviewed passages behind the change (`TechniqueHit.reviewed`).
"""

from __future__ import annotations

import itertools
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np

from mitremap.attack import technique_url
from mitremap.deadline import Deadline
from mitremap.documents import Document, window_ranges
from mitremap.documents.dates import stated_date
from mitremap.documents.segment import iter_sentences
from mitremap.errors import ModelError
from mitremap.names import Gazetteer, NamedEntity
from mitremap.schema import SCHEMA_VERSION

if TYPE_CHECKING:
    from mitremap.attack import AttackKB
    from mitremap.classify.base import DocumentScores, TechniqueModel
    from mitremap.classify.memory import Revision
    from mitremap.defend import Defence
    from mitremap.iocs import Indicator
    from mitremap.schema import (
        AnalysisJSON,
        DocumentJSON,
        EvidenceJSON,
        ModelJSON,
        ReviewedJSON,
        TechniqueJSON,
    )


@dataclass(frozen=True)
class TechniqueInfo:
    """What a result shows about a technique (kept in the model, so analysis needs no KB)."""

    id: str
    name: str
    tactics: tuple[str, ...] = ()
    parent: str | None = None

    @property
    def url(self) -> str:
        return technique_url(self.id)


@dataclass(frozen=True)
class Evidence:
    """A span [start, end) of the document that supports a hit, with its window confidence."""

    start: int
    end: int
    confidence: float

    def to_dict(self, text: str = "") -> EvidenceJSON:
        out: EvidenceJSON = {
            "start": self.start,
            "end": self.end,
            "confidence": round(self.confidence, 4),
        }
        if text:
            out["text"] = text[self.start : self.end]
        return out


@dataclass(frozen=True)
class ReviewedEvidence:
    """A span of the document close to a passage an analyst decided on: the technique was
    `accepted` (or added) or `rejected` there; `origin` says who, when and in which report."""

    start: int
    end: int
    similarity: float
    confidence: float
    action: str
    passage: str
    origin: dict[str, Any] = field(default_factory=dict)
    # the sentences [first, last) of the segment it was found in (not exported)
    first: int = field(default=-1, compare=False, repr=False)
    last: int = field(default=-1, compare=False, repr=False)

    def to_dict(self, text: str = "") -> ReviewedJSON:
        out: dict[str, Any] = {
            "start": self.start,
            "end": self.end,
            "similarity": round(self.similarity, 4),
            "confidence": round(self.confidence, 4),
            "action": self.action,
            "reviewed_passage": self.passage,
            **{k: v for k, v in self.origin.items() if k in ("report", "title", "user", "at")},
        }
        if text:
            out["text"] = text[self.start : self.end]
        return cast("ReviewedJSON", out)


class Memory(Protocol):
    """What `analyze` needs from a review memory (`mitremap.classify.memory.ReviewMemory`)."""

    def revise(
        self,
        labels: Sequence[str],
        sentences: Sequence[str],
        windows: Sequence[tuple[int, int]],
        report: np.ndarray,
        window: np.ndarray,
    ) -> Revision: ...


@dataclass(frozen=True)
class TechniqueHit:
    """A technique found in the document. `implied`: added because a sub-technique was found."""

    technique: TechniqueInfo
    confidence: float
    evidence: tuple[Evidence, ...] = ()
    attributions: tuple[Any, ...] = ()
    implied: bool = False
    # second kind of evidence: software, groups or campaigns named in the report that ATT&CK
    # says use this technique (shown beside the text evidence; a calibrated feature of the
    # confidence, never a verdict of its own)
    named: tuple[NamedEntity, ...] = ()
    # passages close to ones analysts decided on (`analyze(…, memory=…)`)
    reviewed: tuple[ReviewedEvidence, ...] = ()

    @property
    def id(self) -> str:
        return self.technique.id

    def to_dict(self, text: str = "") -> TechniqueJSON:
        out: TechniqueJSON = {
            "technique": self.technique.id,
            "technique_name": self.technique.name,
            "tactics": list(self.technique.tactics),
            "webpage_link": self.technique.url,
            "confidence_score": round(self.confidence, 4),
            "evidence": [e.to_dict(text) for e in self.evidence],
        }
        if self.implied:
            out["implied_by_subtechnique"] = True
        if self.named:
            out["named_software_known_to_use"] = [
                {"id": e.id, "name": e.name, "kind": e.kind, "webpage_link": e.url}
                for e in {e.id: e for e in self.named}.values()
            ]
        if self.reviewed:
            out["reviewed"] = [r.to_dict(text) for r in self.reviewed]
        if self.attributions:
            out["attributions"] = [a.to_dict() for a in self.attributions]
        return out


@dataclass
class Analysis:
    """The result of `MitreMap.analyze`: hits best first, indicators, model card, timings."""

    document: Document
    techniques: list[TechniqueHit]
    threshold: float
    window: int
    model: dict[str, Any]
    indicators: list[Indicator] = field(default_factory=list)
    # whether indicators were looked for: the JSON then keeps `indicators: []` when none was
    # found, so "none found" and "not asked" read differently
    indicators_extracted: bool = False
    entities: list[NamedEntity] = field(default_factory=list)
    candidates: list[tuple[str, float]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    # mitigations, detections and similar adversaries: `MitreMap.analyze(…, defend=True)`
    defence: Defence | None = None
    analyzed_at: str = ""  # ISO 8601 (UTC): when `analyze` ran

    @property
    def message(self) -> str:
        """Says when nothing reached the threshold (the threshold is never lowered silently)."""
        if self.techniques:
            return ""
        if not self.candidates:
            return f"no technique reached the threshold {self.threshold}"
        best, score = self.candidates[0]
        return (
            f"no technique reached the threshold {self.threshold} "
            f"(best candidate: {best} at {score:.2f})"
        )

    def to_dict(self) -> AnalysisJSON:
        """The JSON form every exporter and front end reads (`mitremap.schema.AnalysisJSON`)."""
        text = self.document.text
        out: AnalysisJSON = {
            "schema_version": SCHEMA_VERSION,
            "document": cast("DocumentJSON", self.document.to_dict()),
            "model": cast("ModelJSON", self.model),
            "threshold": self.threshold,
            "window": self.window,
            "techniques": [hit.to_dict(text) for hit in self.techniques],
            "entities": [e.to_dict(text) for e in self.entities],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }
        if self.analyzed_at:
            out["analyzed_at"] = self.analyzed_at
        if self.indicators or self.indicators_extracted:
            out["indicators"] = [i.to_dict() for i in self.indicators]
        if self.defence is not None:
            out["defend"] = self.defence.to_dict()
        if self.message:
            out["message"] = self.message
        return out

    def defend(self, kb: AttackKB | None = None, *, top_similar: int = 5) -> Defence:
        """Mitigations (one prioritised list), detections and the groups, campaigns and
        software with techniques in common, for the techniques found (implied parents add
        nothing). Without `kb`, the ATT&CK version the model was trained on is loaded.
        `.to_frame()` on the result gives the prioritised mitigations as a DataFrame."""
        if self.defence is not None and kb is None:
            return self.defence
        from mitremap.defend import defend

        if kb is None:
            from mitremap.classify.knowledge import attack_for_model

            kb = attack_for_model(self.model.get("attack_version") or None)
        found = {h.id: h.confidence for h in self.techniques if not h.implied}
        return defend(found, kb, top_similar=top_similar)

    def to_frame(self) -> Any:
        """A pandas DataFrame with the original's columns plus tactics and evidence."""
        try:
            import pandas as pd
        except ImportError as exc:
            from mitremap.errors import MissingExtraError

            raise MissingExtraError("pandas", "pandas", "Analysis.to_frame") from exc
        text = self.document.text
        rows = [
            {
                "technique": h.technique.id,
                "technique_name": h.technique.name,
                "tactics": ", ".join(h.technique.tactics),
                "webpage_link": h.technique.url,
                "confidence_score": round(h.confidence, 4),
                "evidence": " … ".join(text[e.start : e.end] for e in h.evidence),
            }
            for h in self.techniques
        ]
        columns = [
            "technique",
            "technique_name",
            "tactics",
            "webpage_link",
            "confidence_score",
            "evidence",
        ]
        return pd.DataFrame(rows, columns=columns)


class MitreMap:
    """A loaded technique model, ready to analyze reports."""

    def __init__(self, model: TechniqueModel, kb: AttackKB | None = None) -> None:
        self.model = model
        self._kb = kb
        self.path: Path | None = None  # the model's folder, when loaded from one
        info = model.card.to_dict().get("techniques") or {}
        self.techniques: dict[str, TechniqueInfo] = {}
        for label in model.labels:
            row = info.get(label) or {}
            self.techniques[label] = TechniqueInfo(
                label,
                row.get("name", label),
                tuple(row.get("tactics", ())),
                row.get("parent") or (label.split(".")[0] if "." in label else None),
            )
        if kb is not None and model.card.attack_version and kb.version != model.card.attack_version:
            self._map_to(kb)
        names = getattr(model.card, "names", None)
        if kb is not None:
            self.gazetteer = Gazetteer.from_attack(kb)
        else:
            self.gazetteer = Gazetteer.from_dict(names or {})

    @classmethod
    def load(
        cls, path: str | os.PathLike[str] | None = None, kb: AttackKB | None = None
    ) -> MitreMap:
        """The model at `path`, or the cached default model."""
        from mitremap.classify import load_model

        if path is None:
            path = default_model_path()
        mm = cls(load_model(path), kb=kb)
        mm.path = Path(path)
        return mm

    def _map_to(self, kb: AttackKB) -> None:
        """Warn about an ATT&CK version mismatch and show techniques as `kb` knows them."""
        warnings.warn(
            f"the model was trained on ATT&CK {self.model.card.attack_version}, "
            f"the knowledge base is ATT&CK {kb.version}: revoked techniques are shown as "
            "their replacements where known",
            stacklevel=3,
        )
        for label in list(self.techniques):
            try:
                t = kb.resolve(label)
            except KeyError:
                continue
            self.techniques[label] = TechniqueInfo(
                t.id, t.name, tuple(x.name for x in t.tactics), t.parent
            )

    @property
    def labels(self) -> list[str]:
        return list(self.model.labels)

    @property
    def card(self) -> dict[str, Any]:
        """What a result says about the model that made it (kept in `Analysis.model`)."""
        c = self.model.card
        return {
            "backend": c.backend,
            "attack_version": c.attack_version,
            "recipe": {k: c.recipe.get(k) for k in ("name", "version")},
            "package_version": c.package_version,
            "trained_at": c.trained_at,
        }

    def analyze(
        self,
        text_or_document: str | Document,
        *,
        threshold: float = 0.6,
        window: int = 3,
        stride: int = 1,
        explain: bool = False,
        iocs: bool = False,
        include_parents: bool = False,
        max_evidence: int = 3,
        defend: bool = False,
        memory: Memory | None = None,
        deadline: Deadline | None = None,
    ) -> Analysis:
        """Techniques whose report-level confidence is at or above `threshold`, best first.
        `defend`: add mitigations, detections and similar adversaries (`Analysis.defend`);
        `memory`: a review memory whose decisions on similar passages revise the confidence;
        `deadline`: stop with `TimeLimitError` when it passes."""
        if window < 1 or stride < 1:
            raise ValueError("window and stride must be at least 1")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError("threshold must be between 0 and 1")
        started = time.perf_counter()
        document = _as_document(text_or_document)
        deadline = deadline or Deadline.none()
        notes: list[str] = []  # what was left out, for the document's warnings
        text, spans = _read_sentences(document.text, deadline, notes)
        segmented = time.perf_counter()
        entities = self._entities(text, deadline, notes)
        named = self.gazetteer.label_evidence(entities, self.model.labels)
        reading = _Reading(threshold, window, stride, max_evidence)
        scored = self._score(text, spans, named, reading, memory, deadline)
        scored_at = time.perf_counter()
        hits = self._hits(text, spans, scored, entities, threshold, explain, deadline)
        if include_parents:
            hits = self._with_parents(hits)
        indicators = _indicators(text, deadline, notes) if iocs else []
        if notes:
            document = replace(document, warnings=(*document.warnings, *notes))
        return Analysis(
            document,
            hits,
            threshold,
            window,
            self.card,
            indicators=indicators,
            indicators_extracted=iocs,
            entities=entities,
            candidates=scored.candidates(self.model.labels),
            timings={
                "segment": segmented - started,
                "score": scored_at - segmented,
                "total": time.perf_counter() - started,
            },
            defence=self._defence(hits) if defend else None,
            analyzed_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )

    def _entities(self, text: str, deadline: Deadline, notes: list[str]) -> list[NamedEntity]:
        """The mentions of ATT&CK names, the first `MAX_ENTITIES` (a note says when more
        were left out)."""
        deadline.check("finding named software")
        entities = self.gazetteer.find(text, limit=MAX_ENTITIES + 1)
        if len(entities) > MAX_ENTITIES:
            entities = entities[:MAX_ENTITIES]
            notes.append(f"only the first {MAX_ENTITIES:,} mentions of ATT&CK names are listed")
        return entities

    def _score(
        self,
        text: str,
        spans: list[tuple[int, int]],
        named: np.ndarray,
        reading: _Reading,
        memory: Memory | None,
        deadline: Deadline,
    ) -> _Scored:
        """Every label's report score, segment by segment (see `SEGMENT_CHARS`): a label's
        score is its best segment's, and its evidence and reviewed passages come from there."""
        scored = _Scored(np.full(len(self.model.labels), -1.0, dtype=np.float32))
        for first, last in _segments(spans, SEGMENT_CHARS, SEGMENT_SENTENCES):
            deadline.check("scoring the report")
            self._score_segment(text, spans[first:last], named, reading, memory, scored)
        return scored

    def _score_segment(
        self,
        text: str,
        spans: list[tuple[int, int]],
        named: np.ndarray,
        reading: _Reading,
        memory: Memory | None,
        scored: _Scored,
    ) -> None:
        """One segment (its sentences' `spans`) scored as a report of its own, revised by the
        review memory if any; the labels it scores better than the segments before take its
        score and reviewed passages, and, when they pass the threshold, its evidence."""
        sentences = [text[a:b] for a, b in spans]
        ranges = window_ranges(len(spans), reading.window, reading.stride)
        scores = self.model.score_document(sentences, ranges, named)
        part_report = scores.report
        recalled: dict[int, tuple[ReviewedEvidence, ...]] = {}
        if memory is not None:
            revision = memory.revise(
                self.model.labels, sentences, ranges, scores.report, scores.window
            )
            part_report, recalled = revision.report, _reviewed_spans(revision, spans)
        better = np.flatnonzero(part_report > scored.report)
        scored.report[better] = part_report[better]
        wanted = [int(j) for j in better if part_report[j] >= reading.threshold]
        scored.evidence.update(
            self._evidence(scores, wanted, spans, ranges, reading.max_evidence, recalled)
        )
        scored.reviewed.update({int(j): recalled.get(int(j), ()) for j in better})

    def _hits(
        self,
        text: str,
        spans: list[tuple[int, int]],
        scored: _Scored,
        entities: list[NamedEntity],
        threshold: float,
        explain: bool,
        deadline: Deadline,
    ) -> list[TechniqueHit]:
        """The techniques at or above `threshold`, best first, with their evidence, the named
        software known to use them and, with `explain`, per-word attributions."""
        hits: list[TechniqueHit] = []
        passages: dict[tuple[int, int], Any] = {}  # read once, explained for every technique
        for j in scored.passing(threshold):
            label = self.model.labels[j]
            attributions: tuple[Any, ...] = ()
            if explain:
                deadline.check("explaining the techniques")
                attributions = self._attributions(text, spans, scored.evidence[j], label, passages)
            users = tuple(self.gazetteer.known_users(entities, label))
            hits.append(
                TechniqueHit(
                    self.techniques[label],
                    float(scored.report[j]),
                    scored.evidence[j],
                    attributions,
                    named=users,
                    reviewed=scored.reviewed.get(j, ()),
                )
            )
        return hits

    def _defence(self, hits: list[TechniqueHit]) -> Defence:
        """Mitigations, detections and similar adversaries for the techniques found (not
        those only implied by a sub-technique)."""
        from mitremap.defend import defend as defend_techniques

        found = {h.id: h.confidence for h in hits if not h.implied}
        return defend_techniques(found, self.attack())

    def attack(self, data_dir: str | os.PathLike[str] | None = None) -> AttackKB:
        """The ATT&CK knowledge base given at load, else the version the model was trained on
        (loaded once: a bundle from `data_dir`, the data mirror or the cache, else the
        knowledge the model carries; `classify.knowledge.attack_for_model`)."""
        if self._kb is None:
            from mitremap.classify.knowledge import attack_for_model

            version = self.model.card.attack_version or None
            self._kb = attack_for_model(version, data_dir=data_dir, model=self.path)
        return self._kb

    def _evidence(
        self,
        scores: DocumentScores,
        labels: list[int],
        spans: list[tuple[int, int]],
        ranges: list[tuple[int, int]],
        limit: int,
        reviewed: dict[int, tuple[ReviewedEvidence, ...]] | None = None,
    ) -> dict[int, tuple[Evidence, ...]]:
        """Each label's evidence: the sentences that support it in its best windows.

        Windows find the passage; the passage is then narrowed to its sentences that score
        at least half the best of them (adjacent ones merged). When no single sentence
        carries the technique — it needs the context — the best window is the evidence.
        A passage close to one where analysts accepted the technique is evidence first; the
        windows around one where they rejected it are not evidence for it.
        """
        reviewed = reviewed or {}
        picked = {
            j: self._best_windows(scores, j, ranges, limit, reviewed.get(j, ())) for j in labels
        }
        wanted = sorted({s for top in picked.values() for w in top for s in range(*ranges[w])})
        sentence = scores.sentences(wanted) if scores.sentences and wanted else None
        rows = {s: sentence[r] for r, s in enumerate(wanted)} if sentence is not None else None
        out: dict[int, tuple[Evidence, ...]] = {}
        for j, top in picked.items():
            accepted = [r for r in reviewed.get(j, ()) if r.action == "accepted"]
            found = _passages(scores, j, top, accepted, rows, spans, ranges)
            best = sorted(_merge_overlaps(found), key=lambda f: -f.confidence)[:limit]
            out[j] = tuple(Evidence(f.start, f.end, f.confidence) for f in sorted(best))
        return out

    @staticmethod
    def _best_windows(
        scores: DocumentScores,
        j: int,
        ranges: list[tuple[int, int]],
        limit: int,
        reviewed: tuple[ReviewedEvidence, ...],
    ) -> list[int]:
        """A label's best windows (at least half the best score), leaving out the windows
        around passages where analysts rejected it."""
        column = scores.window[:, j]
        if not len(column):
            return []
        rejected = [(r.first, r.last) for r in reviewed if r.action == "rejected" and r.first >= 0]
        allowed = [
            w for w, (a, b) in enumerate(ranges) if not any(a < z and y < b for y, z in rejected)
        ]
        if not allowed:
            return []
        best = float(column[allowed].max())
        order = sorted(allowed, key=lambda w: -column[w])[:limit]
        top = [w for w in order if column[w] >= max(0.05, 0.5 * best)]
        return top or order[:1]

    def _with_parents(self, hits: list[TechniqueHit]) -> list[TechniqueHit]:
        """A sub-technique implies its parent: add the parent at the child's confidence when
        missing, or raise it to the child's confidence when the model gave it less."""
        by_id = {h.id: h for h in hits}
        for h in sorted(hits, key=lambda h: -h.confidence):
            parent = h.technique.parent
            if not parent:
                continue
            found = by_id.get(parent)
            if found is None:
                info = self.techniques.get(parent) or TechniqueInfo(parent, parent)
                by_id[parent] = TechniqueHit(info, h.confidence, h.evidence, (), implied=True)
            elif found.confidence < h.confidence:
                by_id[parent] = TechniqueHit(
                    found.technique, h.confidence, h.evidence, (), implied=True
                )
        return sorted(by_id.values(), key=lambda h: -h.confidence)

    def _attributions(
        self,
        text: str,
        spans: list[tuple[int, int]],
        evidence: tuple[Evidence, ...],
        label: str,
        passages: dict[tuple[int, int], Any],
    ) -> tuple[Any, ...]:
        """Exact per-word contributions to the technique's score over each evidence passage
        (its sentences read as one window, as the model reads windows)."""
        model: Any = self.model  # exact attributions need a linear backend's weights
        if not hasattr(model, "label_weights") or not evidence:
            return ()
        from mitremap.explain import Passage

        weights, _ = model.label_weights(label)
        out: list[Any] = []
        for e in evidence:
            passage = passages.get((e.start, e.end))
            if passage is None:
                inside = [s for s in spans if e.start <= s[0] and s[1] <= e.end]
                if not inside:
                    continue
                passage = passages[e.start, e.end] = Passage.read(text, inside, model.features)
            out.extend(passage.attributions(weights))
        return tuple(out)

    def top_k(self, texts: Sequence[str], k: int = 5) -> list[list[tuple[str, float]]]:
        """For each text: its `k` most likely techniques with calibrated confidence."""
        if not texts:
            return []
        proba = self.model.predict_proba(list(texts))
        k = max(1, min(k, proba.shape[1]))
        top = np.argsort(-proba, axis=1)[:, :k]
        labels = self.model.labels
        return [
            [(labels[j], float(row[j])) for j in idx] for row, idx in zip(proba, top, strict=True)
        ]

    def technique_scorer(self, technique: str) -> Callable[[Sequence[str]], np.ndarray]:
        """A function texts → calibrated confidence of one technique (for SHAP)."""
        j = self.model.labels.index(technique) if technique in self.model.labels else None
        if j is None:
            raise ModelError(f"the model has no label {technique!r}")

        def score(texts: Sequence[str]) -> np.ndarray:
            return self.model.predict_proba([str(t) for t in texts])[:, j]

        return score


@dataclass(frozen=True)
class _Reading:
    """How a report is read: its windows (`window` sentences, a start every `stride`), and
    which techniques keep evidence (those at or above `threshold`, `max_evidence` each)."""

    threshold: float
    window: int
    stride: int
    max_evidence: int


@dataclass
class _Scored:
    """The report's scores so far, one per label (each its best segment's), with the evidence
    and reviewed passages of that segment."""

    report: np.ndarray
    evidence: dict[int, tuple[Evidence, ...]] = field(default_factory=dict)
    reviewed: dict[int, tuple[ReviewedEvidence, ...]] = field(default_factory=dict)

    def passing(self, threshold: float) -> list[int]:
        """The labels at or above `threshold`, best first."""
        return [int(j) for j in np.argsort(-self.report) if self.report[j] >= threshold]

    def candidates(self, labels: Sequence[str]) -> list[tuple[str, float]]:
        """The five best labels, passing or not (what `Analysis.message` names)."""
        return [(labels[j], float(self.report[j])) for j in np.argsort(-self.report)[:5]]


def _as_document(text_or_document: str | Document) -> Document:
    """The report as a Document; without a date given, the date the text states (for the
    exports' `published`)."""
    document = (
        text_or_document
        if isinstance(text_or_document, Document)
        else Document(str(text_or_document))
    )
    if not document.date:
        published = stated_date(document.text)
        if published is not None:
            document = replace(document, date=published.isoformat())
    return document


def _read_sentences(
    text: str, deadline: Deadline, notes: list[str]
) -> tuple[str, list[tuple[int, int]]]:
    """The text that is read and its sentences' spans: at most `MAX_SENTENCES`; past them the
    rest of the text is left out, and a note says so."""
    split = iter_sentences(text, deadline=deadline)
    spans = [(s.start, s.end) for s in itertools.islice(split, MAX_SENTENCES)]
    if len(spans) == MAX_SENTENCES and next(split, None) is not None:
        read = text[: spans[-1][1]]
        notes.append(
            f"only the first {MAX_SENTENCES:,} sentences ({len(read):,} of "
            f"{len(text):,} characters) were analysed"
        )
        return read, spans
    return text, spans


def _indicators(text: str, deadline: Deadline, notes: list[str]) -> list[Indicator]:
    """The text's indicators of compromise, the first `MAX_INDICATORS` (a note says when more
    were left out)."""
    from mitremap.iocs import extract_iocs
    from mitremap.iocs.extract import MAX_INDICATORS

    indicators = extract_iocs(text, deadline=deadline, limit=MAX_INDICATORS + 1)
    if len(indicators) > MAX_INDICATORS:
        indicators = indicators[:MAX_INDICATORS]
        notes.append(f"only the first {MAX_INDICATORS:,} indicators are listed")
    return indicators


def _passages(
    scores: DocumentScores,
    j: int,
    top: list[int],
    accepted: list[ReviewedEvidence],
    rows: dict[int, np.ndarray] | None,
    spans: list[tuple[int, int]],
    ranges: list[tuple[int, int]],
) -> list[_Span]:
    """Label `j`'s candidate passages: where analysts accepted it, then the sentences of its
    best windows (`top`) that carry it (`rows`: the per-sentence scores, by sentence); when
    none does, it needs the context, and its best window is the passage."""
    found = [_Span(r.start, r.end, r.confidence) for r in accepted]
    if top and rows is not None:
        members = sorted({s for w in top for s in range(*ranges[w])})
        values = {s: float(rows[s][j]) for s in members}
        found += _sentence_runs(members, values, spans)
    if top and not found:
        first, last = ranges[top[0]]
        found = [_Span(spans[first][0], spans[last - 1][1], float(scores.window[top[0], j]))]
    return found


@dataclass(order=True)
class _Span:
    """An evidence passage being assembled: character offsets and its confidence."""

    start: int
    end: int
    confidence: float


def _sentence_runs(
    members: list[int], values: dict[int, float], spans: list[tuple[int, int]]
) -> list[_Span]:
    """Runs of adjacent sentences that score at least half the best of `members`."""
    floor = max(0.05, 0.5 * max(values.values()))
    runs: list[_Span] = []
    previous = -2
    for s in members:
        if values[s] < floor:
            continue
        a, b = spans[s]
        if runs and previous == s - 1:
            runs[-1].end = b
            runs[-1].confidence = max(runs[-1].confidence, values[s])
        else:
            runs.append(_Span(a, b, values[s]))
        previous = s
    return runs


def _merge_overlaps(found: list[_Span]) -> list[_Span]:
    """One span for passages that overlap (a reviewed passage and the model's sentences)."""
    merged: list[_Span] = []
    for f in sorted(found):
        if merged and f.start < merged[-1].end:
            last = merged[-1]
            last.end = max(last.end, f.end)
            last.confidence = max(last.confidence, f.confidence)
        else:
            merged.append(_Span(f.start, f.end, f.confidence))
    return merged


def _reviewed_spans(
    revision: Revision, spans: list[tuple[int, int]]
) -> dict[int, tuple[ReviewedEvidence, ...]]:
    """The memory's matches (sentence ranges) as character spans of the document."""
    out: dict[int, tuple[ReviewedEvidence, ...]] = {}
    for j, recalls in revision.recalls.items():
        out[j] = tuple(
            ReviewedEvidence(
                spans[r.first][0],
                spans[r.last - 1][1],
                r.similarity,
                r.confidence,
                r.action,
                r.passage.text,
                dict(r.passage.origin),
                r.first,
                r.last,
            )
            for r in recalls
        )
    return out


SEGMENT_CHARS = 500_000
"""A longer document is read in segments of about this size (whole sentences), each scored as
a report of its own; a technique's confidence is its best segment's. Memory stays flat in the
document's size (a segment costs about 100 MB of scores) instead of ~200 MB per MB of text."""
SEGMENT_SENTENCES = 5_000
"""...and of at most this many sentences (a 500,000-character segment of prose has ~3,500):
scores cost memory by the sentence, and one-letter sentences would make a segment cost GBs."""
MAX_SENTENCES = 500_000
"""Sentences analysed at most: ~70 MB of prose (more than any input is allowed), or ~10 s of
one-letter lines; past them the rest of the document is left out, with a note."""
MAX_ENTITIES = 10_000
"""Mentions of ATT&CK names listed at most (10 MB of "cmd cmd …" holds 2.6 million, which took
6 GB): past them the rest is left out of the list and of the named evidence, with a note."""


def _segments(
    spans: Sequence[tuple[int, int]], size: int, most: int = SEGMENT_SENTENCES
) -> list[tuple[int, int]]:
    """[first, last) sentence ranges whose text spans at most about `size` characters, and
    that hold at most `most` sentences."""
    if not spans:
        return [(0, 0)]
    out, first = [], 0
    for i, (_, end) in enumerate(spans):
        if i > first and (end - spans[first][0] > size or i - first >= most):
            out.append((first, i))
            first = i
    out.append((first, len(spans)))
    return out


def default_model_path() -> Path:
    """Where the default model lives: `<cache>/models/default`."""
    from mitremap.data import DataResolver

    return DataResolver().models_dir / "default"
