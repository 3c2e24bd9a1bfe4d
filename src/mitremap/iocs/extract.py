"""The extractor: refang once, find candidates from cheap anchors, validate, resolve overlaps.

Each pass looks for its own anchor in the refanged text (`://`, `@`, a backslash, `.x`, a colon,
a long alphanumeric run, a literal such as `CVE-`), reads the candidate with a bounded pattern
from there, and validates it. Candidates are then resolved so that one stretch of text is one
indicator (a URL's host is not also a domain), with a fixed priority between passes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import NamedTuple

from mitremap.errors import MitreMapError
from mitremap.iocs import checksums, patterns, validators
from mitremap.iocs.allowlist import DEFAULT_ALLOWLIST, is_allowlisted
from mitremap.iocs.model import IOC_TYPES, Indicator
from mitremap.iocs.refanging import Refanged, refang_map

_ASCII_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_LABEL_CHARS = _ASCII_ALNUM | frozenset("_-")
_LOCAL_CHARS = _ASCII_ALNUM | frozenset("._%+-")
_HEX = frozenset("0123456789abcdefABCDEF")
_SCHEME_CHARS = _ASCII_ALNUM | frozenset("+.-")
_AGENT_CHARS = _ASCII_ALNUM | frozenset("-")
_RELATIVE_CHARS = _ASCII_ALNUM | frozenset("_.$~-")
_TRAILING = ".,;:!?'\"*“”‘’«»"
_ARN_TRAILING = ".,;!'\"“”‘’«»"
_CLOSERS = {")": "(", "]": "[", "}": "{", ">": "<"}
_PATH_OPENERS = frozenset(" \t\r\n\"'(<[=:,;`|>")
_BASE32 = frozenset("abcdefghijklmnopqrstuvwxyz234567")
_HASH_BY_LENGTH = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}
# Windows object-manager namespaces: "Global\\X" names a mutex or an event, not a file.
_KERNEL_NAMESPACES = frozenset({"Global", "Local", "Session", "BaseNamedObjects", "Sessions"})
_MD5_CONTEXT = re.compile(r"(?i)\b(ja3s?|imphash)\b[^\n]{0,24}$")
_SOLANA_CONTEXT = re.compile(r"(?i)\b(?:solana|sol)\b")
_HEX_RE = re.compile(r"[0-9a-f]+|[0-9A-F]+")

# Passes in priority order: an earlier type wins an overlap.
_PRIORITY = {
    "url": 0, "email": 1, "registry_key": 2, "arn": 2, "user_agent": 2, "yara_rule": 2,
    "windows_path": 3, "unix_path": 3, "ssdeep": 4,
}  # fmt: skip
_DEFAULT_PRIORITY = 5  # hashes, crypto, onion (bare)
_DOTTED_PRIORITY = 6  # domain, ipv4, file_name, onion, schemeless url, Cisco MAC
_COLON_PRIORITY = 7  # ipv6, mac
_ID_PRIORITY = 8  # cve, attack_technique, asn
# Types also reported when they sit inside a URL (a CVE or a hash in a link is worth keeping).
_NESTABLE = frozenset({"cve", "attack_technique", "md5", "sha1", "sha256", "sha512"})

_URL_SUBTECHNIQUE = re.compile(r"/(\d{3})(?![0-9A-Za-z])")
_BASE58_VERSIONS = {
    b"\x00": "bitcoin", b"\x05": "bitcoin",
    b"\x30": "litecoin", b"\x32": "litecoin",
    b"\x1e": "dogecoin", b"\x16": "dogecoin",
    b"\x4c": "dashcoin", b"\x10": "dashcoin",
    b"\x41": "tron",
}  # fmt: skip
_TEZOS_PREFIXES = {b"\x06\xa1\x9f", b"\x06\xa1\xa1", b"\x06\xa1\xa4", b"\x02\x5a\x79"}
_ZCASH_PREFIXES = {b"\x1c\xb8", b"\x1c\xbd"}
_BECH32_HRPS = {"bc": "bitcoin", "ltc": "litecoin", "addr": "cardano"}


class _Candidate(NamedTuple):
    start: int  # in the refanged text
    end: int
    type: str
    value: str
    private: bool = False


_new_object = object.__new__


def _indicator(kind: str, value: str, raw: str, start: int, end: int, private: bool) -> Indicator:
    """An `Indicator` built without the frozen dataclass's `__init__`, whose six
    `object.__setattr__` calls cost as much as finding some of the indicators."""
    indicator = _new_object(Indicator)
    indicator.__dict__.update(
        type=kind, value=value, raw=raw, start=start, end=end, private=private
    )
    return indicator


def _find_all(text: str, literal: str) -> Iterator[int]:
    """Positions of a literal: str.find is the fastest scan Python has."""
    pos = text.find(literal)
    while pos != -1:
        yield pos
        pos = text.find(literal, pos + 1)


def _left(text: str, pos: int, chars: frozenset[str], limit: int) -> int:
    """Walk left from pos while the characters are in `chars` (at most `limit` of them)."""
    start = pos
    stop = max(0, pos - limit)
    while start > stop and text[start - 1] in chars:
        start -= 1
    return start


def _trim(text: str, start: int, end: int, refanged: Refanged, trailing: str = _TRAILING) -> int:
    """Drop what ends a sentence or closes a parenthesis from the end of a span: `.` `,` `)`."""
    while end > start:
        last = text[end - 1]
        if last in trailing and not refanged.is_edited(end - 1):
            end -= 1
        elif last in _CLOSERS:
            span = text[start:end]
            if span.count(_CLOSERS[last]) < span.count(last):
                end -= 1
            else:
                break
        else:
            break
    return end


class IocExtractor:
    """Extract indicators of compromise from report text.

    `types` limits the result to some of `IOC_TYPES`; `allowlist` drops well-known benign
    values (True for the built-in list, or your own domains/IPs); `include_private=False` drops
    private and documentation addresses. Construct once and reuse: it holds no per-text state.
    """

    def __init__(
        self,
        types: Iterable[str] | None = None,
        *,
        allowlist: bool | Iterable[str] = False,
        include_private: bool = True,
    ) -> None:
        wanted = frozenset(types) if types is not None else frozenset(IOC_TYPES)
        unknown = sorted(wanted - set(IOC_TYPES))
        if unknown:
            raise MitreMapError(
                f"unknown indicator type(s): {', '.join(unknown)}; "
                f"choose from: {', '.join(IOC_TYPES)}"
            )
        self.types = wanted
        if allowlist is True:
            self.allowlist: frozenset[str] = DEFAULT_ALLOWLIST
        elif allowlist is False:
            self.allowlist = frozenset()
        else:
            self.allowlist = frozenset(v.lower() for v in allowlist)
        self.include_private = include_private

    def extract(self, text: str) -> list[Indicator]:
        """Every indicator occurrence in `text`, in order of position."""
        refanged = refang_map(text)
        clean = refanged.text
        candidates: list[_Candidate] = []
        for finder in (
            self._urls,
            self._emails,
            self._registry_keys,
            self._windows_paths,
            self._unix_paths,
            self._literal_types,
            self._alnum_runs,
            self._dotted,
            self._colon_types,
            self._ids,
        ):
            candidates.extend(finder(clean, refanged))
        result = []
        types, allowlist, include_private = self.types, self.allowlist, self.include_private
        original_span = refanged.original_span
        for start, end, kind, value, private in _resolve(candidates):
            if kind not in types or (private and not include_private):
                continue
            if allowlist and is_allowlisted(kind, value, allowlist):
                continue
            start, end = original_span(start, end)
            result.append(_indicator(kind, value, text[start:end], start, end, private))
        return result

    # --- passes ---------------------------------------------------------------------------

    def _urls(self, t: str, r: Refanged) -> Iterator[_Candidate]:
        for p in _find_all(t, "://"):
            s = _left(t, p, _SCHEME_CHARS, 12)
            while s < p and t[s:p].lower() not in patterns.URL_SCHEMES:
                s += 1  # text glued in front ("TA0009https://"): keep the known scheme
            if s == p:
                continue
            scheme = t[s:p].lower()
            m = patterns.URL_REST.match(t, p + 3)
            if not m:
                continue
            host, host_end, url_end = m.group("host"), m.end("host"), m.end()
            if host.endswith("-") and not m.group("userinfo"):
                host, host_end, url_end = _wrapped_url(t, m)
            host_value, private = _url_host(host)
            if host_value is None:
                continue
            end = _trim(t, s, _cut_url(t, m.start("host"), url_end), r)
            if end <= m.start("host"):
                continue
            tail = t[host_end:end]
            userinfo = m.group("userinfo")
            value = scheme + "://" + (userinfo + "@" if userinfo else "") + host_value + tail
            yield _Candidate(s, end, "url", value, private)

    def _emails(self, t: str, r: Refanged) -> Iterator[_Candidate]:
        for anchor in patterns.EMAIL_ANCHOR.finditer(t):
            p = anchor.start()
            s = _left(t, p, _LOCAL_CHARS, 64)
            while s >= 2 and t[s - 1] == "\\" and t[s] == "_":
                s = _left(t, s - 1, _LOCAL_CHARS, 64)  # Markdown escapes: "ksa\_emb@"
            while s < p and t[s] in "._%+-":
                s += 1
            if s == p or t[p - 1] == "." or (s > 0 and (t[s - 1].isalnum() or t[s - 1] == "\\")):
                continue
            m = patterns.EMAIL_DOMAIN.match(t, p + 1)
            if not m:
                continue
            end = m.end()
            if end < len(t) and (t[end].isalnum() or t[end] in "_@"):
                continue
            domain = m.group().lower()
            if not validators.host_is_domain(domain):
                continue
            value = t[s:p].replace("\\_", "_").lower() + "@" + domain
            yield _Candidate(s, end, "email", value, validators.domain_is_private(domain))

    def _registry_keys(self, t: str, r: Refanged) -> Iterator[_Candidate]:
        for p in _find_all(t, "HK"):
            if p > 0 and (t[p - 1].isalnum() or t[p - 1] == "_"):
                continue
            hive = patterns.REG_HIVE.match(t, p)
            if not hive:
                continue
            segments = patterns.REG_SEGMENTS.match(t, hive.end())
            if not segments or segments.end() - hive.end() < 2:
                continue
            end = _trim(t, p, segments.end(), r)
            name = patterns.HIVE_NAMES.get(hive.group(1), hive.group(1))
            yield _Candidate(p, end, "registry_key", name + t[hive.end() : end])

    def _windows_paths(self, t: str, r: Refanged) -> Iterator[_Candidate]:
        p = t.find("\\")
        while p != -1:
            start = self._windows_path_start(t, p)
            segments = patterns.WIN_SEGMENTS.match(t, p) if start is not None else None
            if start is None or segments is None:
                # No path starts here: skip the rest of this word (C speed, not per backslash).
                p = t.find("\\", patterns.run_end(patterns.NON_SPACE_RUN, t, p + 1))
                continue
            end = _trim(t, start, segments.end(), r, _TRAILING + "&")  # "x.dll& next"
            backslash, p = p, t.find("\\", max(end, p + 1))
            path = t[start:end]
            if len(path.rstrip("\\")) <= 3 or (start == backslash and not path.startswith("\\\\")):
                continue
            if path.startswith("\\\\") and path.count("\\") < 3:
                continue  # "psexec \\FS01": a host name, no path
            if t[start].isalpha() and t[start + 1 : start + 2] != ":":
                # Relative path ("AppData\Roaming\x.exe"): ask for two backslashes or a file.
                last = path.rsplit("\\", 1)[-1]
                if path.count("\\") < 2 and "." not in last:
                    continue
                if path.split("\\", 1)[0].upper() in ("SOFTWARE", "SYSTEM"):
                    # "SOFTWARE\Microsoft\...": a registry key written without its hive.
                    yield _Candidate(start, end, "registry_key", path)
                    continue
            yield _Candidate(start, end, "windows_path", path)

    @staticmethod
    def _windows_path_start(t: str, p: int) -> int | None:
        """Where the path that has a backslash at `p` begins, or None when it is no path."""
        if p >= 2 and t[p - 1] == ":" and t[p - 2].isalpha():
            if p >= 3 and (t[p - 3].isalnum() or t[p - 3] in "_\\"):
                return None
            return p - 2
        if t.startswith("\\\\", p) and (p == 0 or t[p - 1] in _PATH_OPENERS):
            return p
        if p > 0 and t[p - 1] == "%":
            env = t.rfind("%", max(0, p - 44), p - 1)
            if env != -1 and patterns.ENV_VAR.fullmatch(t, env, p):
                return env
            return None
        head = _left(t, p, _RELATIVE_CHARS, 128)
        if (
            head < p
            and (head == 0 or t[head - 1] in _PATH_OPENERS)
            and patterns.RELATIVE_HEAD.fullmatch(t, head, p)
            and not patterns.REG_HIVE.match(t, head)
        ):
            if t[head:p] in _KERNEL_NAMESPACES:
                return None  # a mutex or event name ("Global\\MSCTF.Asm"), no file
            if head >= 5 and t[head - 5 : head].lower() == "$env:":
                return head - 5  # PowerShell: "$env:TEMP\\s.ps1"
            return head
        return None

    def _unix_paths(self, t: str, r: Refanged) -> Iterator[_Candidate]:
        starts = [m.start() for m in patterns.UNIX_ANCHOR.finditer(t)]
        starts += [p for p in _find_all(t, "~/")]
        covered = -1
        for p in sorted(starts):
            if p < covered or (p > 0 and t[p - 1] not in _PATH_OPENERS):
                continue
            m = patterns.UNIX_PATH.match(t, p)
            if not m:
                continue
            end = _trim(t, p, m.end(), r)
            covered = end
            path = t[p:end]
            if path.endswith("//"):
                continue
            if path.count("/") >= 2 or (path.startswith("~/") and len(path) > 3):
                yield _Candidate(p, end, "unix_path", path)  # "~/.bash_history" too

    def _literal_types(self, t: str, r: Refanged) -> Iterator[_Candidate]:
        """ARNs, user agents and YARA rule names: each has a literal to start from."""
        for p in _find_all(t, "arn:"):
            m = patterns.ARN.match(t, p)
            if m and (p == 0 or not t[p - 1].isalnum()):
                end = _trim(t, p, m.end(), r, _ARN_TRAILING)  # ARNs may end in "*" or ":*"
                yield _Candidate(p, end, "arn", t[p:end])
        for p in _find_all(t, "Mozilla/"):
            m = patterns.USER_AGENT.match(t, p)
            if m and (p == 0 or not t[p - 1].isalnum()):
                end = _trim(t, p, m.end(), r)
                yield _Candidate(p, end, "user_agent", t[p:end])
        for anchor in patterns.AGENT_ANCHOR.finditer(t):
            p = _left(t, anchor.start(), _AGENT_CHARS, 24)
            if t[p : anchor.start()] not in patterns.OTHER_AGENTS:
                continue
            m = patterns.OTHER_AGENT.match(t, p)
            if m and (p == 0 or t[p - 1] in _PATH_OPENERS):
                end = _trim(t, p, m.end(), r)
                yield _Candidate(p, end, "user_agent", t[p:end])
        for p in _find_all(t, "rule"):
            if p > 0 and t[p - 1] not in " \t\n":
                continue
            m = patterns.YARA.match(t, p)
            if m and _line_start(t, p):
                yield _Candidate(m.start(1), m.end(1), "yara_rule", m.group(1))
        for word in ("YARA", "Yara", "yara"):
            for p in _find_all(t, word):
                m = patterns.YARA_MENTION.match(t, p)
                if m:
                    yield _Candidate(m.start(1), m.end(1), "yara_rule", m.group(1))

    def _alnum_runs(self, t: str, r: Refanged) -> Iterator[_Candidate]:
        pos, size = 0, len(t)
        while pos < size:
            m = patterns.NEXT_LONG_RUN.match(t, pos)
            if m is None or m.start(1) == -1:
                return
            s, e = m.span(1)
            pos = e
            if e < size and (t[e] == "_" or (t[e] > "\x7f" and _foreign_letter(t[e]))):
                continue
            if s > 0 and (t[s - 1] == "_" or (t[s - 1] > "\x7f" and _foreign_letter(t[s - 1]))):
                continue
            found = _classify_run(t, s, e) or _glued_hash(t, s, e)
            if found is not None:
                yield found

    def _dotted(self, t: str, r: Refanged) -> Iterator[_Candidate]:
        shapes: dict[str, _Shape] = {}
        tables: dict[int, int] = {}  # Markdown table rows -> the table's first row
        # Internationalised names: tries are capped (about one per kB), and a name never
        # reaches back past the dot of the previous try, so the pass stays linear.
        idn_tries, idn_floor = 1000 + len(t) // 1000, 0
        pos = 0
        while True:
            anchor = patterns.DOT_ANCHOR.search(t, pos)
            if anchor is None:
                return
            p = anchor.start()
            s = _left(t, p, _LABEL_CHARS, 64)
            if s > 0 and t[s - 1] > "\x7f" and idn_tries and _foreign_letter(t[s - 1]):
                idn_tries -= 1
                found = _idn_name(t, p, max(idn_floor, p - 253), shapes)  # "bücher.de"
                idn_floor = p + 1
                if found is not None:
                    pos = found.end
                    yield found
                    continue
            if s == p or p - s > 63:
                pos = p + 1
                continue
            m = patterns.HOST.match(t, s)
            pos = m.end() if m else p + 1
            if not m:
                continue
            found = None
            if t.find("-", p, m.end()) != -1 and _IPV4_RANGE.fullmatch(t, s, m.end()):
                yield from _ipv4_range(t, s, m.end(), r, shapes, tables)
                continue
            glued = _IPV4_THEN_NAME.fullmatch(t, s, m.end()) if t[s].isdigit() else None
            if glued and validators.ipv4_value(glued.group(1)):
                # "5.42.199.83superliner.top" (table cells glued): an address, then a name.
                for start, end in glued.regs[1:]:
                    found = _classify_dotted(t, start, end, r, shapes, tables, glued=True)
                    if found is not None:
                        yield found
                continue
            if s >= 3 and t[s - 1] == "\n":
                found = _wrapped_name(t, s, m.end(), r, shapes)
                if found is _FRAGMENT:
                    continue
            if found is None:
                found = _classify_dotted(t, s, m.end(), r, shapes, tables)
            if found is not None:
                pos = max(pos, found.end)
                yield found

    def _colon_types(self, t: str, r: Refanged) -> Iterator[_Candidate]:
        pos = 0
        while True:
            anchor = patterns.COLON_ANCHOR.search(t, pos)
            if anchor is None:
                break
            p = anchor.start()
            s = _left(t, p, _HEX, 10)
            pos = p + 1
            if s > 0 and (t[s - 1].isalnum() or t[s - 1] in "_.:-"):
                pos = patterns.run_end(patterns.HEX_COLON_RUN, t, p)
                continue
            found = _classify_colon(t, s, p, r)
            if found is not None:
                pos = max(pos, found.end)
                yield found
            else:
                pos = max(pos, patterns.run_end(patterns.HEX_COLON_RUN, t, p))
        for anchor in patterns.DASH_MAC_ANCHOR.finditer(t):
            s = anchor.start() - 2
            if s < 0 or (s > 0 and (t[s - 1].isalnum() or t[s - 1] in "-:")):
                continue
            m = patterns.MAC.match(t, s)
            if m:
                yield _Candidate(s, m.end(), "mac", m.group().lower().replace("-", ":"))

    def _ids(self, t: str, r: Refanged) -> Iterator[_Candidate]:
        """CVE ids, ATT&CK technique and tactic ids, autonomous system numbers."""
        for literal in ("CVE-", "cve-", "Cve-"):
            for p in _find_all(t, literal):
                m = patterns.CVE.match(t, p)
                if m and (p == 0 or not t[p - 1].isalnum()) and 1999 <= int(m.group(1)) <= 2100:
                    yield _Candidate(p, m.end(), "cve", m.group().upper())
        for m in patterns.ATTACK.finditer(t):
            p = m.start()
            if p > 0 and (t[p - 1].isalnum() or t[p - 1] in "_-"):
                continue
            ident = m.group()
            number = int(ident[2:6] if ident.startswith("TA") else ident[1:5])
            if ident.startswith("TA") and not 1 <= number <= 199:
                continue
            if not ident.startswith("TA") and not (1000 <= number <= 1999 or 800 <= number <= 899):
                continue
            end = m.end()
            sub = _URL_SUBTECHNIQUE.match(t, end) if t.startswith("/", end) else None
            if sub and len(ident) == 5 and t.endswith("techniques/", 0, p):
                ident, end = ident + "." + sub.group(1), sub.end(1)  # ".../techniques/T1566/001/"
            yield _Candidate(p, end, "attack_technique", ident)
        for p in _find_all(t, "AS"):
            if p > 0 and (t[p - 1].isalnum() or t[p - 1] in "_-"):
                continue
            m = patterns.ASN.match(t, p)
            if m and 0 < int(m.group(1)) < 2**32:
                yield _Candidate(p, m.end(), "asn", "AS" + str(int(m.group(1))))


# --- classification helpers ------------------------------------------------------------------


_WORD_START = frozenset(" \t\r\n\"'(<[=,;`|>")


def _in_url_path(t: str, s: int) -> bool:
    """A name after a slash that is part of a path (`/vpns/portal/x.xml`, `assets/js/app.js`),
    not a slash between alternatives (`Info32/Info64.dll`)."""
    if s == 0 or t[s - 1] != "/":
        return False
    start = s - 1
    while start > 0 and s - start < 256 and t[start - 1] not in _WORD_START:
        start -= 1
    return t[start] == "/" or t.count("/", start, s) >= 2


def _cjk(c: str) -> bool:
    """Chinese, Japanese and Korean text has no spaces: its characters end a name."""
    return "\u2e80" <= c <= "\u9fff" or "\uac00" <= c <= "\ud7af" or "\uf900" <= c <= "\ufaff"


def _word_char(c: str) -> bool:
    """A character that continues a word (so a name glued to it is no name)."""
    return c.isalnum() and not _cjk(c)


def _foreign_letter(c: str) -> bool:
    """A non-ASCII letter that may belong to an internationalised name (`ü`, `а`)."""
    return not c.isascii() and c.isalnum() and not _cjk(c)


def _idn_label_char(c: str) -> bool:
    return (c.isalnum() and not _cjk(c)) or c == "-"


def _idn_name(t: str, p: int, floor: int, shapes: dict[str, _Shape]) -> _Candidate | None:
    """An internationalised name (`bücher.de`, a homoglyph `аpple.com`) whose dot is at `p`
    (starting at `floor` or later): checked in its Punycode form, reported as written."""
    s = p
    while s > floor and (_idn_label_char(t[s - 1]) or t[s - 1] == "."):
        s -= 1
    while s < p and t[s] in ".-":
        s += 1
    m = patterns.IDN_TAIL.match(t, p)
    if m is None or s == p:
        return None
    e = m.end()
    if (s > 0 and t[s - 1] in "@/\\_") or (e < len(t) and (_idn_label_char(t[e]) or t[e] == "@")):
        return None
    token = t[s:e]
    ascii_name = validators.idna_ascii(token)
    if ascii_name is None:
        return None
    shape = shapes.get(ascii_name)
    if shape is None:
        shape = shapes[ascii_name] = _dotted_shape(ascii_name)
    labels = token.split(".")
    if shape.kind != "domain" or validators.looks_like_detection_or_code(labels):
        return None
    if len(labels) == 2 and len(labels[0]) == 1:
        return None  # "å.jp" (the text column of a hex dump)
    return _Candidate(s, e, "domain", token.lower(), shape.private)


def _wrapped_url(t: str, m: re.Match[str]) -> tuple[str, int, int]:
    """`hxxps://update-service-<line break>node[.]com/gate` (PDF text): a host that ends in a
    hyphen at the end of a line goes on on the next one. Returns (host, host end, URL end)."""
    host, host_end, url_end = m.group("host"), m.end("host"), m.end()
    cont = _line_continues(t, host_end)
    if cont is None:
        return host, host_end, url_end
    joined = patterns.URL_REST.match(host + t[cont : cont + 4400])
    if joined is None or len(joined.group("host")) <= len(host):
        return host, host_end, url_end
    shift = cont - len(host)
    return joined.group("host"), joined.end("host") + shift, joined.end() + shift


def _line_continues(t: str, pos: int) -> int | None:
    """Where the next line starts when a line break is at `pos` and the next line goes on
    with a word character, else None."""
    if t.startswith("\r\n", pos):
        cont = pos + 2
    elif t.startswith("\n", pos):
        cont = pos + 1
    else:
        return None
    return cont if cont < len(t) and t[cont] in _LABEL_CHARS else None


def _cut_url(t: str, start: int, end: int) -> int:
    """End a URL where another one is glued on, at a closing parenthesis it did not open
    (Markdown links glued to the next word), or at a comma in its path (CSV cells:
    `http://a.com/x.iso,url,high`); commas in a query string or a fragment stay."""
    end = _cut_glued_url(t, start, end)
    close = t.find(")", start, end)
    while close != -1:  # "[text](https://a.com/x)word": a closing parenthesis never opened
        if t.count("(", start, close) < t.count(")", start, close + 1):
            end = close
            break
        close = t.find(")", close + 1, end)
    comma = t.find(",", start, end)
    if comma != -1 and t.find("?", start, comma) == -1 and t.find("#", start, comma) == -1:
        return comma
    return end


def _cut_glued_url(t: str, start: int, end: int) -> int:
    """End a URL where another one is glued on (`/tactics/TA0009https://...`)."""
    cut = t.find("://", start, end)
    while cut != -1:
        head = cut
        while head > start and t[head - 1].isalpha():
            head -= 1
        for k in range(head, cut):
            if t[k:cut].lower() in patterns.URL_SCHEMES:
                if k > start and t[k - 1] not in "=/?&%:#(":
                    return k
                break
        cut = t.find("://", cut + 3, end)
    return end


def _line_start(t: str, p: int) -> bool:
    """YARA `rule` keywords start a line (after `private`/`global` at most)."""
    line = t[t.rfind("\n", 0, p) + 1 : p].strip()
    return line in ("", "private", "global", "private global", "global private")


def _url_host(host: str) -> tuple[str | None, bool]:
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


def _classify_run(t: str, s: int, e: int) -> _Candidate | None:
    """A run of 25+ letters and digits: a hash, a cryptocurrency address, a bare onion name."""
    run = t[s:e]
    n = len(run)
    if n in _HASH_BY_LENGTH and _HEX_RE.fullmatch(run) and not run.isdigit():
        if "00000" in run:
            return None  # shellcode or a memory dump: a digest almost never has 5 zeros in a row
        kind = _HASH_BY_LENGTH[n]
        window = t[max(0, s - 48) : s].lower()
        if kind == "md5" and ("ja3" in window or "imphash" in window):
            context = _MD5_CONTEXT.search(window)
            if context:
                kind = "ja3" if context.group(1).lower().startswith("ja3") else "imphash"
        return _Candidate(s, e, kind, run.lower())
    if n == 42 and run[:2] == "0x" and _HEX.issuperset(run[2:]):
        if checksums.eip55_ok(run):
            return _Candidate(s, e, "ethereum", run.lower())
        return None
    if (
        n == 56
        and run.islower()
        and _BASE32.issuperset(run)
        and not t.startswith(".onion", e)
        and checksums.onion_v3_ok(run)
    ):
        return _Candidate(s, e, "onion", run + ".onion")
    lower = run.lower()
    if lower.startswith(("bc1", "ltc1", "addr1")):
        hrp = checksums.bech32_hrp(run)
        if hrp in _BECH32_HRPS:
            return _Candidate(s, e, _BECH32_HRPS[hrp], lower)
        return None
    if n == 42 and lower[0] in "qp" and run in (lower, run.upper()):
        if checksums.cashaddr_ok(lower):
            if t[max(0, s - 12) : s].lower() == "bitcoincash:":
                return _Candidate(s - 12, e, "bitcoincash", "bitcoincash:" + lower)
            return _Candidate(s, e, "bitcoincash", "bitcoincash:" + lower)
        return None
    return _classify_base58(t, s, e, run)


def _glued_hash(t: str, s: int, e: int) -> _Candidate | None:
    """A hash glued to a word by PDF table extraction (`script.sh17d55dc0…`, `…ced9MD5`): the
    run starts or ends with exactly 32/40/64/128 well-mixed hex digits, cut off by a letter
    past `f`."""
    run = t[s:e]
    longest = max(_HASH_BY_LENGTH) + 1  # no need to look further than a SHA-512 and one
    head = len(run)
    while head > 0 and len(run) - head < longest and run[head - 1] in _HEX:
        head -= 1
    tail = 0
    while tail < len(run) and tail < longest and run[tail] in _HEX:
        tail += 1
    for start, end in ((s + head, e), (s, s + tail)):
        piece = t[start:end]
        if len(piece) in _HASH_BY_LENGTH and _HEX_RE.fullmatch(piece) and _hash_like(piece):
            return _Candidate(start, end, _HASH_BY_LENGTH[len(piece)], piece.lower())
    # The extension before the hash ends in hex letters: "exe" + SHA-1 reads as "e" + 40 hex.
    for size in _HASH_BY_LENGTH:
        extra = len(run) - head - size
        if 1 <= extra <= 3 and run[: head + extra].lower() in validators.FILE_EXTENSIONS:
            piece = run[head + extra :]
            if _HEX_RE.fullmatch(piece) and _hash_like(piece):
                return _Candidate(e - size, e, _HASH_BY_LENGTH[size], piece.lower())
    return None


def _hash_like(hex_digits: str) -> bool:
    """Digits and letters well mixed, as in a real digest (`a999…9z` is no glued hash)."""
    digits = sum(c.isdigit() for c in hex_digits)
    return len(hex_digits) // 5 <= digits <= len(hex_digits) * 4 // 5


def _classify_base58(t: str, s: int, e: int, run: str) -> _Candidate | None:
    n = len(run)
    if n in (95, 106) and run[0] in "48":
        return _Candidate(s, e, "monero", run) if checksums.monero_ok(run) else None
    if run.startswith(("Ae2", "DdzFF")):
        return _Candidate(s, e, "cardano", run) if checksums.cardano_byron_ok(run) else None
    if n > 44:
        return None
    if run[0] == "r":
        payload = checksums.b58check(run, checksums.RIPPLE_ALPHABET)
        if payload is not None and len(payload) == 21 and payload[0] == 0:
            return _Candidate(s, e, "ripple", run)
    payload = checksums.b58check(run)
    if payload is not None:
        if len(payload) == 21 and payload[:1] in _BASE58_VERSIONS:
            return _Candidate(s, e, _BASE58_VERSIONS[payload[:1]], run)
        if len(payload) == 22 and payload[:2] in _ZCASH_PREFIXES:
            return _Candidate(s, e, "zcash", run)
        if len(payload) == 23 and payload[:3] in _TEZOS_PREFIXES:
            return _Candidate(s, e, "tezos", run)
        return None
    if 32 <= n <= 44 and _is_solana(t, s, run):
        return _Candidate(s, e, "solana", run)
    return None


def _is_solana(t: str, s: int, run: str) -> bool:
    """Solana keys have no checksum: a 32-byte Base58 value AND the word Solana close by."""
    raw = checksums.b58decode(run)
    if raw is None or len(raw) != 32:
        return False
    if run.isalpha() or run.isdigit() or run.islower() or run.isupper():
        return False
    return bool(_SOLANA_CONTEXT.search(t, max(0, s - 80), s))


class _Shape(NamedTuple):
    """What a dotted token is, judged on the token alone (cached per text: tokens repeat)."""

    kind: str  # "ipv4", "mac", "onion", "file", "ambiguous" (file or host), "domain", ""
    value: str = ""
    private: bool = False
    code_like: bool = False  # AV name, namespace, identifier: a host only when defanged


@lru_cache(maxsize=16384)
def _dotted_shape(token: str) -> _Shape:
    """Cached across texts: the same names, files and technique ids recur report after report."""
    labels = token.split(".")
    if token.replace(".", "").isdigit():
        value = validators.ipv4_value(token)
        return _Shape("ipv4", value, validators.ip_is_private(value)) if value else _Shape("")
    if any(not label or label[0] in "-_" or label[-1] in "-_" for label in labels[-2:]):
        return _Shape("")
    if len(labels) == 3 and all(len(x) == 4 and _HEX.issuperset(x) for x in labels):
        mac = "".join(labels).lower()
        return _Shape("mac", ":".join(mac[i : i + 2] for i in range(0, 12, 2)))
    lower = token.lower()
    tld = labels[-1].lower()
    if tld == "onion":
        name = labels[-2].lower()
        ok = (len(name) == 16 and _BASE32.issuperset(name)) or checksums.onion_v3_ok(name)
        return _Shape("onion", ".".join(labels[-2:]).lower()) if ok else _Shape("")
    if lower in validators.PRODUCT_NAMES:
        return _Shape("")
    if lower in validators.KNOWN_HOSTS:
        return _Shape("domain", lower)
    is_file = labels[0] != "" and all(labels[:-1])
    is_host = validators.host_is_domain(lower)
    if tld in validators.FILE_EXTENSIONS and (
        not validators.is_tld(tld) or (tld in validators.AMBIGUOUS_EXTENSIONS and not is_host)
    ):
        if labels[-1].istitle() and len(tld) > 3 and labels[-2].islower():
            return _Shape("")  # "in the system.Service Name": two sentences glued together
        return _Shape("file", token) if is_file else _Shape("")
    if not is_host:
        return _Shape("")
    code_like = validators.looks_like_detection_or_code(labels)
    private = validators.domain_is_private(lower)
    if tld in validators.AMBIGUOUS_EXTENSIONS and is_file:
        return _Shape("ambiguous", lower, private, code_like)
    return _Shape("domain", lower, private, code_like)


def _classify_dotted(
    t: str,
    s: int,
    e: int,
    r: Refanged,
    shapes: dict[str, _Shape],
    tables: dict[int, int] | None = None,
    *,
    glued: bool = False,
) -> _Candidate | None:
    """A dotted word: an IPv4, a domain (maybe with a path: a URL), a file name, an onion.
    `glued`: the word was cut out of a longer one, so its neighbours are no reason to refuse."""
    if not glued and e < len(t) and (_word_char(t[e]) or t[e] == "@"):
        return None
    escaped = s > 0 and t[s - 1] == "%" and e - s > 3 and t[s] in _HEX and t[s + 1] in _HEX
    if escaped:
        # URL-encoded text: "%2F%2Fevil.biz%2F", "Figure%205.png": the name starts after the
        # escape, and a file name there is part of a URL path, no file of its own.
        s += 2
    elif s > 0 and _word_char(t[s - 1]) and not glued:
        return None
    token = t[s:e]
    if token.count(".") > 12:
        return None  # no host has that many labels; a file name neither
    shape = shapes.get(token)
    if shape is None:
        shape = shapes[token] = _dotted_shape(token)
    kind = shape.kind
    if not kind:
        if r.has_edit(s, e):
            return _glued_domain(t, s, e, r, shapes)
        return _glued_file(t, s, e)
    if kind == "ipv4":
        return _classify_ipv4(t, s, e, shape, r, tables)
    if kind in ("file", "ambiguous") and s > 0 and _cjk(t[s - 1]):
        return None  # "WhatsApp-中文p.msi": a file name may hold CJK characters; no part of one
    if kind == "file" and (escaped or _in_url_path(t, s)):
        return None  # a file in a URL path ("/wp-admin/admin-ajax.php"): not a file indicator
    if kind in ("mac", "onion", "file"):
        return _Candidate(s, e, kind if kind != "file" else "file_name", shape.value)
    labels = token.split(".")
    defanged = r.has_edit(s, e)
    if kind == "ambiguous" and not _domain_wins(t, s, e, labels, defanged):
        if escaped or _in_url_path(t, s):
            return None
        return _Candidate(s, e, "file_name", token)
    if not defanged and (shape.code_like or _not_a_host(t, s, e, labels)):
        return None
    path = patterns.PATH_REST.match(t, e)
    if path:
        end = _trim(t, s, _cut_url(t, e, path.end()), r)
        if end > e + 1 or (end == e + 1 and t[e] == "/"):
            return _Candidate(s, end, "url", shape.value + t[e:end], shape.private)
    return _Candidate(s, e, "domain", shape.value, shape.private)


def _glued_domain(
    t: str, s: int, e: int, r: Refanged, shapes: dict[str, _Shape]
) -> _Candidate | None:
    """`evil[.]com185.225.17[.]39` (table cells glued together): a defanged name whose TLD runs
    into digits is cut after the TLD."""
    labels = t[s:e].split(".")
    for i, label in enumerate(labels[1:], 1):
        m = _TLD_THEN_DIGIT.match(label)
        if m and validators.is_tld(m.group(1).lower()):
            end = s + len(".".join(labels[:i])) + 1 + len(m.group(1))
            token = t[s:end]
            shape = shapes.get(token) or _dotted_shape(token)
            if shape.kind == "domain" and not shape.code_like:
                return _Candidate(s, end, "domain", shape.value, shape.private)
            return None
    return None


_TLD_THEN_DIGIT = re.compile(r"([A-Za-z]{2,24})\d")


# What `_wrapped_name` answers for the tail of a name broken at a line end that it cannot join:
# no indicator of its own.
_FRAGMENT = _Candidate(-1, -1, "", "")


def _wrapped_name(
    t: str, s: int, e: int, r: Refanged, shapes: dict[str, _Shape]
) -> _Candidate | None:
    """`evil-<line break>domain[.]com` (PDF text): a host name broken after a hyphen at the
    end of a line is joined again (the hyphen is kept: host names do not get hyphenated)."""
    brk = s - 2 if t[s - 2] == "\r" else s - 1
    if brk < 2 or t[brk - 1] != "-" or t[brk - 2] not in _ASCII_ALNUM:
        return None
    head = _left(t, brk, _LABEL_CHARS, 63)
    if head > 0 and (t[head - 1] in _ASCII_ALNUM or t[head - 1] == "."):
        return _FRAGMENT  # the name began further back: what follows the break is a piece
    token = t[head:brk] + t[s:e]
    shape = shapes.get(token)
    if shape is None:
        shape = shapes[token] = _dotted_shape(token)
    if shape.kind != "domain" or (shape.code_like and not r.has_edit(s, e)):
        return _FRAGMENT
    if head > 0 and t[head - 1] == "@":  # an e-mail address: "accounts@globalfreight-<br>…"
        local = _left(t, head - 1, _LOCAL_CHARS, 64)
        while local < head - 1 and t[local] in "._%+-":
            local += 1
        if local == head - 1 or (local > 0 and t[local - 1].isalnum()):
            return _FRAGMENT
        value = t[local : head - 1].lower() + "@" + shape.value
        return _Candidate(local, e, "email", value, shape.private)
    path = patterns.PATH_REST.match(t, e)
    if path:
        end = _trim(t, s, _cut_url(t, e, path.end()), r)
        if end > e + 1 or (end == e + 1 and t[e] == "/"):
            return _Candidate(head, end, "url", shape.value + t[e:end], shape.private)
    return _Candidate(head, e, "domain", shape.value, shape.private)


def _glued_file(t: str, s: int, e: int) -> _Candidate | None:
    """`chrome_update.exe100a8f…` (PDF table cells glued together): a file name whose
    extension runs into a hash is cut after the extension."""
    if e - s < 36:
        return None  # no room for "x." + an extension + 32 hex digits
    token = t[s:e]
    dot = token.rfind(".")
    last = token[dot + 1 :]
    for size in (2, 3, 4):
        rest = last[size:]
        if (
            len(rest) in _HASH_BY_LENGTH
            and last[:size].lower() in validators.FILE_EXTENSIONS
            and _HEX_RE.fullmatch(rest)
            and token[:dot]
        ):
            head = _HASH_HEADER.match(token)  # "SHA256" of the column header glued in front
            start = s + head.end() if head and head.end() < dot else s
            return _Candidate(start, s + dot + 1 + size, "file_name", t[start : s + dot + 1 + size])
    return None


_HASH_HEADER = re.compile(r"(?:SHA-?(?:1|256|512)|MD5)(?=[A-Za-z0-9_])")


def _not_a_host(t: str, s: int, e: int, labels: list[str]) -> bool:
    """Precision rules for a name that was not defanged (defanging says "this is a host")."""
    tld = labels[-1].lower()
    if t.startswith("(", e):
        return True  # a call in code: "file.read()", "os.system(cmd)"
    if s > 0 and t[s - 1] == "/" and not t.startswith("//", s - 2):
        # Inside a path (`/j.ad`), or an AV name (`Win32/Agent.gs`): a URL is found as a whole.
        return True
    if tld in validators.WORD_TLDS and not t.startswith("/", e) and labels[0].lower() != "www":
        return not validators.domain_context(t, s)
    return len(labels) == 2 and len(labels[0]) == 1 and tld not in _SHORT_NAME_TLDS


_SHORT_NAME_TLDS = frozenset({"com", "net", "org", "co", "io", "me", "ly"})


def _domain_wins(t: str, s: int, e: int, labels: list[str], defanged: bool) -> bool:
    """`payload.zip`, `run.sh`, `lib.so` are files; `evil[.]zip`, `www.evil.sh`, `C2: evil.sh`
    are hosts. Extensions that are no TLD (`.exe`) are always files."""
    tld = labels[-1].lower()
    if not validators.is_tld(tld):
        return False
    if tld not in validators.AMBIGUOUS_EXTENSIONS:
        return True
    if defanged or t.startswith("/", e) or labels[0].lower() == "www":
        return True
    if s >= 2 and t[s - 2 : s] == "*.":
        return True  # a wildcard: "*.ngrok-free.app"
    if len(labels) >= 3 and labels[-2].lower() not in validators.FILE_EXTENSIONS:
        return True
    return validators.domain_context(t, s)


_IPV4_THEN_NAME = re.compile(
    r"(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})([A-Za-z][A-Za-z0-9-]{0,62}(?:\.[A-Za-z0-9-]{1,63}){1,8})"
)
_IPV4_RANGE = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}-\d{1,3}(?:\.\d{1,3}){3}")


def _ipv4_range(
    t: str, s: int, e: int, r: Refanged, shapes: dict[str, _Shape], tables: dict[int, int]
) -> Iterator[_Candidate]:
    """`185.10.68.1-185.10.68.5`: both ends of an address range are addresses."""
    dash = t.index("-", s, e)
    for start, end in ((s, dash), (dash + 1, e)):
        token = t[start:end]
        shape = shapes.get(token)
        if shape is None:
            shape = shapes[token] = _dotted_shape(token)
        if shape.kind == "ipv4" and not validators.preceded_by_version_word(t, s, tables):
            yield _Candidate(start, end, "ipv4", shape.value, shape.private)


# Public resolvers whose small numbers look like a section number ("8.8.8.8 Google DNS").
_WELL_KNOWN_SMALL_IPS = validators.words(
    "1.1.1.1 1.0.0.1 8.8.8.8 8.8.4.4 9.9.9.9 4.2.2.1 4.2.2.2 4.2.2.3 4.2.2.4 4.2.2.5 4.2.2.6"
)
_HEADING_MARKUP = frozenset("#*_ \t>")


def _numbered_heading(t: str, s: int, e: int, value: str) -> bool:
    """`**1.2.1.1** [Socat]`, `## 2.3.1.4 Persistence`: a numbered heading at the start of a
    line (every number small, then bold/heading markup or a capitalised word), no address."""
    if value in _WELL_KNOWN_SMALL_IPS or any(int(n) > 40 for n in value.split(".")):
        return False
    line = t.rfind("\n", max(0, s - 12), s) + 1
    if (line == 0 and s > 12) or any(c not in _HEADING_MARKUP for c in t[line:s]):
        return False
    if "*" in t[line:s] or "#" in t[line:s]:
        return True
    return t.startswith(" ", e) and t[e + 1 : e + 2].isupper()


# "/24" after a dotted quad, maybe at the end of a sentence ("… 10.0.0.0/8.").
_CIDR_SUFFIX = re.compile(r"/\d{1,2}(?![\w/]|\.[\w/])")


def _classify_ipv4(
    t: str, s: int, e: int, shape: _Shape, r: Refanged, tables: dict[int, int] | None = None
) -> _Candidate | None:
    if s > 0 and t[s - 1] in "-+/\\$~":
        return None  # "~~~~0.0.1.0" (a Windows capability's version), "-1.2.3.4", "$1.2.3.4"
    if t[s:e] == "000.000.000.000" or _numbered_heading(t, s, e, shape.value):
        return None
    if validators.preceded_by_version_word(t, s, tables):
        return None
    if t.startswith("/", e) and _CIDR_SUFFIX.match(t, e):
        return None  # a CIDR block: a network, not an address
    path = patterns.PATH_REST.match(t, e)
    if path:
        end = _trim(t, s, _cut_url(t, e, path.end()), r)
        if t[e] == "/" or "/" in t[e:end]:
            return _Candidate(s, end, "url", shape.value + t[e:end], shape.private)
    return _Candidate(s, e, "ipv4", shape.value, shape.private)


_CIDR6_SUFFIX = re.compile(r"/\d{1,3}(?![\w/]|\.[\w/])")


def _classify_colon(t: str, s: int, p: int, r: Refanged) -> _Candidate | None:
    if s < p and t[s:p].isdigit():
        m = patterns.SSDEEP.match(t, s)
        if m and _ssdeep_block_ok(int(m.group(1))) and m.end() - s >= 20:
            end = m.end()
            if end >= len(t) or not (t[end].isalnum() or t[end] in "/+"):
                return _Candidate(s, end, "ssdeep", m.group())
    m = patterns.MAC.match(t, s)
    if m:
        return _Candidate(s, m.end(), "mac", m.group().lower().replace("-", ":"))
    m = patterns.IPV6.match(t, s)
    if not m:
        return None
    end = m.end()
    if end < len(t) and (t[end].isalnum() or t[end] in "_"):
        return None
    candidate = t[s:end]
    if candidate.endswith(":") and not candidate.endswith("::"):
        candidate, end = candidate[:-1], end - 1
    if t.startswith("/", end) and _CIDR6_SUFFIX.match(t, end):
        return None  # "2001:db8::/32": a network, not an address
    value = validators.ipv6_value(candidate)
    if value is None:
        return None
    return _Candidate(s, end, "ipv6", value, validators.ip_is_private(value))


def _ssdeep_block_ok(size: int) -> bool:
    """ssdeep block sizes are 3 × 2^k."""
    return size >= 3 and size % 3 == 0 and (size // 3) & (size // 3 - 1) == 0


def _resolve(candidates: list[_Candidate]) -> list[_Candidate]:
    """One indicator per stretch of text: higher-priority (then longer, earlier) candidates win.
    CVE/ATT&CK ids and file hashes may also sit inside a URL."""
    result: list[_Candidate] = []
    cluster: list[_Candidate] = []
    cluster_end = -1
    for cand in sorted(candidates):
        if cand.start >= cluster_end and cluster:
            result.extend(cluster if len(cluster) == 1 else _resolve_cluster(cluster))
            cluster = []
        cluster.append(cand)
        cluster_end = max(cluster_end, cand.end) if len(cluster) > 1 else cand.end
    if cluster:
        result.extend(cluster if len(cluster) == 1 else _resolve_cluster(cluster))
    return result


def _resolve_cluster(cluster: list[_Candidate]) -> list[_Candidate]:
    """Overlapping candidates: keep the best, then whatever does not overlap what is kept."""
    kept: list[_Candidate] = []
    nested: list[_Candidate] = []
    for cand in sorted(cluster, key=lambda c: (_priority(c.type), c.start - c.end, c.start)):
        clashes = [k for k in kept if k.start < cand.end and cand.start < k.end]
        if not clashes:
            kept.append(cand)
        elif cand.type in _NESTABLE and all(k.type == "url" for k in clashes):
            nested.append(cand)
    return sorted(kept + nested)


def _priority(kind: str) -> int:
    if kind in _PRIORITY:
        return _PRIORITY[kind]
    if kind in ("domain", "ipv4", "file_name"):
        return _DOTTED_PRIORITY
    if kind in ("ipv6", "mac"):
        return _COLON_PRIORITY
    if kind in ("cve", "attack_technique", "asn"):
        return _ID_PRIORITY
    return _DEFAULT_PRIORITY


_DEFAULT_EXTRACTOR: IocExtractor | None = None


def extract_iocs(
    text: str,
    types: Iterable[str] | None = None,
    *,
    allowlist: bool | Iterable[str] = False,
    include_private: bool = True,
) -> list[Indicator]:
    """Every indicator in `text` (see `IocExtractor` for the options)."""
    global _DEFAULT_EXTRACTOR
    if types is None and allowlist is False and include_private:
        if _DEFAULT_EXTRACTOR is None:
            _DEFAULT_EXTRACTOR = IocExtractor()
        return _DEFAULT_EXTRACTOR.extract(text)
    return IocExtractor(types, allowlist=allowlist, include_private=include_private).extract(text)
