"""Technique mapping: accuracy by document-split cross-validation on TRAM, AnnoCTR, speed.

    python benchmarks/bench_mapping.py            # 5-fold CV (≈20 min on 2 cores) + speed
    python benchmarks/bench_mapping.py --nested   # the exact shipped pipeline in every fold
    python benchmarks/bench_mapping.py --speed    # only load / analyze / cold-start timings
    python benchmarks/bench_mapping.py --cache DIR  # keep the fold models; a rerun reuses them

Cross-validation is by report: each fold trains on the default recipe minus the held-out
reports' sentences and minus every training text that occurs (nearly) in them — TRAM's
bootstrap set contains report sentences — and is tested on the held-out reports.

Calibration in the default (fast) mode: each fold's model is trained once; the report-level
calibration used for fold k is fitted on the other folds' held-out scores (never on fold k's).
`--nested` instead trains every fold exactly as `mitremap train` does (calibration by an inner
3-fold split of the fold's training reports): 4× the time, the same design.

Baselines (from the project notes and the issue): TF-IDF + LinearSVC top-1 ≈ 0.79, top-5
≈ 0.91, report per-report F1 ≈ 0.46; TRAM's SciBERT micro-F1 0.890 on an easier random split.
"""

from __future__ import annotations

import argparse
import dataclasses
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
os.environ.setdefault("MITREMAP_DATA", str(REPO.parent / "shared" / "data"))


def folds(reports, k: int = 5, seed: int = 0):
    order = np.random.default_rng(seed).permutation(len(reports))
    return [[reports[i] for i in sorted(order[f::k])] for f in range(k)]


def cross_validate(kb, resolver, k: int, nested: bool, settings, cache: Path | None = None) -> dict:
    from mitremap.analysis import MitreMap
    from mitremap.classify.linear import HeldOut, LinearModel, held_out_mask
    from mitremap.classify.train import calibration_reports
    from mitremap.corpus import build_corpus
    from mitremap.evaluate import evaluate_sentences, report_metrics

    reports = [r for r in calibration_reports(kb, resolver) if r.labels]
    single = build_corpus(kb, _only("tram-single"), resolver=resolver).items
    parts = folds(reports, k)
    runs = []
    for f, held in enumerate(parts):
        started = time.perf_counter()
        held_ids = {r.id for r in held}
        seen = [r for r in reports if r.id not in held_ids]
        corpus = build_corpus(kb, resolver=resolver)
        keep = held_out_mask(corpus.items, held)
        items = [i for i, ok in zip(corpus.items, keep, strict=True) if ok]
        tests = [i for i in single if i.meta.get("doc_title") in held_ids]
        leaked = {i.text for i in items} & {t.text for t in tests}
        saved = cache / f"fold{f + 1}of{k}{'-nested' if nested else ''}" if cache else None
        if saved is not None and (saved / "manifest.json").is_file():
            from mitremap.classify import load_model

            model = load_model(saved)  # same folds (fixed seed), same recipe: reuse the fit
        elif nested:
            model = LinearModel.train(items, reports=seen, settings=settings)
        else:
            s = settings.__class__(**{**settings.__dict__, "calibration_folds": 0})
            model = LinearModel.train(items, reports=seen, settings=s)
        if saved is not None and not (saved / "manifest.json").is_file():
            model.save(saved)
        part = HeldOut()
        if not nested:
            part.add(model, held, seen, sentences=tests if settings.sentence_calibration else ())
        runs.append(
            dict(
                model=model,
                held=held,
                seen=seen,
                tests=tests,
                part=part,
                seconds=time.perf_counter() - started,
                leaked=len(leaked),
                dropped=int((~keep).sum()),
            )
        )
        print(
            f"  fold {f + 1}/{k}: trained on {len(items)} texts ({int((~keep).sum())} held-out "
            f"or overlapping dropped, {len(leaked)} exact test sentences left) in "
            f"{runs[-1]['seconds']:.0f} s",
            flush=True,
        )
    sentence, per_report, preds_all = [], [], []
    for f, run in enumerate(runs):
        model = run["model"]
        if not nested:
            pool = HeldOut()
            for g, other in enumerate(runs):
                if g != f:
                    for name in (field.name for field in dataclasses.fields(pool)):
                        getattr(pool, name).extend(getattr(other["part"], name))
            model.calibration = pool.fit(len(run["seen"]))
            from mitremap.classify.linear import _prior

            model.prior = _prior(run["seen"], {x: i for i, x in enumerate(model.labels)})
        mm = MitreMap(model)
        sentence.append(evaluate_sentences(mm, run["tests"]))
        preds = []
        for r in run["held"]:
            analysis = mm.analyze(r.text, threshold=0.0)
            preds.append(({h.id: h.confidence for h in analysis.techniques}, set(r.labels)))
        preds_all.extend(preds)
        per_report.append(report_metrics(preds, 0.6))
    n = sum(s.n for s in sentence)
    return {
        "folds": k,
        "nested": nested,
        "sentences": n,
        "top1": sum(s.top1 * s.n for s in sentence) / n,
        "top5": sum(s.top5 * s.n for s in sentence) / n,
        "sentence_macro_f1": statistics.mean(s.macro.f1 for s in sentence),
        "sentence_ece": sum(s.ece * s.n for s in sentence) / n,
        "report": {str(t): report_metrics(preds_all, t).to_dict() for t in (0.4, 0.5, 0.6, 0.7)},
        "report_per_fold_f1": [round(m.per_report_f1, 3) for m in per_report],
        "train_seconds_per_fold": [round(r["seconds"]) for r in runs],
        "exact_test_sentences_in_training": sum(r["leaked"] for r in runs),
    }


def _only(*names):
    from mitremap.corpus import Recipe

    return Recipe("bench", "1", names)


def annoctr(mm, kb, resolver) -> dict:
    from mitremap.evaluate import read_labelled, report_metrics

    path = resolver.find("annoctr/reports_train_dev.jsonl").path
    if path is None:
        return {"skipped": "annoctr/reports_train_dev.jsonl not found"}
    items = read_labelled(str(path), kb)
    out = {}
    for split in ("train", "dev"):
        part = [i for i in items if i.meta.get("split") == split]
        preds = []
        for item in part:
            a = mm.analyze(item.text, threshold=0.0)
            preds.append(({h.id: h.confidence for h in a.techniques}, set(item.labels)))
        m = report_metrics(preds, 0.6)
        out[split] = {
            "reports": len(part),
            "rolled_up_per_report_f1": m.rolled_up_per_report_f1,
            "rolled_up_micro": m.rolled_up_micro.__dict__,
            "per_report_f1": m.per_report_f1,
            "micro": m.micro.__dict__,
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
    size = sum(p.stat().st_size for p in model_path.iterdir())
    out["model_mb"] = size / 2**20
    cold = []
    report = REPO / "examples" / "apt-report.md"
    exe = Path(sys.executable).with_name("mitremap")
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run(
            [str(exe), "analyze", str(report), "--model", str(model_path)],
            check=True,
            capture_output=True,
        )
        cold.append(time.perf_counter() - t0)
    out["cold_start_analyze_s"] = min(cold)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--nested", action="store_true")
    parser.add_argument("--speed", action="store_true", help="only the speed measurements")
    parser.add_argument("--model", type=Path, default=None, help="model for speed and AnnoCTR")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="keep the fold models here and reuse them on the next run",
    )
    args = parser.parse_args()

    from mitremap.analysis import MitreMap, default_model_path
    from mitremap.attack import load_attack
    from mitremap.classify.linear import LinearSettings
    from mitremap.data import DataResolver

    resolver = DataResolver()
    kb = load_attack()
    results: dict = {}
    if not args.speed:
        print(
            f"TRAM reports, {args.folds}-fold CV by document"
            f"{' (nested calibration)' if args.nested else ''}:",
            flush=True,
        )
        results["tram_cv"] = cv = cross_validate(
            kb, resolver, args.folds, args.nested, LinearSettings(), args.cache
        )
        r6 = cv["report"]["0.6"]
        print(
            f"sentence top-1 {cv['top1']:.3f} (bar 0.90, baseline 0.79)  top-5 {cv['top5']:.3f} "
            f"(baseline 0.91)  ECE {cv['sentence_ece']:.3f}"
        )
        print(
            f"report @0.6: per-report F1 {r6['per_report_f1']:.3f} (bar 0.80, baseline 0.46)  "
            f"micro P {r6['micro']['precision']:.3f} R {r6['micro']['recall']:.3f} "
            f"F1 {r6['micro']['f1']:.3f}  rolled-up per-report F1 "
            f"{r6['rolled_up_per_report_f1']:.3f}  ECE {r6['ece']:.3f} (bar 0.05)"
        )
        for t, m in cv["report"].items():
            print(
                f"  threshold {t}: per-report F1 {m['per_report_f1']:.3f} micro F1 "
                f"{m['micro']['f1']:.3f}"
            )
    model_path = args.model or default_model_path()
    if (model_path / "manifest.json").is_file():
        mm = MitreMap.load(model_path)
        results["annoctr"] = a = annoctr(mm, kb, resolver)
        for split, m in a.items():
            if isinstance(m, dict):
                print(
                    f"AnnoCTR {split} ({m['reports']} reports, parents rolled up): per-report "
                    f"F1 {m['rolled_up_per_report_f1']:.3f} micro F1 "
                    f"{m['rolled_up_micro']['f1']:.3f}"
                )
        results["speed"] = s = speed(model_path)
        print(
            f"model load {s['load_s']:.2f} s (bar 1)  analyze 20 KB {s['analyze_20kb_s']:.3f} s "
            f"(bar 0.1)  cold start `mitremap analyze` {s['cold_start_analyze_s']:.2f} s "
            f"(bar 1.5)  model {s['model_mb']:.1f} MB"
        )
    else:
        print(f"no model at {model_path}: run `mitremap model ensure` for AnnoCTR and speed")
    results["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
