"""IoC extraction benchmark: MitreMap against iocsearcher, ioc-finder, iocextract and msticpy.

    .venv/bin/python benchmarks/bench_iocs.py [--data DIR] [--skip-competitors] [--timeout S]

MitreMap runs in this process. Each competitor runs in a subprocess of `.venv-bench/bin/python`
(they are never project dependencies; create that venv with the command printed when it is
missing; the list is in benchmarks/requirements-iocs.txt). Printed, side by side:
time per MB and indicators per type on `ioc/long-article-1.txt` and on a ~1 MB text made of
varied threat reports (TRAM, then AnnoCTR, then the article, repeated as needed), agreement per
type with each competitor, MitreMap's 10 MB / 1 MB time ratio, and pathological inputs.

Times are CPU seconds (`time.process_time`: one core's work, not disturbed by other load on
the machine), the best of a few runs of the extraction call only (imports and set-up excluded
and shown apart). iocextract is superlinear (minutes per MB), so on the 1 MB text it runs on a
100 KB prefix, and its agreement is measured on that prefix. msticpy tries to download the
Public Suffix List: its subprocess gets an unreachable proxy so that fails fast, and a timeout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from bench_iocs_common import (
    BENCH_PYTHON,
    COMPETITORS,
    INSTALL_HINT,
    REPO,
    comparable,
    competitor_sets,
    normalise,
    run_competitor,
)
from mitremap.iocs import IocExtractor

MB = 1_000_000
IOCEXTRACT_PREFIX = 100_000


def data_dir(option: str | None) -> Path:
    """--data, else $MITREMAP_DATA, else ../shared/data beside the repository."""
    if option:
        return Path(option)
    env = os.environ.get("MITREMAP_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def report_text(root: Path, size: int) -> str:
    """About `size` characters of varied report text, repeating the reports if needed."""
    parts: list[str] = []
    for name in ("tram/reports.jsonl", "annoctr/reports_train_dev.jsonl"):
        path = root / name
        if path.exists():
            with path.open(encoding="utf-8") as lines:
                parts.extend(json.loads(line)["text"] for line in lines if line.strip())
    article = root / "ioc" / "long-article-1.txt"
    parts.append(article.read_text(encoding="utf-8"))
    text, i = "", 0
    pieces: list[str] = []
    total = 0
    while total < size:
        piece = parts[i % len(parts)]
        pieces.append(piece)
        total += len(piece) + 2
        i += 1
    text = "\n\n".join(pieces)
    return text[:size]


def best_time(function, text: str, repeats: int) -> tuple[float, list]:
    best, result = float("inf"), []
    for _ in range(repeats):
        t0 = time.process_time()
        result = function(text)
        best = min(best, time.process_time() - t0)
    return best, result


def mitremap_sets(indicators) -> dict[str, set[str]]:
    """MitreMap's values per type, plus the hosts of its URLs and e-mails as domains/IPs:
    the competitors report those separately, MitreMap reports each stretch of text once."""
    sets: dict[str, set[str]] = defaultdict(set)
    for i in indicators:
        kind = "md5" if i.type in ("ja3", "imphash") else i.type  # others call them MD5s
        sets[kind].add(normalise(kind, i.value))
        host = None
        if i.type == "url":
            host = i.value.split("://", 1)[-1].split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
            host = host.split(":", 1)[0] if not host.startswith("[") else None
        elif i.type == "email":
            host = i.value.rsplit("@", 1)[-1]
        if host:
            kind = "ipv4" if host.replace(".", "").isdigit() else "domain"
            sets[kind].add(host)
            if host.endswith(".onion"):
                sets["onion"].add(host)
    return sets


def agreement_table(name: str, ours: dict[str, set[str]], theirs: dict[str, set[str]]) -> None:
    kinds = sorted(k for k in set(ours) | set(theirs) if theirs.get(k) or k in ours)
    kinds = [k for k in kinds if theirs.get(k) is not None or k in comparable(name)]
    print(f"    {'type':<17}{'MitreMap':>9}{name:>12}{'both':>7}{'only MM':>9}{'only ' + name:>18}")
    for kind in kinds:
        a, b = ours.get(kind, set()), theirs.get(kind, set())
        print(
            f"    {kind:<17}{len(a):>9}{len(b):>12}{len(a & b):>7}{len(a - b):>9}{len(b - a):>18}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="data folder (default: $MITREMAP_DATA or ../shared/data)")
    parser.add_argument("--skip-competitors", action="store_true")
    parser.add_argument("--timeout", type=float, default=300, help="per competitor run (s)")
    args = parser.parse_args()

    root = data_dir(args.data)
    article_path = root / "ioc" / "long-article-1.txt"
    if not article_path.exists():
        sys.exit(f"no {article_path}: point --data or $MITREMAP_DATA at the shared data folder")
    article = article_path.read_text(encoding="utf-8")
    one_mb = report_text(root, MB)
    inputs = {"long-article-1.txt": article, "1 MB of reports": one_mb}

    extractor = IocExtractor()
    extractor.extract("warm-up: evil[.]com 1.2.3.4")  # loads the suffix list once

    competitors = [] if args.skip_competitors else list(COMPETITORS)
    if competitors and not BENCH_PYTHON.exists():
        print(
            "Competitors are not installed (they must stay out of the project's venv). Create:\n"
            f"  {INSTALL_HINT}\nReporting MitreMap alone.\n"
        )
        competitors = []

    for label, text in inputs.items():
        size_mb = len(text.encode("utf-8")) / MB
        repeats = 20 if size_mb < 0.1 else 3
        seconds, indicators = best_time(extractor.extract, text, repeats)
        ours = mitremap_sets(indicators)
        print(f"\n=== {label}: {len(text):,} characters ({size_mb:.3f} MB) ===")
        print(f"  {'tool':<13}{'CPU s/MB':>10}{'run s':>9}{'setup s':>9}{'indicators':>12}  note")
        counts = Counter(i.type for i in indicators)
        print(f"  {'MitreMap':<13}{seconds / size_mb:>10.3f}{seconds:>9.3f}{'-':>9}"
              f"{len(indicators):>12}  in-process, {len(counts)} types")  # fmt: skip
        results = {}
        for tool in competitors:
            sample, note = text, ""
            if tool == "iocextract" and len(text) > IOCEXTRACT_PREFIX:
                sample = text[:IOCEXTRACT_PREFIX]
                note = f"on the first {IOCEXTRACT_PREFIX // 1000} KB (superlinear)"
            result = run_competitor(tool, sample, 3 if len(sample) < 100_000 else 1, args.timeout)
            if isinstance(result, str):
                print(f"  {tool:<13}{'-':>10}{'-':>9}{'-':>9}{'-':>12}  {result}")
                continue
            sample_mb = len(sample.encode("utf-8")) / MB
            total = sum(len(v) for v in result["iocs"].values())
            print(f"  {tool:<13}{result['seconds'] / sample_mb:>10.3f}{result['seconds']:>9.3f}"
                  f"{result['setup']:>9.2f}{total:>12}  {note}")  # fmt: skip
            results[tool] = (sample, result)
        if counts:
            print("  MitreMap per type: " + ", ".join(f"{k} {v}" for k, v in counts.most_common()))
        for tool, (sample, result) in results.items():
            mine = ours if sample is text else mitremap_sets(extractor.extract(sample))
            where = "" if sample is text else f" (first {len(sample) // 1000} KB)"
            print(f"\n  agreement with {tool}{where}: distinct normalised values per type")
            agreement_table(tool, mine, competitor_sets(tool, result["iocs"]))

    print("\n=== MitreMap: linearity and pathological inputs ===")
    one, _ = best_time(extractor.extract, one_mb, 5)
    ten, _ = best_time(extractor.extract, one_mb * 10, 2)
    print(
        f"  1 MB: {one:.3f} s   10 MB: {ten:.3f} s ({ten / 10:.3f} s per MB)   "
        f"ratio 10 MB / 1 MB: {ten / one:.1f} (linear: 10)"
    )
    pathological = {
        "a.a.a.a… (1 MB)": "a." * (MB // 2),
        "[.][.][.]… (1 MB)": "[.]" * (MB // 3),
        "1.1.1.1… (1 MB)": "1." * (MB // 2),
        "a:a:a:… (1 MB)": "a:" * (MB // 2),
        "\\a\\a… (1 MB)": "\\a" * (MB // 2),
        "a@a@… (1 MB)": "a@" * (MB // 2),
        "hex run (1 MB)": "ab" * (MB // 2),
        "/tmp/tmp… (1 MB)": "/tmp" * (MB // 4),
        "http://a.com/… (1 MB)": "http://a.com/" + "a" * MB,
    }
    for label, text in pathological.items():
        seconds, found = best_time(extractor.extract, text, 1)
        print(f"  {label:<24}{seconds:>7.3f} s  ({len(found)} indicators)")


if __name__ == "__main__":
    main()
