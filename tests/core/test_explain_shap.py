"""SHAP, as in the original notebook, agrees in sign with the exact linear attributions."""

from __future__ import annotations

import re

import numpy as np
import pytest

shap = pytest.importorskip("shap")

from mitremap.explain import shap_values, top_attributions  # noqa: E402

TEXT = "The operators created a scheduled task named Updater with schtasks every hour"


def test_shap_returns_real_explanations_that_agree_on_sign_with_exact_attributions(mm):
    result = mm.analyze(TEXT, threshold=0.0, explain=True)
    hit = next(h for h in result.techniques if h.id == "T1053.005")
    exact = {TEXT[a.start : a.end].lower(): a.weight for a in hit.attributions}
    explanation = shap_values(mm, [TEXT], "T1053.005")
    assert isinstance(explanation, shap.Explanation)
    tokens = [re.sub(r"\W", "", t).lower() for t in explanation[0].data]
    values = dict(zip(tokens, explanation[0].values.ravel(), strict=True))
    top = [
        a for a in top_attributions(hit.attributions, 4) if TEXT[a.start : a.end].lower() in values
    ]
    assert len(top) >= 3
    for attribution in top:
        word = TEXT[attribution.start : attribution.end].lower()
        assert (values[word] > 0) == (exact[word] > 0), (word, values[word], exact[word])


def test_shap_on_any_scoring_function():
    explanation = shap_values(
        lambda texts: np.array([[t.count("task") * 1.0] for t in texts]), ["a task, a task"]
    )
    assert explanation[0].values.ravel().max() > 0


def test_shaps_plots_draw_with_the_explain_extra(tmp_path):
    """The `explain` extra brings what SHAP's plots need (matplotlib), headless."""
    matplotlib = pytest.importorskip("matplotlib", reason="pip install 'mitremap[explain]'")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    explanation = shap_values(
        lambda texts: np.array([[t.count("task") * 1.0] for t in texts]),
        ["a task, a scheduled task"],
    )
    shap.plots.bar(explanation[0, :, 0], show=False)
    plt.savefig(tmp_path / "bar.png")
    plt.close("all")
    assert (tmp_path / "bar.png").stat().st_size > 1000
