"""The web app under load, on loopback: the real server (`mitremap serve`) and the real model.

    python benchmarks/bench_server.py            # 300 requests at concurrency 1, 4 and 16
    python benchmarks/bench_server.py --requests 60

Prints, per concurrency: errors, requests per second, median and p95 latency of
`POST /api/analyze` with a 20 KB report; then how long `/api/health` takes to answer while a
5 MB upload is being analysed (bar: under 1 s). Traffic goes to 127.0.0.1 only, bounded in count.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("MITREMAP_DATA", str(REPO.parent / "shared" / "data"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, float]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except OSError:
        status = 0
    return status, time.perf_counter() - started


def report_text() -> str:
    article = Path(os.environ["MITREMAP_DATA"]) / "ioc" / "long-article-1.txt"
    text = article.read_text(encoding="utf-8") if article.is_file() else "It ran schtasks. " * 1200
    return (text * 2)[:20_000]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    port = free_port()
    exe = Path(sys.executable).with_name("mitremap")
    server = subprocess.Popen(
        [str(exe), "serve", "--port", str(port), "--max-mb", "10"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(base + "/api/health", timeout=2).read()
                break
            except OSError:
                time.sleep(0.3)
        body = json.dumps({"text": report_text(), "iocs": True}).encode()
        print(f"POST /api/analyze, 20 KB report, {args.requests} requests each:")
        for concurrency in (1, 4, 16):
            started = time.perf_counter()
            with ThreadPoolExecutor(concurrency) as pool:
                results = list(
                    pool.map(lambda _: post(base + "/api/analyze", body), range(args.requests))
                )
            wall = time.perf_counter() - started
            latencies = sorted(t for _, t in results)
            errors = sum(1 for status, _ in results if status != 200)
            p95 = latencies[int(0.95 * (len(latencies) - 1))]
            print(
                f"  concurrency {concurrency:2d}: {errors} errors, {len(results) / wall:5.1f} req/s, "
                f"median {statistics.median(latencies):.2f} s, p95 {p95:.2f} s"
            )
        big = json.dumps({"text": ("The actor ran schtasks. " * 220_000)[:5_000_000]}).encode()
        upload = threading.Thread(target=post, args=(base + "/api/analyze", big))
        upload.start()
        time.sleep(0.5)
        started = time.perf_counter()
        urllib.request.urlopen(base + "/api/health", timeout=30).read()
        health = time.perf_counter() - started
        upload.join()
        print(f"/api/health during a 5 MB analysis: {health:.3f} s (bar 1)")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
