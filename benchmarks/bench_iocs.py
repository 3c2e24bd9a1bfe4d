"""IoC extraction benchmark: MitreMap against msticpy (the bar: 10x) on report prose and on
IoC-dense text at 1x, 4x and 16x sizes, then agreement with iocsearcher, ioc-finder, iocextract
and msticpy, and pathological inputs.

    .venv/bin/python benchmarks/bench_iocs.py [--data DIR] [--base KB] [--skip-competitors]
        [--timeout S]

MitreMap runs in this process. Each competitor runs in a subprocess of `.venv-bench/bin/python`
(they are never project dependencies; create that venv with the command printed when it is
missing; the list is in benchmarks/requirements-iocs.txt).

Inputs. Report prose: TRAM, then AnnoCTR, then `ioc/long-article-1.txt`, repeated as needed.
IoC-dense text: `bench_iocs_common.dense_text`, the indicator appendix of a report (Markdown
tables of hashes with file names and paths, lists of defanged URLs, domains and addresses,
registry keys, e-mail addresses), about 27 indicators per kilobyte, every value new; each run
gets a text of its own (another seed), so no cache of either tool has seen its values.

Times are CPU seconds (`time.process_time`: one core's work, less disturbed by other load on
the machine), of the extraction call only (imports and set-up excluded), the best of
`--repeats` runs; the ratio is msticpy's time over MitreMap's on the same texts. msticpy runs
still going after `--speed-timeout` seconds (wall clock) are stopped: msticpy does not finish
one 205 KB AnnoCTR report (number 204 of reports_train_dev.jsonl, in the prose from 16x on). msticpy tries
to download the Public Suffix List: its subprocess gets an unreachable proxy so that fails
fast. iocextract is superlinear (minutes per MB), so it is compared on a 100 KB prefix.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from operator import itemgetter
from pathlib import Path

from bench_iocs_common import (
    BENCH_PYTHON,
    COMPETITORS,
    INSTALL_HINT,
    REPO,
    comparable,
    competitor_sets,
    dense_text,
    normalise,
    run_competitor,
)
from mitremap.iocs import IocExtractor

MB = 1_000_000
IOCEXTRACT_PREFIX = 100_000
SCALES = (1, 4, 16)


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
    pieces: list[str] = []
    total, i = 0, 0
    while total < size:
        piece = parts[i % len(parts)]
        pieces.append(piece)
        total += len(piece) + 2
        i += 1
    return "\n\n".join(pieces)[:size]


def best_time(function: Callable[[str], list], text: str, repeats: int) -> tuple[float, list]:
    best, result = float("inf"), []
    for _ in range(repeats):
        t0 = time.process_time()
        result = function(text)
        best = min(best, time.process_time() - t0)
    return best, result


def megabytes(text: str) -> float:
    return len(text.encode("utf-8")) / MB


def msticpy_seconds(texts: list[str], timeout: float) -> tuple[float, bool]:
    """msticpy's best time over the texts, each run in a subprocess of its own; (seconds, True)
    when a run was stopped at `timeout` (then the time is a lower bound, and the texts left,
    the same size, are not run)."""
    best = float("inf")
    for text in texts:
        result = run_competitor("msticpy", text, 1, timeout)
        if isinstance(result, str):
            return timeout, True
        best = min(best, result["seconds"])
    return best, False


def speed_table(
    root: Path, base: int, repeats: int, extractor: IocExtractor, msticpy: bool, timeout: float
) -> None:
    """MitreMap and msticpy, side by side, on prose and dense text at each scale."""
    print(f"=== Speed: MitreMap and msticpy, CPU s per MB (best of {repeats}) ===")
    print(
        f"  {'input':<16}{'scale':>6}{'MB':>6}{'MitreMap':>10}{'msticpy':>10}{'ratio':>9}  indicators"
    )
    for kind in ("report prose", "IoC-dense text"):
        ours_at_scale = {}
        for scale in SCALES:
            size = base * scale
            if kind == "report prose":
                texts = [report_text(root, size)] * repeats
            else:
                texts = [dense_text(size, seed=scale * 100 + run) for run in range(repeats)]
            mb = megabytes(texts[0])
            ours, found = min(
                (best_time(extractor.extract, text, 1) for text in texts), key=itemgetter(0)
            )
            ours_at_scale[scale] = ours
            theirs, ratio = "-", "-"
            if msticpy:
                seconds, stopped = msticpy_seconds(texts, timeout)
                theirs = "stopped" if stopped else f"{seconds / mb:.3f}"
                ratio = f"(>{timeout:.0f}s)" if stopped else f"{seconds / ours:.1f}x"
            print(
                f"  {kind:<16}{f'{scale}x':>6}{mb:>6.2f}{ours / mb:>10.3f}{theirs:>10}{ratio:>9}"
                f"  {len(found) / mb:,.0f} per MB"
            )
        growth = ours_at_scale[SCALES[-1]] / ours_at_scale[SCALES[0]]
        print(
            f"  {'':<16}MitreMap's time at {SCALES[-1]}x / {SCALES[0]}x: {growth:.1f} (linear: 16)"
        )


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


def agreement(inputs: dict[str, str], extractor: IocExtractor, tools: list[str], timeout: float):
    """Time per MB and distinct values per type of every installed competitor, per input."""
    for label, text in inputs.items():
        size_mb = megabytes(text)
        repeats = 20 if size_mb < 0.1 else 3
        seconds, indicators = best_time(extractor.extract, text, repeats)
        ours = mitremap_sets(indicators)
        print(f"\n=== {label}: {len(text):,} characters ({size_mb:.3f} MB) ===")
        print(f"  {'tool':<13}{'CPU s/MB':>10}{'run s':>9}{'setup s':>9}{'indicators':>12}  note")
        counts = Counter(i.type for i in indicators)
        print(f"  {'MitreMap':<13}{seconds / size_mb:>10.3f}{seconds:>9.3f}{'-':>9}"
              f"{len(indicators):>12}  in-process, {len(counts)} types")  # fmt: skip
        results = {}
        for tool in tools:
            sample, note = text, ""
            if tool == "iocextract" and len(text) > IOCEXTRACT_PREFIX:
                sample = text[:IOCEXTRACT_PREFIX]
                note = f"on the first {IOCEXTRACT_PREFIX // 1000} KB (superlinear)"
            result = run_competitor(tool, sample, 3 if len(sample) < 100_000 else 1, timeout)
            if isinstance(result, str):
                print(f"  {tool:<13}{'-':>10}{'-':>9}{'-':>9}{'-':>12}  {result}")
                continue
            sample_mb = megabytes(sample)
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


def pathological(extractor: IocExtractor) -> None:
    print("\n=== MitreMap: pathological inputs ===")
    inputs = {
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
    for label, text in inputs.items():
        seconds, found = best_time(extractor.extract, text, 1)
        print(f"  {label:<24}{seconds:>7.3f} s  ({len(found)} indicators)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="data folder (default: $MITREMAP_DATA or ../shared/data)")
    parser.add_argument("--base", type=int, default=256, help="1x size in KB (default 256)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per size (default 3)")
    parser.add_argument("--skip-competitors", action="store_true")
    parser.add_argument("--timeout", type=float, default=600, help="per competitor run (s)")
    parser.add_argument(
        "--speed-timeout", type=float, default=120, help="per msticpy run in the speed table (s)"
    )
    args = parser.parse_args()

    root = data_dir(args.data)
    article_path = root / "ioc" / "long-article-1.txt"
    if not article_path.exists():
        sys.exit(f"no {article_path}: point --data or $MITREMAP_DATA at the shared data folder")

    extractor = IocExtractor()
    extractor.extract("warm-up: evil[.]com 1.2.3.4")  # loads the suffix list once

    tools = [] if args.skip_competitors else list(COMPETITORS)
    if tools and not BENCH_PYTHON.exists():
        print(
            "Competitors are not installed (they must stay out of the project's venv). Create:\n"
            f"  {INSTALL_HINT}\nReporting MitreMap alone.\n"
        )
        tools = []
    speed_table(
        root, args.base * 1000, args.repeats, extractor, "msticpy" in tools, args.speed_timeout
    )
    inputs = {
        "long-article-1.txt": article_path.read_text(encoding="utf-8"),
        "1 MB of reports": report_text(root, MB),
        "1 MB of IoC-dense text": dense_text(MB, seed=1),
    }
    agreement(inputs, extractor, tools, args.timeout)
    pathological(extractor)


if __name__ == "__main__":
    main()
