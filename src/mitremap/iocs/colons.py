"""Names separated by colons (IPv6 addresses, MAC addresses, ssdeep hashes) and MAC addresses
written with dashes."""

from __future__ import annotations

import re
from collections.abc import Iterator

from mitremap.iocs import patterns, validators
from mitremap.iocs.refanging import Refanged
from mitremap.iocs.scanner import HEX, Candidate, walk_left

_CIDR6_SUFFIX = re.compile(r"/\d{1,3}(?![\w/]|\.[\w/])")


def find_colon_names(text: str, refanged: Refanged) -> Iterator[Candidate]:
    """From each colon followed by a word character: an ssdeep hash, a MAC or an IPv6 address
    that starts with the hex digits before it."""
    position = 0
    while True:
        anchor = patterns.COLON_ANCHOR.search(text, position)
        if anchor is None:
            return
        colon = anchor.start()
        start = walk_left(text, colon, HEX, 10)
        position = colon + 1
        if start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_.:-"):
            position = patterns.run_end(patterns.HEX_COLON_RUN, text, colon)
            continue  # inside a longer word: skip the rest of it
        found = classify_colon_name(text, start, colon)
        if found is not None:
            position = max(position, found[1])
            yield found
        else:
            position = max(position, patterns.run_end(patterns.HEX_COLON_RUN, text, colon))


def find_dashed_macs(text: str, refanged: Refanged) -> Iterator[Candidate]:
    """`00-1A-2B-3C-4D-5E`."""
    for anchor in patterns.DASH_MAC_ANCHOR.finditer(text):
        start = anchor.start() - 2
        if start < 0 or (start > 0 and (text[start - 1].isalnum() or text[start - 1] in "-:")):
            continue
        match = patterns.MAC.match(text, start)
        if match:
            yield (start, match.end(), "mac", match.group().lower().replace("-", ":"), False)


def classify_colon_name(text: str, start: int, colon: int) -> Candidate | None:
    """The ssdeep hash, MAC or IPv6 address that starts at `start` (first colon at `colon`)."""
    if start < colon and text[start:colon].isdigit():
        found = _ssdeep(text, start)
        if found is not None:
            return found
    match = patterns.MAC.match(text, start)
    if match:
        return (start, match.end(), "mac", match.group().lower().replace("-", ":"), False)
    return _ipv6(text, start)


def _ssdeep(text: str, start: int) -> Candidate | None:
    """`96:s4Ud1Lj…:xUd1L4t…`: a block size of 3 × 2^k, two Base64 digests."""
    match = patterns.SSDEEP.match(text, start)
    if not match or not validators.ssdeep_block_size_ok(int(match.group(1))):
        return None
    end = match.end()
    if end - start < 20 or (end < len(text) and (text[end].isalnum() or text[end] in "/+")):
        return None
    return (start, end, "ssdeep", match.group(), False)


def _ipv6(text: str, start: int) -> Candidate | None:
    match = patterns.IPV6.match(text, start)
    if not match:
        return None
    end = match.end()
    if end < len(text) and (text[end].isalnum() or text[end] in "_"):
        return None
    candidate = text[start:end]
    if candidate.endswith(":") and not candidate.endswith("::"):
        candidate, end = candidate[:-1], end - 1
    if text.startswith("/", end) and _CIDR6_SUFFIX.match(text, end):
        return None  # "2001:db8::/32": a network, not an address
    value = validators.ipv6_value(candidate)
    if value is None:
        return None
    return (start, end, "ipv6", value, validators.ip_is_private(value))
