"""Boosted trees copied out of scikit-learn into plain lists must predict exactly as they did."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mitremap.classify.calibration import Calibration, report_features
from mitremap.classify.trees import TreeEnsemble


def _data(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    # an interaction no linear model can fit: positive when both signs agree, noisy
    logit = 2.5 * X[:, 0] * X[:, 1] + 0.5 * X[:, 2]
    y = rng.random(n) < 1 / (1 + np.exp(-logit))
    return X, y


def test_copied_trees_give_scikit_learns_probabilities():
    from sklearn.ensemble import GradientBoostingClassifier

    X, y = _data()
    gb = GradientBoostingClassifier(n_estimators=40, max_depth=3, random_state=0).fit(X, y)
    trees = TreeEnsemble.from_sklearn(gb)
    X_new, _ = _data(500, seed=1)
    np.testing.assert_allclose(trees.proba(X_new), gb.predict_proba(X_new)[:, 1], atol=1e-5)


def test_trees_learn_an_interaction_and_survive_json():
    X, y = _data()
    trees = TreeEnsemble.fit(X, y)
    restored = TreeEnsemble.from_dict(json.loads(json.dumps(trees.to_dict())))
    probe = np.array([[1.5, 1.5, 0, 0], [1.5, -1.5, 0, 0], [-1.5, -1.5, 0, 0]], dtype=np.float32)
    p = restored.proba(probe)
    assert p[0] > 0.8 and p[2] > 0.8 and p[1] < 0.2
    np.testing.assert_array_equal(p, trees.proba(probe))


def test_damaged_trees_are_refused():
    trees = TreeEnsemble.fit(*_data(600)).to_dict()
    trees["trees"][0][1] = trees["trees"][0][1][:-1]
    with pytest.raises(ValueError, match="different lengths"):
        TreeEnsemble.from_dict(trees)


def test_report_confidence_uses_the_trees_when_present():
    rng = np.random.default_rng(0)
    windows = rng.normal(-1, 0.5, size=(12, 3)).astype(np.float32)
    windows[4, 0] = 1.5  # one strong window for label 0
    windows[4, 1] = 0.5  # label 1's best window is label 0's too
    windows[:, 2] = -2.0  # label 2: below the floor everywhere
    feats = report_features(windows)
    assert feats.shape == (3, 7)  # best, second, margin, log_windows, sentence best, margin, named
    assert feats[0, 0] == pytest.approx(1.5) and feats[0, 3] == pytest.approx(np.log(13))
    assert feats[0, 2] == pytest.approx(1.0)  # 1.5 over the window's runner-up 0.5
    assert feats[1, 2] == pytest.approx(-1.0)  # 0.5 under the window's best 1.5
    # a tree model that says "yes" exactly when the best window score is above 1
    stump = {
        "init": 0.0,
        "rate": 1.0,
        "trees": [[[0, -2, -2], [1.0, -2, -2], [1, -1, -1], [2, -1, -1], [0, -5.0, 5.0]]],
    }
    proba = Calibration(report_trees=stump).report_proba(windows)
    assert proba[0] > 0.99 and proba[1] < 0.01
    assert proba[2] == 0.0  # certainly absent: not even sent through the trees


def test_report_features_of_a_one_window_report():
    windows = np.array([[0.2, -0.3, 0.9]], dtype=np.float32)
    feats = report_features(windows)
    np.testing.assert_allclose(feats[:, 0], feats[:, 1])  # second best is the best
    np.testing.assert_allclose(feats[:, 2], [-0.7, -1.2, 0.7], rtol=1e-5)
