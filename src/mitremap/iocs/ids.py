"""Identifiers that start with a literal: CVE ids, ATT&CK technique and tactic ids, autonomous
system numbers, AWS ARNs, user agents and YARA rule names."""

from __future__ import annotations

import re
from collections.abc import Iterator

from mitremap.iocs import patterns, validators
from mitremap.iocs.refanging import Refanged
from mitremap.iocs.scanner import (
    ASCII_ALNUM,
    PATH_OPENERS,
    Candidate,
    find_all,
    trim_end,
    walk_left,
)

_ARN_TRAILING = ".,;!'\"“”‘’«»"  # an ARN may end in "*" or ":*"
_AGENT_CHARS = ASCII_ALNUM | frozenset("-")
_URL_SUBTECHNIQUE = re.compile(r"/(\d{3})(?![0-9A-Za-z])")


def find_cves(text: str, refanged: Refanged) -> Iterator[Candidate]:
    """`CVE-2021-44228` in any case, for years 1999 to 2100."""
    for literal in ("CVE-", "cve-", "Cve-"):
        for start in find_all(text, literal):
            match = patterns.CVE.match(text, start)
            if (
                match
                and (start == 0 or not text[start - 1].isalnum())
                and 1999 <= int(match.group(1)) <= 2100
            ):
                yield (start, match.end(), "cve", match.group().upper(), False)


def find_attack_ids(text: str, refanged: Refanged) -> Iterator[Candidate]:
    """`T1059.001`, `TA0002`, and `.../techniques/T1566/001/` in an ATT&CK link."""
    for match in patterns.ATTACK.finditer(text):
        start = match.start()
        if start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_-"):
            continue
        ident = match.group()
        if not validators.attack_id_in_range(ident):
            continue
        end = match.end()
        sub = _URL_SUBTECHNIQUE.match(text, end) if text.startswith("/", end) else None
        if sub and len(ident) == 5 and text.endswith("techniques/", 0, start):
            ident, end = ident + "." + sub.group(1), sub.end(1)  # ".../techniques/T1566/001/"
        yield (start, end, "attack_technique", ident, False)


def find_asns(text: str, refanged: Refanged) -> Iterator[Candidate]:
    """`AS13335`, `ASN 13335`, `AS 13335`."""
    for start in find_all(text, "AS"):
        if start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_-"):
            continue
        match = patterns.ASN.match(text, start)
        if match and 0 < int(match.group(1)) < 2**32:
            yield (start, match.end(), "asn", "AS" + str(int(match.group(1))), False)


def find_arns(text: str, refanged: Refanged) -> Iterator[Candidate]:
    """`arn:aws:iam::123456789012:role/x`."""
    for start in find_all(text, "arn:"):
        match = patterns.ARN.match(text, start)
        if match and (start == 0 or not text[start - 1].isalnum()):
            end = trim_end(text, start, match.end(), refanged, _ARN_TRAILING)
            yield (start, end, "arn", text[start:end], False)


def find_user_agents(text: str, refanged: Refanged) -> Iterator[Candidate]:
    """`Mozilla/5.0 (...)`, and the agents of well-known tools (`curl/8.1.2`)."""
    for start in find_all(text, "Mozilla/"):
        match = patterns.USER_AGENT.match(text, start)
        if match and (start == 0 or not text[start - 1].isalnum()):
            end = trim_end(text, start, match.end(), refanged)
            yield (start, end, "user_agent", text[start:end], False)
    for anchor in patterns.AGENT_ANCHOR.finditer(text):
        start = walk_left(text, anchor.start(), _AGENT_CHARS, 24)
        if text[start : anchor.start()] not in patterns.OTHER_AGENTS:
            continue
        match = patterns.OTHER_AGENT.match(text, start)
        if match and (start == 0 or text[start - 1] in PATH_OPENERS):
            end = trim_end(text, start, match.end(), refanged)
            yield (start, end, "user_agent", text[start:end], False)


def find_yara_rules(text: str, refanged: Refanged) -> Iterator[Candidate]:
    """A rule's name where it is defined (`rule APT_Loader {`) or named (`YARA rule X_Y`)."""
    for start in find_all(text, "rule"):
        if start > 0 and text[start - 1] not in " \t\n":
            continue
        match = patterns.YARA.match(text, start)
        if match and validators.yara_keyword_starts_line(text, start):
            yield (match.start(1), match.end(1), "yara_rule", match.group(1), False)
    for word in ("YARA", "Yara", "yara"):
        for start in find_all(text, word):
            match = patterns.YARA_MENTION.match(text, start)
            if match:
                yield (match.start(1), match.end(1), "yara_rule", match.group(1), False)
