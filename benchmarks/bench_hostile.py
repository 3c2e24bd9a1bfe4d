"""Hostile documents: time and peak memory of a DOCX bomb and of a 49 MB text.

    python benchmarks/bench_hostile.py

The bomb is a 1.5 MB DOCX whose main part inflates to about 480 MB of tiny paragraphs (the
case from the hostile-input review: it once took 7.7 GB and 34–51 s). The long text is 49 MB
of report prose, analysed with indicators (it once died out of memory at 9.7 GB). Each case runs
in a fresh process so its peak memory is its own. Bars: under 1 GB each; the bomb under 30 s.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

UNIT = b"<w:p><w:r><w:t>ab</w:t></w:r></w:p>"
HEAD = (
    b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
)
PROBE = """
import json, resource, sys, time
from mitremap.documents import read_file
started = time.perf_counter()
try:
    document = read_file(sys.argv[1])
    outcome = f"read {len(document.text):,} characters; {'; '.join(document.warnings)}"
except Exception as exc:
    outcome = f"{type(exc).__name__}: {exc}"
print(json.dumps({"seconds": time.perf_counter() - started, "outcome": outcome,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_bomb(path: Path, xml_mb: int = 480) -> None:
    """Written in pieces: the bomb itself never sits in this process's memory."""
    chunk = UNIT * (1 << 16)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as part:
            part.write(HEAD)
            for _ in range(xml_mb * 2**20 // len(chunk)):
                part.write(chunk)
            part.write(b"</w:body></w:document>")


ANALYZE = """
import json, resource, sys, time
from mitremap.analysis import MitreMap
from mitremap.documents import read_file
mm = MitreMap.load()
started = time.perf_counter()
result = mm.analyze(read_file(sys.argv[1]), iocs=True)
print(json.dumps({"seconds": time.perf_counter() - started,
                  "outcome": f"{len(result.techniques)} techniques, {len(result.indicators)} indicators",
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def long_text(path: Path, megabytes: int = 49) -> None:
    article = Path(__file__).resolve().parents[2] / "shared" / "data" / "ioc" / "long-article-1.txt"
    base = (
        article.read_text(encoding="utf-8") if article.is_file() else "The actor used cmd. " * 900
    )
    with path.open("w", encoding="utf-8") as out:
        written = 0
        while written < megabytes * 2**20:
            out.write(base)
            written += len(base.encode("utf-8"))


def in_fresh_process(script: str, path: Path) -> dict:
    """Run `script` on `path` in its own process: its peak memory is the case's alone."""
    run = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True
    )
    return json.loads(run.stdout)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        bomb = Path(folder) / "bomb.docx"
        make_bomb(bomb)
        result = in_fresh_process(PROBE, bomb)
        print(
            f"DOCX bomb ({bomb.stat().st_size / 2**20:.1f} MB, 480 MB of XML): "
            f"{result['seconds']:.1f} s (bar 30), peak {result['peak_mb']:.0f} MB (bar 1024) — "
            f"{result['outcome'][:160]}"
        )
        text = Path(folder) / "long.txt"
        long_text(text)
        result = in_fresh_process(ANALYZE, text)
        print(
            f"analyze 49 MB of text with indicators: {result['seconds']:.0f} s, "
            f"peak {result['peak_mb']:.0f} MB (bar 1024) — {result['outcome']}"
        )


if __name__ == "__main__":
    main()
