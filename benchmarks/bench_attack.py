"""ATT&CK knowledge base load times: first load (parse the bundle) vs cached index.

Bars (issue 2): first load < 3 s, cached load < 0.3 s. Run: .venv/bin/python benchmarks/bench_attack.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mitremap.attack import AttackKB

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    root = Path(os.environ.get("MITREMAP_DATA") or REPO.parent / "shared" / "data")
    bundle = root / "attack" / "enterprise-attack-18.1.json"
    if not bundle.is_file():
        print(f"skipped: {bundle} not found (set MITREMAP_DATA)")
        return 0
    firsts, cached = [], []
    for _ in range(3):
        with tempfile.TemporaryDirectory() as cache:
            start = time.perf_counter()
            AttackKB.from_file(bundle, cache_dir=Path(cache))
            firsts.append(time.perf_counter() - start)
            for _ in range(3):
                start = time.perf_counter()
                kb = AttackKB.from_file(bundle, cache_dir=Path(cache))
                cached.append(time.perf_counter() - start)
    first, again = statistics.median(firsts), statistics.median(cached)
    print(
        f"bundle: {bundle.name} ({bundle.stat().st_size / 2**20:.1f} MB), ATT&CK {kb.version}, "
        f"{len(kb.techniques())} active techniques, {len(kb.procedures)} procedures"
    )
    print(f"first load (parse + write index): {first:.3f} s   (bar < 3 s)")
    print(f"cached load:                      {again:.3f} s   (bar < 0.3 s)")
    print(f"speed-up of the cache:            {first / again:.1f}x")
    return 0 if first < 3 and again < 0.3 else 1


if __name__ == "__main__":
    sys.exit(main())
