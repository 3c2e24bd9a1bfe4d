"""Named software, groups and campaigns: precision and recall of `mitremap.names.Gazetteer`.

The labelled set (`benchmarks/data/entities_labelled.jsonl`, written for this project) holds
threat-report sentences with every ATT&CK software, group or campaign mention labelled by its
ATT&CK id — names, aliases, case and punctuation variants (`mimikatz.exe`, `Cobalt-Strike`,
`APT-29`, `TrickBot's`) — and trap sentences where an ATT&CK name is an ordinary word in its
ordinary sense ("Page 3", ".Net Framework", "cobalt prices", "Ryuk the shinigami", "Royal Mail").
The rules in `mitremap.names` were tuned on the `development` sentences; the `held-out` ones
were written afterwards and measured once, as they are.
Family names that ATT&CK splits into versions (LockBit 2.0 / 3.0) are out of scope: a mention is
labelled only when it names exactly one ATT&CK entry. A found mention is right when its span and
its id are both those of a labelled one.

Bars (issue 14): precision ≥ 0.95, recall ≥ 0.90. Run: .venv/bin/python benchmarks/bench_entities.py
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from mitremap.attack import AttackKB
from mitremap.names import Gazetteer

REPO = Path(__file__).resolve().parents[1]
LABELLED = REPO / "benchmarks" / "data" / "entities_labelled.jsonl"


def gold_spans(text: str, mentions: list[list[str]]) -> set[tuple[int, int, str]]:
    """Each labelled surface, found left to right after the previous one."""
    out, at = set(), 0
    for surface, ident in mentions:
        start = text.index(surface, at)
        out.add((start, start + len(surface), ident))
        at = start + len(surface)
    return out


def main() -> int:
    root = Path(os.environ.get("MITREMAP_DATA") or REPO.parent / "shared" / "data")
    bundle = root / "attack" / "enterprise-attack-18.1.json"
    if not bundle.is_file():
        print(f"skipped: {bundle} not found (set MITREMAP_DATA)")
        return 0
    gazetteer = Gazetteer.from_attack(AttackKB.from_file(bundle))
    rows = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines()]
    print(f"ATT&CK {bundle.name}; labelled set {LABELLED.name}")
    ok = True
    for split in ("development", "held-out", "all"):
        part = [r for r in rows if split in ("all", r.get("split", "development"))]
        ok &= report(split, part, gazetteer, show_errors=split == "all")
    return 0 if ok else 1


def report(split: str, rows: list[dict], gazetteer: Gazetteer, show_errors: bool) -> bool:
    """Precision and recall on `rows`; True when both pass their bars."""
    tp = fp = fn = 0
    errors = []
    for row in rows:
        text = row["text"]
        gold = gold_spans(text, row["mentions"])
        found = {(e.start, e.end, e.id) for e in gazetteer.find(text)}
        tp += len(gold & found)
        fp += len(found - gold)
        fn += len(gold - found)
        for start, end, ident in sorted(found - gold):
            errors.append(f"  false hit  {row['id']}: {text[start:end]!r} → {ident}   | {text}")
        for start, end, ident in sorted(gold - found):
            errors.append(f"  missed     {row['id']}: {text[start:end]!r} ({ident})   | {text}")
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    traps = sum(1 for r in rows if r.get("trap"))
    print(
        f"{split:<12} {len(rows):>4} sentences ({traps} traps), {tp + fn:>4} mentions: "
        f"precision {precision:.3f} ({fp} false hits), recall {recall:.3f} ({fn} missed)"
    )
    if show_errors and errors:
        print("errors:\n" + "\n".join(errors))
    return precision >= 0.95 and recall >= 0.90


if __name__ == "__main__":
    sys.exit(main())
