"""STIX 2.1: a pattern for each indicator that STIX can express, and a bundle of `indicator`s.

Ids are derived from the pattern (UUIDv5), so exporting the same report twice gives the same
ids and consumers can de-duplicate. `stix2` is an optional extra (`mitremap[stix]`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from mitremap.errors import MissingExtraError
from mitremap.iocs.model import Indicator

# A fixed namespace for MitreMap's deterministic STIX ids.
_NAMESPACE = uuid.UUID("6b1f3c2e-7d4a-5e8f-9a0b-1c2d3e4f5a6b")

_SIMPLE = {
    "ipv4": "ipv4-addr:value",
    "ipv6": "ipv6-addr:value",
    "domain": "domain-name:value",
    "onion": "domain-name:value",
    "url": "url:value",
    "email": "email-addr:value",
    "mac": "mac-addr:value",
    "md5": "file:hashes.MD5",
    "sha1": "file:hashes.'SHA-1'",
    "sha256": "file:hashes.'SHA-256'",
    "sha512": "file:hashes.'SHA-512'",
    "ssdeep": "file:hashes.SSDEEP",
    "file_name": "file:name",
    "registry_key": "windows-registry-key:key",
    "user_agent": "network-traffic:extensions.'http-request-ext'.request_header.'User-Agent'",
}


def _quote(value: str) -> str:
    """A STIX pattern string literal: backslashes and quotes escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def stix_pattern(indicator: Indicator) -> str | None:
    """The STIX 2.1 pattern for an indicator, or None for types STIX has no object for
    (CVE and ATT&CK ids are SDOs, not observables; cryptocurrency wallets, JA3, imphash, ARNs
    and YARA rule names have no STIX Cyber-observable)."""
    kind, value = indicator.type, indicator.value
    if kind in _SIMPLE:
        if kind == "url" and "://" not in value:
            value = "http://" + value  # STIX url:value wants an absolute URL
        if kind == "onion" and not value.endswith(".onion"):
            value += ".onion"
        return f"[{_SIMPLE[kind]} = {_quote(value)}]"
    if kind == "asn":
        return f"[autonomous-system:number = {int(value[2:])}]"
    if kind in ("windows_path", "unix_path"):
        separator = "\\" if kind == "windows_path" else "/"
        folder, _, name = value.rstrip(separator).rpartition(separator)
        if "." in name and folder:
            return (
                f"[file:name = {_quote(name)} AND "
                f"file:parent_directory_ref.path = {_quote(folder)}]"
            )
        return f"[directory:path = {_quote(value)}]"
    return None


def _stix2() -> Any:
    try:
        import stix2
    except ImportError:  # pragma: no cover - depends on the environment
        raise MissingExtraError("stix2", "stix", "STIX export") from None
    return stix2


def stix_indicators(
    indicators: Iterable[Indicator],
    *,
    created: datetime | None = None,
    created_by_ref: str | None = None,
) -> list[Any]:
    """One STIX `indicator` per distinct pattern (types without a pattern are left out)."""
    stix2 = _stix2()
    when = created or datetime.now(UTC)
    seen: dict[str, Any] = {}
    for indicator in indicators:
        pattern = stix_pattern(indicator)
        if pattern is None or pattern in seen:
            continue
        seen[pattern] = stix2.v21.Indicator(
            id=f"indicator--{uuid.uuid5(_NAMESPACE, pattern)}",
            name=f"{indicator.type}: {indicator.value}",
            pattern=pattern,
            pattern_type="stix",
            valid_from=when,
            created=when,
            modified=when,
            indicator_types=["unknown"] if indicator.private else ["malicious-activity"],
            labels=[indicator.type] + (["private"] if indicator.private else []),
            created_by_ref=created_by_ref,
            allow_custom=False,
        )
    return list(seen.values())


def stix_bundle(
    indicators: Iterable[Indicator],
    *,
    created: datetime | None = None,
    extra_objects: Iterable[Any] = (),
) -> Any:
    """A STIX 2.1 bundle of `indicator` objects (plus any `extra_objects`, e.g. a report)."""
    stix2 = _stix2()
    objects = [*stix_indicators(indicators, created=created), *extra_objects]
    return stix2.v21.Bundle(objects=objects, allow_custom=True)
