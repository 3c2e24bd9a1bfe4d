"""Shared by the IoC benchmarks: running the competitors in `.venv-bench`, their type names, and
one normalisation of values for every tool.

The competitors (iocsearcher, ioc-finder, iocextract, msticpy) are never project dependencies:
each runs in a subprocess of `.venv-bench/bin/python` (see benchmarks/requirements-iocs.txt).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import random
import subprocess
import tempfile
from collections import defaultdict
from pathlib import Path

from mitremap.iocs import refang

REPO = Path(__file__).resolve().parents[1]
BENCH_PYTHON = REPO / ".venv-bench" / "bin" / "python"
COMPETITORS = ("iocsearcher", "ioc-finder", "iocextract", "msticpy")
INSTALL_HINT = (
    "python3 -m venv .venv-bench && .venv-bench/bin/pip install -r benchmarks/requirements-iocs.txt"
)

# Each competitor's type names mapped to MitreMap's (types not listed are left out).
TYPE_MAPS: dict[str, dict[str, str]] = {
    "iocsearcher": {
        "url": "url", "fqdn": "domain", "ip4": "ipv4", "ip6": "ipv6", "email": "email",
        "md5": "md5", "sha1": "sha1", "sha256": "sha256", "sha512": "sha512", "cve": "cve",
        "mac": "mac", "onionAddress": "onion", "registry": "registry_key", "arn": "arn",
        "bitcoin": "bitcoin", "bitcoincash": "bitcoincash", "litecoin": "litecoin",
        "dogecoin": "dogecoin", "dashcoin": "dashcoin", "zcash": "zcash", "ethereum": "ethereum",
        "monero": "monero", "ripple": "ripple", "tron": "tron", "tezos": "tezos",
        "cardano": "cardano", "solana": "solana",
    },
    "ioc-finder": {
        "urls": "url", "domains": "domain", "ipv4s": "ipv4", "ipv6s": "ipv6",
        "email_addresses": "email", "md5s": "md5", "sha1s": "sha1", "sha256s": "sha256",
        "sha512s": "sha512", "ssdeeps": "ssdeep", "cves": "cve", "imphashes": "imphash",
        "attack_techniques": "attack_technique", "attack_tactics": "attack_technique",
        "mac_addresses": "mac", "asns": "asn", "bitcoin_addresses": "bitcoin",
        "monero_addresses": "monero", "registry_key_paths": "registry_key",
        "file_paths": "path", "user_agents": "user_agent",
    },
    "iocextract": {
        "urls": "url", "ipv4s": "ipv4", "ipv6s": "ipv6", "emails": "email", "md5": "md5",
        "sha1": "sha1", "sha256": "sha256", "sha512": "sha512",
    },
    "msticpy": {
        "ipv4": "ipv4", "ipv6": "ipv6", "dns": "domain", "url": "url", "md5_hash": "md5",
        "sha1_hash": "sha1", "sha256_hash": "sha256", "windows_path": "windows_path",
        "linux_path": "unix_path",
    },
}  # fmt: skip

# Runs in .venv-bench: argv = tool, input file, repeats. A `.txt` input is one text: prints
# {"seconds", "setup", "iocs"} (the best of `repeats` runs). A `.jsonl` input holds one JSON
# string per line: prints {"seconds", "seconds_per_text", "setup", "iocs_per_text": [...]} (one
# run of each text).
CHILD = r"""
import json, sys, time
tool, path, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(path, encoding="utf-8") as f:
    if path.endswith(".jsonl"):
        texts = [json.loads(line) for line in f if line.strip()]
    else:
        texts = None
        text = f.read()
t0 = time.process_time()
if tool == "iocsearcher":
    from iocsearcher.searcher import Searcher
    searcher = Searcher()
    def run(text):
        out = {}
        for ioc in searcher.search_data(text):
            out.setdefault(ioc.name, []).append(str(ioc.value))
        return out
elif tool == "ioc-finder":
    from ioc_finder import find_iocs
    from ioc_finder.ioc_finder import SUPPORTED_IOC_TYPES
    def run(text):
        found = find_iocs(text, included_ioc_types=SUPPORTED_IOC_TYPES)
        out = {}
        for key, values in found.items():
            if isinstance(values, dict):
                values = [v for group in values.values() for v in group]
            out[key] = [str(v) for v in values]
        return out
elif tool == "iocextract":
    import iocextract as ie
    def run(text):
        return {
            "urls": list(ie.extract_urls(text, refang=True)),
            "ipv4s": list(ie.extract_ipv4s(text, refang=True)),
            "ipv6s": list(ie.extract_ipv6s(text)),
            "emails": list(ie.extract_emails(text, refang=True)),
            "md5": list(ie.extract_md5_hashes(text)),
            "sha1": list(ie.extract_sha1_hashes(text)),
            "sha256": list(ie.extract_sha256_hashes(text)),
            "sha512": list(ie.extract_sha512_hashes(text)),
        }
elif tool == "msticpy":
    import logging
    logging.disable(logging.CRITICAL)
    from msticpy.transform.iocextract import IoCExtract
    extractor = IoCExtract()
    def run(text):
        return {k: sorted(v) for k, v in extractor.extract(src=text).items()}
setup = time.process_time() - t0
if texts is not None:
    out, spent = [], []
    for t in texts:
        t0 = time.process_time()
        out.append(run(t))
        spent.append(time.process_time() - t0)
    print(json.dumps({"seconds": sum(spent), "seconds_per_text": spent, "setup": setup,
                      "iocs_per_text": out}))
    sys.exit(0)
best, out = None, None
for _ in range(repeats):
    t0 = time.process_time()
    out = run(text)
    spent = time.process_time() - t0
    best = spent if best is None else min(best, spent)
print(json.dumps({"seconds": best, "setup": setup, "iocs": out}))
"""


def run_competitor(tool: str, text: str | list[str], repeats: int, timeout: float) -> dict | str:
    """The child's JSON, or a one-line reason it gave none. A list of texts is run text by
    text (one process), and the answer holds `iocs_per_text`."""
    suffix = ".jsonl" if isinstance(text, list) else ".txt"
    with tempfile.NamedTemporaryFile("w", suffix=suffix, delete=False, encoding="utf-8") as f:
        if isinstance(text, list):
            f.writelines(json.dumps(t) + "\n" for t in text)
        else:
            f.write(text)
        path = f.name
    env = dict(os.environ)
    # msticpy downloads the Public Suffix List on first use: make that fail at once.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env[name] = "http://127.0.0.1:9"
    try:
        done = subprocess.run(
            [str(BENCH_PYTHON), "-c", CHILD, tool, path, str(repeats)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout:.0f} s"
    finally:
        os.unlink(path)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"failed: {tail[:120]}"
    return json.loads(lines[-1])


_HIVES = (
    ("hklm", "hkey_local_machine"),
    ("hkcu", "hkey_current_user"),
    ("hkcr", "hkey_classes_root"),
    ("hku", "hkey_users"),
    ("hkcc", "hkey_current_config"),
)


def normalise(kind: str, value: str) -> str:
    """Compare values the same way for every tool: refanged, lower-case, no trailing slash."""
    value = refang(value.strip()).lower()
    if kind == "url":  # tools differ on adding a scheme and a final slash
        value = value.split("://", 1)[-1].rstrip("/")
    if kind == "onion" and not value.endswith(".onion"):
        value += ".onion"
    if kind == "asn":
        value = "as" + value.lstrip("asn :")
    if kind == "registry_key":
        value = value.replace(":\\", "\\", 1) if value.startswith(("hklm:", "hkcu:")) else value
        for short, full in _HIVES:
            if value.startswith(short + "\\"):
                value = full + value[len(short) :]
    return value


def normalise_strict(kind: str, value: str) -> str:
    """`normalise`, plus what the accuracy benchmark also forgives: an IPv4 written with its
    port, IPv6 in any spelling (compressed, in brackets), MACs with dashes, a URL's default
    trailing punctuation."""
    value = normalise(kind, value)
    if kind == "ipv4":
        value = value.split(":", 1)[0]
    elif kind == "ipv6":
        bare = value.strip("[]").split("]", 1)[0]
        with contextlib.suppress(ValueError):
            value = ipaddress.IPv6Address(bare).compressed
    elif kind == "mac":
        value = value.replace("-", ":")
        if value.count(".") == 2:
            digits = value.replace(".", "")
            value = ":".join(digits[i : i + 2] for i in range(0, 12, 2))
    elif kind == "bitcoincash" and not value.startswith("bitcoincash:"):
        value = "bitcoincash:" + value
    return value


def competitor_sets(tool: str, found: dict[str, list[str]], norm=normalise) -> dict[str, set[str]]:
    """A competitor's output as MitreMap's types, each with its set of normalised values."""
    sets: dict[str, set[str]] = defaultdict(set)
    for key, values in found.items():
        kind = TYPE_MAPS[tool].get(key)
        if kind is None:
            continue
        for value in values:
            real = kind
            if kind == "path":
                real = "windows_path" if "\\" in value else "unix_path"
            sets[real].add(norm(real, value))
    return sets


def comparable(tool: str) -> set[str]:
    """The MitreMap types that the tool also extracts (only those are compared)."""
    kinds = set(TYPE_MAPS[tool].values())
    if "path" in kinds:
        kinds = (kinds - {"path"}) | {"windows_path", "unix_path"}
    return kinds


# --- IoC-dense text: the indicator appendix of a report -----------------------------------------

_WORDS = (
    "update", "cdn", "secure", "login", "portal", "mail", "cloud", "sync", "static", "api", "files",
    "share", "data", "office", "auth", "service", "node", "track", "metric", "relay", "proxy",
    "gate", "panel", "admin", "online", "support", "docs", "backup", "vault", "media", "assets",
    "store", "news", "web", "app", "edge", "host", "ms", "win", "micro", "soft", "nexus", "apex",
    "orbit", "pulse",
)  # fmt: skip
_TLDS = (
    "com", "net", "org", "info", "biz", "xyz", "top", "ru", "cn", "io", "live", "online", "site",
    "club", "me", "cc", "su", "pw",
)  # fmt: skip
_EXTENSIONS = (
    "exe", "dll", "ps1", "vbs", "bat", "js", "hta", "lnk", "msi", "zip", "iso", "docm", "xlsm",
    "sh", "elf", "so", "bin",
)  # fmt: skip
_FOLDERS = (
    "C:\\Users\\Public", "C:\\ProgramData", "C:\\Windows\\Temp", "%APPDATA%\\Microsoft",
    "%TEMP%", "C:\\Users\\admin\\AppData\\Local\\Temp", "C:\\Windows\\System32\\Tasks",
)  # fmt: skip
_UNIX_FOLDERS = ("/tmp", "/var/tmp", "/dev/shm", "/etc/cron.d", "/usr/local/bin", "/root/.ssh")
_NOTES = (
    "loader", "second stage", "C2 beacon", "dropper", "persistence script", "credential stealer",
    "webshell", "exfiltration tool", "downloader", "ransomware payload", "config file", "decoy",
)  # fmt: skip


def dense_text(size: int, seed: int = 13) -> str:
    """About `size` characters of an indicator appendix, as threat reports end: Markdown tables
    of hashes with file names, lists of defanged URLs, domains and addresses, file paths and
    registry keys, a few short headings. Deterministic for a seed; values are random, so they
    do not repeat (caches see what a real appendix gives them)."""
    rng = random.Random(seed)
    pieces: list[str] = []
    total = 0

    def name() -> str:
        labels = [rng.choice(_WORDS) + rng.choice(("", "-", "")) + rng.choice(_WORDS)]
        if rng.random() < 0.4:
            labels.insert(0, rng.choice(_WORDS))
        return ".".join(labels) + "." + rng.choice(_TLDS)

    def defang(host: str) -> str:
        return host.replace(".", "[.]") if rng.random() < 0.7 else host

    def address() -> str:
        return ".".join(str(rng.randint(1, 223 if i == 0 else 254)) for i in range(4))

    def file() -> str:
        return (
            rng.choice(_WORDS)
            + rng.choice(("_", "", "-"))
            + f"{rng.randint(1, 99)}."
            + (rng.choice(_EXTENSIONS))
        )

    def digest(length: int) -> str:
        return f"{rng.getrandbits(length * 4):0{length}x}"

    def section() -> str:
        kind = rng.randrange(6)
        if kind == 0:
            rows = ["| SHA-256 | File name | Description |", "|---|---|---|"]
            rows += [f"| {digest(64)} | {file()} | {rng.choice(_NOTES)} |" for _ in range(12)]
            return "### File hashes\n\n" + "\n".join(rows)
        if kind == 1:
            rows = ["| MD5 | SHA-1 | Path |", "|---|---|---|"]
            rows += [
                f"| {digest(32)} | {digest(40)} | {rng.choice(_FOLDERS)}\\{file()} |"
                for _ in range(10)
            ]
            return "### Dropped files\n\n" + "\n".join(rows)
        if kind == 2:
            scheme = ("hxxp", "hxxps", "http", "https")
            lines = [
                f"- {rng.choice(scheme)}[:]//{defang(name())}/{rng.choice(_WORDS)}/"
                f"{file() if rng.random() < 0.5 else rng.choice(_WORDS) + '.php?id=' + digest(8)}"
                for _ in range(14)
            ]
            return "### URLs\n\n" + "\n".join(lines)
        if kind == 3:
            lines = [
                f"{defang(name())}\t{address().rsplit('.', 1)[0]}[.]{rng.randint(1, 254)}"
                f"\t{rng.choice(('AS' + str(rng.randint(1000, 65000)), 'port ' + str(rng.choice((443, 8080, 53)))))}"
                for _ in range(16)
            ]
            return "### Network indicators\n\nDomain\tIP\tNote\n" + "\n".join(lines)
        if kind == 4:
            lines = (
                [f"- {rng.choice(_UNIX_FOLDERS)}/.{rng.choice(_WORDS)}/{file()}" for _ in range(6)]
                + [
                    f"- HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\{rng.choice(_WORDS)}"
                    for _ in range(3)
                ]
                + [
                    f"- {rng.choice(_WORDS)}.{rng.choice(_WORDS)}[@]{defang(name())}"
                    for _ in range(3)
                ]
            )
            return "### Host indicators\n\n" + "\n".join(lines)
        return (
            f"The {rng.choice(_NOTES)} ({file()}, SHA-1 {digest(40)}) contacted "
            f"{defang(name())} over TLS and exploited CVE-20{rng.randint(10, 24)}-"
            f"{rng.randint(1000, 49999)} (T{rng.randint(1000, 1599)}.{rng.randint(1, 9):03d})."
        )

    while total < size:
        piece = section()
        pieces.append(piece)
        total += len(piece) + 2
    return "\n\n".join(pieces)[:size]
