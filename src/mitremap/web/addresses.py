"""Which network addresses a shared server may fetch a report from: public ones only, so the
server is never a way into the network behind it (SSRF).

An IPv6 address that carries an IPv4 address reaches that IPv4 address through a gateway
(NAT64, 6to4, Teredo) or is read as it by the host's own stack (IPv4-mapped, -compatible,
-translated), so it is judged by the IPv4 address it carries: `64:ff9b::a00:1` on a NAT64
network is 10.0.0.1. Python's `is_global` does not know this (it calls `64:ff9b::7f00:1`,
`::7f00:1` and `2002:7f00:1::` global).
"""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv6Address, IPv6Network

from mitremap.web.workspace.errors import BadRequestError

NAT64 = IPv6Network("64:ff9b::/96")  # RFC 6052 well-known prefix: the last 32 bits
LOCAL_NAT64 = IPv6Network("64:ff9b:1::/48")  # RFC 8215, network-specific prefix length
# RFC 6052 §2.2: where the IPv4 address sits after a prefix of each length (bits 64–71 are
# the "u" octet, always skipped); a local-use prefix may be any of these lengths under /48
_RFC6052_BITS = {48: (48, 64, 72, 88), 56: (56, 64, 72, 96), 64: (72, 104), 96: (96, 128)}


def embedded_ipv4(address: IPv6Address) -> list[IPv4Address]:
    """Every IPv4 address `address` carries: IPv4-mapped (`::ffff:a.b.c.d`), -translated
    (`::ffff:0:a.b.c.d`), -compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`, and each
    possible prefix length of `64:ff9b:1::/48`), 6to4 (`2002::/16`) and Teredo (`2001::/32`,
    its server and its client)."""
    value = int(address)
    found: list[IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if value >> 32 == 0xFFFF_0000:  # ::ffff:0:a.b.c.d
        found.append(IPv4Address(value & 0xFFFF_FFFF))
    if value >> 32 == 0 and value > 1:  # ::a.b.c.d (:: and ::1 are themselves)
        found.append(IPv4Address(value))
    if address in NAT64:
        found.append(IPv4Address(value & 0xFFFF_FFFF))
    if address in LOCAL_NAT64:
        found += [_rfc6052(value, bits) for bits in _RFC6052_BITS.values()]
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found += list(address.teredo)
    return found


def _rfc6052(value: int, bits: tuple[int, ...]) -> IPv4Address:
    """The 32 bits found at the (start, end) bit ranges `bits` of a 128-bit address."""
    out = 0
    for start, end in zip(bits[::2], bits[1::2], strict=True):
        width = end - start
        out = (out << width) | ((value >> (128 - end)) & ((1 << width) - 1))
    return IPv4Address(out)


def is_public(address: IPv4Address | IPv6Address) -> bool:
    """Whether `address` (and every IPv4 address it carries) is a public unicast address."""
    if isinstance(address, IPv6Address):
        embedded = embedded_ipv4(address)
        if embedded:
            return all(is_public(v4) for v4 in embedded)
    return address.is_global and not address.is_multicast


def check_public(host: str, address: IPv4Address | IPv6Address | str) -> None:
    """400 unless `address` is public (see `is_public`)."""
    if not is_public(ipaddress.ip_address(address)):
        raise BadRequestError(f"{host} is not a public address")
