"""Overlaps between passes: one stretch of text is one indicator.

Passes look for their own anchors independently, so a URL's host is also found as a domain and
a path's file as a file name. The resolver keeps, among candidates that overlap, the one of the
highest-priority type, then the longest, then the earliest; CVE and ATT&CK ids and file hashes
inside a URL are kept too (a link to an advisory names the CVE).
"""

from __future__ import annotations

from itertools import accumulate, compress, count
from operator import itemgetter, lt

from mitremap.iocs.scanner import Candidate

# Lower wins an overlap: whole URLs and addresses first, then paths, then dotted and colon
# names, then the short ids.
PRIORITY = {
    "url": 0, "email": 1, "registry_key": 2, "arn": 2, "user_agent": 2, "yara_rule": 2,
    "windows_path": 3, "unix_path": 3, "ssdeep": 4,
    "domain": 6, "ipv4": 6, "file_name": 6,
    "ipv6": 7, "mac": 7,
    "cve": 8, "attack_technique": 8, "asn": 8,
}  # fmt: skip
DEFAULT_PRIORITY = 5  # hashes, cryptocurrency addresses, onion names
# Types also reported when they sit inside a URL.
NESTABLE = frozenset({"cve", "attack_technique", "md5", "sha1", "sha256", "sha512"})


def priority(kind: str) -> int:
    """The rank of a type in an overlap (lower wins)."""
    return PRIORITY.get(kind, DEFAULT_PRIORITY)


def resolve(candidates: list[Candidate]) -> list[Candidate]:
    """The candidates that stay, in text order. Overlapping ones are resolved cluster by
    cluster (a cluster is a run of candidates that overlap one another in a chain); the
    clusters are found with C-level iterators, as most candidates overlap nothing."""
    if not candidates:
        return []
    candidates.sort()
    starts = list(map(itemgetter(0), candidates))
    reach = accumulate(map(itemgetter(1), candidates), max)  # the furthest end so far
    # Candidate k continues a cluster when it starts before what came before it ends.
    continuing = list(compress(count(1), map(lt, starts[1:], reach)))
    result: list[Candidate] = []
    emitted = 0  # candidates[:emitted] are dealt with
    index = 0
    while index < len(continuing):
        first = last = continuing[index]
        while index + 1 < len(continuing) and continuing[index + 1] == last + 1:
            index += 1
            last = continuing[index]
        result.extend(candidates[emitted : first - 1])
        result.extend(resolve_cluster(candidates[first - 1 : last + 1]))
        emitted = last + 1
        index += 1
    result.extend(candidates[emitted:])
    return result


def _rank(candidate: Candidate) -> tuple[int, int, int]:
    start, end, kind = candidate[:3]
    return PRIORITY.get(kind, DEFAULT_PRIORITY), start - end, start


def resolve_cluster(cluster: list[Candidate]) -> list[Candidate]:
    """Overlapping candidates: keep the best, then whatever does not overlap what is kept."""
    kept: list[Candidate] = []
    nested: list[Candidate] = []
    for candidate in sorted(cluster, key=_rank):
        start, end, kind = candidate[:3]
        clashes = [other for other in kept if other[0] < end and start < other[1]]
        if not clashes:
            kept.append(candidate)
        elif kind in NESTABLE and all(other[2] == "url" for other in clashes):
            nested.append(candidate)
    return sorted(kept + nested)
