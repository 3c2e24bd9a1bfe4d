"""The review memory: decisions on passages count at the next analysis, before any retrain."""

from __future__ import annotations

import numpy as np
import pytest

from mitremap.classify.features import TextFeatures
from mitremap.classify.memory import (
    DEFAULT_CURVE,
    MIN_CURVE_PAIRS,
    LabelPriors,
    ReviewedPassage,
    ReviewMemory,
)

# a passage the tiny model finds weakly (its best reading, T1053.005, under 0.4), decided by an
# analyst: a scheduled task (T1053.005) running the command shell (T1059), not the generic
# parent (T1053); and a lightly edited copy of it in a new report
PASSAGE = "A scheduled task named Updater ran the batch file through cmd.exe every hour."
EDITED = "A scheduled task named Refresh ran the batch file through cmd.exe every hour."
OTHER = "The report was published on 3 March 2024 by the research team."
DECIDED = ReviewedPassage(
    PASSAGE, ("T1053.005", "T1059"), ("T1053",), {"report": 12, "user": "alice", "title": "R"}
)


def memory_for(mm, *passages: ReviewedPassage, priors: LabelPriors | None = None):
    return ReviewMemory(mm.model.features.blocks[0], passages, priors)


def hit(analysis, technique):
    return next((h for h in analysis.techniques if h.id == technique), None)


def confidence(analysis, technique):
    found = hit(analysis, technique)
    return found.confidence if found else 0.0


def test_a_near_duplicate_gets_the_reviewed_answer_before_any_retrain(mm):
    before = mm.analyze(EDITED, threshold=0.0)
    assert confidence(before, "T1059") < 0.6 and confidence(before, "T1053.005") < 0.6
    after = mm.analyze(EDITED, threshold=0.0, memory=memory_for(mm, DECIDED))
    top = {h.id for h in after.techniques[:2]}
    assert top == {"T1053.005", "T1059"}
    assert all(h.confidence >= 0.6 for h in after.techniques[:2])
    assert confidence(after, "T1053") < min(0.6, confidence(before, "T1053"))  # rejected there
    reviewed = hit(after, "T1059").reviewed[0]
    assert reviewed.action == "accepted" and reviewed.similarity > 0.7
    assert reviewed.origin["user"] == "alice" and reviewed.origin["report"] == 12
    shown = hit(after, "T1059").to_dict(EDITED)["reviewed"][0]
    assert shown["text"] == EDITED[shown["start"] : shown["end"]] and shown["user"] == "alice"
    # the reviewed passage is evidence of the accepted technique
    assert any(e.start == reviewed.start for e in hit(after, "T1059").evidence)
    assert hit(after, "T1053").reviewed[0].action == "rejected"


def test_rejected_means_not_this_technique_here_not_no_technique(mm):
    """Text elsewhere in the report still finds the rejected technique."""
    memory = memory_for(mm, ReviewedPassage(PASSAGE, (), ("T1053.005",), {"report": 1}))
    elsewhere = "schtasks.exe was used to create a daily scheduled task for the loader."
    text = f"{EDITED} {OTHER} {OTHER} {OTHER} {elsewhere}"
    alone = confidence(mm.analyze(EDITED, threshold=0.0, memory=memory), "T1053.005")
    revised = confidence(mm.analyze(text, threshold=0.0, memory=memory), "T1053.005")
    assert alone < confidence(mm.analyze(EDITED, threshold=0.0), "T1053.005")
    assert revised > alone  # the other passage still counts


def test_the_effect_fades_with_distance(mm):
    memory = memory_for(mm, DECIDED)
    unrelated = mm.analyze(OTHER, threshold=0.0, memory=memory)
    assert confidence(unrelated, "T1059") == confidence(mm.analyze(OTHER, threshold=0.0), "T1059")
    assert not any(h.reviewed for h in unrelated.techniques)
    assert memory.confidence(1.0) > memory.confidence(0.7) > memory.confidence(0.4)


def test_the_same_wording_matches_whatever_its_words(mm):
    """A heading or a host name may have no word the model knows: its very wording (case and
    spacing aside) still gets the reviewed answer, and other wording does not."""
    heading = "Zqxv Wrplk-Tunnel"
    memory = memory_for(
        mm,
        ReviewedPassage(heading, ("T1059",), (), {"report": 4}),
        ReviewedPassage("Vbnq Jolt", (), ("T1053.005",), {"report": 5}),
    )
    assert memory.block.counts([heading]).nnz == 0  # nothing for the word comparison
    same = mm.analyze("ZQXV  wrplk-tunnel", threshold=0.0, memory=memory)
    assert confidence(same, "T1059") >= 0.6 and hit(same, "T1059").reviewed[0].similarity == 1.0
    other = mm.analyze("Zqxv Wrplk-Tunnels", threshold=0.0, memory=memory)
    assert not any(h.reviewed for h in other.techniques)
    plain = confidence(mm.analyze("vbnq JOLT", threshold=0.0), "T1053.005")
    rejected = mm.analyze("vbnq JOLT", threshold=0.0, memory=memory)
    assert confidence(rejected, "T1053.005") < plain


def test_groups_are_replaced_and_removed(mm):
    memory = memory_for(mm)
    memory.update(3, [ReviewedPassage(PASSAGE, ("T1059",), (), {"report": 3})])
    assert len(memory) == 1 and hit(mm.analyze(EDITED, memory=memory), "T1059").reviewed
    memory.update(3, [ReviewedPassage(PASSAGE, (), (), {"report": 3})])  # decisions cleared
    assert len(memory) == 0
    memory.update(3, [ReviewedPassage(PASSAGE, ("T1059",), (), {"report": 3})])
    memory.remove(3)
    assert len(memory) == 0 and not any(
        h.reviewed for h in mm.analyze(EDITED, threshold=0.0, memory=memory).techniques
    )


def test_label_priors_shift_by_a_share_of_the_smoothed_log_odds():
    priors = LabelPriors({"T1059": 3, "T1053": 2}, {"T1105": 1}, weight=0.5)
    shift = priors.shift(["T1059", "T1105", "T1053.005", "T1027"])
    assert shift[0] == pytest.approx(0.5 * np.log(4.0))
    assert shift[1] == pytest.approx(0.5 * np.log(1 / 2))
    assert shift[2] == pytest.approx(0.5 * np.log(2.0))  # half its parent's two
    assert shift[3] == 0.0


def test_priors_apply_to_reports_that_read_like_the_reviewed_ones(mm):
    from mitremap.classify.memory import ReviewedDocument

    reviewed = " ".join([PASSAGE, OTHER, "The backdoor spawns cmd.exe to execute shell commands."])
    memory = memory_for(mm, priors=LabelPriors({}, {"T1059": 9}))
    memory.update(1, [], ReviewedDocument(reviewed, ("T1053.005",), ("T1059",), {"report": 1}))
    alike = reviewed.replace("Updater", "Refresh")
    unlike = "Adversaries may abuse job scheduling to execute code at a set time."
    lowered = confidence(mm.analyze(alike, threshold=0.0, memory=memory), "T1059")
    assert lowered < confidence(mm.analyze(alike, threshold=0.0), "T1059")
    kept = confidence(mm.analyze(unlike, threshold=0.0, memory=memory), "T1059")
    assert kept == pytest.approx(confidence(mm.analyze(unlike, threshold=0.0), "T1059"))


def test_priors_move_report_confidence_and_nothing_else(mm):
    plain = mm.analyze(OTHER + " The backdoor spawns cmd.exe.", threshold=0.0)
    memory = memory_for(mm, priors=LabelPriors({}, {"T1059": 9}))
    lowered = mm.analyze(OTHER + " The backdoor spawns cmd.exe.", threshold=0.0, memory=memory)
    assert 0 < confidence(lowered, "T1059") < confidence(plain, "T1059")
    assert confidence(lowered, "T1053.005") == pytest.approx(confidence(plain, "T1053.005"))


def test_the_curve_is_refitted_only_on_enough_evidence(mm):
    few = ReviewMemory(mm.model.features.blocks[0], [DECIDED])
    assert few.fit_curve() == DEFAULT_CURVE
    # pairs of reports: a passage and a lightly edited copy with the same technique, or a
    # copy that shares half its words and was given another technique
    rng = np.random.default_rng(0)
    passages, texts = [], []
    for k in range(2 * MIN_CURVE_PAIRS + 20):
        words = [f"word{w}" for w in rng.choice(5000, 8, replace=False)]
        same = k % 2 == 0
        other = (
            [*words[:7], f"edit{k}"] if same else [*words[:4], *(f"new{k}{i}" for i in range(4))]
        )
        for r, (text, label) in enumerate(
            ((" ".join(words), "T1059"), (" ".join(other), "T1059" if same else "T1105"))
        ):
            passages.append(ReviewedPassage(text, (label,), (), {"report": 2 * k + r}))
            texts.append(text)
    block = TextFeatures.fit(texts, (1, 1), None, min_df=1).blocks[0]
    a, b = ReviewMemory(block, passages).fit_curve()
    assert (a, b) != DEFAULT_CURVE and a > 0


def test_analyses_read_the_memory_while_it_changes(mm):
    """A workspace analyses in several threads while decisions update the memory."""
    from concurrent.futures import ThreadPoolExecutor

    from mitremap.classify.memory import ReviewedDocument

    memory = memory_for(mm, DECIDED)
    text = f"{EDITED} {OTHER}"

    def decide(i: int) -> None:
        for k in range(30):
            memory.update(
                (i, k % 3),
                [ReviewedPassage(f"{PASSAGE} {k}", ("T1059",), (), {"report": k})],
                ReviewedDocument(f"{PASSAGE} {OTHER} {k}", ("T1059",), ("T1053",), {}),
            )

    def analyse(_: int) -> float:
        return max(
            confidence(mm.analyze(text, threshold=0.0, memory=memory), "T1059") for _ in range(30)
        )

    with ThreadPoolExecutor(4) as pool:
        writers = [pool.submit(decide, i) for i in range(2)]
        readers = [pool.submit(analyse, i) for i in range(2)]
        assert all(r.result() >= 0.6 for r in readers)  # no error, and the answer held
        for w in writers:
            w.result()
    assert len(memory) == 1 + 2 * 3
