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
"""

from __future__ import annotations

import itertools
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mitremap.attack import technique_url
from mitremap.deadline import Deadline
from mitremap.documents import Document, window_ranges
from mitremap.documents.segment import iter_sentences
from mitremap.errors import ModelError
from mitremap.names import Gazetteer, NamedEntity

if TYPE_CHECKING:
    from mitremap.attack import AttackKB
    from mitremap.classify.base import DocumentScores, TechniqueModel
    from mitremap.defend import Defence
    from mitremap.iocs import Indicator


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

    def to_dict(self, text: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {
            "start": self.start,
            "end": self.end,
            "confidence": round(self.confidence, 4),
        }
        if text:
            out["text"] = text[self.start : self.end]
        return out


@dataclass(frozen=True)
class TechniqueHit:
    """A technique found in the document. `implied`: added because a sub-technique was found."""

    technique: TechniqueInfo
    confidence: float
    evidence: tuple[Evidence, ...] = ()
    attributions: tuple[Any, ...] = ()
    implied: bool = False
    # second kind of evidence: software, groups or campaigns named in the report that ATT&CK
    # says use this technique (shown beside the text evidence; never sets the confidence)
    named: tuple[NamedEntity, ...] = ()

    @property
    def id(self) -> str:
        return self.technique.id

    def to_dict(self, text: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {
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

    def to_dict(self) -> dict[str, Any]:
        text = self.document.text
        out: dict[str, Any] = {
            "document": self.document.to_dict(),
            "model": self.model,
            "threshold": self.threshold,
            "window": self.window,
            "techniques": [hit.to_dict(text) for hit in self.techniques],
        }
        if self.indicators or self.indicators_extracted:
            out["indicators"] = [i.to_dict() for i in self.indicators]
        out["entities"] = [e.to_dict(text) for e in self.entities]
        if self.defence is not None:
            out["defend"] = self.defence.to_dict()
        if self.message:
            out["message"] = self.message
        out["timings"] = {k: round(v, 4) for k, v in self.timings.items()}
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
            from mitremap.attack import load_attack

            kb = load_attack(version=self.model.get("attack_version") or None)
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
        return cls(load_model(path), kb=kb)

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
        deadline: Deadline | None = None,
    ) -> Analysis:
        """Techniques whose report-level confidence is at or above `threshold`, best first.
        `defend`: add mitigations, detections and similar adversaries (`Analysis.defend`);
        `deadline`: stop with `TimeLimitError` when it passes."""
        if window < 1 or stride < 1:
            raise ValueError("window and stride must be at least 1")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError("threshold must be between 0 and 1")
        started = time.perf_counter()
        document = (
            text_or_document
            if isinstance(text_or_document, Document)
            else Document(str(text_or_document))
        )
        deadline = deadline or Deadline.none()
        notes: list[str] = []  # what was left out, for the document's warnings
        text = document.text
        sentences = iter_sentences(text, deadline=deadline)
        spans = [(s.start, s.end) for s in itertools.islice(sentences, MAX_SENTENCES)]
        if len(spans) == MAX_SENTENCES and next(sentences, None) is not None:
            text = text[: spans[-1][1]]  # what is read: the rest is left out, and said so
            notes.append(
                f"only the first {MAX_SENTENCES:,} sentences ({len(text):,} of "
                f"{len(document.text):,} characters) were analysed"
            )
        segmented = time.perf_counter()
        deadline.check("finding named software")
        entities = self.gazetteer.find(text, limit=MAX_ENTITIES + 1)
        if len(entities) > MAX_ENTITIES:
            entities = entities[:MAX_ENTITIES]
            notes.append(f"only the first {MAX_ENTITIES:,} mentions of ATT&CK names are listed")
        named = self.gazetteer.label_evidence(entities, self.model.labels)
        report = np.full(len(self.model.labels), -1.0, dtype=np.float32)  # below any segment
        evidence: dict[int, tuple[Evidence, ...]] = {}
        for part in _segments(spans, SEGMENT_CHARS, SEGMENT_SENTENCES):
            deadline.check("scoring the report")
            part_spans = spans[part[0] : part[1]]
            ranges = window_ranges(len(part_spans), window, stride)
            scores = self.model.score_document([text[a:b] for a, b in part_spans], ranges, named)
            better = np.flatnonzero(scores.report > report)
            report[better] = scores.report[better]
            wanted = [int(j) for j in better if scores.report[j] >= threshold]
            evidence.update(self._evidence(scores, wanted, part_spans, ranges, max_evidence))
        scored = time.perf_counter()
        order = np.argsort(-report)
        passing = [int(j) for j in order if report[j] >= threshold]
        hits: list[TechniqueHit] = []
        passages: dict[tuple[int, int], Any] = {}  # read once, explained for every technique
        for j in passing:
            label = self.model.labels[j]
            attributions: tuple[Any, ...] = ()
            if explain:
                deadline.check("explaining the techniques")
                attributions = self._attributions(text, spans, evidence[j], label, passages)
            users = tuple(self.gazetteer.known_users(entities, label))
            hits.append(
                TechniqueHit(
                    self.techniques[label], float(report[j]), evidence[j], attributions, named=users
                )
            )
        if include_parents:
            hits = self._with_parents(hits)
        candidates = [(self.model.labels[j], float(report[j])) for j in order[:5]]
        indicators: list[Indicator] = []
        if iocs:
            from mitremap.iocs import extract_iocs
            from mitremap.iocs.extract import MAX_INDICATORS

            indicators = extract_iocs(text, deadline=deadline, limit=MAX_INDICATORS + 1)
            if len(indicators) > MAX_INDICATORS:
                indicators = indicators[:MAX_INDICATORS]
                notes.append(f"only the first {MAX_INDICATORS:,} indicators are listed")
        if notes:
            document = replace(document, warnings=(*document.warnings, *notes))
        defence = None
        if defend:
            from mitremap.defend import defend as defend_techniques

            found = {h.id: h.confidence for h in hits if not h.implied}
            defence = defend_techniques(found, self.attack())
        return Analysis(
            document,
            hits,
            threshold,
            window,
            self.card,
            indicators=indicators,
            indicators_extracted=iocs,
            entities=entities,
            candidates=candidates,
            timings={
                "segment": segmented - started,
                "score": scored - segmented,
                "total": time.perf_counter() - started,
            },
            defence=defence,
        )

    def attack(self, data_dir: str | os.PathLike[str] | None = None) -> AttackKB:
        """The ATT&CK knowledge base given at load, else the version the model was trained on
        (loaded once: from `data_dir`, the data mirror or the cache)."""
        if self._kb is None:
            from mitremap.attack import load_attack

            version = self.model.card.attack_version or None
            self._kb = load_attack(version=version, data_dir=data_dir)
        return self._kb

    def _evidence(
        self,
        scores: DocumentScores,
        labels: list[int],
        spans: list[tuple[int, int]],
        ranges: list[tuple[int, int]],
        limit: int,
    ) -> dict[int, tuple[Evidence, ...]]:
        """Each label's evidence: the sentences that support it in its best windows.

        Windows find the passage; the passage is then narrowed to its sentences that score
        at least half the best of them (adjacent ones merged). When no single sentence
        carries the technique — it needs the context — the best window is the evidence.
        """
        picked: dict[int, list[int]] = {}
        for j in labels:
            column = scores.window[:, j]
            best = float(column.max()) if len(column) else 0.0
            top = [
                int(i) for i in np.argsort(-column)[:limit] if column[i] >= max(0.05, 0.5 * best)
            ]
            picked[j] = top or [int(np.argmax(column))] if len(column) else []
        wanted = sorted({s for top in picked.values() for w in top for s in range(*ranges[w])})
        sentence = scores.sentences(wanted) if scores.sentences and wanted else None
        row = {s: r for r, s in enumerate(wanted)}
        out: dict[int, tuple[Evidence, ...]] = {}
        for j, top in picked.items():
            if not top:
                out[j] = ()
                continue
            found: list[list[float]] = []
            if sentence is not None:
                members = sorted({s for w in top for s in range(*ranges[w])})
                values = {s: float(sentence[row[s], j]) for s in members}
                floor = max(0.05, 0.5 * max(values.values()))
                for s in members:
                    if values[s] < floor:
                        continue
                    a, b = spans[s]
                    if found and found[-1][3] == s - 1:
                        found[-1][1], found[-1][3] = b, s
                        found[-1][2] = max(found[-1][2], values[s])
                    else:
                        found.append([a, b, values[s], s])
            if not found:
                w = top[0]
                found = [
                    [
                        spans[ranges[w][0]][0],
                        spans[ranges[w][1] - 1][1],
                        float(scores.window[w, j]),
                        -1,
                    ]
                ]
            found = sorted(found, key=lambda f: -f[2])[:limit]
            out[j] = tuple(Evidence(int(a), int(b), c) for a, b, c, _ in sorted(found))
        return out

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
