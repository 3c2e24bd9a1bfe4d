"""Training the default model: the recipe's corpus, TRAM's annotated reports for calibration."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from mitremap.classify.base import ModelCard, Progress
from mitremap.classify.linear import LinearModel, LinearSettings

CALIBRATION_REPORTS = "tram/reports.jsonl"


def calibration_reports(
    kb: Any, resolver: Any, exclude: Callable[[Any], bool] | None = None
) -> list[Any]:
    """TRAM's annotated reports with labels normalised like training labels."""
    from mitremap.corpus import LabelledText, LabelNormaliser, read_jsonl

    normaliser = LabelNormaliser(kb)
    located = resolver.find(CALIBRATION_REPORTS)
    if located.path is None:
        return []
    out = []
    for r in read_jsonl(located.path, source="tram-reports"):
        if exclude is not None and exclude(r):
            continue
        out.append(LabelledText(r.text, normaliser.normalise(r.labels), r.source, r.id, r.meta))
    return out


def train_model(
    kb: Any = None,
    sources: Iterable[str] | None = None,
    add: Iterable[str | Path] = (),
    drop: Iterable[str] = (),
    include: Iterable[str] = (),
    resolver: Any = None,
    settings: LinearSettings | None = None,
    calibrate: bool = True,
    progress: Progress | None = None,
) -> LinearModel:
    """Build the recipe's corpus and train the linear model on it (the `mitremap train` path)."""
    from mitremap import __version__
    from mitremap.attack import load_attack
    from mitremap.corpus import DEFAULT_RECIPE, Recipe, build_corpus
    from mitremap.data import DataResolver

    resolver = resolver or DataResolver()
    kb = kb or load_attack(data_dir=resolver.mirror)
    recipe = DEFAULT_RECIPE
    if sources is not None:
        recipe = Recipe("custom", "1", tuple(sources))
    stage = (lambda name: progress("corpus", 0, 1)) if progress else None
    corpus = build_corpus(
        kb, recipe, resolver=resolver, add=add, drop=drop, include=include, progress=stage
    )
    reports = calibration_reports(kb, resolver) if calibrate else []
    summary = corpus.report.to_dict()
    card = ModelCard(
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
    )
    if reports:
        labelled = sum(1 for r in reports if r.labels)
        card.recipe["calibration"] = f"{labelled} annotated TRAM reports ({CALIBRATION_REPORTS})"
    return LinearModel.train(
        corpus.items, reports=reports, settings=settings, card=card, progress=progress
    )
