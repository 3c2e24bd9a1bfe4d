"""The workspace learns from its analysts: decisions count at the next analysis, a retrain keeps
what they said, a quick update takes seconds, and each says what it learned."""

from __future__ import annotations

import pytest

from mitremap.web.app import create_app
from tests.tiny import JOB, NONE, SHELL, TASK
from tests.web.test_workspace_retrain import browser, tiny_trainer, wait_for

THRESHOLD = 0.3  # the tiny model's confidences are low: the workspace shows down to 0.3
PASSAGE = "A scheduled task named Updater ran the batch file through cmd.exe every hour."
EDITED = "A scheduled task named Refresh ran the batch file through cmd.exe every hour."
FIRST = " ".join([NONE[0], PASSAGE, NONE[1], NONE[2], NONE[4]])
SECOND = " ".join([NONE[3], NONE[5], EDITED, NONE[1]])


@pytest.fixture
def models(mm, tmp_path):
    folder = tmp_path / "models"
    mm.model.save(folder / "default")
    return folder


@pytest.fixture
def client(db_url, models):
    app = create_app(
        None,
        database=db_url,
        models_dir=models,
        model_path=models / "default",
        trainer=tiny_trainer([]),
        threshold=THRESHOLD,
    )
    return browser(app)


def suggestion(detail: dict, technique: str) -> dict | None:
    return next((s for s in detail["suggestions"] if s["technique"] == technique), None)


def confidence(detail: dict, technique: str) -> float:
    found = suggestion(detail, technique)
    return found["confidence"] if found else 0.0


def review_first(client) -> tuple[int, dict]:
    """Report 1 reviewed: the passage is a scheduled task run through the shell (T1059 added
    there), not the generic parent T1053."""
    first = client.post("/api/reports", json={"text": FIRST, "title": "First"}).json()
    start = FIRST.index(PASSAGE)
    span = {"start": start, "end": start + len(PASSAGE)}
    for body in (
        {"technique": "T1053.005", "action": "accept", **span},
        {"technique": "T1059", "action": "add", **span},
        {"technique": "T1053", "action": "reject", **span},
    ):
        answer = client.post(f"/api/reports/{first['id']}/decisions", json=body)
        assert answer.status_code == 201, answer.text
    assert client.patch(f"/api/reports/{first['id']}", json={"status": "reviewed"}).is_success
    return first["id"], first


def test_decisions_count_at_the_next_analysis_before_any_retrain(client):
    report, first = review_first(client)
    second = client.post("/api/reports", json={"text": SECOND, "title": "Second"}).json()
    shell = suggestion(second, "T1059")
    assert shell is not None and shell["above_threshold"] and shell["confidence"] >= 0.6
    recalled = [e["reviewed"] for e in shell["evidence"] if "reviewed" in e]
    assert recalled and recalled[0]["report"] == report and recalled[0]["user"] == "local"
    assert recalled[0]["action"] == "accepted" and recalled[0]["title"] == "First"
    assert confidence(second, "T1053") < min(THRESHOLD, confidence(first, "T1053") or 1.0)
    # the same through the analysis that keeps nothing
    answer = client.post("/api/analyze", json={"text": EDITED, "threshold": 0.0}).json()
    found = {t["technique"]: t for t in answer["techniques"]}
    assert found["T1059"]["confidence_score"] >= 0.6 and found["T1059"]["reviewed"]
    # a cleared decision stops counting at the next analysis
    client.post(f"/api/reports/{report}/decisions", json={"technique": "T1059", "action": "clear"})
    start = FIRST.index(PASSAGE)
    cleared = client.post(
        f"/api/reports/{report}/decisions",
        json={"technique": "T1059", "action": "clear", "start": start, "end": start + len(PASSAGE)},
    )
    assert cleared.status_code == 201
    again = client.post("/api/analyze", json={"text": EDITED, "threshold": 0.0}).json()
    assert not {t["technique"]: t for t in again["techniques"]}.get("T1059", {}).get("reviewed")


def test_a_retrain_keeps_what_the_analysts_said_on_their_reports(client):
    report, _ = review_first(client)
    job = client.post("/api/retrain").json()["job"]
    done = wait_for(client, job["id"])
    assert done["state"] == "done", done
    analysed = client.post(f"/api/reports/{report}/analyze").json()
    for technique in ("T1053.005", "T1059"):  # accepted, added
        assert confidence(analysed, technique) >= THRESHOLD, technique
    assert confidence(analysed, "T1053") < THRESHOLD  # rejected
    listed = client.get("/api/models").json()["items"]
    active = next(m for m in listed if m["active"])
    learning = active["learning"]
    assert learning["mode"] == "full" and learning["reviewed_passages"] == 1
    assert learning["reports"] == 1 and set(learning["before"]) == {"precision", "recall", "f1"}
    assert learning["after"]["f1"] >= 0 and isinstance(learning["moved"], list)
    assert active["card"]["recipe"]["learned_from"] == {"model": "default", "mode": "full"}
    switches = client.get("/api/history").json()["items"]
    assert any(done["model"] in str(event) and "default" in str(event) for event in switches)
    general = next(m for m in listed if m["name"] == "default")["card"]["trained_at"]
    unlike = client.post("/api/analyze", json={"text": "Thanks, and contact us."}).json()
    assert unlike["model"]["trained_at"] == general  # text unlike the reviews: general model
    # the name and the time shown agree
    stamp = active["created_at"].replace("-", "").replace(":", "").replace("T", "-")[:15]
    assert active["name"] == f"reviewed-{stamp}"


def test_after_a_retraining_the_memory_still_reads_words_as_the_general_model(client):
    """A retraining fits new words; the memory keeps the general model's, so text unlike the
    reviews gets the same answer after it as before it (bench_learning: with the retrained
    model's words the memory's priors moved textbook reports)."""
    review_first(client)
    unlike = " ".join([JOB[0], NONE[3], TASK[2]])
    before = client.post("/api/analyze", json={"text": unlike, "threshold": 0.0}).json()
    done = wait_for(client, client.post("/api/retrain").json()["job"]["id"])
    assert done["state"] == "done", done
    ws = client.app.state.workspace
    general, name = ws.registry.general()
    assert name == "default" and ws.registry.current is not general
    memory = ws.memory.current(general)
    words = [m.model.features.blocks[0].terms for m in (general, ws.registry.current)]
    assert memory is not None and list(memory.block.terms) == list(words[0]) != list(words[1])
    after = client.post("/api/analyze", json={"text": unlike, "threshold": 0.0}).json()
    assert after["model"] == before["model"]  # unlike the reviews: the general model
    assert [(t["technique"], t["confidence_score"]) for t in after["techniques"]] == [
        (t["technique"], t["confidence_score"]) for t in before["techniques"]
    ]


def test_a_quick_update_learns_in_seconds_and_is_judged_fairly(client):
    review_first(client)
    for text in (" ".join([TASK[2], NONE[3]]), " ".join([SHELL[3], NONE[0]])):
        other = client.post("/api/reports", json={"text": text}).json()
        technique = "T1053.005" if "Task" in text else "T1059"
        client.post(
            f"/api/reports/{other['id']}/decisions",
            json={"technique": technique, "action": "add", "start": 0, "end": len(text) // 2},
        )
        client.patch(f"/api/reports/{other['id']}", json={"status": "reviewed"})
    job = client.post("/api/retrain", json={"mode": "quick"}).json()["job"]
    done = wait_for(client, job["id"])
    assert done["state"] == "done" and done["model"].startswith("updated-"), done
    assert "per-report F1 on 3 reviewed reports" in done["message"]
    listed = client.get("/api/models").json()["items"]
    active = next(m for m in listed if m["active"])
    assert active["learning"]["mode"] == "quick" and active["learning"]["reports"] == 3
    assert active["card"]["recipe"]["quick_update"]["techniques"] >= 2
    assert active["card"]["recipe"]["learned_from"] == {"model": "default", "mode": "quick"}
    # the update reads text like the reviewed reports; other text gets the model it came from
    made_from = next(m for m in listed if m["name"] == "default")["card"]["trained_at"]
    alike = client.post("/api/analyze", json={"text": FIRST}).json()["model"]["trained_at"]
    unlike = client.post("/api/analyze", json={"text": "Thanks, and contact us."}).json()
    assert alike == active["card"]["trained_at"] != made_from
    assert unlike["model"]["trained_at"] == made_from
    # a second update starts again from that model: updates never pile up
    again = wait_for(
        client, client.post("/api/retrain", json={"mode": "quick"}).json()["job"]["id"]
    )
    second = next(
        m for m in client.get("/api/models").json()["items"] if m["name"] == again["model"]
    )
    assert second["card"]["recipe"]["learned_from"]["model"] == "default"
    assert client.post("/api/retrain", json={"mode": "fast"}).status_code == 422


def test_reanalysing_reports_lists_what_appeared_and_disappeared(client, models):
    report, _ = review_first(client)
    other = client.post("/api/reports", json={"text": SECOND}).json()["id"]
    job = client.post("/api/retrain").json()["job"]
    assert wait_for(client, job["id"])["state"] == "done"
    answer = client.post("/api/reports/reanalyze", json={"ids": [report, other, report]})
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    assert [i["id"] for i in items] == [report, other]
    assert all(i["model"].startswith("reviewed-") for i in items)
    assert all(set(i) == {"id", "model", "appeared", "disappeared"} for i in items)
    decisions = client.get(f"/api/reports/{report}/decisions").json()["items"]
    assert len(decisions) == 3  # kept
    assert client.post("/api/reports/reanalyze", json={"ids": [999]}).status_code == 404
    assert (
        client.post("/api/reports/reanalyze", json={"ids": list(range(1, 30))}).status_code == 422
    )
