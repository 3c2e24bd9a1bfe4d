"""Training the default model: the recipe's corpus; annotated reports for calibration."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mitremap.classify.base import ModelCard
from mitremap.classify.linear import LinearModel
from mitremap.sources import source
from mitremap.training.fit import LinearSettings, Progress, train_linear

if TYPE_CHECKING:
    import numpy as np

    from mitremap.attack import AttackKB
    from mitremap.data import DataResolver
    from mitremap.training.corpus import Corpus, LabelledText

CALIBRATION_REPORTS = "tram/reports.jsonl"
# annotated whole reports calibrate report confidence (`mitremap.sources`, role calibration):
# TRAM's, and AnnoCTR's train split (its dev split is kept for evaluation)
DEFAULT_REPORT_SOURCES = ("tram-reports", "annoctr-reports")


def calibration_reports(
    kb: AttackKB,
    resolver: DataResolver,
    exclude: Callable[[LabelledText], bool] | None = None,
    sources: Iterable[str] = ("tram-reports",),
) -> list[LabelledText]:
    """Annotated whole reports with labels normalised like training labels."""
    from mitremap.training.corpus import LabelledText, LabelNormaliser, read_jsonl

    normaliser = LabelNormaliser(kb)
    out = []
    for name in sources:
        spec = source(name)
        located = resolver.find(str(spec.path))
        if located.path is None:
            continue
        for r in read_jsonl(located.path, source=name):
            if spec.split is not None and r.meta.get("split") != spec.split:
                continue
            if exclude is not None and exclude(r):
                continue
            labels = normaliser.normalise(r.labels)
            out.append(LabelledText(r.text, labels, r.source, r.id, r.meta))
    return out


def train_model(
    kb: AttackKB | None = None,
    sources: Iterable[str] | None = None,
    add: Iterable[str | Path] = (),
    drop: Iterable[str] = (),
    include: Iterable[str] = (),
    resolver: DataResolver | None = None,
    settings: LinearSettings | None = None,
    calibrate: bool = True,
    progress: Progress | None = None,
    reviewed: Iterable[LabelledText] = (),
    reviewed_reports: Iterable[LabelledText] = (),
    out_of_fold: dict[str, np.ndarray] | None = None,
    report_sources: Iterable[str] = DEFAULT_REPORT_SOURCES,
    exclude: Callable[[LabelledText], bool] | None = None,
) -> LinearModel:
    """Build the recipe's corpus and train the linear model on it (the `mitremap train` path).

    `reviewed`: analysts' reviewed passages (`LabelledText`, made by the review workspace:
    `mitremap.web.workspace.reviews`), added after the corpus is built, replacing the same
    text in the corpus (the analyst's labels win); a passage with no label but
    `meta["rejected"]` is evidence against those techniques only. `reviewed_reports`: the
    reports analysts marked reviewed, with their techniques and passages: they calibrate the
    model beside the annotated reports (held out fold by fold with their passages), and their
    undecided sentences are "no technique" text for the techniques the reviews use.
    `out_of_fold`: see `train_linear` (the reviewed reports' confidence from fold models that
    never saw them). `report_sources`: the annotated reports to calibrate on; `exclude`: drops
    corpus texts (say, the text of reports held out for an evaluation)."""
    from mitremap.attack import load_attack
    from mitremap.data import DataResolver

    resolver = resolver or DataResolver()
    kb = kb or load_attack(data_dir=resolver.mirror)
    corpus = _build_corpus(kb, sources, resolver, add, drop, include, exclude, progress)
    report_sources = tuple(report_sources)
    missing = [
        name for name in report_sources if resolver.find(str(source(name).path)).path is None
    ]
    if calibrate and missing:
        warnings.warn(
            f"annotated reports missing ({', '.join(missing)}): the model's confidence is "
            "calibrated on less evidence; run `mitremap data fetch all` or point --data at a "
            "mirror",
            stacklevel=2,
        )
    reports = calibration_reports(kb, resolver, sources=report_sources) if calibrate else []
    card = _card(kb, corpus)
    if calibrate:  # recorded even when no report was found: a missing source is never silent
        card.recipe["calibration"] = _calibration_record(reports, report_sources, missing)
    items = corpus.items
    reviewed = list(reviewed)
    if reviewed:
        items = _with_reviewed(items, reviewed, kb)
        card.recipe["reviewed_passages"] = len(reviewed)
    if calibrate:
        extra = _normalised(reviewed_reports, kb)
        reports = [*reports, *extra]
        if extra:
            card.recipe["calibration"]["reviewed_reports"] = len(extra)
    return train_linear(
        items,
        reports=reports,
        settings=settings,
        card=card,
        progress=progress,
        out_of_fold=out_of_fold,
    )


def _build_corpus(
    kb: AttackKB,
    sources: Iterable[str] | None,
    resolver: DataResolver,
    add: Iterable[str | Path],
    drop: Iterable[str],
    include: Iterable[str],
    exclude: Callable[[LabelledText], bool] | None,
    progress: Progress | None,
) -> Corpus:
    """The training corpus: the default recipe's sources, or the `sources` named, with the
    files added and the sources dropped or included."""
    from mitremap.training.corpus import DEFAULT_RECIPE, Recipe, build_corpus

    recipe = DEFAULT_RECIPE
    if sources is not None:
        recipe = Recipe("custom", "1", tuple(sources))
    stage = (lambda name: progress("corpus", 0, 1)) if progress else None
    corpus = build_corpus(
        kb,
        recipe,
        resolver=resolver,
        add=add,
        drop=drop,
        include=include,
        exclude=exclude,
        progress=stage,
    )
    if progress is not None:
        progress("corpus", 1, 1)
    return corpus


def _card(kb: AttackKB, corpus: Corpus) -> ModelCard:
    """The new model's card: the ATT&CK it knows (techniques and names, so analysis needs no
    knowledge base), the corpus' recipe and counts, and when training started."""
    from mitremap import __version__
    from mitremap.names import Gazetteer

    summary = corpus.report.to_dict()
    return ModelCard(
        backend="linear",
        attack_version=kb.version,
        package_version=__version__,
        recipe=summary["recipe"] | {"added_files": summary["added_files"]},
        sources={name: counts["kept"] for name, counts in summary["sources"].items()},
        label_report=summary["labels"] | {"duplicates_merged": summary["duplicates_merged"]},
        trained_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        techniques={
            t.id: {"name": t.name, "tactics": [x.name for x in t.tactics], "parent": t.parent}
            for t in kb.techniques()
        },
        names=Gazetteer.from_attack(kb).to_dict(),
    )


def _calibration_record(
    reports: list[LabelledText], sources: tuple[str, ...], missing: list[str]
) -> dict[str, Any]:
    """What the card says the calibration was fitted on: the annotated reports by source,
    the sources missing (with a warning), and the held-out snippets."""
    counts = {name: sum(1 for r in reports if r.labels and r.source == name) for name in sources}
    record: dict[str, Any] = {
        "annotated_reports": {k: v for k, v in counts.items() if v},
        "missing": missing,
        "held_out_snippets": "short reports of held-out labelled text of every source",
    }
    if missing:
        record["warning"] = (
            f"annotated reports missing ({', '.join(missing)}): confidence is calibrated "
            "on less evidence; run `mitremap data fetch all` and retrain"
        )
    return record


def _normalised(reports: Iterable[LabelledText], kb: AttackKB) -> list[LabelledText]:
    """Reports with their labels normalised like training labels."""
    from mitremap.training.corpus import LabelNormaliser

    normalise = LabelNormaliser(kb).normalise
    return [replace(r, labels=normalise(r.labels)) for r in reports]


def _with_reviewed(
    items: list[LabelledText], reviewed: list[LabelledText], kb: AttackKB
) -> list[LabelledText]:
    """The corpus with the reviewed passages, which replace the same text: one passage
    reviewed in two reports is one item, its techniques united (and its rejections, minus
    what was accepted there)."""
    from mitremap.training.corpus import LabelledText, LabelNormaliser

    normaliser = LabelNormaliser(kb)
    extra: dict[str, LabelledText] = {}
    for r in reviewed:
        key = " ".join(r.text.lower().split())
        seen = extra.get(key)
        labels = normaliser.normalise((*(seen.labels if seen else ()), *r.labels))
        refused = {*((seen.meta or {}).get("rejected") or () if seen else ())}
        refused |= set((r.meta or {}).get("rejected") or ())
        meta = dict((seen or r).meta or {})
        meta.pop("rejected", None)
        refused -= set(labels)
        if refused:
            meta["rejected"] = sorted(normaliser.normalise(refused))
        extra[key] = LabelledText(r.text.strip(), labels, r.source, r.id, meta)
    kept = [i for i in items if " ".join(i.text.lower().split()) not in extra]
    return [*kept, *extra.values()]
