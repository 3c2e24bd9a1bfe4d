"""IoC extraction accuracy on a labelled set: MitreMap against iocsearcher, ioc-finder,
iocextract and msticpy (precision, recall, F1 per type and overall, and trap hits).

README: the labelled set `benchmarks/data/ioc_labelled.jsonl` was written for this project,
from scratch (no text copied from the shared data or from other projects' test files): short
passages in the style of vendor blog posts, CISA-style advisories, DFIR write-ups, PDF-extracted
text, Markdown tables and bullet lists, each with the exact indicators it holds and the traps in
it (text that must yield no indicator).

Two more sets, written the same way for issue 13 (its four kinds of false positive: words glued
to a sentence end read as file names, versions read as IPv4, reverse-DNS package names read as
domains, domains given the wrong type; and ordinary passages for recall), split at random into
`ioc_dev.jsonl` (fix by kind of error, check here) and `ioc_heldback.jsonl` (not looked at while
fixing; score it with `--set` to report, not to tune).

    .venv/bin/python benchmarks/bench_iocs_accuracy.py [--set PATH] [--skip-competitors]
        [--strict-hosts] [--errors TOOL] [--timeout S]

One JSON object per line:
    {"id", "style", "text",
     "iocs": [{"type", "value", "private"?}],   expected; `value` as MitreMap's `value` is
                                                  (refanged, normalised); `private: true` for
                                                  documentation/internal values, which are
                                                  extracted but marked
     "optional": [{"type", "value"}],            neither right nor wrong if reported
     "traps": ["text", ...]}                     substrings that must yield no indicator

Scoring, per passage, on distinct (type, normalised value) pairs:
- values are normalised the same way for every tool (`bench_iocs_common.normalise_strict`):
  refanged, lower-case, URLs without scheme and final slash, an IPv4 without its port, IPv6
  compressed, MACs with colons, registry hives spelled out;
- each tool is scored on the types it extracts (`bench_iocs_common.comparable`; MitreMap: all),
  so a tool is not charged for types it does not have; `ja3` and `imphash` expected values
  count as found when a competitor reports them as MD5s (they have no such types);
- a URL's host and an e-mail's domain reported again as a `domain` (or `ipv4`) are ignored:
  the set labels one indicator per stretch of text, the competitors also list the hosts of
  URLs; `--strict-hosts` counts them as false positives instead;
- a trap hit is a false positive whose value is inside a trap's text (or holds it).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bench_iocs_common import (
    BENCH_PYTHON,
    COMPETITORS,
    INSTALL_HINT,
    comparable,
    competitor_sets,
    normalise_strict,
    run_competitor,
)
from mitremap.iocs import IOC_TYPES, IocExtractor, refang

DEFAULT_SET = Path(__file__).resolve().parent / "data" / "ioc_labelled.jsonl"
_MD5_LIKE = ("ja3", "imphash")

Pair = tuple[str, str]


@dataclass
class Passage:
    id: str
    text: str
    expected: set[Pair]
    private: set[Pair]
    optional: set[Pair]
    traps: list[str]


@dataclass
class Score:
    """Counts per type, trap hits, and the errors (for --errors)."""

    tp: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    fp: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    fn: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    trap_hits: int = 0
    errors: list[str] = field(default_factory=list)

    def prf(self, kinds: Iterable[str] | None = None) -> tuple[float, float, float, int, int, int]:
        """Micro precision, recall, F1 (and tp, fp, fn) over `kinds` (default: all)."""
        keys = set(self.tp) | set(self.fp) | set(self.fn)
        chosen = keys if kinds is None else keys & set(kinds)
        tp = sum(self.tp[k] for k in chosen)
        fp = sum(self.fp[k] for k in chosen)
        fn = sum(self.fn[k] for k in chosen)
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return precision, recall, f1, tp, fp, fn


def load_set(path: Path = DEFAULT_SET) -> list[Passage]:
    passages = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            record = json.loads(line)
            expected = {
                (i["type"], normalise_strict(i["type"], i["value"])) for i in record["iocs"]
            }
            private = {
                (i["type"], normalise_strict(i["type"], i["value"]))
                for i in record["iocs"]
                if i.get("private")
            }
            optional = {
                (i["type"], normalise_strict(i["type"], i["value"]))
                for i in record.get("optional", [])
            }
            passages.append(
                Passage(record["id"], record["text"], expected, private, optional, record["traps"])
            )
    return passages


def _hosts(expected: set[Pair]) -> set[str]:
    """Hosts of the expected URLs and domains of the expected e-mails (normalised)."""
    hosts = set()
    for kind, value in expected:
        if kind == "url":
            host = value.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].rsplit("@", 1)[-1]
            hosts.add(host.split("]", 1)[0].strip("[") if host.startswith("[") else host)
            hosts.add(host.rsplit(":", 1)[0])
        elif kind == "email":
            hosts.add(value.rsplit("@", 1)[-1])
    return hosts


def score_passage(
    passage: Passage,
    predicted: set[Pair],
    kinds: set[str],
    score: Score,
    *,
    md5_aliases: bool = False,
    strict_hosts: bool = False,
) -> None:
    """Add one passage's counts to `score`; only types in `kinds` are compared."""
    expected = {p for p in passage.expected if p[0] in kinds or (md5_aliases and p[0] in _MD5_LIKE)}
    predicted = {p for p in predicted if p[0] in kinds}
    if md5_aliases:  # a competitor's MD5 that is an expected JA3/imphash
        for kind, value in list(predicted):
            for alias in _MD5_LIKE:
                if kind == "md5" and (alias, value) in expected:
                    predicted.discard((kind, value))
                    predicted.add((alias, value))
    hosts = set() if strict_hosts else _hosts(passage.expected)
    traps = [refang(t).lower() for t in passage.traps]
    hit: set[int] = set()
    for kind, value in sorted(predicted):
        if (kind, value) in expected:
            score.tp[kind] += 1
            continue
        if (kind, value) in passage.optional:
            continue
        if kind in ("domain", "ipv4", "ipv6") and value in hosts:
            continue
        score.fp[kind] += 1
        trapped = [n for n, t in enumerate(traps) if len(value) >= 3 and (value in t or t in value)]
        hit.update(trapped)
        note = " (trap)" if trapped else ""
        score.errors.append(f"{passage.id} FP{note} {kind}: {value}")
    for kind, value in sorted(expected - predicted):
        score.fn[kind] += 1
        score.errors.append(f"{passage.id} FN {kind}: {value}")
    score.trap_hits += len(hit)


def mitremap_predictions(passages: list[Passage]) -> tuple[list[set[Pair]], int]:
    """MitreMap's (type, normalised value) pairs per passage, and how many expected values
    it marked `private` differently from the set."""
    extractor = IocExtractor()
    result, private_mismatches = [], 0
    for passage in passages:
        found = extractor.extract(passage.text)
        pairs = {(i.type, normalise_strict(i.type, i.value)) for i in found}
        marked = {(i.type, normalise_strict(i.type, i.value)) for i in found if i.private}
        private_mismatches += len((marked ^ passage.private) & passage.expected & pairs)
        result.append(pairs)
    return result, private_mismatches


def score_tool(
    passages: list[Passage],
    predictions: list[set[Pair]],
    kinds: set[str],
    **options: bool,
) -> Score:
    score = Score()
    for passage, predicted in zip(passages, predictions, strict=True):
        score_passage(passage, predicted, kinds, score, **options)
    return score


def score_mitremap(path: Path = DEFAULT_SET, *, strict_hosts: bool = False) -> Score:
    """MitreMap's score on the labelled set (used by the tests)."""
    passages = load_set(path)
    predictions, _ = mitremap_predictions(passages)
    return score_tool(passages, predictions, set(IOC_TYPES), strict_hosts=strict_hosts)


def competitor_predictions(
    tool: str, passages: list[Passage], timeout: float
) -> list[set[Pair]] | str:
    result = run_competitor(tool, [p.text for p in passages], 1, timeout)
    if isinstance(result, str):
        return result
    return [
        {(kind, value) for kind, values in competitor_sets(tool, found, normalise_strict).items()
         for value in values}
        for found in result["iocs_per_text"]
    ]  # fmt: skip


def _table(scores: dict[str, tuple[Score, set[str]]], kinds: list[str]) -> None:
    names = list(scores)
    print(f"  {'type':<17}" + "".join(f"{n:>22}" for n in names))
    print(f"  {'':<17}" + "".join(f"{'P    R   F1    n':>22}" for _ in names))
    for kind in kinds:
        cells = []
        for name in names:
            score, scope = scores[name]
            if kind not in scope:
                cells.append(f"{'-':>22}")
                continue
            p, r, f, tp, fp, fn = score.prf([kind])
            cells.append(
                f"{p:>8.2f}{r:>5.2f}{f:>5.2f}{tp + fn:>4}" if tp + fp + fn else f"{'':>22}"
            )
        print(f"  {kind:<17}" + "".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", type=Path, default=DEFAULT_SET, help="labelled JSONL file")
    parser.add_argument("--skip-competitors", action="store_true")
    parser.add_argument("--strict-hosts", action="store_true", help="URL hosts as domains are FPs")
    parser.add_argument("--errors", metavar="TOOL", help="list this tool's FPs and FNs")
    parser.add_argument("--timeout", type=float, default=600, help="per competitor run (s)")
    args = parser.parse_args()

    passages = load_set(args.set)
    n_iocs = sum(len(p.expected) for p in passages)
    n_traps = sum(len(p.traps) for p in passages)
    print(f"{args.set.name}: {len(passages)} passages, {n_iocs} indicators, {n_traps} traps")
    options = {"strict_hosts": args.strict_hosts}

    predictions, private_mismatches = mitremap_predictions(passages)
    scores: dict[str, tuple[Score, set[str]]] = {}
    all_types = set(IOC_TYPES)
    scores["MitreMap"] = (score_tool(passages, predictions, all_types, **options), all_types)

    tools: list[str] = [] if args.skip_competitors else list(COMPETITORS)
    if tools and not BENCH_PYTHON.exists():
        print(f"Competitors are not installed. Create:\n  {INSTALL_HINT}\nMitreMap alone.\n")
        tools = []
    for tool in tools:
        found = competitor_predictions(tool, passages, args.timeout)
        if isinstance(found, str):
            print(f"  {tool}: {found}")
            continue
        scope = comparable(tool)
        scores[tool] = (
            score_tool(passages, found, scope, md5_aliases=True, **options),
            scope,
        )

    print("\nOverall (each tool on the types it extracts; MitreMap also on each competitor's):")
    print(f"  {'tool':<24}{'P':>6}{'R':>6}{'F1':>6}{'TP':>6}{'FP':>6}{'FN':>6}{'traps':>7}")
    mine = scores["MitreMap"][0]
    rows: list[tuple[str, Score, Iterable[str] | None]] = [("MitreMap (all types)", mine, None)]
    for tool in tools:
        if tool in scores:
            rows.append((tool, scores[tool][0], None))
            rows.append(("  MitreMap on its types", mine, scores[tool][1]))
    for label, score, kinds in rows:
        p, r, f, tp, fp, fn = score.prf(kinds)
        traps = score.trap_hits if kinds is None else ""
        print(f"  {label:<24}{p:>6.3f}{r:>6.3f}{f:>6.3f}{tp:>6}{fp:>6}{fn:>6}{traps!s:>7}")
    print(f"  MitreMap private-flag mismatches on found values: {private_mismatches}")

    kinds = [
        k for k in IOC_TYPES if any(k in s.tp or k in s.fp or k in s.fn for s, _ in scores.values())
    ]
    print("\nPer type (n = expected values of that type):")
    _table(scores, kinds)

    if args.errors:
        for name, (score, _) in scores.items():
            if name.lower() == args.errors.lower():
                print(f"\nErrors of {name}:")
                for line in score.errors:
                    print("  " + line)


if __name__ == "__main__":
    main()
