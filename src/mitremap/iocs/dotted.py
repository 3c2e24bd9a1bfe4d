"""Dotted names: domains (and URLs written without a scheme), IPv4 addresses, file names, onion
names and Cisco-style MAC addresses (`0011.2233.44ff`).

A name is read from its first dot: back over the labels before it, then forward with one
bounded pattern. What it is comes first from the token alone (its `Shape`, cached: names recur),
then from the text around it (the precision rules in `validators`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import NamedTuple

from mitremap.iocs import checksums, patterns, validators
from mitremap.iocs.refanging import Refanged
from mitremap.iocs.scanner import (
    ASCII_ALNUM,
    BASE32,
    HASH_BY_LENGTH,
    HEX,
    LABEL_CHARS,
    LOCAL_CHARS,
    Candidate,
    is_cjk,
    is_foreign_letter,
    trim_end,
    walk_left,
)
from mitremap.iocs.urls import cut_url

_IPV4_THEN_NAME = re.compile(
    r"(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})([A-Za-z][A-Za-z0-9-]{0,62}(?:\.[A-Za-z0-9-]{1,63}){1,8})"
)
_IPV4_RANGE = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}-\d{1,3}(?:\.\d{1,3}){3}")
_TLD_THEN_DIGIT = re.compile(r"([A-Za-z]{2,24})\d")
_HASH_HEADER = re.compile(r"(?:SHA-?(?:1|256|512)|MD5)(?=[A-Za-z0-9_])")
_HEX_RUN = re.compile(r"[0-9a-f]+|[0-9A-F]+")
# "/24" after a dotted quad, maybe at the end of a sentence ("… 10.0.0.0/8.").
_CIDR_SUFFIX = re.compile(r"/\d{1,2}(?![\w/]|\.[\w/])")
_LABELS_BEFORE = re.compile(r"[A-Za-z0-9_-]{0,64}")  # read on the reversed text
_DOT_ANCHOR_SEARCH = patterns.DOT_ANCHOR.search
_HOST_MATCH = patterns.HOST.match
_PATH_REST_MATCH = patterns.PATH_REST.match
_PATH_STARTS = frozenset(":/")  # what PATH_REST starts with
_DIGITS = frozenset("0123456789")


class Shape(NamedTuple):
    """What a dotted token is, judged on the token alone (cached: tokens repeat)."""

    kind: str  # "ipv4", "mac", "onion", "file", "ambiguous" (file or host), "domain", ""
    value: str = ""
    private: bool = False
    code_like: bool = False  # AV name, namespace, identifier: a host only when defanged


_NOTHING = Shape("")


@lru_cache(maxsize=16384)
def dotted_shape(token: str) -> Shape:
    """Cached across texts: the same names, files and technique ids recur report after report."""
    labels = token.split(".")
    last, second = labels[-1], labels[-2]
    if last.isdigit() and token.replace(".", "").isdigit():
        value = validators.ipv4_value(token)
        return Shape("ipv4", value, validators.ip_is_private(value)) if value else _NOTHING
    if _ragged(last) or _ragged(second):
        return _NOTHING
    if len(token) == 14 and _CISCO_MAC.fullmatch(token):
        digits = token.replace(".", "").lower()
        return Shape("mac", ":".join(digits[i : i + 2] for i in range(0, 12, 2)))
    lower = token.lower()
    tld = last.lower()
    if tld == "onion":
        return _onion_shape(labels)
    if lower in validators.PRODUCT_NAMES:
        return _NOTHING
    if lower in validators.KNOWN_HOSTS:
        return Shape("domain", lower)
    return _name_shape(token, labels, lower, tld)


_CISCO_MAC = re.compile(r"[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}")


def _ragged(label: str) -> bool:
    """An empty label, or one that starts or ends with a hyphen or an underscore: no host's
    last two labels do, and no file's name and extension."""
    return not label or label[0] in "-_" or label[-1] in "-_"


def _onion_shape(labels: list[str]) -> Shape:
    name = labels[-2].lower()
    valid = (len(name) == 16 and BASE32.issuperset(name)) or checksums.onion_v3_ok(name)
    return Shape("onion", ".".join(labels[-2:]).lower()) if valid else _NOTHING


def _name_shape(token: str, labels: list[str], lower: str, tld: str) -> Shape:
    """A name that is a file, a host, or either (`run.sh`), by its last label."""
    is_file = labels[0] != "" and all(labels[:-1])
    is_tld = validators.is_tld(tld)
    is_host: bool | None = None  # asked only when the answer matters
    if tld in validators.FILE_EXTENSIONS:
        if validators.glued_sentences(labels):
            return _NOTHING  # "exited.So the", "the system.Service Name": no file, no host
        if is_tld and tld in validators.AMBIGUOUS_EXTENSIONS:
            is_host = validators.host_is_domain(lower)
        if not is_tld or is_host is False:
            return Shape("file", token) if is_file else _NOTHING
    if is_host is None:
        is_host = is_tld and validators.host_is_domain(lower)
    if not is_host:
        return _NOTHING
    code_like = validators.looks_like_detection_or_code(labels)
    private = validators.domain_is_private(lower)
    if tld in validators.AMBIGUOUS_EXTENSIONS and is_file:
        return Shape("ambiguous", lower, private, code_like)
    return Shape("domain", lower, private, code_like)


def find_dotted(text: str, refanged: Refanged) -> Iterator[Candidate]:
    """Every dotted name of the text, judged."""
    return _DottedScan(text, refanged).names()


# What `_DottedScan.wrapped_name` answers for the tail of a name broken at a line end that it
# cannot join: no indicator of its own.
_FRAGMENT = (-1, -1, "", "", False)


class _DottedScan:
    """One text's dotted-name pass, with what it learns on the way: the shape of each token
    and where each Markdown table starts (both asked again and again in an appendix)."""

    def __init__(self, text: str, refanged: Refanged) -> None:
        self.text = text
        self.size = len(text)
        self.refanged = refanged
        self.shapes: dict[str, Shape] = {}
        self.tables: dict[int, int] = {}  # a Markdown table row's start -> the table's first row
        # Internationalised names: tries are capped (about one per kB), and a name never
        # reaches back past the dot of the previous try, so the pass stays linear.
        self.idn_tries = 1000 + self.size // 1000
        self.idn_floor = 0
        # The labels before a dot are read on the reversed text: one regex call, not a loop.
        self.backwards = text[::-1]

    def shape(self, token: str) -> Shape:
        shape = self.shapes.get(token)
        if shape is None:
            shape = self.shapes[token] = dotted_shape(token)
        return shape

    def names(self) -> Iterator[Candidate]:
        position = 0
        while True:
            anchor = _DOT_ANCHOR_SEARCH(self.text, position)
            if anchor is None:
                return
            position, found = self.read_at(anchor.start())
            yield from found

    def read_at(self, dot: int) -> tuple[int, Sequence[Candidate]]:
        """The names read from the dot at `dot` (back over the labels before it, then forward),
        and where the scan goes on."""
        text = self.text
        start = self.size - patterns.run_end(_LABELS_BEFORE, self.backwards, self.size - dot)
        if start > 0 and text[start - 1] > "\x7f":
            found = self.foreign_name(start, dot)  # "bücher.de"
            if found is not None:
                return found[1], (found,)
        if start == dot or dot - start > 63:
            return dot + 1, ()
        host = _HOST_MATCH(text, start)  # a label, a dot, an alphanumeric: it matches
        if host is None:
            return dot + 1, ()
        return self.read_word(start, dot, host.end())

    def read_word(self, start: int, dot: int, end: int) -> tuple[int, Sequence[Candidate]]:
        """The dotted word `text[start:end]`: two values glued together, a name broken at a line
        end, or one name; the scan goes on after it (or after the URL it starts)."""
        if self.text[start] in _DIGITS:
            pieces = self.two_in_one(start, dot, end)
            if pieces is not None:
                return end, pieces
        found = None
        if start >= 3 and self.text[start - 1] == "\n":
            found = self.wrapped_name(start, end)
            if found is _FRAGMENT:
                return end, ()
        if found is None:
            found = self.classify(start, end)
        if found is None:
            return end, ()
        return max(end, found[1]), (found,)

    def foreign_name(self, start: int, dot: int) -> Candidate | None:
        """An internationalised name whose ASCII labels before `dot` begin at `start` after a
        non-ASCII character (`bücher.de`), while tries are left."""
        if not self.idn_tries or not is_foreign_letter(self.text[start - 1]):
            return None
        self.idn_tries -= 1
        found = self.idn_name(dot, max(self.idn_floor, dot - 253))
        self.idn_floor = dot + 1
        return found

    def two_in_one(self, start: int, dot: int, end: int) -> list[Candidate] | None:
        """The dotted word `text[start:end]` (first dot at `dot`) when it holds two values: an
        address range, or an address glued to a name. None when it is no such word."""
        text = self.text
        if text.find("-", dot, end) != -1 and _IPV4_RANGE.fullmatch(text, start, end):
            return self.ipv4_range(start, end)
        glued = _IPV4_THEN_NAME.fullmatch(text, start, end)
        if glued is None or not validators.ipv4_value(glued.group(1)):
            return None
        # "5.42.199.83superliner.top" (table cells glued): an address, then a name.
        pieces = (self.classify(*span, glued=True) for span in glued.regs[1:])
        return [found for found in pieces if found is not None]

    def classify(self, start: int, end: int, *, glued: bool = False) -> Candidate | None:
        """A dotted word: an IPv4, a domain (maybe with a path: a URL), a file name, an onion.
        `glued`: the word was cut out of a longer one, so its neighbours are no reason to
        refuse."""
        if not glued and self.word_goes_on(end):
            return None  # part of a longer word, or an e-mail address
        escaped = start > 0 and self.text[start - 1] == "%" and self.url_escape(start, end)
        if escaped:
            # URL-encoded text: "%2F%2Fevil.biz%2F", "Figure%205.png": the name starts after
            # the escape, and a file name there is part of a URL path.
            start += 2
        elif not glued and self.word_before(start):
            return None  # part of a longer word
        token = self.text[start:end]
        if token.count(".") > 12:
            return None  # no host has that many labels; a file name neither
        return self.judge(start, end, self.shape(token), escaped)

    def judge(self, start: int, end: int, shape: Shape, escaped: bool) -> Candidate | None:
        """The token at [start, end) by its shape: a host, an address, another named kind;
        without a shape, a name or a file glued to what follows it."""
        kind = shape.kind
        if kind == "domain":
            return self.host(start, end, shape)
        if kind == "ipv4":
            return self.ipv4(start, end, shape)
        if kind:
            return self.named(start, end, shape, escaped=escaped)
        if self.refanged.has_edit(start, end):
            return self.glued_domain(start, end)
        return self.glued_file(start, end)

    def word_before(self, start: int) -> bool:
        """A letter or a digit (not CJK) right before `start`: the word began further back."""
        if start == 0:
            return False
        before = self.text[start - 1]
        return before.isalnum() and not is_cjk(before)

    def word_goes_on(self, end: int) -> bool:
        """The word does not end at `end` (a letter, a digit or an `@` follows)."""
        if end >= self.size:
            return False
        following = self.text[end]
        return following == "@" or (following.isalnum() and not is_cjk(following))

    def url_escape(self, start: int, end: int) -> bool:
        """The word after a `%` starts with the two hex digits of an escape (`%2Fevil.biz`)."""
        return end - start > 3 and self.text[start] in HEX and self.text[start + 1] in HEX

    def host(self, start: int, end: int, shape: Shape) -> Candidate | None:
        """A name shaped like a host: one unless the text around it says otherwise (defanging
        says it is one)."""
        if not self.refanged.has_edit(start, end):
            if shape.code_like:
                return None
            labels = self.text[start:end].split(".")
            if validators.not_a_host(self.text, start, end, labels):
                return None
        return self.host_or_url(start, end, shape.value, shape.private)

    def named(self, start: int, end: int, shape: Shape, *, escaped: bool) -> Candidate | None:
        """A token shaped like a file, a file or a host, an onion name or a MAC address."""
        text = self.text
        kind = shape.kind
        if kind in ("mac", "onion"):
            return (start, end, kind, shape.value, False)
        if start > 0 and is_cjk(text[start - 1]):
            return None  # "WhatsApp-中文p.msi": a file name may hold CJK characters; no part of one
        in_url_path = escaped or validators.in_url_path(text, start)
        if kind == "file":
            # A file in a URL path ("/wp-admin/admin-ajax.php") is no file indicator.
            return None if in_url_path else (start, end, "file_name", shape.value, False)
        labels = text[start:end].split(".")
        defanged = self.refanged.has_edit(start, end)
        if not validators.domain_wins(text, start, end, labels, defanged):
            return None if in_url_path else (start, end, "file_name", text[start:end], False)
        if not defanged and (shape.code_like or validators.not_a_host(text, start, end, labels)):
            return None
        return self.host_or_url(start, end, shape.value, shape.private)

    def host_or_url(self, start: int, end: int, host: str, private: bool) -> Candidate:
        """A host name, or a URL written without its scheme when a path follows it."""
        url_end = self.url_end(start, end)
        if url_end is not None:
            return (start, url_end, "url", host + self.text[end:url_end], private)
        return (start, end, "domain", host, private)

    def url_end(self, start: int, end: int) -> int | None:
        """Where the URL ends when a path follows the host name at [start, end) (a port or a
        "/" at least); None when the name stands alone."""
        text = self.text
        path = _PATH_REST_MATCH(text, end) if text[end : end + 1] in _PATH_STARTS else None
        if path:
            url_end = trim_end(text, start, cut_url(text, end, path.end()), self.refanged)
            if url_end > end + 1 or (url_end == end + 1 and text[end] == "/"):
                return url_end
        return None

    def ipv4(self, start: int, end: int, shape: Shape) -> Candidate | None:
        """A dotted quad: an address (or a URL with one), unless the text says otherwise."""
        text = self.text
        if start > 0 and text[start - 1] in "-+/\\$~":
            return None  # "~~~~0.0.1.0" (a Windows capability's version), "-1.2.3.4", "$1.2.3.4"
        if text[start:end] == "000.000.000.000" or validators.numbered_heading(
            text, start, end, shape.value
        ):
            return None
        if not self.refanged.has_edit(start, end) and validators.version_context(
            text, start, end, self.tables
        ):
            return None  # a version (defanging says the writer meant an address)
        if text.startswith("/", end) and _CIDR_SUFFIX.match(text, end):
            return None  # a CIDR block: a network, not an address
        path = patterns.PATH_REST.match(text, end)
        if path:
            url_end = trim_end(text, start, cut_url(text, end, path.end()), self.refanged)
            if text[end] == "/" or "/" in text[end:url_end]:
                return (start, url_end, "url", shape.value + text[end:url_end], shape.private)
        return (start, end, "ipv4", shape.value, shape.private)

    def ipv4_range(self, start: int, end: int) -> list[Candidate]:
        """`185.10.68.1-185.10.68.5`: both ends of an address range are addresses."""
        text = self.text
        if validators.version_context(text, start, end, self.tables):
            return []
        dash = text.index("-", start, end)
        ends = []
        for piece_start, piece_end in ((start, dash), (dash + 1, end)):
            shape = self.shape(text[piece_start:piece_end])
            if shape.kind == "ipv4":
                ends.append((piece_start, piece_end, "ipv4", shape.value, shape.private))
        return ends

    def glued_domain(self, start: int, end: int) -> Candidate | None:
        """`evil[.]com185.225.17[.]39` (table cells glued together): a defanged name whose TLD
        runs into digits is cut after the TLD."""
        labels = self.text[start:end].split(".")
        for index, label in enumerate(labels[1:], 1):
            match = _TLD_THEN_DIGIT.match(label)
            if match and validators.is_tld(match.group(1).lower()):
                name_end = start + len(".".join(labels[:index])) + 1 + len(match.group(1))
                shape = self.shape(self.text[start:name_end])
                if shape.kind == "domain" and not shape.code_like:
                    return (start, name_end, "domain", shape.value, shape.private)
                return None
        return None

    def glued_file(self, start: int, end: int) -> Candidate | None:
        """`chrome_update.exe100a8f…` (PDF table cells glued together): a file name whose
        extension runs into a hash is cut after the extension."""
        if end - start < 36:
            return None  # no room for "x." + an extension + 32 hex digits
        token = self.text[start:end]
        dot = token.rfind(".")
        last = token[dot + 1 :]
        for size in (2, 3, 4):
            rest = last[size:]
            if (
                len(rest) in HASH_BY_LENGTH
                and last[:size].lower() in validators.FILE_EXTENSIONS
                and _HEX_RUN.fullmatch(rest)
                and token[:dot]
            ):
                header = _HASH_HEADER.match(token)  # "SHA256" of a column header glued in front
                name_start = start + header.end() if header and header.end() < dot else start
                name_end = start + dot + 1 + size
                return (name_start, name_end, "file_name", self.text[name_start:name_end], False)
        return None

    def wrapped_name(self, start: int, end: int) -> Candidate | None:
        """`evil-<line break>domain[.]com` (PDF text): a host name broken after a hyphen at the
        end of a line is joined again (the hyphen is kept: host names are not hyphenated)."""
        text = self.text
        line_break = start - 2 if text[start - 2] == "\r" else start - 1
        if line_break < 2 or text[line_break - 1] != "-" or text[line_break - 2] not in ASCII_ALNUM:
            return None
        head = walk_left(text, line_break, LABEL_CHARS, 63)
        if head > 0 and (text[head - 1] in ASCII_ALNUM or text[head - 1] == "."):
            return _FRAGMENT  # the name began further back: what follows the break is a piece
        shape = self.shape(text[head:line_break] + text[start:end])
        if shape.kind != "domain" or (shape.code_like and not self.refanged.has_edit(start, end)):
            return _FRAGMENT
        if head > 0 and text[head - 1] == "@":  # an e-mail address: "accounts@freight-<br>…"
            return self.wrapped_email(head, end, shape)
        url_end = self.url_end(start, end)
        if url_end is not None:
            return (head, url_end, "url", shape.value + text[end:url_end], shape.private)
        return (head, end, "domain", shape.value, shape.private)

    def idn_start(self, dot: int, floor: int) -> int:
        """Where the labels before `dot` begin (not before `floor`; not at a dot or a hyphen)."""
        text = self.text
        start = dot
        while start > floor and (_idn_label_char(text[start - 1]) or text[start - 1] == "."):
            start -= 1
        while start < dot and text[start] in ".-":
            start += 1
        return start

    def idn_goes_on(self, start: int, end: int) -> bool:
        """The name at [start, end) is part of something longer: a path, an e-mail address, an
        identifier, a longer word."""
        text = self.text
        if start > 0 and text[start - 1] in "@/\\_":
            return True
        return end < len(text) and (_idn_label_char(text[end]) or text[end] == "@")

    def wrapped_email(self, head: int, end: int, shape: Shape) -> Candidate:
        """The e-mail address whose domain, broken at a line end, starts at `head`."""
        text = self.text
        local = walk_left(text, head - 1, LOCAL_CHARS, 64)
        while local < head - 1 and text[local] in "._%+-":
            local += 1
        if local == head - 1 or (local > 0 and text[local - 1].isalnum()):
            return _FRAGMENT
        value = text[local : head - 1].lower() + "@" + shape.value
        return (local, end, "email", value, shape.private)

    def idn_name(self, dot: int, floor: int) -> Candidate | None:
        """An internationalised name (`bücher.de`, a homoglyph `аpple.com`) whose dot is at
        `dot` (starting at `floor` or later): checked in its Punycode form, reported as
        written."""
        text = self.text
        start = self.idn_start(dot, floor)
        match = patterns.IDN_TAIL.match(text, dot)
        if match is None or start == dot:
            return None
        end = match.end()
        if self.idn_goes_on(start, end):
            return None
        token = text[start:end]
        ascii_name = validators.idna_ascii(token)
        if ascii_name is None:
            return None
        shape = self.shape(ascii_name)
        labels = token.split(".")
        if shape.kind != "domain" or validators.looks_like_detection_or_code(labels):
            return None
        if len(labels) == 2 and len(labels[0]) == 1:
            return None  # "å.jp" (the text column of a hex dump)
        return (start, end, "domain", token.lower(), shape.private)


def _idn_label_char(char: str) -> bool:
    return (char.isalnum() and not is_cjk(char)) or char == "-"
