"""Refanging: undo the defanging styles of threat reports, and keep a map back to the original.

Extraction runs on the refanged copy (so each pattern needs to know one spelling only), and every
span found there is mapped back to the original text through `Refanged.original_span`, so the
offsets of an `Indicator` always point into what the user gave us.

Every marker is searched with a literal-prefixed pattern: text without markers costs a few
milliseconds per megabyte, and no pattern can backtrack.
"""

from __future__ import annotations

import operator
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property, lru_cache
from itertools import accumulate, repeat
from operator import itemgetter, sub

from mitremap.iocs import validators
from mitremap.iocs.patterns import run_end

Edit = tuple[int, int, str]  # (start, end, replacement) in the original text

_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")

# " dot " is only refanged between a word and a TLD, and never after these words ("the dot com").
_DOT_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "this",
        "that",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "from",
        "with",
        "and",
        "or",
        "is",
        "was",
        "be",
        "new",
        "old",
        "big",
    ]
)


# "[.]" "(.)" "{.}" "[dot]": the common case, found in bulk. One pattern per opening bracket:
# a literal first character lets the regex engine skip ahead far faster than a character class.
_PLAIN_DOTS = tuple(re.compile(re.escape(o) + r"(?:\.|dot|DOT)[\])}]") for o in "[({")
_ANY_PLAIN_DOT = re.compile(r"([\[({](?:\.|dot|DOT)[\])}])")  # to split or replace in bulk
# Every other bracketed marker (spaces inside, "@", "at", ":", "://", "/", ","), judged one by one.
_OTHER_BRACKETS = tuple(
    re.compile(
        re.escape(o)
        + r"(?: (?:\.|dot|DOT|Dot|@|at|AT) ?|(?:\.|dot|DOT|Dot|@|at|AT) |(?:Dot|@|at|AT|:|://|/|,))"
        + re.escape(c)
    )
    for o, c in ("[]", "()", "{}")
)
# "[." and ".]" whose other bracket was lost, between two word characters (the literal first,
# so the engine skips ahead; the word character before it checked once found).
_HALF_BRACKETS = (
    re.compile(r"\[\.(?=[A-Za-z0-9])(?<=[A-Za-z0-9]\[\.)"),
    re.compile(r"\.\](?=[A-Za-z0-9])(?<=[A-Za-z0-9]\.\])"),
)


@lru_cache(maxsize=256)  # the patterns allow a few dozen markers
def _marker_value(marker: str) -> str | None:
    """What a bracketed marker stands for ("[ dot ]" -> ".", "[at]" -> "@", "[://]" -> "://")."""
    inner = marker[1:-1].strip().lower()
    if inner in (".", "dot"):
        return "."
    if inner in ("@", "at"):
        return "@"
    return inner


@dataclass(frozen=True)
class Refanged:
    """A refanged copy of a text plus the edits that made it, to map spans back."""

    original: str
    text: str
    _clean_starts: tuple[int, ...]
    _clean_ends: tuple[int, ...]
    _orig_starts: tuple[int, ...]
    _orig_ends: tuple[int, ...]

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Map a span of `text` to the span of `original` that produced it."""
        if not self._clean_starts:
            return start, end
        return self._to_original(start, is_end=False), self._to_original(end, is_end=True)

    def _to_original(self, pos: int, *, is_end: bool) -> int:
        # The last edit starting at or before pos (for an end: strictly before it).
        k = bisect_right(self._clean_starts, pos - 1 if is_end else pos) - 1
        if k < 0:
            return pos
        clean_end = self._clean_ends[k]
        if is_end and pos <= clean_end:
            return self._orig_ends[k]
        if not is_end and pos < clean_end:
            return self._orig_starts[k]
        return pos - clean_end + self._orig_ends[k]

    def original_starts(self, starts: list[int]) -> list[int]:
        """`original_span`'s starts for many spans at once (the bisections run in C)."""
        if not self._clean_starts or not starts:
            return starts
        clean_ends, orig_starts, _, shifts = self._with_sentinel
        edits = map(bisect_right, repeat(self._clean_starts), starts)
        return [
            orig_starts[k] if start < clean_ends[k] else start + shifts[k]
            for start, k in zip(starts, edits, strict=True)
        ]

    def original_ends(self, ends: list[int]) -> list[int]:
        """`original_span`'s ends for many spans at once (the bisections run in C)."""
        if not self._clean_starts or not ends:
            return ends
        clean_ends, _, orig_ends, shifts = self._with_sentinel
        edits = map(bisect_left, repeat(self._clean_starts), ends)
        return [
            orig_ends[k] if end <= clean_ends[k] else end + shifts[k]
            for end, k in zip(ends, edits, strict=True)
        ]

    @cached_property
    def _with_sentinel(self) -> tuple[tuple[int, ...], ...]:
        """The edits' clean ends, original starts and ends, and shifts (original minus clean
        offset after the edit), each with a sentinel edit in front: the k-th edit found by
        bisection (0 when none is before) indexes them directly."""
        shifts = map(sub, self._orig_ends, self._clean_ends)
        return (
            (-1, *self._clean_ends),
            (0, *self._orig_starts),
            (0, *self._orig_ends),
            (0, *shifts),
        )

    def has_edit(self, start: int, end: int) -> bool:
        """True when some character of `text[start:end]` was defanged in the original."""
        k = bisect_right(self._clean_starts, end - 1) - 1
        return k >= 0 and self._clean_ends[k] > start

    def is_edited(self, pos: int) -> bool:
        """True when the character at `pos` of `text` was written differently in the original."""
        k = bisect_right(self._clean_starts, pos) - 1
        return k >= 0 and pos < self._clean_ends[k]


# Defanged scheme words, found from the ":" / "[:" that follows them.
_DEFANGED_SCHEMES = {
    "hxxp": "http", "hxxps": "https", "hxtp": "http", "hxtps": "https", "htxp": "http",
    "htxps": "https", "h**p": "http", "h**ps": "https", "fxp": "ftp", "fxps": "ftps",
    "http": "http", "https": "https", "ftp": "ftp",
}  # fmt: skip
_SCHEME_ANCHORS = (re.compile(r":(?=//|\\\\|/|\])"), re.compile(r"\[:"))
# A whole word of scheme characters just before the anchor (`endpos`), one of those above.
_SCHEME_WORD = re.compile(
    r"(?<![A-Za-z0-9*])(?i:"
    + "|".join(sorted(map(re.escape, _DEFANGED_SCHEMES), key=len, reverse=True))
    + r")\Z"
)
# " dot " and " at " found in one scan (the space after left for the next word to start with).
_SPELLED_OUT = re.compile(r" (dot|DOT|at|AT)(?= )")
_SPACED_DOT = tuple(re.compile(w + r"(?=([A-Za-z]{2,24})\b)") for w in (" dot ", " DOT "))
_SPACED_AT = tuple(
    re.compile(w + r"(?=[A-Za-z0-9-]{1,63} (?:dot|DOT) [A-Za-z])") for w in (" at ", " AT ")
)
_COMMA_HOST = re.compile(r"://([A-Za-z0-9-]{1,63}(?:,[A-Za-z0-9-]{1,63}){1,8})(?=[/:?#\s]|$)")
_BRACKET_AFTER = re.compile(r"://\[(?![0-9A-Fa-f:.]{2,45}\])")


def _scheme_edits(text: str) -> Iterator[Edit]:
    """hxxp, hXXps, h**p, fxp (before ":", "[:" or "[://]"), and "http:\\\\host"."""
    for anchor in _SCHEME_ANCHORS:
        for match in anchor.finditer(text):
            colon = match.start()
            found = _SCHEME_WORD.search(text, max(0, colon - 6), colon)
            if found is None:
                continue
            word = found.group()
            scheme = _DEFANGED_SCHEMES[word.lower()]
            if scheme != word:
                yield found.start(), colon, scheme
            if text.startswith(":\\\\", colon):
                yield colon, colon + 3, "://"


def _at_literal(text: str, literal: str, pattern: re.Pattern[str]) -> Iterator[re.Match[str]]:
    """`pattern` matched where a rare `literal` occurs: str.find scans far faster than the
    regex engine's own search for a literal of several characters."""
    pos = text.find(literal)
    while pos != -1:
        match = pattern.match(text, pos)
        if match:
            yield match
        pos = text.find(literal, pos + 1)


def _widen(text: str, start: int, end: int) -> tuple[int, int]:
    """ "evil [.] com", "john [at] evil": take the spaces around a marker between two words."""
    if (
        start >= 2
        and end + 1 < len(text)
        and text[start - 1] == " "
        and text[end] == " "
        and text[start - 2] in _ALNUM
        and text[end + 1] in _ALNUM
        and not _prose_after(text, end + 1)
    ):
        return start - 1, end + 1
    return start, end


_WORD = re.compile(r"[A-Za-z]{1,3}(?![A-Za-z0-9.-])")


def _prose_after(text: str, pos: int) -> bool:
    """ "a dot (.) is enforced": a short English word after the marker ("is", "in", "to") makes
    it prose explaining the marker, not a spaced-out name."""
    m = _WORD.match(text, pos)
    return m is not None and m.group().lower() in validators.WORD_CCTLDS


def _edits(text: str) -> list[Edit]:
    """The refanging edits other than plain bracketed dots, unsorted."""
    edits = _bracket_edits(text)
    for pattern in _HALF_BRACKETS:
        edits.extend((m.start(), m.end(), ".") for m in pattern.finditer(text))
    edits.extend(_scheme_edits(text))
    edits.extend(_spelled_out_edits(text))
    edits.extend(_comma_host_edits(text))
    # "://[host]": a bracket opened after the scheme and closed later ("hxxp://[evil.com]/").
    edits.extend((m.end() - 1, m.end(), "") for m in _at_literal(text, "://[", _BRACKET_AFTER))
    edits.extend(_markdown_escapes(text))
    return edits


def _bracket_edits(text: str) -> list[Edit]:
    """ "[ . ]", "(dot)", "{at}", "[:]", "[://]", "[/]", "[,]" (a comma only between words)."""
    edits: list[Edit] = []
    for pattern in _OTHER_BRACKETS:
        for m in pattern.finditer(text):
            value = _marker_value(m.group())
            if value == "," and not _between_words(text, m.start(), m.end()):
                continue
            start, end = _widen(text, *m.span()) if value in (".", "@") else m.span()
            edits.append((start, end, "." if value == "," else str(value)))
    return edits


def _spelled_out_edits(text: str) -> Iterator[Edit]:
    """ "evil dot com" (a word, then a TLD that is no English word) and "john at evil dot
    com"."""
    for word in _SPELLED_OUT.finditer(text):
        position = word.start()
        if word.group(1) in ("dot", "DOT"):
            m = _SPACED_DOT[word.group(1) == "DOT"].match(text, position)
            if m and _spelled_out_dot(text, position, m.group(1).lower()):
                yield m.start(), m.end(), "."
        else:
            m = _SPACED_AT[word.group(1) == "AT"].match(text, position)
            if m and position > 0 and text[position - 1] in _ALNUM:
                yield m.start(), m.end(), "@"


def _spelled_out_dot(text: str, position: int, tld: str) -> bool:
    """ " dot " between a word (no stop word: "the dot com") and a TLD that is no English word
    ("dot in")."""
    before = text[max(0, position - 24) : position].rsplit(None, 1)
    return (
        bool(before)
        and before[-1][-1] in _ALNUM
        and before[-1].lower() not in _DOT_STOPWORDS
        and validators.is_tld(tld)
        and tld not in validators.WORD_CCTLDS
    )


def _comma_host_edits(text: str) -> Iterator[Edit]:
    """ "hxxp://evil,com/": commas for the dots of a host, when the last label is a TLD."""
    for m in _at_literal(text, "://", _COMMA_HOST):
        host = m.group(1)
        if validators.is_tld(host.rsplit(",", 1)[1].lower()):
            base = m.start(1)
            yield from ((base + i, base + i + 1, ".") for i, c in enumerate(host) if c == ",")


_WORD_CHARS = _ALNUM | frozenset("_")
_TOKEN_LIMIT = 256
_NON_SPACE = re.compile(r"\S{0,256}")


def _markdown_escapes(text: str) -> Iterator[Edit]:
    """Markdown-escaped underscores inside a word (`consulate\\_ksa@`, `HKEY\\_LOCAL\\_MACHINE`,
    `my\\_tool.exe`): the backslash goes, unless the word is a path with real backslashes
    (`C:\\Users\\john\\_old`)."""
    token_start, token_end, escape_only = -1, -1, False
    pos = text.find("\\_")
    while pos != -1:
        if pos >= token_end:
            low = max(0, pos - _TOKEN_LIMIT)
            token_start = 1 + max(text.rfind(" ", low, pos), text.rfind("\n", low, pos), low - 1)
            token_end = run_end(_NON_SPACE, text, pos)
            token = text[token_start:token_end]
            escape_only = token.count("\\") == token.count("\\_") or token.startswith("HKEY\\_")
        if (
            escape_only
            and pos > 0
            and text[pos - 1] in _WORD_CHARS
            and pos + 2 < len(text)
            and (text[pos + 2] in _ALNUM or text.startswith("\\_", pos + 2))
        ):
            yield pos, pos + 1, ""
        pos = text.find("\\_", pos + 2)


def _between_words(text: str, start: int, end: int) -> bool:
    return start > 0 and end < len(text) and text[start - 1] in _ALNUM and text[end] in _ALNUM


def _plain_dot_columns(text: str) -> tuple[list[int], list[int]]:
    """Starts and ends of every "[.]"-style marker. Markers never overlap (a closing bracket
    opens none), so the sorted matches of the three literal-prefixed patterns are all of them;
    text dense with markers is cut with one `split` instead (fewer objects per marker)."""
    if text.count("[.]") * 64 > len(text):
        pieces = _ANY_PLAIN_DOT.split(text)
        bounds = list(accumulate(map(len, pieces)))
        # pieces alternate gap, marker, gap, ...: a marker starts where the gap before it ends.
        return bounds[0:-1:2], bounds[1::2]
    spans = sorted(m.span() for pattern in _PLAIN_DOTS for m in pattern.finditer(text))
    return [start for start, _ in spans], [end for _, end in spans]


def _widen_spaced(text: str, starts: list[int], ends: list[int]) -> bool:
    """Widen the plain markers written with spaces around them ("evil [.] com") in place;
    True when one was."""
    widened = False
    if not (" [" in text or " (" in text or " {" in text):
        return widened
    for k, start in enumerate(starts):
        if start and text[start - 1] == " ":
            starts[k], ends[k] = _widen(text, start, ends[k])
            widened = widened or starts[k] != start
    return widened


def _without_overlaps(edits: list[Edit]) -> list[Edit]:
    """Sorted edits where markers overlap: the first (then the shortest) one wins."""
    kept: list[Edit] = []
    for edit in edits:
        if not kept or edit[0] >= kept[-1][1]:
            kept.append(edit)
    return kept


def refang_map(text: str) -> Refanged:
    """Refang `text` and keep the edits, so spans of the copy map back to the original."""
    starts, ends = _plain_dot_columns(text)
    replacements = ["."] * len(starts)
    widened = _widen_spaced(text, starts, ends)
    others = _edits(text)
    if others:
        merged = sorted([*zip(starts, ends, replacements, strict=True), *others])
        starts = list(map(itemgetter(0), merged))
        ends = list(map(itemgetter(1), merged))
        if any(map(operator.lt, starts[1:], ends)):
            merged = _without_overlaps(merged)
            starts = list(map(itemgetter(0), merged))
            ends = list(map(itemgetter(1), merged))
        replacements = list(map(itemgetter(2), merged))
    if not starts:
        return Refanged(text, text, (), (), (), ())
    sizes = list(map(len, replacements))
    # Where edit k starts in the copy: its original start plus the growth of all earlier edits.
    growth = accumulate(map(operator.sub, sizes, map(operator.sub, ends, starts)), initial=0)
    clean_starts = list(map(operator.add, starts, growth))
    clean_ends = list(map(operator.add, clean_starts, sizes))
    if others or widened:
        gaps = list(map(text.__getitem__, map(slice, [0, *ends], [*starts, len(text)])))
        pieces: list[str] = [""] * (2 * len(gaps) - 1)
        pieces[0::2] = gaps
        pieces[1::2] = replacements
        clean = "".join(pieces)
    else:
        clean = _ANY_PLAIN_DOT.sub(".", text)
    return Refanged(text, clean, tuple(clean_starts), tuple(clean_ends), tuple(starts), tuple(ends))


def refang(text: str) -> str:
    """Return `text` with every defanged indicator made usable again (`hxxp[:]//a[.]b` → `http://a.b`)."""
    return refang_map(text).text
