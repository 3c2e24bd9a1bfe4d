"""Technique mapping: accuracy on TRAM and away from it, calibration, speed.

    python benchmarks/bench_mapping.py          # everything (≈35 min on 2 cores)
    python benchmarks/bench_mapping.py --quick  # the default model only: AnnoCTR dev, the
                                                # example report, textbook reports, speed
    python benchmarks/bench_mapping.py --only cv,loso   # pick parts: cv, loso, model, speed

What each part measures (a change that wins on TRAM and loses elsewhere is a loss):
- `cv`: TRAM reports, k-fold cross-validation by report. Every fold trains exactly as
  `mitremap train` does (the default recipe, calibration included) without the held-out
  reports' sentences and without any training text found in them (TRAM's bootstrap set holds
  report sentences). Sentence top-1/top-5 on the held-out reports' annotated sentences;
  per-report F1 and ECE of report confidence.
- `loso`: leave one source out. For each non-TRAM source, train without it (and without the
  other held-out sources' text nowhere else), then top-1 on it; pooled, the top-1 of items
  whose gold technique is outside the techniques TRAM annotates, and the share of top-1
  answers that fall inside them (a TRAM-shaped model answers TRAM's techniques).
- `model` (the default model, never trained on these): AnnoCTR dev reports (per-report and
  micro F1, parents rolled up, ECE); short "textbook" reports made of one-behaviour sentences
  written for the project (`benchmarks/data/textbook.jsonl`): recall and precision at the
  default threshold; the sample report `examples/apt-report.md` against an analyst's list
  (`benchmarks/data/apt-report-expert.json`).
- `speed`: model load, a 20 KB report, a cold `mitremap analyze`.
- `baseline` (with `cv`, `loso` and `model`): a plain TF-IDF (the same word and character
  n-grams) + one LinearSVC per technique on each text's first label, trained on exactly the
  texts the product trained on in that view, scored on the same sentences, printed beside the
  product's top-1 (issue "a model that learns": the product is never to be below it). About
  10 minutes a view on 2 cores.

Bars (issue "technique mapping, round 2") are printed beside each number.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "benchmarks" / "data"
os.environ.setdefault("MITREMAP_DATA", str(REPO.parent / "shared" / "data"))

# non-TRAM sources held out one at a time (text unlike TRAM's: attack descriptions, malware
# behaviours, exploitation notes, detections, annotated CTI sentences)
LOSO_SOURCES = ("text2ttp-manual", "ctid-kev", "mbc", "panther", "lolbas", "annoctr-train")


def plain_baseline(train, tests) -> tuple[float, float]:
    """Top-1 and top-5 of the plain baseline: TF-IDF + LinearSVC (C=0.5) per label, positives
    the texts whose first label it is, every other labelled text a negative."""
    from joblib import Parallel, delayed
    from sklearn.svm import LinearSVC

    from mitremap.classify.features import TextFeatures

    def fit(X, y):
        svm = LinearSVC(C=0.5).fit(X, y)
        return svm.coef_.ravel().astype(np.float32), float(svm.intercept_[0])

    labelled = [i for i in train if i.labels]
    features, X = TextFeatures.fit_transform([i.text for i in labelled])
    first = np.array([i.labels[0] for i in labelled])
    labels = sorted(set(first))
    fitted = Parallel(n_jobs=2)(delayed(fit)(X, first == label) for label in labels)
    weights = np.stack([w for w, _ in fitted], axis=1)
    bias = np.array([b for _, b in fitted], dtype=np.float32)
    scores = np.asarray(features.transform([t.text for t in tests]) @ weights) + bias
    return top_k_hits(scores, labels, tests)


def top_k_hits(scores, labels, tests) -> tuple[float, float]:
    """Top-1 and top-5 accuracy of raw scores (rows: `tests`, columns: `labels`)."""
    top = np.argsort(-scores, axis=1)[:, :5]
    hits1 = sum(labels[row[0]] in set(t.labels) for row, t in zip(top, tests, strict=True))
    hits5 = sum(
        any(labels[j] in set(t.labels) for j in row) for row, t in zip(top, tests, strict=True)
    )
    return hits1 / len(tests), hits5 / len(tests)


def default_recipe_items(kb, resolver, drop=()):
    from mitremap.training.corpus import DEFAULT_RECIPE, build_corpus

    return build_corpus(kb, DEFAULT_RECIPE, resolver=resolver, drop=drop).items


def cross_validate(kb, resolver, k: int, baseline: bool = False) -> dict:
    from mitremap.analysis import MitreMap
    from mitremap.training.corpus import Recipe, build_corpus
    from mitremap.training.evaluate import evaluate_sentences, report_metrics
    from mitremap.training.fit import LinearSettings, held_out_mask, train_linear
    from mitremap.training.train import DEFAULT_REPORT_SOURCES, calibration_reports

    tram = [r for r in calibration_reports(kb, resolver) if r.labels]
    others = [
        r
        for r in calibration_reports(kb, resolver, sources=DEFAULT_REPORT_SOURCES)
        if r.labels and r.source != "tram-reports"
    ]
    single = build_corpus(kb, Recipe("bench", "1", ("tram-single",)), resolver=resolver).items
    items = default_recipe_items(kb, resolver)
    order = np.random.default_rng(0).permutation(len(tram))
    sentence, preds, plain = [], [], []
    for f in range(k):
        started = time.perf_counter()
        held = [tram[i] for i in sorted(order[f::k])]
        held_ids = {r.id for r in held}
        keep = held_out_mask(items, held)
        train = [i for i, ok in zip(items, keep, strict=True) if ok]
        seen = [r for r in tram if r.id not in held_ids] + others
        model = train_linear(train, reports=seen, settings=LinearSettings())
        mm = MitreMap(model)
        tests = [i for i in single if i.meta.get("doc_title") in held_ids and i.labels]
        sentence.append(evaluate_sentences(mm, tests))
        if baseline:
            plain.append((plain_baseline(train, tests), len(tests)))
        for r in held:
            a = mm.analyze(r.text, threshold=0.0)
            preds.append(({h.id: h.confidence for h in a.techniques}, set(r.labels)))
        print(
            f"  fold {f + 1}/{k}: {len(train)} texts ({int((~keep).sum())} held-out or "
            f"overlapping dropped), {time.perf_counter() - started:.0f} s",
            flush=True,
        )
    n = sum(s.n for s in sentence)
    # TRAM's annotators use a fixed set of techniques: a hit outside it is unannotated there,
    # not wrong. Both views are reported.
    judged = {x for r in tram for x in r.labels}
    within = [({k: v for k, v in p.items() if k in judged}, g) for p, g in preds]
    return {
        "folds": k,
        "sentences": n,
        "top1": sum(s.top1 * s.n for s in sentence) / n,
        "top5": sum(s.top5 * s.n for s in sentence) / n,
        **(
            {
                "baseline_top1": sum(t1 * m for (t1, _), m in plain) / n,
                "baseline_top5": sum(t5 * m for (_, t5), m in plain) / n,
            }
            if plain
            else {}
        ),
        "report": {str(t): report_metrics(preds, t).to_dict() for t in (0.4, 0.5, 0.6, 0.7)},
        "report_within_tram_techniques": {
            str(t): report_metrics(within, t).to_dict() for t in (0.4, 0.5, 0.6, 0.7)
        },
    }


def leave_one_source_out(kb, resolver, baseline: bool = False) -> dict:
    """Raw top-1 (calibration is the same monotone map for every label, so it cannot change
    a ranking) of each source when the model never saw it."""
    from mitremap.training.corpus import DEFAULT_RECIPE, Recipe, build_corpus
    from mitremap.training.fit import LinearSettings, train_linear
    from mitremap.training.train import calibration_reports

    tram_labels = {x for r in calibration_reports(kb, resolver) for x in r.labels}
    recipe = Recipe("loso", "1", tuple(dict.fromkeys((*DEFAULT_RECIPE.sources, *LOSO_SOURCES))))
    corpus = build_corpus(kb, recipe, resolver=resolver).items
    reports = calibration_reports(kb, resolver)
    settings = LinearSettings(calibration_folds=0)
    out: dict = {"sources": {}}
    outside = [0, 0]
    inside_share = [0, 0]
    for name in LOSO_SOURCES:
        started = time.perf_counter()
        test = [i for i in corpus if i.source == name and i.labels]
        train = [i for i in corpus if i.source != name]
        model = train_linear(train, reports=reports, settings=settings)
        raw = model.raw_scores([t.text for t in test])
        top = np.argsort(-raw, axis=1)[:, :5]
        hits1 = hits5 = 0
        for row, item in zip(top, test, strict=True):
            gold = set(item.labels)
            first = model.labels[row[0]]
            hits1 += first in gold
            hits5 += any(model.labels[j] in gold for j in row)
            if not gold & tram_labels:
                outside[0] += first in gold
                outside[1] += 1
            inside_share[0] += first in tram_labels
            inside_share[1] += 1
        out["sources"][name] = row = {
            "n": len(test),
            "top1": hits1 / len(test),
            "top5": hits5 / len(test),
        }
        versus = ""
        if baseline:
            row["baseline_top1"], row["baseline_top5"] = plain_baseline(train, test)
            versus = f" | plain SVC top-1 {row['baseline_top1']:.3f} ({row['top1'] - row['baseline_top1']:+.3f})"
        print(
            f"  without {name:16s} n={len(test):5d} top-1 {hits1 / len(test):.3f} "
            f"top-5 {hits5 / len(test):.3f}{versus} ({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
    out["outside_tram_top1"] = outside[0] / max(outside[1], 1)
    out["outside_tram_items"] = outside[1]
    out["top1_inside_tram_share"] = inside_share[0] / max(inside_share[1], 1)
    return out


def textbook_reports(size: int = 5) -> list:
    """The textbook sentences read as short reports of `size` sentences each."""
    from mitremap.training.corpus import LabelledText

    rows = [json.loads(line) for line in (DATA / "textbook.jsonl").open(encoding="utf-8")]
    order = np.random.default_rng(5).permutation(len(rows))
    out = []
    for start in range(0, len(rows), size):
        part = [rows[i] for i in order[start : start + size]]
        text = " ".join(r["text"] for r in part)
        labels = tuple(x for r in part for x in r["labels"])
        out.append(LabelledText(text, labels, "textbook", f"textbook-{start // size}"))
    return out


def default_model_views(mm, kb, resolver, baseline: bool = False) -> dict:
    from mitremap.training.evaluate import (
        evaluate_sentences,
        read_labelled,
        report_metrics,
        report_predictions,
    )

    out: dict = {}
    path = resolver.find("annoctr/reports_train_dev.jsonl").path
    if path is not None:
        dev = [i for i in read_labelled(str(path), kb) if i.meta.get("split") == "dev"]
        m = report_metrics(report_predictions(mm, dev), 0.6)
        out["annoctr_dev"] = {
            "reports": m.n,
            "per_report_f1": m.per_report_f1,
            "micro": m.micro.__dict__,
            "rolled_up_micro": m.rolled_up_micro.__dict__,
            "ece": m.ece,
            "parent_level_ece": m.parent_level_ece,
        }
    from mitremap.training.corpus import evaluation_items

    sentences = evaluation_items(kb, "annoctr-dev", resolver)
    if sentences:
        top = evaluate_sentences(mm, sentences)
        out["annoctr_dev_sentences"] = {"n": len(sentences), "top1": top.top1, "top5": top.top5}
        if baseline:  # the plain SVC on the texts the default model was trained on
            t1, t5 = plain_baseline(default_recipe_items(kb, resolver), sentences)
            out["annoctr_dev_sentences"] |= {"baseline_top1": t1, "baseline_top5": t5}
    reports = textbook_reports()
    m = report_metrics(report_predictions(mm, reports), 0.6)
    from mitremap.training.corpus import LabelledText

    sentences = [
        LabelledText(r["text"], tuple(r["labels"]), "textbook", r["id"])
        for r in map(json.loads, (DATA / "textbook.jsonl").open(encoding="utf-8"))
    ]
    out["textbook"] = {
        "reports": m.n,
        "recall": m.micro.recall,
        "precision": m.micro.precision,
        "sentence_top1": evaluate_sentences(mm, sentences).top1,
        "sentences": len(sentences),
    }
    expert = json.loads((DATA / "apt-report-expert.json").read_text(encoding="utf-8"))
    analysis = mm.analyze((REPO / expert["report"]).read_text(encoding="utf-8"), threshold=0.0)
    confidence = {h.id: h.confidence for h in analysis.techniques}
    core, also = set(expert["core"]), set(expert["also"])
    found = {k for k, v in confidence.items() if v >= 0.6}
    out["example_report"] = {
        "expert_techniques": len(core),
        "found": sorted(found & core),
        "missed": {k: round(confidence.get(k, 0.0), 2) for k in sorted(core - found)},
        "wrong": sorted(found - core - also),
        "recall": len(found & core) / len(core),
        "precision": len(found & (core | also)) / max(len(found), 1),
    }
    return out


def speed(model_path: Path) -> dict:
    from mitremap.analysis import MitreMap

    out: dict = {}
    started = time.perf_counter()
    mm = MitreMap.load(model_path)
    out["load_s"] = time.perf_counter() - started
    article = Path(os.environ["MITREMAP_DATA"]) / "ioc" / "long-article-1.txt"
    text = article.read_text(encoding="utf-8") if article.is_file() else ""
    text = (text * 2)[:20_000] if text else ("The actor used PowerShell to download a file. " * 450)
    mm.analyze(text)  # warm
    times = []
    for _ in range(5):
        mm.model.features.clear_cache()  # time a first reading: no word seen before
        t0 = time.perf_counter()
        mm.analyze(text)
        times.append(time.perf_counter() - t0)
    out["analyze_20kb_s"] = min(times)
    out["analyze_20kb_median_s"] = statistics.median(times)
    out["model_mb"] = sum(p.stat().st_size for p in model_path.iterdir()) / 2**20
    cold = []
    exe = Path(sys.executable).with_name("mitremap")
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run(
            [
                str(exe),
                "analyze",
                str(REPO / "examples" / "apt-report.md"),
                "--model",
                str(model_path),
            ],
            check=True,
            capture_output=True,
        )
        cold.append(time.perf_counter() - t0)
    out["cold_start_analyze_s"] = min(cold)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="only the default model's views")
    parser.add_argument(
        "--only", default="", help="comma-separated: cv, loso, model, speed, baseline"
    )
    parser.add_argument("--model", type=Path, default=None, help="model for model/speed")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    parts = set(args.only.split(",")) if args.only else {"cv", "loso", "model", "speed", "baseline"}
    if args.quick:
        parts = {"model", "speed"}

    from mitremap.analysis import MitreMap, default_model_path
    from mitremap.attack import load_attack
    from mitremap.data import DataResolver

    resolver = DataResolver()
    kb = load_attack()
    results: dict = {}
    if "cv" in parts:
        print(f"TRAM reports, {args.folds}-fold CV by report (the shipped training in each fold):")
        results["tram_cv"] = cv = cross_validate(kb, resolver, args.folds, "baseline" in parts)
        print(f"  TRAM sentences top-1 {cv['top1']:.3f} (bar 0.78)  top-5 {cv['top5']:.3f}")
        if "baseline_top1" in cv:
            print(
                f"  plain SVC on the same texts: top-1 {cv['baseline_top1']:.3f} "
                f"({cv['top1'] - cv['baseline_top1']:+.3f})  top-5 {cv['baseline_top5']:.3f}"
            )
        for view, key in (
            ("every hit counted", "report"),
            ("hits within TRAM's techniques", "report_within_tram_techniques"),
        ):
            r6 = cv[key]["0.6"]
            print(
                f"  TRAM reports @0.6, {view}: per-report F1 {r6['per_report_f1']:.3f} (bar 0.65)"
                f"  micro P {r6['micro']['precision']:.2f} R {r6['micro']['recall']:.2f}  ECE "
                f"{r6['ece']:.3f} (bar 0.05); per-report F1 at 0.4/0.5/0.7: "
                + " / ".join(f"{cv[key][t]['per_report_f1']:.3f}" for t in ("0.4", "0.5", "0.7"))
            )
    if "loso" in parts:
        print("Leave one source out (top-1 on a source the model never saw):")
        results["loso"] = lo = leave_one_source_out(kb, resolver, "baseline" in parts)
        print(
            f"  outside TRAM's techniques: top-1 {lo['outside_tram_top1']:.3f} of "
            f"{lo['outside_tram_items']} items (bar 0.30)  top-1 answers inside TRAM's "
            f"techniques: {lo['top1_inside_tram_share']:.3f} (was 0.965)"
        )
    model_path = args.model or default_model_path()
    if parts & {"model", "speed"} and not (model_path / "manifest.json").is_file():
        print(f"no model at {model_path}: run `mitremap model ensure` first")
        parts -= {"model", "speed"}
    if "model" in parts:
        mm = MitreMap.load(model_path)
        results["model"] = views = default_model_views(mm, kb, resolver, "baseline" in parts)
        if "annoctr_dev" in views:
            a = views["annoctr_dev"]
            print(
                f"AnnoCTR dev ({a['reports']} reports, never trained on) @0.6: per-report F1 "
                f"{a['per_report_f1']:.3f}  micro F1 {a['micro']['f1']:.3f}  rolled-up micro F1 "
                f"{a['rolled_up_micro']['f1']:.3f} (bar 0.50 on its test split)  ECE "
                f"{a['parent_level_ece']:.3f} judged at its parent level (bar 0.05), "
                f"{a['ece']:.3f} exact"
            )
        if "annoctr_dev_sentences" in views:
            d = views["annoctr_dev_sentences"]
            versus = (
                f" | plain SVC top-1 {d['baseline_top1']:.3f} ({d['top1'] - d['baseline_top1']:+.3f})"
                if "baseline_top1" in d
                else ""
            )
            print(f"AnnoCTR dev sentences ({d['n']}): top-1 {d['top1']:.3f}{versus}")
        t = views["textbook"]
        print(
            f"Textbook reports ({t['reports']} × 5 sentences) @0.6: recall {t['recall']:.3f} "
            f"(bar 0.80)  precision {t['precision']:.3f} (bar 0.90)  sentence top-1 "
            f"{t['sentence_top1']:.3f} of {t['sentences']}"
        )
        e = views["example_report"]
        print(
            f"examples/apt-report.md @0.6: {len(e['found'])}/{e['expert_techniques']} of the "
            f"analyst's techniques, precision {e['precision']:.2f}; missed "
            + ", ".join(f"{k} ({v})" for k, v in e["missed"].items())
            + (f"; not on the list: {', '.join(e['wrong'])}" if e["wrong"] else "")
        )
    if "speed" in parts:
        results["speed"] = s = speed(model_path)
        print(
            f"model load {s['load_s']:.2f} s (bar 1)  analyze 20 KB {s['analyze_20kb_s']:.3f} s "
            f"(bar 0.1)  cold start `mitremap analyze` {s['cold_start_analyze_s']:.2f} s "
            f"(bar 1.5)  model {s['model_mb']:.1f} MB"
        )
    results["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
