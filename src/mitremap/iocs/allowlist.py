"""Well-known benign values that reports cite as references, not as indicators.

Only used when asked for (`allowlist=True`): extraction itself reports what the text says.
"""

from __future__ import annotations

DEFAULT_ALLOWLIST: frozenset[str] = frozenset(
    [
        "microsoft.com",
        "windows.com",
        "windowsupdate.com",
        "live.com",
        "office.com",
        "msn.com",
        "bing.com",
        "azure.com",
        "google.com",
        "gstatic.com",
        "googleapis.com",
        "youtube.com",
        "gmail.com",
        "apple.com",
        "icloud.com",
        "github.com",
        "githubusercontent.com",
        "gitlab.com",
        "mitre.org",
        "attack.mitre.org",
        "cve.org",
        "nist.gov",
        "twitter.com",
        "x.com",
        "facebook.com",
        "linkedin.com",
        "instagram.com",
        "wikipedia.org",
        "w3.org",
        "schema.org",
        "mozilla.org",
        "python.org",
        "virustotal.com",
        "cloudflare.com",
        "akamai.com",
        "amazon.com",
        "adobe.com",
        "symantec.com",
        "mcafee.com",
        "kaspersky.com",
        "eset.com",
        "sophos.com",
        "trendmicro.com",
        "crowdstrike.com",
        "fireeye.com",
        "mandiant.com",
        "paloaltonetworks.com",
        "unit42.paloaltonetworks.com",
        "talosintelligence.com",
        "securelist.com",
        "welivesecurity.com",
        "bleepingcomputer.com",
        "8.8.8.8",
        "8.8.4.4",
        "1.1.1.1",
        "1.0.0.1",
        "9.9.9.9",
        "208.67.222.222",
        "208.67.220.220",
    ]
)


def _host_of(kind: str, value: str) -> str | None:
    if kind in ("domain", "ipv4", "ipv6"):
        return value
    if kind == "email":
        return value.rsplit("@", 1)[-1]
    if kind == "url":
        rest = value.split("://", 1)[-1]
        host = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
        host = host.rsplit("@", 1)[-1]
        if host.startswith("["):
            return host[1:].split("]", 1)[0]
        return host.split(":", 1)[0]
    return None


def is_allowlisted(kind: str, value: str, allowlist: frozenset[str]) -> bool:
    """True when the value (or its host, or a parent domain of it) is on the list."""
    if value in allowlist:
        return True
    host = _host_of(kind, value)
    if host is None:
        return False
    parts = host.split(".")
    return any(".".join(parts[i:]) in allowlist for i in range(len(parts)))
