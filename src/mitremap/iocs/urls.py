"""URLs (from their `://`) and e-mail addresses (from their `@`): the indicators with a host."""

from __future__ import annotations

import re
from collections.abc import Iterator

from mitremap.iocs import patterns, validators
from mitremap.iocs.refanging import Refanged
from mitremap.iocs.scanner import (
    ASCII_ALNUM,
    LOCAL_CHARS,
    Candidate,
    find_all,
    line_continues,
    trim_end,
    walk_left,
)

_SCHEME_CHARS = ASCII_ALNUM | frozenset("+.-")


def find_urls(text: str, refanged: Refanged) -> Iterator[Candidate]:
    """`scheme://host/path`: the scheme read back from the `://`, the rest with one pattern."""
    for separator in find_all(text, "://"):
        start = walk_left(text, separator, _SCHEME_CHARS, 12)
        while start < separator and text[start:separator].lower() not in patterns.URL_SCHEMES:
            start += 1  # text glued in front ("TA0009https://"): keep the known scheme
        if start == separator:
            continue
        found = _url_at(text, start, separator, refanged)
        if found is not None:
            yield found


def _url_at(text: str, start: int, separator: int, refanged: Refanged) -> Candidate | None:
    scheme = text[start:separator].lower()
    match = patterns.URL_REST.match(text, separator + 3)
    if not match:
        return None
    host, host_end, url_end = match.group("host"), match.end("host"), match.end()
    if host.endswith("-") and not match.group("userinfo"):
        host, host_end, url_end = _wrapped_url(text, match)
    host_value, private = url_host(host)
    if host_value is None:
        return None
    end = trim_end(text, start, cut_url(text, match.start("host"), url_end), refanged)
    if end <= match.start("host"):
        return None
    tail = text[host_end:end]
    userinfo = match.group("userinfo")
    value = scheme + "://" + (userinfo + "@" if userinfo else "") + host_value + tail
    return (start, end, "url", value, private)


def url_host(host: str) -> tuple[str | None, bool]:
    """(normalised host, private) of a URL's host, or (None, False) when it is no host."""
    if host.startswith("["):
        value = validators.ipv6_value(host[1:-1])
        return (f"[{value}]", validators.ip_is_private(value)) if value else (None, False)
    if host.count(":") >= 2:
        value = validators.ipv6_value(host)
        return (host.lower(), validators.ip_is_private(value)) if value else (None, False)
    lower = host.lower()
    if not lower.isascii():
        ascii_name = validators.idna_ascii(lower)
        if ascii_name and validators.host_is_domain(ascii_name):
            return lower, validators.domain_is_private(ascii_name)
        return None, False
    ipv4 = validators.ipv4_value(lower)
    if ipv4:
        return ipv4, validators.ip_is_private(ipv4)
    if validators.host_is_domain(lower):
        return lower, validators.domain_is_private(lower)
    if lower == "localhost":
        return lower, True
    return None, False  # a single word ("hxxp://[redacted]") or no valid name


def _wrapped_url(text: str, match: re.Match[str]) -> tuple[str, int, int]:
    """`hxxps://update-service-<line break>node[.]com/gate` (PDF text): a host that ends in a
    hyphen at the end of a line goes on on the next one. Returns (host, host end, URL end)."""
    host, host_end, url_end = match.group("host"), match.end("host"), match.end()
    following = line_continues(text, host_end)
    if following is None:
        return host, host_end, url_end
    joined = patterns.URL_REST.match(host + text[following : following + 4400])
    if joined is None or len(joined.group("host")) <= len(host):
        return host, host_end, url_end
    shift = following - len(host)
    return joined.group("host"), joined.end("host") + shift, joined.end() + shift


def cut_url(text: str, start: int, end: int) -> int:
    """End a URL where another one is glued on, at a closing parenthesis it did not open
    (Markdown links glued to the next word), or at a comma in its path (CSV cells:
    `http://a.com/x.iso,url,high`); commas in a query string or a fragment stay."""
    end = _cut_glued_url(text, start, end)
    close = text.find(")", start, end)
    while close != -1:  # "[text](https://a.com/x)word": a closing parenthesis never opened
        if text.count("(", start, close) < text.count(")", start, close + 1):
            end = close
            break
        close = text.find(")", close + 1, end)
    comma = text.find(",", start, end)
    if comma != -1 and text.find("?", start, comma) == -1 and text.find("#", start, comma) == -1:
        return comma
    return end


def _cut_glued_url(text: str, start: int, end: int) -> int:
    """End a URL where another one is glued on (`/tactics/TA0009https://...`)."""
    separator = text.find("://", start, end)
    while separator != -1:
        head = separator
        while head > start and text[head - 1].isalpha():
            head -= 1
        for scheme_start in range(head, separator):
            if text[scheme_start:separator].lower() in patterns.URL_SCHEMES:
                if scheme_start > start and text[scheme_start - 1] not in "=/?&%:#(":
                    return scheme_start
                break
        separator = text.find("://", separator + 3, end)
    return end


def find_emails(text: str, refanged: Refanged) -> Iterator[Candidate]:
    """`local@domain.tld`: the local part read back from the `@`."""
    for anchor in patterns.EMAIL_ANCHOR.finditer(text):
        found = _email_at(text, anchor.start())
        if found is not None:
            yield found


def _email_at(text: str, at: int) -> Candidate | None:
    start = _local_start(text, at)
    if start is None:
        return None
    match = patterns.EMAIL_DOMAIN.match(text, at + 1)
    if not match:
        return None
    end = match.end()
    if end < len(text) and (text[end].isalnum() or text[end] in "_@"):
        return None
    domain = match.group().lower()
    if not validators.host_is_domain(domain):
        return None
    value = text[start:at].replace("\\_", "_").lower() + "@" + domain
    return (start, end, "email", value, validators.domain_is_private(domain))


def _local_start(text: str, at: int) -> int | None:
    """Where the local part before the `@` at `at` begins (read through Markdown's escaped
    underscores); None when there is none, or it is the end of a longer word."""
    start = walk_left(text, at, LOCAL_CHARS, 64)
    while start >= 2 and text[start - 1] == "\\" and text[start] == "_":
        start = walk_left(text, start - 1, LOCAL_CHARS, 64)  # Markdown escapes: "ksa\_emb@"
    while start < at and text[start] in "._%+-":
        start += 1
    if start == at or text[at - 1] == ".":
        return None
    if start > 0 and (text[start - 1].isalnum() or text[start - 1] == "\\"):
        return None
    return start
