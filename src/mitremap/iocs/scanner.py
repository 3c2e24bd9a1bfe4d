"""What every pass shares: the `Candidate` it yields, character classes, and the few moves
that read text around an anchor (find a literal, walk left, trim what ends a sentence).

Passes work on the refanged copy of the text; a candidate's offsets point into that copy and
the extractor maps them back to the original.
"""

from __future__ import annotations

from collections.abc import Iterator

from mitremap.iocs.refanging import Refanged

ASCII_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
LABEL_CHARS = ASCII_ALNUM | frozenset("_-")  # a host label
LOCAL_CHARS = ASCII_ALNUM | frozenset("._%+-")  # the local part of an e-mail address
HEX = frozenset("0123456789abcdefABCDEF")
BASE32 = frozenset("abcdefghijklmnopqrstuvwxyz234567")
# What ends a sentence or a quotation, dropped from the end of a span.
TRAILING = ".,;:!?'\"*“”‘’«»"
CLOSERS = {")": "(", "]": "[", "}": "{", ">": "<"}
# What may stand before a path, a user agent or a name: space, quotes, brackets, separators.
PATH_OPENERS = frozenset(" \t\r\n\"'(<[=:,;`|>")
WORD_START = frozenset(" \t\r\n\"'(<[=,;`|>")
HASH_BY_LENGTH = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}


# A possible indicator: (start, end, type, normalised value, private), offsets in the refanged
# text. A plain tuple: passes make tens of thousands of them on an indicator appendix, and a
# tuple is built in C (a NamedTuple's constructor is Python code, seven times slower).
Candidate = tuple[int, int, str, str, bool]


def find_all(text: str, literal: str) -> Iterator[int]:
    """Positions of a literal: str.find is the fastest scan Python has."""
    position = text.find(literal)
    while position != -1:
        yield position
        position = text.find(literal, position + 1)


def walk_left(text: str, position: int, chars: frozenset[str], limit: int) -> int:
    """Walk left from `position` while the characters are in `chars` (at most `limit`)."""
    start = position
    stop = max(0, position - limit)
    while start > stop and text[start - 1] in chars:
        start -= 1
    return start


def trim_end(text: str, start: int, end: int, refanged: Refanged, trailing: str = TRAILING) -> int:
    """Drop what ends a sentence or closes a parenthesis from the end of a span: `.` `,` `)`.
    A character that was defanged in the original (`evil[.]`) is part of the span."""
    while end > start:
        last = text[end - 1]
        if last in trailing and not refanged.is_edited(end - 1):
            end -= 1
        elif last in CLOSERS:
            span = text[start:end]
            if span.count(CLOSERS[last]) < span.count(last):
                end -= 1
            else:
                break
        else:
            break
    return end


def line_continues(text: str, position: int) -> int | None:
    """Where the next line starts when a line break is at `position` and the next line goes on
    with a word character, else None."""
    if text.startswith("\r\n", position):
        following = position + 2
    elif text.startswith("\n", position):
        following = position + 1
    else:
        return None
    return following if following < len(text) and text[following] in LABEL_CHARS else None


def is_cjk(char: str) -> bool:
    """Chinese, Japanese and Korean text has no spaces: its characters end a name."""
    return (
        "\u2e80" <= char <= "\u9fff" or "\uac00" <= char <= "\ud7af" or "\uf900" <= char <= "\ufaff"
    )


def is_word_char(char: str) -> bool:
    """A character that continues a word (so a name glued to it is no name)."""
    return char.isalnum() and not is_cjk(char)


def is_foreign_letter(char: str) -> bool:
    """A non-ASCII letter that may belong to an internationalised name (`ü`, `а`)."""
    return not char.isascii() and char.isalnum() and not is_cjk(char)
