"""The shared server's URL imports reach public addresses only (SSRF): an IPv6 address that
carries an IPv4 address (NAT64, 6to4, Teredo, IPv4-mapped, -compatible, -translated) is
judged by the IPv4 address it carries. The check is `routers.reports._public_address`,
which `documents.readers.read_url` calls on every connection."""

from __future__ import annotations

import ipaddress
import socket

import pytest

pytest.importorskip("fastapi")

from mitremap.web.addresses import embedded_ipv4
from mitremap.web.routers.reports import _public_address
from mitremap.web.workspace.errors import BadRequestError

REFUSED = {
    "NAT64 well-known prefix, loopback": "64:ff9b::7f00:1",
    "NAT64 well-known prefix, 10.0.0.1": "64:ff9b::a00:1",
    "NAT64 well-known prefix, 169.254.169.254": "64:ff9b::a9fe:a9fe",
    "NAT64 local-use /48, 10.0.0.1 at /96": "64:ff9b:1::a00:1",
    "NAT64 local-use /48, 10.0.0.1 at /48": "64:ff9b:1:a00:0:100::",
    "6to4, loopback": "2002:7f00:1::",
    "6to4, 192.168.1.1": "2002:c0a8:101::1",
    "IPv4-compatible, loopback": "::7f00:1",
    "IPv4-compatible, 10.0.0.1": "::a00:1",
    "IPv4-mapped, loopback": "::ffff:7f00:1",
    "IPv4-mapped, 172.16.0.1": "::ffff:ac10:1",
    "IPv4-translated, loopback": "::ffff:0:7f00:1",
    "IPv4-translated, 10.0.0.1": "::ffff:0:a00:1",
    "Teredo, client 10.0.0.1": "2001:0:4136:e378:8000:63bf:f5ff:fffe",
    "IPv6 loopback": "::1",
    "IPv6 unspecified": "::",
    "IPv6 unique local": "fd00::1",
    "IPv4 private": "10.0.0.1",
    "IPv4 shared address space": "100.64.0.1",
}
ALLOWED = {
    "NAT64 well-known prefix, 8.8.8.8": "64:ff9b::808:808",
    "6to4, 8.8.8.8": "2002:808:808::1",
    "IPv4-mapped, 8.8.8.8": "::ffff:808:808",
    "IPv4-translated, 8.8.8.8": "::ffff:0:808:808",
    "a global IPv6 address": "2606:4700:4700::1111",
    "a global IPv4 address": "8.8.8.8",
}


@pytest.mark.parametrize("address", REFUSED.values(), ids=REFUSED.keys())
def test_addresses_into_the_network_behind_the_server_are_refused(address):
    with pytest.raises(BadRequestError, match="not a public address"):
        _public_address("reports.example", ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ALLOWED.values(), ids=ALLOWED.keys())
def test_public_addresses_are_allowed(address):
    _public_address("reports.example", ipaddress.ip_address(address))


@pytest.mark.parametrize(
    ("address", "carried"),
    [
        ("64:ff9b::a00:1", "10.0.0.1"),
        ("2002:7f00:1::", "127.0.0.1"),
        ("::7f00:1", "127.0.0.1"),
        ("::ffff:0:7f00:1", "127.0.0.1"),
        ("::ffff:7f00:1", "127.0.0.1"),
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "10.0.0.1"),  # Teredo's client, XOR-ed
        ("64:ff9b:1:a00:0:100::", "10.0.0.1"),  # RFC 6052 /48: bits 64–71 skipped
    ],
)
def test_the_ipv4_address_each_form_carries(address, carried):
    found = {str(a) for a in embedded_ipv4(ipaddress.IPv6Address(address))}
    assert carried in found


def test_read_url_checks_the_nat64_address_it_would_connect_to(monkeypatch):
    """A name that resolves to a NAT64 form of 10.0.0.1 is refused before any connection."""
    from mitremap.documents import read_url

    connected: list[object] = []

    def resolve(host, port, *args, **kwargs):
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("64:ff9b::a00:1", port, 0, 0))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: connected.append(a))
    with pytest.raises(BadRequestError, match="not a public address"):
        read_url("http://nat64.example/report.html", check_address=_public_address)
    assert connected == []
