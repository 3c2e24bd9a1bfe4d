"""Explanation cost: exact linear attributions for every hit of a report, and SHAP's cost.

Bar (issue 5): explanations for all hits of a 20 KB report ≤ 0.5 s (exact, linear model).
Baseline: the original notebook needed 1–2 minutes per short report with SHAP on DistilGPT2.

    python benchmarks/bench_explain.py            # exact attributions (needs the default model)
    python benchmarks/bench_explain.py --shap     # also SHAP on a few windows (the explain extra)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("MITREMAP_DATA", str(REPO.parent / "shared" / "data"))


def report_text(size: int = 20_000) -> str:
    """About `size` characters of real report text (the TRAM reports), else the bundled example."""
    import json

    path = Path(os.environ["MITREMAP_DATA"]) / "tram" / "reports.jsonl"
    if path.is_file():
        texts = [json.loads(line)["text"] for line in path.open(encoding="utf-8")]
        text = max((t for t in texts if len(t) <= size * 1.5), key=len)
        return text[:size]
    return ((REPO / "examples" / "apt-report.md").read_text() * 20)[:size]


def timed(function, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shap", action="store_true", help="also time SHAP on a few windows")
    args = parser.parse_args()
    from mitremap.analysis import MitreMap, default_model_path

    if not (default_model_path() / "manifest.json").is_file():
        print("skipped: no default model (run 'mitremap model ensure')")
        return 0
    mm = MitreMap.load()
    text = report_text()
    plain = timed(lambda: mm.analyze(text))
    explained = timed(lambda: mm.analyze(text, explain=True))
    result = mm.analyze(text, explain=True)
    hits = len(result.techniques)
    windows = sum(len(h.evidence) for h in result.techniques)  # one explained passage per evidence
    extra = explained - plain
    print(f"report: {len(text):,} characters, {hits} techniques at threshold 0.6")
    print(f"analyze without explanations: {plain * 1000:7.1f} ms")
    print(
        f"analyze with explanations:    {explained * 1000:7.1f} ms   (bar: explanations ≤ 500 ms)"
    )
    print(
        f"explanations alone:           {extra * 1000:7.1f} ms = {extra * 1000 / max(windows, 1):.1f} ms "
        f"per evidence passage ({windows} passages)"
    )
    print(
        f"vs the original notebook's 60–120 s with SHAP: {60 / max(explained, 1e-9):,.0f}× faster or more"
    )
    if args.shap and result.techniques:
        from mitremap.explain import shap_values

        hit = result.techniques[0]
        evidence = [text[e.start : e.end] for e in hit.evidence][:3]
        shap_values(mm, evidence[:1], hit.id)  # the first call compiles shap's numba code
        cost = timed(lambda: shap_values(mm, evidence, hit.id), repeat=1)
        print(
            f"SHAP for {hit.id} on {len(evidence)} evidence windows: {cost:.2f} s "
            f"({cost / len(evidence):.2f} s per window; first call also compiles numba, ~10 s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
