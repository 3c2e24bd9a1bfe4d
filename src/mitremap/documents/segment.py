"""Sentence splitting and windowing made for threat reports, keeping character offsets.

Why our own splitter: general-purpose ones (pysbd, nupunkt, syntok; nltk's punkt data cannot be
downloaded) each failed some of the cases threat reports are full of — bullet lists, headings
without a full stop, line-broken PDF text, inline code — and pysbd, the most accurate of them,
takes ~100 ms per 20 KB and gives no offsets. This one works in two passes, both linear in the
text (no regex here can backtrack on long runs):

1. Lines: a blank line, a list item, a Markdown heading, a table row, a fenced code line, a
   line ending in ":" and a long single-token line (a hash, a URL) each start or end a unit.
   A line break inside a sentence is no boundary: wrapped text (as PDFs give) goes on in lower
   case, or after a comma or a function word, or the next word would not have fitted on the
   line. Any other break (a heading, an unmarked list item) ends a unit.
2. Sentences: a full stop, "?" or "!" (with closing quotes/brackets) followed by whitespace ends
   a sentence only when the next word can start one (a capital, a digit, an opening quote, or
   a technical token like `cmd.exe`), the word before is not a known abbreviation ("e.g.",
   "Fig.", "Mr.") or an initial, and the stop is not inside inline code. Since a stop must be
   followed by whitespace, IPs, domains, file names, versions and hashes are never split.

A long text is split in pieces of about `CHUNK_CHARS`, cut at a blank line where there is one
(always a boundary), so memory follows the piece, not the text (millions of one-letter lines
would otherwise hold a Python object per line at once), and `iter_sentences` can stop early:
the analysis reads only as many sentences as its budget allows.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator, Sequence

from mitremap.deadline import Deadline
from mitremap.documents.model import Sentence, Window

MAX_SENTENCE_CHARS = 1500
"""Longer "sentences" (junk, tables extracted without punctuation) are cut at whitespace so
that no window swallows a whole document."""
CHUNK_CHARS = 256 * 1024
"""A text is split in pieces of at least this many characters (see the module docstring)."""
_CHECK_EVERY = 4096  # lines or candidates between two looks at the deadline


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words that a full stop follows without ending the sentence (lower case, without the stop)...
ABBREVIATIONS = _words(
    """e.g i.e eg ie vs cf viz approx resp incl excl mr mrs ms dr prof sr jr st mt rev gen col lt
    sgt capt gov sen rep dept univ assn bros"""
)
# ...and those that do so only before a number ("Fig. 3", "No. 5"; but "the answer was no.").
NUMBER_ABBREVIATIONS = _words(
    """no nos fig figs tab vol vols p pp sec ch eq ex ref refs ca est art
    jan feb mar apr jun jul aug sep sept oct nov dec"""
)
# Words a wrapped line may end with, but a heading or a list item does not.
_FUNCTION_WORDS = _words(
    """a an the and or but nor of to in on at by for from with via into onto as that which
    who whom whose than then this these those its their our your his her is are was were be
    been has have had will would can could may might should must not"""
)

# A sentence-final character, up to three closing quotes/brackets, then one whitespace.
# Every quantifier is bounded, so each start position costs O(1).
_CANDIDATE = re.compile(r"[.!?…][\"'”’)\]]{0,3}\s")
_INLINE_CODE = re.compile(r"`[^`\n]+`")
_NON_SPACE = re.compile(r"\S")
_SPACE = re.compile(r"\s")
_UP_TO_LAST_SPACE = re.compile(r".*\s", re.DOTALL)
_LIST_ITEM = re.compile(
    r"(?:[-*+•◦▪▫‣·–—►]|\(?(?:\d{1,3}(?:\.\d{1,3}){0,3}|[a-zA-Z]|[ivxIVX]{1,5})[.)])\s+\S"
)
_MD_HEADING = re.compile(r"#{1,6}\s")
_INITIALS = re.compile(r"(?:[A-Za-z]\.)*[A-Za-z]")
_MARKER = re.compile(r"\d{1,3}(?:\.\d{1,3}){0,3}|[a-zA-Z]|[ivxIVX]{1,5}")  # "2.13." too
_OPENERS = "\"'“‘([{<*•-–—#"
_SENTENCE_END = ".!?…:;"


def split_sentences(text: str, *, deadline: Deadline | None = None) -> list[Sentence]:
    """Sentences of `text` as [start, end) offsets, whitespace trimmed, empty ones dropped."""
    return list(iter_sentences(text, deadline=deadline))


def iter_sentences(text: str, *, deadline: Deadline | None = None) -> Iterator[Sentence]:
    """`split_sentences`, one piece of the text at a time (stop reading to stop the work);
    `TimeLimitError` when `deadline` passes."""
    deadline = deadline or Deadline.none()
    for offset, end in _pieces(text):
        deadline.check("splitting sentences")
        piece = text[offset:end]
        for start, stop in _split(piece, deadline):
            yield Sentence(start + offset, stop + offset)


def _pieces(text: str) -> Iterator[tuple[int, int]]:
    """[start, end) pieces of `text` of CHUNK_CHARS to twice that, cut after a blank line,
    else after a line break, else after whitespace (a sentence that long is cut anyway)."""
    position, length = 0, len(text)
    while length - position > 2 * CHUNK_CHARS:
        low, high = position + CHUNK_CHARS, position + 2 * CHUNK_CHARS
        end = text.find("\n\n", low, high) + 2
        if end < 2:
            end = text.find("\n", low, high) + 1
        if end < 1:
            space = _SPACE.search(text, low, high)
            end = space.end() if space else low
        yield position, end
        position = end
    yield position, length


def _split(text: str, deadline: Deadline) -> list[tuple[int, int]]:
    cuts, protected = _line_cuts(text, deadline)
    protected = _merged([*protected, *((m.start(), m.end()) for m in _INLINE_CODE.finditer(text))])
    starts = [start for start, _ in protected]
    for number, match in enumerate(_CANDIDATE.finditer(text)):
        if number % _CHECK_EVERY == 0:
            deadline.check("splitting sentences")
        if _ends_sentence(text, match.start(), match.end() - 1, protected, starts):
            cuts.append(match.end() - 1)
    cuts.sort()
    sentences: list[tuple[int, int]] = []
    previous = 0
    for cut in [*cuts, len(text)]:
        if cut > previous:
            sentences.extend(_trimmed(text, previous, cut))
            previous = cut
    return sentences


def window_ranges(n_sentences: int, size: int = 3, stride: int = 1) -> list[tuple[int, int]]:
    """The one definition of windows: [first, last) sentence ranges of `size` sentences, one
    every `stride` sentences (1: overlapping, as the model is calibrated). The last window
    always reaches the last sentence, so every sentence is in at least one window; a text
    shorter than `size` is one window."""
    if size < 1:
        raise ValueError("window size must be at least 1")
    if not 1 <= stride <= size:
        raise ValueError(
            "window stride must be between 1 and the window size (else text is skipped)"
        )
    ranges = []
    for first in range(0, n_sentences, stride):
        ranges.append((first, min(first + size, n_sentences)))
        if first + size >= n_sentences:
            break
    return ranges


def make_windows(sentences: Sequence[Sentence], size: int = 3, stride: int = 1) -> list[Window]:
    """`window_ranges` as `Window`s with their character span."""
    return [
        Window(sentences[a].start, sentences[b - 1].end, tuple(sentences[a:b]))
        for a, b in window_ranges(len(sentences), size, stride)
    ]


def _line_cuts(text: str, deadline: Deadline) -> tuple[list[int], list[tuple[int, int]]]:
    """Offsets where a line-level unit starts or ends, and the fenced code ranges."""
    cuts: list[int] = []
    fences: list[tuple[int, int]] = []
    lines = text.split("\n")
    stripped_lines = [line.strip() for line in lines]
    wrap_width = _wrap_width(stripped_lines)
    in_fence = -1  # offset where the open fence started, or -1
    start = 0
    for index, line in enumerate(lines):
        if index % _CHECK_EVERY == 0:
            deadline.check("splitting sentences")
        stripped = stripped_lines[index]
        end = start + len(line)
        following = stripped_lines[index + 1] if index + 1 < len(lines) else ""
        previous = stripped_lines[index - 1] if index else ""
        if stripped.startswith(("```", "~~~")):
            if in_fence < 0:
                in_fence = start
            else:
                fences.append((in_fence, end))
                in_fence = -1
            cuts.extend((start, end))
        elif in_fence >= 0 or not stripped:
            cuts.append(start)  # a code line or a blank line
        else:
            if _starts_unit(stripped, previous):
                cuts.append(start)
            if _ends_unit(stripped, following, wrap_width):
                cuts.append(end)
        start = end + 1
    if in_fence >= 0:
        fences.append((in_fence, len(text)))
    return cuts, fences


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, non-overlapping ranges (so that one bisect finds the range around a position)."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _wrap_width(lines: list[str]) -> float:
    """Line length beyond which a break looks like wrapping: 3/4 of the usual longest lines."""
    lengths = sorted(len(line) for line in lines if line)
    if not lengths:
        return 0.0
    return 0.75 * max(40, lengths[round(0.9 * (len(lengths) - 1))])


def _starts_unit(line: str, previous: str) -> bool:
    """Whether `line` starts a unit: a list item, a heading, a table row, or a long token
    (a hash, a URL) unless the line before goes on into it."""
    return bool(
        _LIST_ITEM.match(line)
        or _MD_HEADING.match(line)
        or line.startswith("|")
        or (_is_token_line(line) and not _goes_on(previous))
    )


def _ends_unit(line: str, following: str, wrap_width: float) -> bool:
    """Whether the break after `line` ends a unit. A break inside a sentence (wrapped text, as
    PDFs give) is not a boundary: the next line goes on in lower case, the line ends with a
    comma or a function word, or the next word would not have fitted on the line."""
    if _MD_HEADING.match(line) or line.startswith("|") or line.endswith(":"):
        return True
    if not following:
        return False  # a blank line follows
    if _is_token_line(following) and not _goes_on(line):
        return True
    if _is_token_line(line):  # a list of tokens, or a token inside a sentence
        return not following[0].islower()
    if line[-1] in _SENTENCE_END or following[0].islower() or _goes_on(line):
        return False  # the sentence rule decides, or the sentence goes on
    next_word = following.split(maxsplit=1)[0]
    return len(line) + 1 + len(next_word) <= wrap_width


def _goes_on(line: str) -> bool:
    """A line that ends with a comma or a function word: its sentence goes on."""
    return line[-1:] == "," or (line.split()[-1:] or [""])[0].lower() in _FUNCTION_WORDS


def _is_token_line(line: str) -> bool:
    """A long line without spaces: a hash, a URL or a path in a list of indicators."""
    return len(line) >= 16 and _SPACE.search(line) is None


def _ends_sentence(
    text: str, stop: int, after: int, protected: list[tuple[int, int]], starts: list[int]
) -> bool:
    """Whether the stop character at `stop` (whitespace at `after`) ends a sentence."""
    index = bisect.bisect_right(starts, stop) - 1
    if index >= 0 and protected[index][1] > stop:
        return False  # inside code
    following = _NON_SPACE.search(text, after)
    if following is None:
        return True
    if text[stop] == "." and _abbreviated(text, stop, following.group()):
        return False
    return _opens_sentence(text, following.start())


def _abbreviated(text: str, stop: int, following: str) -> bool:
    """Whether the full stop at `stop` ends an abbreviation ("e.g.", "No. 5" before a digit),
    an initial ("J.") or a list marker ("1." at a line's start), not a sentence; `following`:
    the next character that is not a space."""
    before = text[max(0, stop - 40) : stop]
    word = before.split()[-1] if before and not before[-1].isspace() else ""
    word_start = stop - len(word)
    word = word.lstrip(_OPENERS).lower()
    return bool(
        word in ABBREVIATIONS
        or (word in NUMBER_ABBREVIATIONS and following.isdigit())
        or _INITIALS.fullmatch(word)
        or (_MARKER.fullmatch(word) and _at_line_start(text, word_start))  # "1." of a list
    )


def _opens_sentence(text: str, start: int) -> bool:
    """Whether the word at `start` can open a sentence: a capital, a digit, an opening quote
    or bracket; in lower case, only a file or tool name ("cmd.exe runs ...")."""
    char = text[start]
    if char.isupper() or char.isdigit() or char in _OPENERS:
        return True
    if char.islower():
        token = text[start : start + 60].split(maxsplit=1)[0]
        token = token.rstrip(".,;:!?")
        return any(c in "._\\/" or c.isdigit() for c in token)
    return False


def _at_line_start(text: str, position: int) -> bool:
    """Only spaces (at most 20) between the line start and `position`."""
    head = text[max(0, position - 20) : position].rsplit("\n", 1)
    return not head[-1].strip() and (len(head) == 2 or position <= 20)


def _trimmed(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The whitespace-trimmed span, cut at whitespace into pieces of at most MAX_SENTENCE_CHARS."""
    pieces = []
    while True:
        while start < end and text[start].isspace():
            start += 1
        stop = end
        if stop - start > MAX_SENTENCE_CHARS:
            limit = start + MAX_SENTENCE_CHARS
            last_space = _UP_TO_LAST_SPACE.match(text, start + 1, limit)
            stop = last_space.end() - 1 if last_space else limit
        piece_end = stop
        while piece_end > start and text[piece_end - 1].isspace():
            piece_end -= 1
        if piece_end > start:
            pieces.append((start, piece_end))
        if stop >= end:
            return pieces
        start = stop
