"""Two analysts on one report, through the REST API on SQLite and PostgreSQL: versions
(ETag / If-Match) and stale decisions (409 with the current state), the history (who, when,
before → after), model switches recorded, comments, and drafts that survive a reload."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("pwdlib")

from fastapi.testclient import TestClient

from mitremap.web.app import create_app
from mitremap.web.workspace.auth import hash_password
from mitremap.web.workspace.db import Database
from mitremap.web.workspace.store import Store
from tests.tiny import REPORT

PASSWORD = "correct horse battery"


@pytest.fixture
def team(mm, db_url, tmp_path):
    """A server with alice and bob (analysts) and adam (admin); each client a token's."""
    database = Database(db_url)
    store = Store(database)
    for name, role in (("alice", "analyst"), ("bob", "analyst"), ("adam", "admin")):
        store.add_user(name, role, hash_password(PASSWORD))
    models = tmp_path / "models"
    mm.model.save(models / "default")
    mm.model.save(models / "second")
    app = create_app(
        None, database=database, models_dir=models, model_path=models / "default", threshold=0.3
    )

    def client(name: str) -> TestClient:
        made = TestClient(app, base_url="http://127.0.0.1")
        made.headers["Authorization"] = f"Bearer {store.issue_token(name)}"
        return made

    yield client
    database.close()


def test_a_decision_made_on_an_older_version_is_stale(team):
    """Defect 4: Bob accepts, Alice's page still shows Pending, she rejects: 409, told who
    changed it and how it stands; nothing of hers is stored. Fails where If-Match is ignored."""
    alice, bob = team("alice"), team("bob")
    report = alice.post("/api/reports", json={"text": REPORT}).json()["id"]
    shown = alice.get(f"/api/reports/{report}")
    version = shown.headers["etag"]
    assert version == f'"v{shown.json()["version"]}"'
    url = f"/api/reports/{report}/decisions"
    accepted = bob.post(
        url, json={"technique": "T1059", "action": "accept"}, headers={"If-Match": version}
    )
    assert accepted.status_code == 201, accepted.text

    late = alice.post(
        url, json={"technique": "T1059", "action": "reject"}, headers={"If-Match": version}
    )
    assert late.status_code == 409, late.text
    error = late.json()["error"]
    assert error["code"] == "stale" and "bob" in error["message"]
    assert error["current"]["changed_by"] == "bob"
    assert error["current"]["state"] == "accepted"
    assert error["current"]["decision"]["user"] == "bob"
    actions = [d["action"] for d in alice.get(url).json()["items"]]
    assert actions == ["accept"], "the stale rejection was not stored"

    # a decision on another technique made on the same old version is not stale
    other = alice.post(
        url, json={"technique": "T1053.005", "action": "accept"}, headers={"If-Match": version}
    )
    assert other.status_code == 201
    # with the version she has now, she can overrule bob
    now = alice.get(f"/api/reports/{report}").headers["etag"]
    assert now != version
    again = alice.post(
        url, json={"technique": "T1059", "action": "reject"}, headers={"If-Match": now}
    )
    assert again.status_code == 201
    assert alice.post(url, json={"technique": "T1059", "action": "accept"}, headers={
        "If-Match": "v1"}).status_code == 400  # fmt: skip
    # a script that sends no If-Match decides as before
    assert bob.post(url, json={"technique": "T1059", "action": "accept"}).status_code == 201


def test_the_detail_answers_304_while_nothing_changed(team):
    alice = team("alice")
    report = alice.post("/api/reports", json={"text": REPORT}).json()["id"]
    tag = alice.get(f"/api/reports/{report}").headers["etag"]
    assert alice.get(f"/api/reports/{report}", headers={"If-None-Match": tag}).status_code == 304
    alice.post(f"/api/reports/{report}/comments", json={"text": "seen"})
    assert alice.get(f"/api/reports/{report}", headers={"If-None-Match": tag}).status_code == 200


def test_a_stale_status_change_is_refused_too(team):
    alice, bob = team("alice"), team("bob")
    report = alice.post("/api/reports", json={"text": REPORT}).json()["id"]
    version = alice.get(f"/api/reports/{report}").headers["etag"]
    assert bob.patch(f"/api/reports/{report}", json={"status": "reviewed"}).status_code == 200
    late = alice.patch(
        f"/api/reports/{report}", json={"status": "new"}, headers={"If-Match": version}
    )
    assert late.status_code == 409 and late.json()["error"]["current"]["changed_by"] == "bob"
    tagged = alice.patch(
        f"/api/reports/{report}", json={"tags": ["apt"]}, headers={"If-Match": version}
    )
    assert tagged.status_code == 200 and tagged.json()["tags"] == ["apt"]  # another field


def test_the_history_lists_every_change_with_user_and_time(team):
    alice, bob, adam = team("alice"), team("bob"), team("adam")
    report = alice.post("/api/reports", json={"text": REPORT}).json()["id"]
    url = f"/api/reports/{report}/decisions"
    alice.post(url, json={"technique": "T1059", "action": "accept", "note": "cmd.exe use"})
    start = REPORT.index("schtasks")
    bob.post(url, json={"technique": "T1053.005", "action": "reject", "start": start,
                        "end": start + 8})  # fmt: skip
    bob.patch(f"/api/reports/{report}", json={"status": "reviewed", "tlp": "red"})
    alice.post(f"/api/reports/{report}/comments", json={"text": "Shared with the SOC."})
    assert adam.post("/api/models/second/activate").status_code == 200
    assert alice.post(f"/api/reports/{report}/analyze").status_code == 200

    items = alice.get(f"/api/reports/{report}/history").json()["items"]
    lines = [(e["kind"], e["subject"], e["before"], e["after"], e["user"]) for e in items]
    assert lines[0][:2] == ("analysis", "report") and lines[0][4] == "alice"
    assert ("decision", "technique:T1059", "pending", "accepted", "alice") in lines
    assert ("status", "status", "new", "in_review", "alice") in lines
    assert ("status", "status", "in_review", "reviewed", "bob") in lines
    assert ("metadata", "tlp", "amber", "red", "bob") in lines
    assert ("comment", "comment", "", "Shared with the SOC.", "alice") in lines
    assert ("model", "model", "default", "second", "adam") in lines
    assert ("analysis", "analysis", "default", "second", "alice") in lines
    decided = next(e for e in items if e["subject"] == "technique:T1059")
    assert decided["note"] == "cmd.exe use" and decided["at"].endswith("Z")
    passage = next(e for e in items if e["subject"] == "technique:T1053.005")
    assert (
        passage["detail"] == f"reject the passage {start}–{start + 8}" and passage["user"] == "bob"
    )
    assert [e["id"] for e in items] == sorted(e["id"] for e in items)

    exported = alice.get(f"/api/reports/{report}/export?format=json").json()["review"]
    assert [e["id"] for e in exported["history"]] == [e["id"] for e in items]
    assert exported["comments"][0]["text"] == "Shared with the SOC."
    workspace = alice.get("/api/history").json()["items"]
    assert [(e["kind"], e["before"], e["after"], e["user"]) for e in workspace] == [
        ("model", "default", "second", "adam")
    ]


def test_the_history_comes_a_page_at_a_time_and_since_a_version(team):
    alice = team("alice")
    report = alice.post("/api/reports", json={"text": REPORT}).json()["id"]
    url = f"/api/reports/{report}"
    for n in range(5):
        alice.post(f"{url}/comments", json={"text": f"note {n}"})
    whole = alice.get(f"{url}/history").json()
    assert whole["total"] == len(whole["items"]) == 6  # the analysis and five comments
    pages = [alice.get(f"{url}/history?per_page=4&page={p}").json() for p in (1, 2)]
    assert [len(p["items"]) for p in pages] == [4, 2] and pages[1]["total"] == 6
    assert [e["id"] for p in pages for e in p["items"]] == [e["id"] for e in whole["items"]]
    seen = whole["items"][3]["version"]
    newer = alice.get(f"{url}/history?since={seen}").json()
    assert [e["after"] for e in newer["items"]] == ["note 3", "note 4"] and newer["total"] == 2
    assert alice.get(f"{url}/history?per_page=1001").status_code == 422
    assert alice.get("/api/reports/999/history").status_code == 404


def test_a_model_switch_is_recorded_only_when_it_switches(team):
    """Defect 5 (the API half): who switched the model for everyone, and when."""
    adam = team("adam")
    assert adam.post("/api/models/default/activate").status_code == 200  # already active
    assert adam.get("/api/history").json()["items"] == []
    adam.post("/api/models/second/activate")
    adam.post("/api/models/default/activate")
    switches = [(e["before"], e["after"]) for e in adam.get("/api/history").json()["items"]]
    assert switches == [("second", "default"), ("default", "second")]  # newest first
    assert team("alice").post("/api/models/second/activate").status_code == 403


def test_comments_and_drafts(team):
    alice, bob = team("alice"), team("bob")
    report = alice.post("/api/reports", json={"text": REPORT}).json()["id"]
    drafts = f"/api/reports/{report}/drafts"
    assert alice.put(drafts, json={"key": "technique:T1059", "text": "half a tho"}).status_code == (
        204
    )
    alice.put(drafts, json={"key": "comment", "text": "to the SOC?"})
    assert alice.get(drafts).json()["items"] == {
        "technique:T1059": "half a tho",
        "comment": "to the SOC?",
    }
    assert bob.get(drafts).json()["items"] == {}  # a draft is its writer's
    assert alice.put(drafts, json={"key": "<script>", "text": "x"}).status_code == 422
    # the decision made from the note spends the draft; so does the comment
    alice.post(f"/api/reports/{report}/decisions", json={"technique": "T1059", "action": "accept",
                                                         "note": "half a thought"})  # fmt: skip
    posted = alice.post(f"/api/reports/{report}/comments", json={"text": "  to the SOC  "})
    assert posted.status_code == 201 and posted.json()["text"] == "to the SOC"
    assert alice.get(drafts).json()["items"] == {}
    alice.put(drafts, json={"key": "add", "text": "x"})
    alice.put(drafts, json={"key": "add", "text": ""})  # emptied: forgotten
    assert alice.get(drafts).json()["items"] == {}
    comments = bob.get(f"/api/reports/{report}/comments").json()["items"]
    assert [(c["user"], c["text"]) for c in comments] == [("alice", "to the SOC")]
    assert alice.post(f"/api/reports/{report}/comments", json={"text": " "}).status_code == 422
    assert bob.get("/api/reports/999/comments").status_code == 404
