"""The TAXII 2.1 feed (`/taxii2/`) on SQLite and PostgreSQL, read by the real `taxii2-client`
over HTTP (the app served by uvicorn on a loopback port) and, for the answers' details, by
Starlette's test client: reviewed reports only, TLP:RED never, an API token needed,
`added_after`, paging, versions, TAXII's error object for every failure."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("taxii2client", reason="pip install taxii2-client (the dev extra)")

import requests
from fastapi.testclient import TestClient
from taxii2client import v21 as taxii
from taxii2client.common import TokenAuth

from mitremap.web.app import create_app
from mitremap.web.workspace.feed import Feed

TAXII = "application/taxii+json;version=2.1"
REPORT = (
    "A scheduled task named Updater was registered with schtasks /create. "
    "Beacons went to {ip} every minute. The loader ran cmd.exe."
)
TLP_RED = "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"
TLP_GREEN = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"


class Bearer(requests.auth.AuthBase):
    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, r: Any) -> Any:
        r.headers["Authorization"] = f"Bearer {self.token}"
        return r


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """The app on a free loopback port (uvicorn in a thread), for clients that use requests."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


class Team:
    """A workspace that needs a login: an analyst who writes, a viewer's token for the feed."""

    def __init__(self, app: Any) -> None:
        self.app = app
        store = app.state.workspace.store
        store.add_user("ana", "analyst", None)
        store.add_user("vera", "viewer", None)
        self.viewer_token = store.issue_token("vera", "feed")
        self.writer = TestClient(app, base_url="http://127.0.0.1")
        self.writer.headers["Authorization"] = f"Bearer {store.issue_token('ana', 'import')}"
        self.reader = TestClient(app, base_url="http://127.0.0.1")
        self.reader.headers["Authorization"] = f"Bearer {self.viewer_token}"

    def report(
        self,
        ip: str,
        *,
        tlp: str = "green",
        tags: tuple[str, ...] = (),
        reviewed: bool = True,
        published: str | None = None,
    ) -> int:
        """A report with one accepted technique and one indicator, reviewed unless told."""
        added = self.writer.post(
            "/api/reports",
            json={"text": REPORT.format(ip=ip), "title": f"Beacons to {ip}", "tlp": tlp,
                  "tags": list(tags), "published": published},
        )  # fmt: skip
        assert added.status_code == 201, added.text
        report = added.json()["id"]
        accepted = self.writer.post(
            f"/api/reports/{report}/decisions", json={"technique": "T1053.005", "action": "accept"}
        )
        assert accepted.status_code == 201, accepted.text
        if reviewed:
            self.change(report, status="reviewed")
        return report

    def change(self, report: int, **fields: Any) -> None:
        answer = self.writer.patch(f"/api/reports/{report}", json=fields)
        assert answer.status_code == 200, answer.text

    def get(self, path: str, **params: Any) -> Any:
        answer = self.reader.get(f"/taxii2/workspace/{path}", params=params)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == TAXII
        return answer


@pytest.fixture
def team(mm, db_url, tmp_path) -> Team:
    app = create_app(mm, database=db_url, models_dir=tmp_path / "models", threshold=0.3, auth=True)
    return Team(app)


def patterns(objects: list[dict[str, Any]]) -> str:
    return " ".join(o.get("pattern", "") for o in objects)


def of_type(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["type"] == kind]


def test_taxii2_client_lists_the_collection_and_fetches_a_reviewed_report(team):
    """The bar: with a viewer's token the real client finds the API root and the collection
    and gets the reviewed report's bundle; the report still in review is not there."""
    team.report("185.220.101.47")
    team.report("62.233.50.14", reviewed=False)
    with serving(team.app) as base:
        server = taxii.Server(f"{base}/taxii2/", auth=Bearer(team.viewer_token))
        assert server.title == "MitreMap" and len(server.api_roots) == 1
        root = server.default
        assert root.versions == [TAXII]
        collections = {c.alias: c for c in root.collections}
        assert {"reviewed", "tlp-green", "tlp-amber"} <= set(collections)
        assert "tlp-red" not in collections and not any("red" in a for a in collections)
        reviewed = collections["reviewed"]
        assert reviewed.can_read and not reviewed.can_write
        envelope = reviewed.get_objects()
    objects = envelope["objects"]
    assert envelope["more"] is False
    (report,) = of_type(objects, "report")
    assert report["name"] == "Beacons to 185.220.101.47"
    ids = {o["id"] for o in objects}
    assert set(report["object_refs"]) <= ids  # the whole bundle, the report's every object
    assert {i.split("--")[0] for i in ids - set(report["object_refs"])} == {
        "report", "identity", "marking-definition",
    }  # fmt: skip
    (pattern,) = of_type(objects, "attack-pattern")
    assert pattern["external_references"][0]["external_id"] == "T1053.005"
    assert "185.220.101.47" in patterns(objects)
    assert "62.233.50.14" not in str(objects)  # not reviewed: not in the feed
    assert "cmd.exe" not in patterns(objects)  # known-benign: never an indicator
    assert TLP_GREEN in report["object_marking_refs"]
    validator = pytest.importorskip("stix2validator")
    bundle = {"type": "bundle", "id": "bundle--" + report["id"].split("--")[1], "objects": objects}
    assert validator.validate_instance(bundle, validator.ValidationOptions(strict=True)).is_valid


def test_without_a_token_taxii2_client_gets_401_in_taxiis_shape(team):
    team.report("185.220.101.47")
    with serving(team.app) as base:
        for auth in (None, Bearer("mm_not-a-token")):
            server = taxii.Server(f"{base}/taxii2/", auth=auth)
            with pytest.raises(requests.HTTPError) as failed:
                server.refresh()
            answer = failed.value.response
            assert answer is not None and answer.status_code == 401
            assert answer.headers["content-type"] == TAXII
            assert answer.headers["www-authenticate"].startswith("Bearer")
            error = answer.json()
            assert error["http_status"] == "401" and error["title"] == "Unauthorized"
            assert "error" not in error  # TAXII's error object, not the API's
        # the client's own token scheme (`Token …`) is read as well
        server = taxii.Server(f"{base}/taxii2/", auth=TokenAuth(team.viewer_token))
        assert server.title == "MitreMap"


def test_added_after_gives_only_what_was_added_since(team):
    first = team.report("185.220.101.47")
    with serving(team.app) as base:
        server = taxii.Server(f"{base}/taxii2/", auth=Bearer(team.viewer_token))
        reviewed = next(c for c in server.default.collections if c.alias == "reviewed")
        manifest = reviewed.get_manifest()["objects"]
        seen = max(m["date_added"] for m in manifest)
        assert reviewed.get_objects(added_after=seen) == {}  # nothing new yet
        polled = taxii.as_pages(reviewed.get_objects, per_request=500, added_after=seen)
        assert list(polled) == [{}]  # the README's loop: one empty envelope, then done
        time.sleep(0.01)
        team.report("45.77.12.34")
        newer = reviewed.get_objects(added_after=seen)["objects"]
        everything = reviewed.get_objects()["objects"]
    (report,) = of_type(newer, "report")
    assert report["name"] == "Beacons to 45.77.12.34"
    assert "45.77.12.34" in patterns(newer) and "185.220.101.47" not in patterns(newer)
    old = {m["id"] for m in manifest}
    assert not old & {o["id"] for o in newer}  # shared objects (T1053.005, identity) were seen
    assert {o["id"] for o in everything} == old | {o["id"] for o in newer}
    assert len(of_type(everything, "report")) == 2
    # a report taken back into review leaves the feed; what it shares with another stays
    team.change(first, status="in_review")
    left = team.get("collections/reviewed/objects/").json()["objects"]
    assert "185.220.101.47" not in patterns(left) and len(of_type(left, "attack-pattern")) == 1


def test_pages_follow_next_to_the_end_without_gaps_or_repeats(team):
    team.report("185.220.101.47")
    team.report("45.77.12.34", tags=("glass harbor",))
    with serving(team.app) as base:
        server = taxii.Server(f"{base}/taxii2/", auth=Bearer(team.viewer_token))
        reviewed = next(c for c in server.default.collections if c.alias == "reviewed")
        whole = reviewed.get_objects()["objects"]
        pages = list(taxii.as_pages(reviewed.get_objects, per_request=2))
        manifest_pages = list(taxii.as_pages(reviewed.get_manifest, per_request=4))
    assert len(whole) >= 9 and len(pages) >= 5
    assert all(len(p["objects"]) <= 2 for p in pages) and pages[-1]["more"] is False
    assert all(p["more"] and p["next"] for p in pages[:-1])
    paged = [o["id"] for p in pages for o in p["objects"]]
    assert len(paged) == len(set(paged)) and set(paged) == {o["id"] for o in whole}
    listed = [m for p in manifest_pages for m in p["objects"]]
    assert [m["id"] for m in listed] == paged  # one order: date added, then id
    assert [m["date_added"] for m in listed] == sorted(m["date_added"] for m in listed)

    # the headers name the page's first and last date added; `next` survives new reports
    first = team.get("collections/reviewed/objects/", limit=2)
    body = first.json()
    assert first.headers["X-TAXII-Date-Added-First"] <= first.headers["X-TAXII-Date-Added-Last"]
    team.report("91.215.85.17")
    rest, following = [], body["next"]
    while following:
        page = team.get("collections/reviewed/objects/", limit=5, next=following).json()
        rest += [o["id"] for o in page.get("objects", [])]
        following = page.get("next")
    read = [o["id"] for o in body["objects"]] + rest
    assert len(read) == len(set(read)) and set(paged) <= set(read)
    assert "91.215.85.17" in str(team.get("collections/reviewed/objects/").json())


def test_versions_of_an_object_and_one_object_by_id(team):
    report_id = team.report("185.220.101.47", published="2026-03-04")
    (report,) = team.get("collections/reviewed/objects/", **{"match[type]": "report"}).json()[
        "objects"
    ]
    before = team.get("collections/reviewed/manifest/").json()["objects"]
    seen = max(m["date_added"] for m in before)
    team.change(report_id, published="2026-03-05")  # the report's date: a new version of it
    url = f"collections/reviewed/objects/{report['id']}/"
    versions = team.get(url + "versions/").json()["versions"]
    assert versions == ["2026-03-04T00:00:00.000Z", "2026-03-05T00:00:00.000Z"]
    assert report["modified"] == versions[0]
    latest = team.get(url).json()["objects"]
    assert [o["modified"] for o in latest] == [versions[1]]  # the last version by default
    assert [o["modified"] for o in team.get(url, **{"match[version]": "first"}).json()[
        "objects"]] == [versions[0]]  # fmt: skip
    assert len(team.get(url, **{"match[version]": "all"}).json()["objects"]) == 2
    named = team.get(url, **{"match[version]": versions[0]}).json()["objects"]
    assert [o["modified"] for o in named] == [versions[0]]
    assert team.get(url + "versions/", added_after=seen).json()["versions"] == [versions[1]]
    # only what changed is new: the attack-pattern and indicator keep their first date
    new = {m["id"] for m in team.get("collections/reviewed/manifest/", added_after=seen).json()[
        "objects"]}  # fmt: skip
    assert report["id"] in new and not any(
        i.startswith(("attack-pattern", "indicator")) for i in new
    )
    assert team.get(url, **{"match[spec_version]": "2.0"}).json() == {}
    # a date moved earlier: its version replaces the later ones, so the latest is the report
    team.change(report_id, published="2026-03-01")
    assert team.get(url + "versions/").json()["versions"] == ["2026-03-01T00:00:00.000Z"]
    (now,) = team.get(url).json()["objects"]
    assert now["published"].startswith("2026-03-01") and now["object_refs"] == report["object_refs"]
    missing = team.reader.get(
        "/taxii2/workspace/collections/reviewed/objects/indicator--00000000-0000-4000-8000-000000000000/"
    )
    assert missing.status_code == 404 and missing.json()["http_status"] == "404"


def test_collections_by_tlp_and_tag_and_tlp_red_never_leaves(team):
    green = team.report("185.220.101.47", tlp="green", tags=("Glass Harbor",))
    team.report("45.77.12.34", tlp="amber")
    red = team.report("5.188.86.99", tlp="red", tags=("Glass Harbor",))
    listed = {c["alias"]: c for c in team.get("collections/").json()["collections"]}
    assert set(listed) == {
        "reviewed", "tlp-clear", "tlp-green", "tlp-amber", "tlp-amber-strict", "tag-glass harbor",
    }  # fmt: skip
    by_tag = listed["tag-glass harbor"]
    assert team.get(f"collections/{by_tag['id']}/").json() == by_tag
    tagged = team.get(f"collections/{by_tag['id']}/objects/").json()["objects"]
    assert [r["name"] for r in of_type(tagged, "report")] == ["Beacons to 185.220.101.47"]
    in_green = team.get("collections/tlp-green/objects/").json()["objects"]
    assert "45.77.12.34" not in patterns(in_green) and "185.220.101.47" in patterns(in_green)
    assert "45.77.12.34" in patterns(team.get("collections/tlp-amber/objects/").json()["objects"])
    for alias in listed:  # the red report is in no collection, and no marking says red
        text = str(team.get(f"collections/{alias}/objects/").json())
        assert "5.188.86.99" not in text and TLP_RED not in text
    assert team.reader.get("/taxii2/workspace/collections/tlp-red/").status_code == 404
    assert red  # kept in the workspace: only the feed leaves it out

    # a report that becomes TLP:RED leaves the feed at once; one that gains a tag is new there
    seen = max(m["date_added"] for m in team.get("collections/reviewed/manifest/").json()[
        "objects"])  # fmt: skip
    team.change(green, tlp="red")
    assert "185.220.101.47" not in str(team.get("collections/reviewed/objects/").json())
    amber = team.report("80.94.95.12", tlp="amber")
    team.change(amber, tags=["glass harbor"])
    added = team.get(f"collections/{by_tag['id']}/objects/", added_after=seen).json()["objects"]
    assert [r["name"] for r in of_type(added, "report")] == ["Beacons to 80.94.95.12"]


def test_every_failure_is_taxiis_error_object(team, monkeypatch):
    team.report("185.220.101.47")
    base = "/taxii2/workspace/collections/reviewed"
    cases = [
        ({"accept": "text/html"}, "GET", "/taxii2/", 406),
        ({"accept": "application/taxii+json;version=2.0"}, "GET", "/taxii2/", 406),
        ({}, "GET", "/taxii2/workspace/collections/nope/", 404),
        ({}, "GET", "/taxii2/other-root/", 404),
        ({}, "GET", "/taxii2/workspace/status/1234/", 404),
        ({}, "GET", f"{base}/objects/?added_after=yesterday", 400),
        ({}, "GET", f"{base}/objects/?limit=0", 400),
        ({}, "GET", f"{base}/objects/?limit=many", 400),
        ({}, "GET", f"{base}/objects/?next=not-a-cursor", 400),
        ({}, "GET", f"{base}/manifest/?match[type]=report'--", 400),
        ({}, "GET", f"{base}/objects/?match[version]=someday", 400),
        ({}, "POST", f"{base}/objects/", 403),
        ({}, "DELETE", f"{base}/objects/report--00000000-0000-4000-8000-000000000000/", 403),
        ({}, "PUT", f"{base}/", 405),
    ]
    for headers, method, path, status in cases:
        answer = team.reader.request(method, path, headers=headers)
        assert answer.status_code == status, (path, answer.text)
        assert answer.headers["content-type"] == TAXII, path
        error = answer.json()
        assert error["http_status"] == str(status) and error["title"] and error["description"]
        assert "Traceback" not in answer.text

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("a bug with a secret in it")

    monkeypatch.setattr(Feed, "page", broken)
    answer = team.reader.get(f"{base}/objects/")
    assert answer.status_code == 500 and answer.json()["http_status"] == "500"
    assert "secret" not in answer.text
    assert team.reader.get("/api/reports").status_code == 200  # the API is untouched


def test_the_feed_needs_a_token_even_where_the_workspace_needs_no_login(mm, db_url, tmp_path):
    """On loopback with no users everything else is open; the feed still wants a token."""
    app = create_app(mm, database=db_url, models_dir=tmp_path / "models", threshold=0.3)
    client = TestClient(app, base_url="http://127.0.0.1")
    assert client.get("/api/reports").status_code == 200
    answer = client.get("/taxii2/")
    assert answer.status_code == 401 and answer.json()["http_status"] == "401"
    store = app.state.workspace.store
    store.ensure_user("feed", "viewer")
    token = store.issue_token("feed", "opencti")
    assert client.get("/taxii2/", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_two_servers_syncing_at_once_publish_each_object_once(team):
    """Two feeds on one database (two servers) bring the ledger up to date at the same time:
    no error, no object twice, every object of the reports there."""
    from sqlalchemy import func, select

    from mitremap.web.workspace.models import FeedObject

    for ip in ("185.220.101.47", "45.77.12.34", "91.215.85.17"):
        team.report(ip)
    ws = team.app.state.workspace
    feeds = [Feed(ws.store, ws.registry.catalog.describe) for _ in range(2)]
    problems: list[BaseException] = []

    def run(feed: Feed) -> None:
        try:
            feed.sync()
        except BaseException as exc:
            problems.append(exc)

    threads = [threading.Thread(target=run, args=(f,)) for f in feeds]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert problems == []
    with ws.store.db.session(read=True) as s:
        rows = s.execute(
            select(FeedObject.report_id, FeedObject.object_id, func.count()).group_by(
                FeedObject.report_id, FeedObject.object_id
            )
        ).all()
    assert rows and all(n == 1 for _, _, n in rows)
    assert len({r for r, _, _ in rows}) == 3


def test_an_object_two_reports_share_is_served_once_as_each_collection_published_it(team):
    """The same indicator in a TLP:GREEN and a TLP:AMBER report: one object in the reviewed
    collection (the first published copy), and in each TLP collection its own report's copy,
    marked with that report's TLP."""
    team.report("185.220.101.47", tlp="green")
    team.report("185.220.101.47", tlp="amber")

    def indicators(alias: str) -> list[dict[str, Any]]:
        return of_type(team.get(f"collections/{alias}/objects/").json()["objects"], "indicator")

    (shared,) = indicators("reviewed")
    (green,) = indicators("tlp-green")
    (amber,) = indicators("tlp-amber")
    assert shared["id"] == green["id"] == amber["id"]
    assert green["object_marking_refs"] == [TLP_GREEN] == shared["object_marking_refs"]
    assert amber["object_marking_refs"] != [TLP_GREEN]
    reports = of_type(team.get("collections/reviewed/objects/").json()["objects"], "report")
    assert len(reports) == 2 and all(shared["id"] in r["object_refs"] for r in reports)


def test_the_workspaces_tokens_as_they_are_a_feed_token_expired_revoked_or_disabled(team):
    """A viewer-role token of an admin reads the feed and records its use; revoked, expired,
    or its user disabled, it gets 401 like no token."""
    from sqlalchemy import update

    from mitremap.web.workspace.models import ApiToken

    store = team.app.state.workspace.store
    store.add_user("adam", "admin", None)

    def reads(token: str) -> Any:
        return team.reader.get("/taxii2/", headers={"Authorization": f"Bearer {token}"})

    feed = store.issue_token("adam", "opencti", role="viewer", expires_days=30)
    assert reads(feed).status_code == 200
    (listed,) = store.tokens("adam")
    assert listed.role == "viewer" and listed.last_used_at is not None
    store.revoke_token(listed.id, actor="adam")
    assert reads(feed).status_code == 401

    expiring = store.issue_token("adam", "old", role="viewer", expires_days=1)
    with store.db.session() as s:
        s.execute(
            update(ApiToken)
            .where(ApiToken.label == "old")
            .values(expires_at=datetime(2020, 1, 1, tzinfo=UTC))
        )
    answer = reads(expiring)
    assert answer.status_code == 401 and "expired" in answer.json()["description"]

    kept = store.issue_token("adam", "kept", role="viewer")
    assert reads(kept).status_code == 200
    store.set_disabled("adam", True, actor="test")
    answer = reads(kept)
    assert answer.status_code == 401 and "disabled" in answer.json()["description"]


def test_a_body_over_the_size_limit_is_refused_in_each_parts_own_shape(mm, db_url, tmp_path):
    """The size limit answers before any route runs: under /taxii2/ in TAXII's error object
    and media type, elsewhere in the workspace's."""
    app = create_app(mm, database=db_url, models_dir=tmp_path / "models", max_bytes=1000)
    client = TestClient(app, base_url="http://127.0.0.1")
    body = b"x" * 200_000
    feed = client.post("/taxii2/workspace/collections/reviewed/objects/", content=body)
    assert feed.status_code == 413 and feed.headers["content-type"] == TAXII
    assert feed.json()["http_status"] == "413" and "MB limit" in feed.json()["description"]
    api = client.post("/api/analyze", content=body, headers={"content-type": "application/json"})
    assert api.status_code == 413 and api.headers["content-type"] == "application/json"
    assert api.json()["error"]["code"] == "too_large"
