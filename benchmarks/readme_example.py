"""Print the README's example tables from a real run of the default model on the sample report.

    python benchmarks/readme_example.py > /tmp/example.md   # then paste into README.md
    python benchmarks/readme_example.py --check             # exit 1 if the README's is stale

The README shows what this prints, so its example is a real output, not a hand-made one.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REPORT = REPO / "examples" / "apt-report.md"
README = REPO / "README.md"


def _cut(text: str, width: int = 80) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= width else text[:width].rsplit(" ", 1)[0] + " …"


def tables(model: str | None = None) -> None:
    from mitremap.analysis import MitreMap

    analysis = MitreMap.load(model).analyze(REPORT.read_text(encoding="utf-8"), iocs=True)
    print(
        "| technique | name | tactics | confidence | evidence (first words) | named software known to use it |"
    )
    print("|---|---|---|---|---|---|")
    for hit in analysis.techniques:
        evidence = hit.evidence[0] if hit.evidence else None
        text = analysis.document.text[evidence.start : evidence.end] if evidence else ""
        named = ", ".join(dict.fromkeys(e.name for e in hit.named))
        print(
            f"| {hit.id} | {hit.technique.name} | {', '.join(hit.technique.tactics)} | "
            f"{hit.confidence:.2f} | {_cut(text)} | {named} |"
        )
    print()
    print("| type | value | as written |")
    print("|---|---|---|")
    seen = set()
    for indicator in analysis.indicators:
        if (indicator.type, indicator.value) in seen:
            continue
        seen.add((indicator.type, indicator.value))
        print(f"| {indicator.type} | `{indicator.value}` | `{indicator.raw}` |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with README.md")
    parser.add_argument("--model", help="model folder (default: the cached default model)")
    args = parser.parse_args()
    if not args.check:
        tables(args.model)
        return 0
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        tables(args.model)
    readme = README.read_text(encoding="utf-8")
    stale = [line for line in buffer.getvalue().splitlines() if line and line not in readme]
    for line in stale:
        print(f"not in README.md: {line}", file=sys.stderr)
    print("README example: " + ("stale" if stale else "current (matches a real run)"))
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
