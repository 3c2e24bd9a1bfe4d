"""Defanging: indicators written so that nothing makes them live links (`hxxps://evil[.]com`).

Why: a document meant for people (HTML, Markdown, Word) is opened in programs that turn
`https://…` and `evil.com` into links; one click on a report's C2 address is one too many. The
exporters for people defang every URL, domain, IP address and e-mail address, in the indicator
tables and in the quoted text, unless asked not to (`--refang`). Values a report already wrote
defanged (`freight-docs[.]com`) are left as written.

`defang_marks` says which characters of a value change (index → replacement), so text that is
cut into pieces (the HTML report's highlighted text) is defanged piece by piece at the same
offsets.
"""

from __future__ import annotations

import re

DEFANGED_KINDS = frozenset({"url", "domain", "onion", "ipv4", "ipv6", "email"})
_ALREADY = re.compile(r"\[[.:@]\]|\(\.\)|\{\.\}|hxxp|fxp|\[dot\]|\[at\]", re.IGNORECASE)


def defang_marks(kind: str, written: str) -> dict[int, str]:
    """The replacements that defang `written` (an indicator of type `kind` as it stands in the
    text): index → what to write there instead. Empty when there is nothing to defang or it
    is defanged already."""
    if kind not in DEFANGED_KINDS or _ALREADY.search(written):
        return {}
    if kind in ("domain", "onion", "ipv4"):
        return {i: "[.]" for i, c in enumerate(written) if c == "."}
    if kind == "ipv6":
        return {i: "[:]" for i, c in enumerate(written) if c == ":"}
    if kind == "email":
        at = written.rfind("@")
        return {i: "[.]" for i, c in enumerate(written) if c == "." and i > at}
    return _url_marks(written)


def _url_marks(url: str) -> dict[int, str]:
    marks: dict[int, str] = {}
    scheme, sep, _ = url.partition("://")
    lowered = scheme.lower()
    if sep and lowered in ("http", "https"):
        marks.update({1: "x", 2: "x"})  # hxxp, hxxps
    elif sep and lowered in ("ftp", "ftps", "sftp"):
        marks[lowered.index("t")] = "x"  # fxp
    host_start = len(scheme) + len(sep) if sep else 0
    authority = re.split(r"[/?#]", url[host_start:], maxsplit=1)[0]
    host_start += authority.rfind("@") + 1
    for i in range(host_start, host_start + len(authority) - authority.rfind("@") - 1):
        if url[i] == ".":
            marks[i] = "[.]"
    return marks


def apply_marks(text: str, marks: dict[int, str], offset: int = 0) -> str:
    """`text` with the replacements at `offset + index` made."""
    if not marks:
        return text
    return "".join(marks.get(offset + i, c) for i, c in enumerate(text))


def defang(kind: str, value: str) -> str:
    """One indicator value, defanged (`https://evil.com/x` → `hxxps://evil[.]com/x`)."""
    return apply_marks(value, defang_marks(kind, value))


def defang_text(text: str) -> str:
    """Text with every URL, domain, IP and e-mail address in it defanged (as found by the
    indicator extractor; values already defanged stay as written)."""
    from mitremap.iocs import extract_iocs

    marks: dict[int, str] = {}
    for found in extract_iocs(text):
        for i, replacement in defang_marks(found.type, found.raw).items():
            marks[found.start + i] = replacement
    return apply_marks(text, marks)
