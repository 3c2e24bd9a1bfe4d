"""Well-known benign values that reports cite as references, not as indicators.

Only used when asked for (`allowlist=True`): extraction itself reports what the text says.
The field's lists of such values are MISP's warning lists; with the optional extra
`mitremap[warninglists]` (`pymispwarninglists`, ~20 MB of lists) the lists chosen below are
used, each for the indicator types it is meant for, on top of the short built-in list.

A name under which anyone can get a name of their own (`evil.duckdns.org`, `x.github.io`, a
link on `pastebin.com`) is never dropped because of the name above it: the Public Suffix
List's private section and MISP's lists of dynamic DNS, link shorteners and trusted sites that
attackers live off say which those are.
"""

from __future__ import annotations

import ipaddress
import json
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.util import find_spec
from operator import itemgetter
from pathlib import Path

from mitremap.iocs import validators

# The built-in list, used with or without the MISP warning lists.
DEFAULT_ALLOWLIST: frozenset[str] = validators.words(
    """
    microsoft.com windows.com windowsupdate.com live.com office.com msn.com bing.com azure.com
    google.com gstatic.com googleapis.com youtube.com gmail.com apple.com icloud.com github.com
    githubusercontent.com gitlab.com mitre.org attack.mitre.org cve.org nist.gov twitter.com
    x.com facebook.com linkedin.com instagram.com wikipedia.org w3.org schema.org mozilla.org
    python.org virustotal.com cloudflare.com akamai.com amazon.com adobe.com symantec.com
    mcafee.com kaspersky.com eset.com sophos.com trendmicro.com crowdstrike.com fireeye.com
    mandiant.com paloaltonetworks.com unit42.paloaltonetworks.com talosintelligence.com
    securelist.com welivesecurity.com bleepingcomputer.com
    8.8.8.8 8.8.4.4 1.1.1.1 1.0.0.1 9.9.9.9 208.67.222.222 208.67.220.220
    """
)

# MISP warning lists of values that are benign whatever the report says about them: the most
# visited sites, security vendors' own pages, public DNS resolvers, "what is my IP" services,
# sinkholes, and hashes of empty, test and well-known benign files. Lists of places attackers
# also use (cloud and CDN ranges, VPNs) are left out: an indicator there is still one.
MISP_LISTS = (
    "security-provider-blogpost", "microsoft", "microsoft-office365",
    "microsoft-win10-connection-endpoints", "google", "captive-portals", "whats-my-ip",
    "public-dns-hostname", "public-dns-v4", "public-dns-v6", "sinkholes", "empty-hashes",
    "eicar.com", "common-ioc-false-positive", "ti-falsepositives", "nioc-filehash",
)  # fmt: skip
# MISP's rankings of the most visited sites: the site's own name is benign, not every name under
# it (a top site may be a dynamic DNS provider) nor every link on it (a repository, a channel).
MISP_RANKINGS = ("tranco10k", "moz-top500")
# MISP warning lists of names under which others host what they like.
MISP_SHARED_LISTS = ("dynamic-dns", "url-shortener", "lots-project")

# MitreMap's types and the MISP attribute types that stand for them.
_MISP_TYPES = {
    "domain": ("domain", "hostname"),
    "url": ("url",),
    "ipv4": ("ip-dst", "ip-src"),
    "ipv6": ("ip-dst", "ip-src"),
    "md5": ("md5",),
    "sha1": ("sha1",),
    "sha256": ("sha256",),
    "sha512": ("sha512",),
}
_HOST_TYPES = ("domain", "ipv4", "ipv6", "email", "url")
_ANY = "*"  # the key of values that stand for every type


@dataclass
class Allowlist:
    """Values to drop, per indicator type: exact values, host names (with the names under
    them), IP networks, and sites (domains dropped as named); and the shared names under which
    no name is dropped."""

    exact: dict[str, list[frozenset[str]]] = field(default_factory=dict)
    hosts: dict[str, list[frozenset[str]]] = field(default_factory=dict)
    networks: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # disjoint, sorted
    sites: set[str] = field(default_factory=set)  # domains dropped as named, or with "www."
    shared: set[str] = field(default_factory=set)

    def __contains__(self, indicator: tuple[str, str]) -> bool:
        """Whether `(type, value)` is allowlisted."""
        kind, value = indicator
        if _has(self.exact, kind, value):
            return True
        if kind == "domain" and (value in self.sites or value.removeprefix("www.") in self.sites):
            return True
        host = _host_of(kind, value)
        if host is not None and self.hosts and self._host_listed(kind, host):
            return True
        ranges = self.networks.get(kind)
        return ranges is not None and _in_ranges(value, ranges)

    def _host_listed(self, kind: str, host: str) -> bool:
        """The host, or a name above it, is listed; walking up stops at a shared name (a
        link on a shared host stops at the host itself)."""
        labels = host.split(".")
        for index in range(len(labels)):
            name = ".".join(labels[index:])
            if name in self.shared and (index > 0 or kind == "url"):
                return False
            if _has(self.hosts, kind, name):
                return True
        return False

    def add_values(self, kinds: Iterable[str], values: Iterable[str]) -> None:
        """Values dropped as they are, for these types (one set shared by all of them)."""
        _add(self.exact, kinds, frozenset(values))

    def add_hosts(self, kinds: Iterable[str], names: Iterable[str]) -> None:
        """Names dropped with the names under them, for these types."""
        _add(self.hosts, kinds, frozenset(names))

    def add_networks(self, kind: str, ranges: list[tuple[int, int]]) -> None:
        if ranges:
            self.networks[kind] = _merged([*self.networks.get(kind, []), *ranges])


def _add(
    table: dict[str, list[frozenset[str]]], kinds: Iterable[str], values: frozenset[str]
) -> None:
    if values:
        for kind in kinds:
            table.setdefault(kind, []).append(values)


def _has(table: dict[str, list[frozenset[str]]], kind: str, value: str) -> bool:
    return any(value in values for values in (*table.get(kind, ()), *table.get(_ANY, ())))


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


def _in_ranges(value: str, ranges: list[tuple[int, int]]) -> bool:
    try:
        number = int(ipaddress.ip_address(value))
    except ValueError:
        return False
    index = bisect_right(ranges, number, key=itemgetter(0)) - 1
    return index >= 0 and number <= ranges[index][1]


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted ranges, overlapping ones merged (so the last range starting before a number is
    the only one that can hold it)."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def user_allowlist(values: Iterable[str]) -> Allowlist:
    """Your own domains and addresses: a value is dropped when it, or its host, or a parent
    domain of its host, is on the list."""
    allowlist = Allowlist()
    lowered = {value.lower() for value in values}
    allowlist.add_values([_ANY], lowered)
    allowlist.add_hosts(_HOST_TYPES, lowered)
    return allowlist


@lru_cache(maxsize=1)
def default_allowlist() -> Allowlist:
    """The built-in list, plus the MISP warning lists in `MISP_LISTS` and `MISP_RANKINGS` when
    `pymispwarninglists` is installed (loaded once)."""
    allowlist = user_allowlist(DEFAULT_ALLOWLIST)
    allowlist.shared.update(validators.shared_suffixes())
    if find_spec("pymispwarninglists") is not None:
        for name in MISP_LISTS:
            _add_misp_list(allowlist, name)
        for name in MISP_RANKINGS:
            allowlist.sites.update(entry.lstrip(".") for entry in _misp_list(name)[1])
        for name in MISP_SHARED_LISTS:
            allowlist.shared.update(entry.lstrip(".") for entry in _misp_list(name)[1])
    return allowlist


def _misp_list(name: str) -> tuple[dict[str, object], list[str]]:
    """A MISP warning list shipped by `pymispwarninglists` and its entries (lower-case), or
    nothing if the list was renamed or dropped upstream. The files are read where the package
    keeps them, without importing it (its import pulls in `jsonschema`, a second)."""
    spec = find_spec("pymispwarninglists")
    if spec is None or spec.origin is None:
        return {}, []
    path = Path(spec.origin).parent / "data" / "misp-warninglists" / "lists" / name / "list.json"
    if not path.is_file():
        return {}, []
    with path.open(encoding="utf-8") as lines:
        warninglist = json.load(lines)
    return warninglist, [entry.strip().lower() for entry in warninglist["list"]]


def _add_misp_list(allowlist: Allowlist, name: str) -> None:
    """One MISP warning list, for the types its `matching_attributes` name."""
    warninglist, entries = _misp_list(name)
    attributes = set(warninglist.get("matching_attributes", ()))  # type: ignore[call-overload]
    kinds = [kind for kind, names in _MISP_TYPES.items() if attributes.intersection(names)]
    list_type = warninglist.get("type")
    if list_type == "cidr":
        allowlist.add_values(kinds, (entry for entry in entries if "/" not in entry))
        for version, kind in ((4, "ipv4"), (6, "ipv6")):
            if kind in kinds:
                allowlist.add_networks(kind, _ranges(entries, version))
    elif list_type in ("string", "hostname"):
        allowlist.add_values(kinds, (entry for entry in entries if entry[:1] != "."))
        host_kinds = [kind for kind in kinds if kind in _HOST_TYPES]
        allowlist.add_hosts(host_kinds, _names_with_subdomains(entries, list_type == "hostname"))


def _names_with_subdomains(entries: list[str], hostnames: bool) -> Iterator[str]:
    """In a list of host names every entry, in a list of strings an entry written
    ".google.com", stands for the name and the names under it; a bare public suffix ("co.uk")
    for nothing."""
    for entry in entries:
        if hostnames or entry[:1] == ".":
            name = entry.lstrip(".")
            if "." in name and not validators.is_public_suffix(name):
                yield name


def _ranges(entries: Iterable[str], version: int) -> list[tuple[int, int]]:
    """The networks (`a.b.c.d/n`) of one IP version among the entries, as integer ranges."""
    ranges = []
    for entry in entries:
        if "/" not in entry:
            continue
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            continue
        if network.version == version:
            ranges.append((int(network.network_address), int(network.broadcast_address)))
    return ranges
