"""Does the workspace learn from its analysts? Reviews of some reports of a source, made through
the real workspace API, must improve the answers on the other reports of that source.

    python benchmarks/bench_learning.py              # memory and quick update (≈15 min on 2 cores)
    python benchmarks/bench_learning.py --full       # + a full retraining per source (≈+20 min)
    python benchmarks/bench_learning.py --sources tram --checkpoints 5,10

How it works:
- The base model is trained here (once, then cached) the default way but without either
  annotated source: no AnnoCTR text, none of TRAM's report sentences, no calibration on their
  reports. To it both are sources it never saw, like a team's own reports.
- A simulated analyst reviews reports one by one through the API (`POST /api/reports`, then
  decisions, then `PATCH … status=reviewed`), seeing what an analyst sees (suggestions at or
  above 0.6 with their evidence): accepts a right suggestion at the evidence passages that
  overlap its annotated spans (rejecting the others), rejects a wrong one, and adds each
  annotated technique the model missed at its annotated passages (sentence by sentence).
  Right means listed; for AnnoCTR, which annotates parent techniques, a sub-technique of a
  listed parent is right too.
- After 5, 10, 20 and half of the source's reports: the other reports of the source, and the
  other sources (the other annotated source and the project's textbook reports), are analysed
  through `POST /api/analyze`: with the base model and the review memory (decisions count at
  once), after a quick update (`POST /api/retrain {"mode": "quick"}`), and, with --full, after
  a full retraining at the last checkpoint (`POST /api/retrain`: the same recipe as the base
  plus the reviews). The analyst reviews with the base model and the memory.
- Scores: mean per-report F1 at 0.6; AnnoCTR's rolled up to parent techniques (its convention),
  TRAM's exact. Bars (issue "a model that learns from its analysts"): reviews of half a source
  raise its F1 by ≥ 0.05, with no loss > 0.01 on the other sources.
Also measured: a near-duplicate of a reviewed passage before any retraining (the reviewed answer
on top at ≥ 0.6, a rejected technique under it), the analysis of a 20 KB report with a 10,000
passage memory, and the time of a quick update and of a full retraining.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("MITREMAP_DATA", str(REPO.parent / "shared" / "data"))
THRESHOLD = 0.6
BASE_DROP = ("annoctr-train", "tram-single", "tram-spans")


@dataclass
class Source:
    """An annotated source: the reports an analyst reviews, in order, and those scored."""

    name: str
    pool: list[Any]
    scored: list[Any]
    parents: bool  # annotations name parent techniques only (AnnoCTR)
    spans: dict[str, list[tuple[int, int, str]]] = field(default_factory=dict)


# ---- data ---------------------------------------------------------------------------------


def sources(kb: Any, resolver: Any) -> dict[str, Source]:
    from mitremap.training.evaluate import read_labelled
    from mitremap.training.train import calibration_reports

    tram = [r for r in calibration_reports(kb, resolver) if r.labels]
    order = np.random.default_rng(0).permutation(len(tram))
    half = len(tram) // 2
    annoctr = [
        r
        for r in read_labelled(str(resolver.find("annoctr/reports_train_dev.jsonl").path), kb)
        if r.labels
    ]
    out = {
        "tram": Source(
            "tram", [tram[i] for i in order[:half]], [tram[i] for i in order[half:]], False
        ),
        "annoctr": Source(
            "annoctr",
            [r for r in annoctr if r.meta.get("split") == "train"],
            [r for r in annoctr if r.meta.get("split") == "dev"],
            True,
        ),
    }
    out["tram"].spans = {r.id: tram_spans(r) for r in tram}
    out["annoctr"].spans = annoctr_spans(annoctr, kb, resolver)
    return out


def sentence_of(text: str, start: int, end: int) -> tuple[int, int]:
    """The sentences around [start, end): what an analyst selects to add a technique."""
    from mitremap.documents import split_sentences

    inside = [(s.start, s.end) for s in split_sentences(text) if s.start < end and start < s.end]
    return (inside[0][0], inside[-1][1]) if inside else (start, end)


def tram_spans(report: Any) -> list[tuple[int, int, str]]:
    return sorted(
        {
            (*sentence_of(report.text, s["start"], s["end"]), s["label"])
            for s in report.meta["spans"]
        }
    )


def annoctr_spans(reports: list[Any], kb: Any, resolver: Any) -> dict[str, list]:
    """AnnoCTR's mentions located in their report's text (by their left context)."""
    from mitremap.training.corpus import LabelNormaliser

    normalise = LabelNormaliser(kb).normalise
    texts = {r.id: r.text for r in reports}
    out: dict[str, list[tuple[int, int, str]]] = {r.id: [] for r in reports}
    path = resolver.find("annoctr/mentions_train_dev.jsonl").path
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        mention = json.loads(line)
        doc = mention["meta"]["doc"]
        text = texts.get(doc)
        if text is None:
            continue
        left = mention["meta"]["context_left"]
        at = text.find(f"{left} {mention['text']}")
        at = at + len(left) + 1 if at >= 0 else text.find(mention["text"])
        if at < 0:
            continue
        span = sentence_of(text, at, at + len(mention["text"]))
        out[doc] += [(*span, label) for label in normalise(mention["labels"])]
    return {k: sorted(set(v)) for k, v in out.items()}


def textbook() -> list[Any]:
    from mitremap.training.corpus import LabelledText

    rows = [json.loads(x) for x in (REPO / "benchmarks/data/textbook.jsonl").open(encoding="utf-8")]
    order = np.random.default_rng(5).permutation(len(rows))
    out = []
    for start in range(0, len(rows), 5):
        part = [rows[i] for i in order[start : start + 5]]
        labels = tuple(x for r in part for x in r["labels"])
        out.append(LabelledText(" ".join(r["text"] for r in part), labels, "textbook", str(start)))
    return out


# ---- the base model, and retraining the same way --------------------------------------------


def held_out(reports: list[Any]) -> Any:
    """Drops corpus text of the held-out reports (TRAM's bootstrap set holds its sentences)."""
    from mitremap.training.overlap import TextOverlap

    ids = {r.id for r in reports}
    overlap = TextOverlap(r.text for r in reports)
    return lambda item: (item.meta or {}).get("doc_title") in ids or item.text in overlap


def trainer(held: list[Any]) -> Any:
    """The workspace's full retraining, but with the base model's recipe."""
    from mitremap.training.train import train_model

    exclude = held_out(held)

    def train(data: Any, progress: Any) -> Any:
        return train_model(
            drop=BASE_DROP,
            exclude=exclude,
            report_sources=(),
            reviewed=data.passages,
            reviewed_reports=data.reports,
            out_of_fold=data.out_of_fold,
            progress=progress,
        )

    return train


def base_model(held: list[Any], cache: Path) -> Path:
    from mitremap import __version__

    path = cache / f"learning-base-{__version__}"
    if (path / "manifest.json").is_file():
        return path
    print(f"training the base model (it never saw TRAM's or AnnoCTR's reports) into {path} …")
    from mitremap.training.train import train_model

    started = time.perf_counter()
    model = train_model(drop=BASE_DROP, exclude=held_out(held), report_sources=())
    model.save(path)
    print(f"  trained in {time.perf_counter() - started:.0f} s", flush=True)
    return path


# ---- the simulated analyst, through the API --------------------------------------------------


def client_for(models: Path, db: Path, held: list[Any]) -> Any:
    from fastapi.testclient import TestClient

    from mitremap.web.app import create_app

    app = create_app(
        None,
        database=f"sqlite:///{db}",
        models_dir=models,
        model_path=models / "default",
        trainer=trainer(held),
        threshold=THRESHOLD,
        time_limit_s=600,
    )
    client = TestClient(app, base_url="http://127.0.0.1")
    client.headers["X-CSRF-Token"] = client.get("/api/session").json()["csrf_token"]
    return client


def right(technique: str, gold: set[str], parents: bool) -> bool:
    return technique in gold or (parents and technique.split(".")[0] in gold)


def review(client: Any, report: Any, source: Source) -> int:
    """Review one report as the analyst above would; answers how many decisions it took."""
    detail = client.post("/api/reports", json={"text": report.text, "title": report.id}).json()
    rid, gold, spans = detail["id"], set(report.labels), source.spans.get(report.id, [])
    decisions: list[dict[str, Any]] = []
    covered: set[str] = set()
    for s in detail["suggestions"]:
        if not s["above_threshold"]:
            continue
        t = s["technique"]
        if not right(t, gold, source.parents):
            decisions.append({"technique": t, "action": "reject"})
            continue
        mine = [(a, b) for a, b, x in spans if x == t or (source.parents and x == t.split(".")[0])]
        found = False
        for e in s["evidence"]:
            on = any(e["start"] < b and a < e["end"] for a, b in mine)
            action = "accept" if on else "reject"
            decisions.append(
                {"technique": t, "action": action, "start": e["start"], "end": e["end"]}
            )
            found |= on
        if not found:
            decisions += [{"technique": t, "action": "add", "start": a, "end": b} for a, b in mine]
        covered |= {t, t.split(".")[0]} if source.parents else {t}
    for g in sorted(gold - covered):
        decisions += [
            {"technique": g, "action": "add", "start": a, "end": b}
            for a, b in sorted({(a, b) for a, b, x in spans if x == g})
        ]
    for body in decisions:
        answer = client.post(f"/api/reports/{rid}/decisions", json=body)
        if answer.status_code != 201 and body["action"] != "add":  # an unknown id can't be added
            raise RuntimeError(answer.text)
    client.patch(f"/api/reports/{rid}", json={"status": "reviewed"})
    return len(decisions)


def score(client: Any, reports: list[Any], parents: bool) -> float:
    """Mean per-report F1 at the threshold (rolled up to parents for a parent-level source)."""
    from mitremap.training.evaluate import rolled_up, set_f1

    f1s = []
    for r in reports:
        answer = client.post(
            "/api/analyze", json={"text": r.text, "threshold": THRESHOLD, "iocs": False}
        ).json()
        found = {t["technique"] for t in answer["techniques"]}
        gold = set(r.labels)
        f1s.append(set_f1(rolled_up(found), rolled_up(gold)) if parents else set_f1(found, gold))
    return float(np.mean(f1s))


def retrain(client: Any, mode: str) -> tuple[str, float]:
    started = time.perf_counter()
    job = client.post("/api/retrain", json={"mode": mode}).json()["job"]
    while True:
        state = client.get(f"/api/retrain/{job['id']}").json()["job"]
        if state["state"] in ("done", "failed"):
            break
        time.sleep(1.0)
    if state["state"] != "done":
        raise RuntimeError(state["message"])
    return state["model"], time.perf_counter() - started


# ---- the other bars ------------------------------------------------------------------------


LIGHT_EDIT_WORDS = 12
"""A passage this long or longer gets one word replaced; a shorter one keeps its words."""


def edited(text: str) -> str:
    """A light edit, light for the passage's length: in a passage of `LIGHT_EDIT_WORDS` words
    or more, its first long word replaced; a shorter one (a heading, a table row, a caption:
    one word is a quarter of "Passive DNS Results") upper-cased and re-spaced, its wording
    kept."""
    if len(text.split()) >= LIGHT_EDIT_WORDS:
        return re.sub(r"\b[A-Za-z]{6,}\b", "something", text, count=1)
    return " ".join(text.upper().split()) + " "


def near_duplicates(client: Any, limit: int = 40) -> dict[str, Any]:
    """Lightly edited reviewed passages, analysed alone before any retraining: is the reviewed
    answer on top at ≥ 0.6, and is a technique rejected there under 0.6?"""
    passages = [
        json.loads(line) for line in client.get("/api/reviews/export").text.splitlines() if line
    ]
    accepted = [p for p in passages if p["labels"]][:limit]
    rejected = [p for p in passages if not p["labels"] and p["meta"].get("rejected")][:limit]

    # a passage's sentences can be reviewed on their own, in this report or another (TRAM's
    # reports repeat sentences), with other techniques: each is a reviewed answer for it
    def reviewed_within(text: str) -> set[str]:
        whole = " ".join(text.split())
        return {x for q in passages if " ".join(q["text"].split()) in whole for x in q["labels"]}

    top = below = 0
    for p in accepted:
        answer = client.post("/api/analyze", json={"text": edited(p["text"]), "iocs": False}).json()
        first = answer["techniques"][0] if answer["techniques"] else None
        top += bool(first and first["technique"] in reviewed_within(p["text"]))
    for p in rejected:
        answer = client.post(
            "/api/analyze", json={"text": edited(p["text"]), "threshold": 0.0, "iocs": False}
        ).json()
        found = {t["technique"]: t["confidence_score"] for t in answer["techniques"]}
        below += all(found.get(x, 0.0) < THRESHOLD for x in p["meta"]["rejected"])
    return {
        "accepted_on_top": top / max(len(accepted), 1),
        "accepted_passages": len(accepted),
        "rejected_below": below / max(len(rejected), 1),
        "rejected_passages": len(rejected),
    }


def memory_speed(model_path: Path, resolver: Any) -> dict[str, float]:
    """A 20 KB report analysed with and without a 10,000-passage review memory."""
    from mitremap.analysis import MitreMap
    from mitremap.classify.memory import LabelPriors, ReviewedPassage, ReviewMemory
    from mitremap.training.corpus import read_jsonl

    mm = MitreMap.load(model_path)
    texts = [i for i in read_jsonl(resolver.find("corpora/tram_bootstrap.jsonl").path) if i.labels]
    passages = [
        ReviewedPassage(t.text, tuple(t.labels), (), {"report": k // 20})
        for k, t in enumerate(texts[:10_000])
    ]
    memory = ReviewMemory(mm.model.features.blocks[0], passages, LabelPriors({"T1059": 3}, {}))
    article = resolver.find("ioc/long-article-1.txt").path
    text = (Path(article).read_text(encoding="utf-8") * 2)[:20_000]
    out = {"passages": float(len(memory))}
    for name, extra in (("without", {}), ("with", {"memory": memory})):
        mm.analyze(text, **extra)
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            mm.analyze(text, **extra)
            times.append(time.perf_counter() - t0)
        out[f"{name}_memory_s"] = min(times)
    return out


# ---- one source --------------------------------------------------------------------------


def run(
    source: Source,
    others: dict[str, tuple[list[Any], bool]],
    base: Path,
    marks: list[int],
    full: bool,
) -> dict:
    import shutil

    held = [*source.pool, *source.scored] + [r for reps, _ in others.values() for r in reps]
    out: dict[str, Any] = {"source": source.name, "checkpoints": []}
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "models"
        shutil.copytree(base, models / "default")
        client = client_for(models, Path(tmp) / "workspace.db", held)

        def scores() -> dict[str, float]:
            found = {source.name: score(client, source.scored, source.parents)}
            for name, (reports, parents) in others.items():
                found[name] = score(client, reports, parents)
            return found

        before = scores()
        out["before"] = before
        print(f"{source.name}: before any review {fmt(before)}", flush=True)
        reviewed = decisions = 0
        last = min(max(marks), len(source.pool))
        for checkpoint in sorted({min(c, len(source.pool)) for c in marks}):
            # the analyst works with the base model and the memory; each column starts there
            client.post("/api/models/default/activate").raise_for_status()
            while reviewed < checkpoint:
                decisions += review(client, source.pool[reviewed], source)
                reviewed += 1
            row: dict[str, Any] = {"reviewed": reviewed, "decisions": decisions}
            row["memory"] = scores()
            _, row["quick_seconds"] = retrain(client, "quick")
            row["quick"] = scores()
            if full and checkpoint == last:
                name, seconds = retrain(client, "full")
                row["full"], row["full_seconds"] = scores(), seconds
                learned = client.get("/api/models").json()["items"]
                row["full_learning"] = next(m["learning"] for m in learned if m["name"] == name)
            out["checkpoints"].append(row)
            print(
                f"  {reviewed:3d} reviewed ({decisions} decisions): memory {fmt(row['memory'])}"
                f" | quick update ({row['quick_seconds']:.0f} s) {fmt(row['quick'])}"
                + (
                    f" | full retrain ({row['full_seconds']:.0f} s) {fmt(row['full'])}"
                    if "full" in row
                    else ""
                ),
                flush=True,
            )
        # before any retraining: the base model and the memory
        client.post("/api/models/default/activate").raise_for_status()
        out["near_duplicates"] = near_duplicates(client)
    return out


def fmt(found: dict[str, float]) -> str:
    return " ".join(f"{k} {v:.3f}" for k, v in found.items())


def verdict(result: dict) -> list[str]:
    """The bars at the last checkpoint: ≥ +0.05 on the source, no loss > 0.01 elsewhere."""
    lines = []
    name, before = result["source"], result["before"]
    final = result["checkpoints"][-1]
    for stage in ("memory", "quick", "full"):
        if stage not in final:
            continue
        after = final[stage]
        gain = after[name] - before[name]
        losses = {k: after[k] - before[k] for k in before if k != name}
        worst = min(losses.values()) if losses else 0.0
        ok = gain >= 0.05 and worst >= -0.01
        lines.append(
            f"  {name} after {final['reviewed']} reviewed, {stage}: {before[name]:.3f} → "
            f"{after[name]:.3f} ({gain:+.3f}, bar +0.05); elsewhere worst {worst:+.3f} "
            f"(bar -0.01) {'PASS' if ok else 'FAIL'}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--full", action="store_true", help="also a full retraining per source")
    parser.add_argument("--sources", default="annoctr,tram")
    parser.add_argument("--checkpoints", default="5,10,20,half")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from mitremap.attack import load_attack
    from mitremap.data import DataResolver

    resolver = DataResolver()
    kb = load_attack()
    found = sources(kb, resolver)
    books = textbook()
    cache = resolver.cache_dir / "bench"
    base = base_model([r for s in found.values() for r in (*s.pool, *s.scored)], cache)
    results: dict[str, Any] = {"sources": {}}
    for name in args.sources.split(","):
        source = found[name]
        marks = [
            (len(source.pool) + 1) // 2 if c == "half" else int(c)
            for c in args.checkpoints.split(",")
        ]
        other = next(s for n, s in found.items() if n != name)
        others = {other.name: (other.scored, other.parents), "textbook": (books, False)}
        results["sources"][name] = run(source, others, base, marks, args.full)
    speed = memory_speed(base, resolver)
    results["memory_speed"] = speed
    print("Bars:")
    for result in results["sources"].values():
        for line in verdict(result):
            print(line)
        near = result["near_duplicates"]
        print(
            f"  {result['source']}: near-duplicates of reviewed passages, before any retrain: "
            f"reviewed answer on top at ≥ 0.6 {near['accepted_on_top']:.2f} of "
            f"{near['accepted_passages']}; rejected technique under 0.6 "
            f"{near['rejected_below']:.2f} of {near['rejected_passages']}"
        )
        quick = [c["quick_seconds"] for c in result["checkpoints"]]
        full = [c["full_seconds"] for c in result["checkpoints"] if "full_seconds" in c]
        print(
            f"  {result['source']}: quick update {max(quick):.0f} s at most (bar 60)"
            + (f"; full retraining {max(full):.0f} s (bar 600)" if full else "")
        )
    print(
        f"  20 KB report with a {int(speed['passages'])}-passage memory: "
        f"{speed['with_memory_s']:.3f} s (bar 0.1; {speed['without_memory_s']:.3f} s without)"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    sys.exit(main())
