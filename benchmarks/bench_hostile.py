"""Hostile input: time and peak memory of every document of issue 22's table, through the CLI
and through the upload endpoint; the shared-stream PDF uploaded 20 times; a 49 MB text; a
320 MB JSONL corpus through `mitremap batch`.

    python benchmarks/bench_hostile.py                   # everything (~10 minutes on 2 cores)
    python benchmarks/bench_hostile.py --rows pdf,html   # some rows; --no-upload, --no-long

The documents are made by `tests/hostile.py` at the issue's sizes (a 1.5 MB DOCX holding 480 MB
of one-letter paragraphs, a 107 KB DOCX of empty paragraphs, …, a 175 KB PDF whose 1,000 pages
share one 5 MB content stream). Each CLI run is a fresh process (`python -m mitremap analyze
FILE --iocs -f json`): its peak memory is its own (VmHWM), and the PDF reader's child process is
shown apart. The uploads go to one real `mitremap serve` on loopback (`POST /api/analyze/file`), its
peak memory reset before each. Bars: an answer (text or a clean error) within 30 s and 1 GB
each; after 20 uploads of the PDF a normal add under 0.5 s and the server within 100 MB of
where it started. Point PYTHONPATH at another checkout to measure it the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("MITREMAP_DATA", str(REPO.parent / "shared" / "data"))

from tests import hostile  # noqa: E402  (the fixtures the tests make, at full size)

from bench_workspace import Client  # noqa: E402  (the same browser-like client)

MB = 2**20
BAR_S, BAR_MB = 30.0, 1024.0


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    make: Callable[[Path, int], Path]
    size: int
    name: str


ROWS = (
    Row(
        "docx-tiny",
        "DOCX, 1.5 MB, 480 MB of XML as millions of one-letter paragraphs",
        hostile.docx_tiny_paragraphs,
        480 * MB,
        "tiny.docx",
    ),
    Row(
        "docx-empty",
        "DOCX of empty <w:p/> (107 KB)",
        hostile.docx_empty_paragraphs,
        70 * MB,
        "empty.docx",
    ),
    Row(
        "docx-unknown",
        "DOCX with unknown elements at body level (255 KB)",
        hostile.docx_unknown_elements,
        100 * MB,
        "unknown.docx",
    ),
    Row(
        "docx-row",
        "DOCX, one huge table row (184 KB)",
        hostile.docx_huge_table_row,
        60 * MB,
        "row.docx",
    ),
    Row(
        "docx-deep",
        "DOCX, deep nesting (175 KB, 8 M levels)",
        hostile.docx_deep_nesting,
        8_000_000,
        "deep.docx",
    ),
    Row("html", "HTML table (10 MB)", hostile.html_table, 10 * MB, "table.html"),
    Row(
        "pdf",
        "PDF, 1,000 pages sharing one 5 MB stream (175 KB)",
        lambda p, n: hostile.pdf_shared_stream(p, 1000, n),
        5 * MB,
        "shared.pdf",
    ),
    Row(
        "text-tiny",
        "text of 3.5 M one-letter sentences (10 MB)",
        hostile.tiny_sentences,
        10 * MB,
        "tiny.txt",
    ),
    Row(
        "text-names",
        'text of 2.6 M mentions of ATT&CK software ("cmd cmd …", 10 MB)',
        hostile.named_mentions,
        10 * MB,
        "names.txt",
    ),
    Row(
        "text-iocs",
        "text of 1.3 M IP addresses (10 MB)",
        hostile.many_indicators,
        10 * MB,
        "iocs.txt",
    ),
)

DRIVER = """
import json, resource, sys, threading, time
import psutil
started = time.perf_counter()
children = [0.0]  # the largest peak of a child process (the PDF reader), polled


def hwm(pid):
    # VmHWM: the peak of this process image alone (ru_maxrss would count what a forked
    # child inherited from its parent)
    with open(f"/proc/{pid}/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmHWM")) / 1024


def poll():
    while True:
        for child in psutil.Process().children(recursive=True):
            try:
                children[0] = max(children[0], hwm(child.pid))
            except (OSError, StopIteration):
                pass
        time.sleep(0.05)


threading.Thread(target=poll, daemon=True).start()
from mitremap.cli import main
code = 0
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else 1
me, kids = (resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
sys.stderr.write("\\nBENCH " + json.dumps({
    "seconds": time.perf_counter() - started, "code": code,
    "cpu": me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime,
    "peak_mb": hwm("self"), "child_mb": children[0]}) + "\\n")
"""


def run_cli(args: list[str], timeout: float) -> dict[str, Any]:
    """`mitremap ARGS` in a fresh process; its time, CPU, peak memory (and its children's),
    what it printed on stderr and its JSON on stdout."""
    with tempfile.TemporaryFile() as out:
        try:
            run = subprocess.run(
                [sys.executable, "-c", DRIVER, *args],
                stdout=out,
                stderr=subprocess.PIPE,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return {"seconds": timeout, "timed_out": True}
        lines = run.stderr.splitlines()
        found = [json.loads(line[6:]) for line in lines if line.startswith("BENCH ")]
        if not found:
            return {"seconds": timeout, "crashed": run.returncode, "stderr": run.stderr[-300:]}
        result = found[-1]
        result["stderr"] = " ".join(
            line for line in lines if line and not line.startswith("BENCH ")
        )
        out.seek(0)
        try:
            result["json"] = json.loads(out.read() or b"null")
        except ValueError:
            result["json"] = None
    return result


def outcome(result: dict[str, Any]) -> str:
    if result.get("timed_out"):
        return f"killed after {result['seconds']:.0f} s"
    if "crashed" in result:
        return f"crashed ({result['crashed']}): {result['stderr']}"
    data = result.get("json")
    if result["code"] != 0 or not isinstance(data, dict):
        return result["stderr"][:200]
    text = f"{data['document']['length']:,} characters, {len(data['techniques'])} techniques"
    notes = data["document"].get("warnings") or []
    return text + (f"; note: {notes[-1][:150]}" if notes else "")


def cli_rows(rows: list[Row], files: dict[str, Path], timeout: float) -> None:
    print("\n## Through the CLI: `mitremap analyze FILE --iocs -f json` (fresh process each)\n")
    print("| input | time | CPU | peak memory (PDF reader) | answer |")
    print("|---|---|---|---|---|")
    for row in rows:
        result = run_cli(["analyze", str(files[row.key]), "--iocs", "-f", "json"], timeout)
        if result.get("timed_out") or "crashed" in result:
            print(f"| {row.label} | > {result['seconds']:.0f} s | | | {outcome(result)} |")
            continue
        child = f" (+{result['child_mb']:.0f} MB)" if result["child_mb"] > 1 else ""
        ok = result["seconds"] <= BAR_S and result["peak_mb"] + result["child_mb"] <= BAR_MB
        print(
            f"| {row.label} | {result['seconds']:.1f} s | {result['cpu']:.1f} s | "
            f"{result['peak_mb']:.0f} MB{child} | {outcome(result)} |{'' if ok else ' OVER BAR'}"
        )


# ---- the server ---------------------------------------------------------------------------


class Server:
    """`mitremap serve` on a free loopback port, with a fresh SQLite database."""

    def __init__(self, folder: str) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "mitremap", "serve", "--port", str(port)]
        command += ["--db", f"sqlite:///{folder}/ws.db"]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"mitremap serve exited with {self.process.returncode}")
            try:
                urllib.request.urlopen(self.base + "/api/health", timeout=2).read()
                break
            except OSError:
                time.sleep(0.3)
        self.client = Client(self.base, timeout=600)

    def memory_mb(self) -> tuple[float, float]:
        """(resident now, peak since the last reset) in MB."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        values = {
            line.split(":")[0]: int(line.split()[1]) / 1024
            for line in status.splitlines()
            if line.startswith(("VmRSS", "VmHWM"))
        }
        return values["VmRSS"], values["VmHWM"]

    def reset_peak(self) -> None:
        # not Linux, or not allowed: the peak is then the peak since the start
        with contextlib.suppress(OSError):
            Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")

    def normal_add(self) -> str:
        """How adding (reading, analysing, storing) the bundled sample report went."""
        text = (REPO / "examples" / "apt-report.md").read_text(encoding="utf-8")
        status, _, seconds = self.client.call("POST", "/api/reports", {"text": text})
        return f"{seconds:.2f} s" + ("" if status == 201 else f" ({status})")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def upload_row(server: Server, row: Row, path: Path) -> None:
    server.reset_peak()
    status, body, seconds = server.client.call(
        "POST", "/api/analyze/file", file=(row.name, path.read_bytes())
    )
    now, peak = server.memory_mb()
    if status == 200:
        notes = body["document"].get("warnings") or []
        answer = f"200, {body['document']['length']:,} characters" + (
            f"; note: {notes[-1][:120]}" if notes else ""
        )
    else:
        answer = f"{status} {((body or {}).get('error') or {}).get('message', '')[:150]}"
    ok = seconds <= BAR_S and peak <= BAR_MB
    print(
        f"| {row.label} | {answer} | {seconds:.1f} s | {peak:.0f} MB | {now:.0f} MB |"
        f"{'' if ok else ' OVER BAR'}",
        flush=True,
    )


def pdf_storm(server: Server, pdf: Path, uploads: int) -> None:
    """`uploads` uploads of the PDF at once (as a viewer token allows), then normal adds."""
    before = ", ".join(server.normal_add() for _ in range(3))
    start_mb = server.memory_mb()[0]
    data = pdf.read_bytes()
    started = time.perf_counter()
    with ThreadPoolExecutor(uploads) as pool:
        answers = list(
            pool.map(
                lambda _: server.client.call(
                    "POST", "/api/analyze/file", file=("shared.pdf", data)
                ),
                range(uploads),
            )
        )
    wall = time.perf_counter() - started
    after = ", ".join(server.normal_add() for _ in range(3))
    end_mb, peak_mb = server.memory_mb()
    statuses: dict[int, int] = {}
    for status, _, _ in answers:
        statuses[status] = statuses.get(status, 0) + 1
    slowest = max(seconds for _, _, seconds in answers)
    print(
        f"\n## The PDF uploaded {uploads} times at once\n\n"
        f"answers {dict(sorted(statuses.items()))} within {wall:.0f} s (slowest {slowest:.0f} s); "
        f"three normal adds (examples/apt-report.md) {before} before, {after} after "
        f"(bar 0.5 s); server memory {start_mb:.0f} MB before, {end_mb:.0f} MB after "
        f"({end_mb - start_mb:+.0f} MB, bar +100), peak {peak_mb:.0f} MB"
    )


# ---- long inputs --------------------------------------------------------------------------


ARTICLE = Path(os.environ["MITREMAP_DATA"]) / "ioc" / "long-article-1.txt"


def article() -> str:
    """A real 19 KB report (from the data mirror)."""
    if not ARTICLE.is_file():
        sys.exit(f"{ARTICLE} is missing: set MITREMAP_DATA to the data mirror")
    return ARTICLE.read_text(encoding="utf-8")


def long_text(path: Path, megabytes: int) -> Path:
    base = article()
    with path.open("w", encoding="utf-8") as out:
        written = 0
        while written < megabytes * MB:
            out.write(base)
            written += len(base.encode("utf-8"))
    return path


def jsonl_corpus(path: Path, megabytes: int) -> Path:
    base = article()
    with path.open("w", encoding="utf-8") as out:
        written = number = 0
        while written < megabytes * MB:
            line = json.dumps({"id": f"r{number}", "text": base}) + "\n"
            out.write(line)
            written += len(line)
            number += 1
    return path


def long_rows(folder: Path, timeout: float) -> None:
    text = long_text(folder / "long.txt", 49)
    result = run_cli(["analyze", str(text), "--iocs", "-f", "json"], timeout)
    print(
        f"\nanalyze 49 MB of report prose with indicators: {result['seconds']:.0f} s, "
        f"peak {result.get('peak_mb', 0):.0f} MB (bar 1024) — {outcome(result)}"
    )
    corpus = jsonl_corpus(folder / "corpus.jsonl", 320)
    out = folder / "results.jsonl"
    command = [sys.executable, "-c", DRIVER, "batch", str(corpus), "-o", str(out), "--workers", "1"]
    batch = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(45)
    batch.send_signal(signal.SIGTERM)  # the CLI stops like on Ctrl-C, keeping what it wrote
    _, err = batch.communicate(timeout=60)
    found = [json.loads(line[6:]) for line in err.splitlines() if line.startswith("BENCH ")]
    done = sum(1 for _ in out.open()) if out.exists() else 0
    peak = f"{found[-1]['peak_mb']:.0f} MB" if found else "?"
    print(
        f"batch over a {corpus.stat().st_size / MB:.0f} MB JSONL corpus, stopped after 45 s: "
        f"peak memory {peak}, {done} documents written"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--rows", default="", help="comma-separated keys: " + ", ".join(r.key for r in ROWS)
    )
    parser.add_argument("--no-cli", action="store_true")
    parser.add_argument("--no-upload", action="store_true")
    parser.add_argument("--no-long", action="store_true", help="skip the 49 MB text and the batch")
    parser.add_argument("--uploads", type=int, default=20)
    parser.add_argument(
        "--fresh-server", action="store_true", help="a new server for each upload row"
    )
    parser.add_argument("--timeout", type=float, default=300, help="seconds before a run is killed")
    args = parser.parse_args()
    keys = set(filter(None, args.rows.split(",")))
    rows = [row for row in ROWS if not keys or row.key in keys]
    with tempfile.TemporaryDirectory(prefix="mitremap-hostile-") as name:
        folder = Path(name)
        files = {row.key: row.make(folder / row.name, row.size) for row in rows}
        print("| input | file size |\n|---|---|")
        for row in rows:
            print(f"| {row.label} | {files[row.key].stat().st_size:,} bytes |")
        if not args.no_cli:
            cli_rows(rows, files, args.timeout)
        if not args.no_upload:
            print("\n## Through the upload endpoint: `POST /api/analyze/file`\n")
            print("| input | answer | time | server peak memory | server memory after |")
            print("|---|---|---|---|---|")
            server = Server(name)
            try:
                for row in rows:
                    if args.fresh_server:  # work left running by one row cannot slow the next
                        server.stop()
                        server = Server(name)
                    upload_row(server, row, files[row.key])
                if "pdf" in files and args.uploads:
                    if args.fresh_server:
                        server.stop()
                        server = Server(name)
                    pdf_storm(server, files["pdf"], args.uploads)
            finally:
                server.stop()
        if not args.no_long:
            long_rows(folder, args.timeout)


if __name__ == "__main__":
    main()
