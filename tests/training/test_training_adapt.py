"""The quick update: a model's weights for the reviewed techniques corrected by the reviews."""

from __future__ import annotations

import numpy as np
import pytest

from mitremap.errors import ModelError
from mitremap.training.adapt import adapt_linear, examples
from mitremap.training.corpus import LabelledText
from mitremap.training.evaluate import compare_reports

SHELL = "The operator typed dir and whoami into the remote prompt."
TASK = "It registered a job named Refresh that starts the loader at logon."


def reviewed(*items: tuple[str, tuple[str, ...], list[str]]) -> list[LabelledText]:
    return [
        LabelledText(text, labels, "reviews", f"r{i}", {"rejected": refused} if refused else {})
        for i, (text, labels, refused) in enumerate(items)
    ]


def score(mm, text: str, technique: str) -> float:
    j = mm.model.labels.index(technique)
    return float(mm.model.predict_proba([text])[0, j])


def test_reviewed_passages_become_examples():
    found = examples(
        reviewed((SHELL, ("T1059",), []), (TASK, (), ["T1053.005"]), ("nothing", (), []))
    )
    assert [(sorted(e.positives), e.negatives) for e in found] == [
        (["T1059"], None),
        ([], frozenset({"T1053.005"})),
    ]


def test_the_update_moves_what_the_reviews_say_and_nothing_else(mm):
    passages = reviewed(
        (SHELL, ("T1059",), []),
        (SHELL.replace("dir", "ipconfig"), ("T1059",), []),
        (TASK, (), ["T1059"]),
    )
    updated = adapt_linear(mm.model, passages)
    from mitremap.analysis import MitreMap

    after = MitreMap(updated)
    assert score(after, SHELL, "T1059") > score(mm, SHELL, "T1059") + 0.05
    assert score(after, TASK, "T1059") < score(mm, TASK, "T1059")
    # the techniques no review touched keep their weights exactly
    j = mm.model.labels.index("T1053")
    assert (updated.weights[:, j] != mm.model.weights[:, j]).nnz == 0
    assert updated.bias[j] == mm.model.bias[j]
    card = updated.card.recipe["quick_update"]
    assert card["reviewed_passages"] == 3 and card["techniques"] == 1
    assert mm.model.card.recipe.get("quick_update") is None  # the original is untouched


def test_a_rejection_moves_only_the_rejected_technique(mm):
    updated = adapt_linear(mm.model, reviewed((TASK, (), ["T1053.005"])))
    changed = {
        mm.model.labels[j]
        for j in range(len(mm.model.labels))
        if (updated.weights[:, j] != mm.model.weights[:, j]).nnz
        or updated.bias[j] != mm.model.bias[j]
    }
    assert changed <= {"T1053.005"}


def test_nothing_to_learn_from_is_an_error(mm):
    with pytest.raises(ModelError, match="no reviewed passages"):
        adapt_linear(mm.model, reviewed(("text", (), [])))


def test_compare_reports_before_and_after():
    gold = [{"T1059"}, {"T1053.005", "T1105"}]
    before = [{"T1059": 0.9, "T1105": 0.7}, {"T1053.005": 0.2}]
    after = [{"T1059": 0.9}, {"T1053.005": 0.8, "T1105": 0.65}]
    out = compare_reports(before, after, gold, threshold=0.6)
    assert out["reports"] == 2
    assert out["before"] == {"precision": 0.25, "recall": 0.5, "f1": pytest.approx(1 / 3, 1e-3)}
    assert out["after"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    moved = {m["technique"]: m["change"] for m in out["moved"]}
    assert moved["T1053.005"] == pytest.approx(0.6) and moved["T1105"] == pytest.approx(-0.025)
    assert out["moved"][0]["technique"] == "T1053.005"  # the largest move first
    assert np.isclose(out["threshold"], 0.6)
