"""Exact linear attributions: the n-grams are scikit-learn's, and the words' weights add up to
the score."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer

from mitremap.classify.features import TextFeatures
from mitremap.explain import _occurrences, linear_attributions, top_attributions

CORPUS = [
    "The malware creates a scheduled task for persistence.",
    "Attackers used PowerShell to download a payload from hxxp://evil[.]com.",
    "The group dumped LSASS memory with Mimikatz.",
    "A scheduled task named Updater runs the loader every hour.",
    "Credentials were stolen from LSASS; then PsExec moved laterally.",
    "İstanbul-based operators ran cmd.exe /c whoami.",
] * 2


@pytest.mark.parametrize(
    ("analyzer", "ngrams"), [("word", (1, 2)), ("char_wb", (3, 5)), ("char_wb", (2, 6))]
)
@pytest.mark.parametrize("text", [*CORPUS[:6], "a  b\tcd   İİ x", ""])
def test_occurrences_are_exactly_scikit_learns_ngrams(analyzer, ngrams, text):
    reference = CountVectorizer(
        analyzer=analyzer, ngram_range=ngrams, lowercase=True
    ).build_analyzer()
    ours = Counter(gram for gram, _ in _occurrences(text, 0, analyzer, ngrams))
    assert ours == Counter(reference(text))


def test_occurrence_spans_point_at_the_ngram():
    text = "Then   PsExec moved"
    words = list(_occurrences(text, 100, "word", (1, 2)))
    chars = list(_occurrences(text, 0, "char_wb", (3, 3)))
    assert words and chars
    for gram, pieces in words:
        assert " ".join(text[s - 100 : e - 100].lower() for s, e in pieces) == gram
    for gram, ((start, end),) in chars:
        assert text[start:end].lower() in gram  # padding spaces are not in the text


def test_attributions_add_up_to_the_linear_score():
    features = TextFeatures.fit(CORPUS, min_df=1)
    rng = np.random.default_rng(0)
    weights = rng.normal(size=features.size)
    text = "Intro. " + " ".join(CORPUS[:3])
    spans = [(7, 7 + len(CORPUS[0])), (8 + len(CORPUS[0]), 8 + len(CORPUS[0]) + len(CORPUS[1]))]
    from scipy import sparse

    counts = features.counts([text[s:e] for s, e in spans])
    x = features.tfidf(sparse.csr_matrix(counts.sum(axis=0)))
    score = float((x @ weights)[0])
    attributions = linear_attributions(text, spans, features, weights)
    assert sum(a.weight for a in attributions) == pytest.approx(score, rel=1e-5, abs=1e-6)
    assert all(spans[0][0] <= a.start < a.end <= spans[-1][1] for a in attributions)
    assert not any(text[a.start] in "().;" or text[a.end - 1] in "().;" for a in attributions)


def test_a_word_the_model_likes_gets_the_top_weight():
    features = TextFeatures.fit(CORPUS, min_df=1)
    weights = np.zeros(features.size)
    for column, (analyzer, term) in enumerate(features.terms):
        if analyzer == "word" and term in ("scheduled", "task", "scheduled task"):
            weights[column] = 1.0
        if analyzer == "word" and term == "hour":
            weights[column] = -0.5
    text = CORPUS[3]
    attributions = linear_attributions(text, [(0, len(text))], features, weights)
    top = top_attributions(attributions, 3)
    assert {text[a.start : a.end] for a in top[:2]} == {"scheduled", "task"}
    hour = next(a for a in attributions if text[a.start : a.end] == "hour")
    assert hour.weight < 0


def test_analyze_explains_every_evidence_passage(mm):
    from tests.tiny import REPORT

    result = mm.analyze(REPORT, threshold=0.0, explain=True)
    assert result.techniques
    for hit in result.techniques[:2]:
        assert hit.attributions and hit.evidence
        for a in hit.attributions:
            assert any(e.start <= a.start < a.end <= e.end for e in hit.evidence)
        for e in hit.evidence:
            assert any(e.start <= a.start < e.end for a in hit.attributions)
