"""The TAXII feed of a full workspace: how long the first read takes (every reviewed report
exported into the feed's ledger), a poll that finds nothing new, a page of the manifest and of
the objects, a client reading the whole collection in pages, and a poll after a few more reports
were reviewed — on SQLite (a fresh file) or `--db URL`, with the real model, in-process.

    python benchmarks/bench_taxii.py                  # 1,000 reviewed reports
    python benchmarks/bench_taxii.py --reports 200 --db postgresql+psycopg://…

Each report is the sample report with its own closing line and indicator (an address, a
domain), four accepted techniques, marked reviewed, TLP:GREEN or AMBER in turn.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("MITREMAP_DATA", str(REPO.parent / "shared" / "data"))


def seed(store: Any, data: dict[str, Any], text: str, first: int, count: int) -> None:
    """`count` reviewed reports, stored as the server stores them (one analysis, run once)."""
    from mitremap.documents import Document
    from mitremap.web.workspace.reports import ReportChanges

    accepted = [t["technique"] for t in data["techniques"] if t["confidence_score"] >= 0.6][:4]
    for i in range(first, first + count):
        address, domain = f"45.{77 + i // 250}.{i % 250}.9", f"cdn{i}.freight-docs.com"
        ending = f"\n\nCase {i}: the loader beaconed to {address} and {domain}."
        found = []
        for kind, value in (("ipv4", address), ("domain", domain)):
            at = len(text) + ending.index(value)
            found.append({"type": kind, "value": value, "raw": value, "start": at,
                          "end": at + len(value)})  # fmt: skip
        tlp = "green" if i % 2 else "amber"
        report = store.add_report(
            Document(text + ending, f"Glass Harbor, case {i}"),
            data | {"indicators": [*data.get("indicators", []), *found]},
            source="pasted",
            user="bench",
            model_name="bench",
            threshold=0.6,
            changes=ReportChanges(tlp=tlp, tags=["glass harbor"]),
        )
        for technique in accepted:
            store.decide(
                report["id"], technique=technique, action="accept", start=None, end=None,
                note="", user="bench", known=lambda _: True,
            )  # fmt: skip
        store.update_report(report["id"], ReportChanges(status="reviewed"), user="bench")


def timed(client: Any, path: str, **params: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    answer = client.get(path, params=params)
    elapsed = time.perf_counter() - started
    assert answer.status_code == 200, answer.text
    return elapsed, answer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports", type=int, default=1000)
    parser.add_argument("--db", help="database URL (default: SQLite in a temporary folder)")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from mitremap.analysis import MitreMap
    from mitremap.documents import Document
    from mitremap.web.app import create_app

    mm = MitreMap.load()
    text = (REPO / "examples" / "apt-report.md").read_text(encoding="utf-8")
    data = mm.analyze(Document(text, "bench"), threshold=0.2, iocs=True).to_dict()
    with tempfile.TemporaryDirectory(prefix="mitremap-bench-") as folder:
        url = args.db or f"sqlite:///{folder}/ws.db"
        app = create_app(mm, database=url, models_dir=Path(folder) / "models", auth=True)
        store = app.state.workspace.store
        started = time.perf_counter()
        seed(store, data, text, 0, args.reports)
        print(
            f"stored and reviewed {args.reports} reports in {time.perf_counter() - started:.0f} s"
        )
        store.add_user("feed", "viewer", None)
        client = TestClient(app, base_url="http://127.0.0.1")
        client.headers["Authorization"] = f"Bearer {store.issue_token('feed', 'bench')}"
        base = "/taxii2/workspace/collections/reviewed"

        first, answer = timed(client, f"{base}/manifest/", limit=1)
        print(f"first read (every reviewed report into the feed): {first:.1f} s")
        last = answer.headers["X-TAXII-Date-Added-Last"]
        report(client, base, last, args.repeat)
        walk(client, base)
        seed(store, data, text, args.reports, 10)
        after, answer = timed(client, f"{base}/objects/", added_after=last)
        print(
            f"poll after 10 more reports were reviewed: {after:.2f} s, "
            f"{len(answer.json()['objects'])} objects"
        )


def report(client: Any, base: str, last: str, repeat: int) -> None:
    """Median and p95 of the reads a platform makes."""
    reads = {
        "poll that finds nothing new (added_after)": (f"{base}/objects/", {"added_after": last}),
        "manifest page of 100": (f"{base}/manifest/", {"limit": 100}),
        "objects page of 100": (f"{base}/objects/", {"limit": 100}),
        "tag collection, objects page of 100": (
            "/taxii2/workspace/collections/tag-glass harbor/objects/",
            {"limit": 100},
        ),
    }
    for name, (path, params) in reads.items():
        times = sorted(timed(client, path, **params)[0] for _ in range(repeat))
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        print(f"{name}: median {statistics.median(times):.3f} s, p95 {p95:.3f} s")


def walk(client: Any, base: str) -> None:
    """The whole collection, read the way taxii2-client's `as_pages` reads it."""
    started, objects, following, pages = time.perf_counter(), 0, None, 0
    while True:
        params: dict[str, Any] = {"limit": 1000}
        if following:
            params["next"] = following
        body = timed(client, f"{base}/objects/", **params)[1].json()
        objects += len(body.get("objects", []))
        pages += 1
        following = body.get("next")
        if not following:
            break
    elapsed = time.perf_counter() - started
    print(f"whole collection in pages of 1000: {objects} objects, {pages} pages, {elapsed:.1f} s")


if __name__ == "__main__":
    main()
