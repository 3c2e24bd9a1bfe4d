"""The linear backend on a tiny synthetic corpus: training, calibration, save/load, safety."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mitremap.classify import load_model
from mitremap.classify.features import TextFeatures
from mitremap.classify.linear import LinearModel
from mitremap.errors import ModelError
from mitremap.training.corpus import LabelledText
from mitremap.training.fit import LinearSettings, most_specific, train_linear
from mitremap.training.overlap import TextOverlap
from tests.tiny import NONE, SETTINGS, SHELL, TASK, items, reports


@pytest.fixture(scope="module")
def model() -> LinearModel:
    return train_linear(items(), settings=SETTINGS)


def _listed(rows: np.ndarray | None) -> list[int] | None:
    return None if rows is None else rows.tolist()


def test_most_specific_drops_parents_of_listed_children():
    assert most_specific(("T1053", "T1053.005", "T1059")) == ("T1053.005", "T1059")


def test_ranks_the_right_technique_first(model):
    proba = model.predict_proba(
        [
            "They created a scheduled task using schtasks.",
            "The implant runs cmd.exe to execute commands.",
        ]
    )
    assert model.labels[int(np.argmax(proba[0]))] == "T1053.005"
    assert model.labels[int(np.argmax(proba[1]))] == "T1059"
    assert ((proba >= 0) & (proba <= 1)).all()


def test_windows_from_sentence_counts_match_window_text(model):
    sentences = [TASK[0], NONE[0], SHELL[0]]
    rows = model.window_rows(sentences, [(0, 3)])
    direct = model.features.counts([" ".join(sentences)])
    summed = model.features.counts(sentences).sum(axis=0)
    # only word bigrams across sentence boundaries differ
    assert abs(np.asarray(direct.sum()) - np.asarray(summed.sum())) <= 4
    assert rows.shape == (1, model.features.size)


def test_save_and_load_round_trip(model, tmp_path):
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    texts = ["A scheduled task runs the loader.", "Nothing to see here."]
    np.testing.assert_allclose(loaded.predict_proba(texts), model.predict_proba(texts), atol=1e-6)
    assert loaded.labels == model.labels
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["backend"] == "linear" and manifest["format"] == "mitremap-model"


def test_missing_and_corrupt_models_are_user_errors(model, tmp_path):
    with pytest.raises(ModelError, match="no model found"):
        load_model(tmp_path / "nothing")
    model.save(tmp_path / "m")
    (tmp_path / "m" / "arrays.npz").write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="corrupt"):
        load_model(tmp_path / "m")
    (tmp_path / "m" / "manifest.json").write_text("{")
    with pytest.raises(ModelError, match="corrupt"):
        load_model(tmp_path / "m")


def test_pickled_arrays_are_refused(model, tmp_path):
    model.save(tmp_path / "m")
    arrays = dict(np.load(tmp_path / "m" / "arrays.npz"))
    arrays["bias"] = np.array([object()], dtype=object)
    np.savez(tmp_path / "m" / "arrays.npz", **arrays)
    with pytest.raises(ModelError):
        load_model(tmp_path / "m")


def test_report_calibration_is_learned_from_held_out_reports_and_snippets():
    trained = train_linear(items(), reports=reports(), settings=SETTINGS)
    evidence = trained.calibration.evidence
    assert evidence["r"] == 3  # the report without labels is not used
    assert evidence["snippets"] > 0  # short reports of held-out labelled text
    proba = trained.predict_proba(["A scheduled task was created with schtasks /create."])
    assert trained.labels[int(np.argmax(proba[0]))] == "T1053.005"


def test_partially_annotated_sources_judge_only_their_labels():
    """TRAM-like sources (annotators use a fixed set of techniques) say nothing about the
    others: their text, and their reports' unannotated sentences, are not negatives there."""
    from mitremap.training.fit import _judged, _silence, report_negatives

    settings = LinearSettings(partial_label_families={"tram": ("r", "boot")})
    with_spans = [
        LabelledText(
            " ".join([TASK[0], NONE[0], SHELL[2]]),
            ("T1053.005",),
            "r",
            "r1",
            {"spans": [{"start": 0, "end": len(TASK[0]), "label": "T1053.005"}]},
        )
    ]
    negatives = report_negatives(with_spans, set())
    assert SHELL[2] in [n.text for n in negatives]  # unannotated, yet it describes T1059
    boot = LabelledText(TASK[3], ("T1053",), "boot", "b1")
    pool = [*items(), boot, *negatives]
    labels = ["T1053", "T1053.005", "T1059"]
    silent = _silence(pool, with_spans, labels, settings)
    assert silent is not None and len(silent.groups) == 1
    rows, judged = silent.groups[0]
    assert [pool[i].source for i in rows] == ["boot"] + ["report-negatives"] * len(negatives)
    assert judged.tolist() == [True, True, False]  # the family never labels T1059
    assert _listed(silent.excluded(2)) == rows.tolist() and silent.excluded(0) is None
    assert _judged(pool, with_spans, labels, settings)["r"].mask(3).tolist() == judged.tolist()
    assert _silence(pool, with_spans, labels, LinearSettings(partial_label_families={})) is None


def test_overlap_finds_report_sentences_even_with_names_removed():
    overlap = TextOverlap(["APT-X used cmd.exe to run commands on the host and then left quietly."])
    assert "used cmd.exe to run commands on the host" in overlap
    assert "run commands" in overlap  # short phrases: as a phrase
    assert "The actor deployed ransomware across the network." not in overlap


def test_features_round_trip_as_plain_arrays():
    features = TextFeatures.fit(TASK + SHELL, min_df=1)
    meta, arrays = features.to_arrays()
    again = TextFeatures.from_arrays(meta, arrays)
    np.testing.assert_allclose(again.transform(TASK).toarray(), features.transform(TASK).toarray())


def test_training_without_labels_is_an_error():
    with pytest.raises(ModelError):
        train_linear([LabelledText(t, (), "x", t) for t in NONE], settings=SETTINGS)


def test_report_negatives_are_unannotated_sentences_of_annotated_reports():
    from mitremap.training.fit import held_out_mask, report_negatives

    text = (
        "The loader created a scheduled task named Updater with schtasks. "
        "The report was written by two analysts in our research team last spring."
    )
    span_end = text.index(".") + 1
    report = LabelledText(
        text,
        ("T1053.005",),
        "r",
        "rep1",
        {"spans": [{"start": 4, "end": span_end, "label": "T1053.005"}]},
    )
    negatives = report_negatives([report], known=set())
    assert [n.text for n in negatives] == [text[span_end + 1 :]]
    assert negatives[0].labels == () and negatives[0].meta["doc_title"] == "rep1"
    # held out: a report's own sentences and any training text found in it are dropped
    pool = [
        *negatives,
        LabelledText(
            "created a scheduled task named Updater with schtasks", ("T1053.005",), "boot", "b1"
        ),
        LabelledText(SHELL[0], ("T1059",), "x", "s0"),
    ]
    assert held_out_mask(pool, [report]).tolist() == [False, False, True]


def test_damaged_report_trees_in_a_saved_model_are_a_user_error(model, tmp_path):
    model.save(tmp_path / "m")
    manifest_path = tmp_path / "m" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["calibration"]["report_trees"] = {
        "init": 0,
        "rate": 1,
        "trees": [[[0], [1.0], [], [], []]],
    }
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="corrupt"):
        load_model(tmp_path / "m")


def test_counts_match_scikit_learn_with_and_without_the_word_cache():
    texts = TASK + SHELL + NONE + ["schtasks schtasks SCHTASKS /create /tn Updater", "a", ""]
    features = TextFeatures.fit(TASK + SHELL + NONE, min_df=1)
    for block in features.blocks:
        expected = block.vectorizer().transform(texts).toarray()
        np.testing.assert_array_equal(block.counts(texts).toarray(), expected)  # cache filled
        np.testing.assert_array_equal(block.counts(texts).toarray(), expected)  # cache used
        features.clear_cache()
        np.testing.assert_array_equal(block.counts(texts).toarray(), expected)


def test_parent_level_sources_are_no_evidence_against_sub_techniques():
    """AnnoCTR labels parents only: its "T1059" text is not a negative of T1059.001, and in
    calibration a found T1059.001 is right where the report lists T1059."""
    from mitremap.training.fit import _silence, parent_level_gold

    labels = ["T1053", "T1053.005", "T1059", "T1059.001"]
    settings = LinearSettings(partial_label_families={}, parent_level_sources=("anno",))
    pool = [
        LabelledText(SHELL[0], ("T1059",), "anno", "a1"),
        LabelledText(SHELL[1], ("T1059",), "other", "o1"),
        LabelledText(TASK[0], ("T1053.005",), "anno", "a2"),  # a child label: nothing to silence
    ]
    silent = _silence(pool, [], labels, settings)
    assert silent is not None
    assert _listed(silent.excluded(3)) == [0]  # T1059.001: not learned as absent from a1
    assert silent.excluded(1) is None and silent.excluded(2) is None
    gold = parent_level_gold(("T1059", "T1105"), labels)
    assert gold.tolist() == [False, False, True, True]
