"""A report's metadata, checked and normalised: its TLP marking, tags, source organisation and
publication date (found in the text where the report states it), and the normalised hash by
which the same report added twice is recognised.

Why the publication date is looked for only next to a word that says what it is ("Published",
"Posted on", a front matter `date:`): a report names many dates (when an attack happened, when
a CVE was disclosed), and a wrong publication date is worse than none — the analyst sets it.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from datetime import date, datetime

from mitremap.web.workspace.errors import InvalidError
from mitremap.web.workspace.models import TLP_LEVELS

DEFAULT_TLP = "amber"
"""New reports' marking unless an admin chooses another (`DEFAULT_TLP_SETTING`)."""
DEFAULT_TLP_SETTING = "default_tlp"
MAX_TAGS = 20
MAX_TAG_CHARS = 64
HEAD_CHARS = 4000  # where a report states its date: its first lines

_MONTHS = {
    m: i + 1
    for i, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ]
    )
    for m in names
}
_MONTH = r"(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DATE = (
    r"(?:(?P<iso>\d{4}[-/]\d{1,2}[-/]\d{1,2})"
    rf"|{_MONTH}\s+(?P<day1>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<year1>\d{{4}})"
    rf"|(?P<day2>\d{{1,2}})(?:st|nd|rd|th)?\s+{_MONTH.replace('month', 'month2')}\s+(?P<year2>\d{{4}}))"
)
_STATED = re.compile(
    # a line that starts with what the date is ("Published: …", "Date: …", "**Posted** on …"),
    r"(?:(?:^|\n)[*_#>\s]*(?:date|(?:originally\s+)?(?:published|posted)|"
    r"publication\s+date|release\s+date|date\s+published)[*_\s]*(?:on\b)?[*_\s]*"
    r"[:\-–—]?[*_\s]*"
    # or, anywhere in the first lines, "published on …" / "posted on …"
    r"|\b(?:published|posted)\s+on\s+)" + _DATE,
    re.IGNORECASE,
)


def check_tlp(value: str) -> str:
    tlp = value.strip().lower().removeprefix("tlp:")
    if tlp == "white":  # TLP 1.0's name for CLEAR
        tlp = "clear"
    if tlp not in TLP_LEVELS:
        raise InvalidError(f"unknown TLP {value!r}; use one of: {', '.join(TLP_LEVELS)}")
    return tlp


def clean_tags(tags: Iterable[str] | str) -> list[str]:
    """Tags as given (a list, or one string split at commas): trimmed, inner spaces single,
    duplicates (ignoring case) dropped, each at most `MAX_TAG_CHARS`, at most `MAX_TAGS`."""
    items = tags.split(",") if isinstance(tags, str) else list(tags)
    seen: dict[str, str] = {}
    for item in items:
        tag = " ".join(str(item).split())
        if not tag:
            continue
        if len(tag) > MAX_TAG_CHARS:
            raise InvalidError(f"a tag is at most {MAX_TAG_CHARS} characters: {tag[:20]!r}…")
        seen.setdefault(tag.casefold(), tag)
    if len(seen) > MAX_TAGS:
        raise InvalidError(f"at most {MAX_TAGS} tags a report")
    return list(seen.values())


def parse_date(value: str | None) -> date | None:
    """An ISO date (`2024-03-12`, or the date part of a timestamp); empty → None."""
    if value is None or not value.strip():
        return None
    try:
        return datetime.fromisoformat(value.strip()[:10]).date()
    except ValueError:
        raise InvalidError(f"{value!r} is not a date; write it as YYYY-MM-DD") from None


def stated_date(text: str, reader_date: str = "") -> date | None:
    """The publication date a report states: the reader's (from the document's own metadata),
    else one written next to "Published", "Posted on", "Date:" … in its first lines."""
    if reader_date:
        try:
            return parse_date(reader_date)
        except InvalidError:
            pass
    for match in _STATED.finditer(text[:HEAD_CHARS]):
        found = _date_of(match)
        if found is not None:
            return found
    return None


def _date_of(match: re.Match[str]) -> date | None:
    try:
        if match["iso"]:
            year, month, day = (int(x) for x in re.split(r"[-/]", match["iso"]))
        elif match["year1"]:
            year, month, day = (
                int(match["year1"]),
                _MONTHS[match["month"].lower()],
                int(match["day1"]),
            )
        else:
            year, month, day = (
                int(match["year2"]),
                _MONTHS[match["month2"].lower()],
                int(match["day2"]),
            )
        found = date(year, month, day)
    except (ValueError, KeyError):
        return None
    return found if 1990 <= found.year <= date.today().year + 1 else None


def text_hash(text: str) -> str:
    """SHA-256 of the text normalised: Unicode NFKC, case folded, every run of white space one
    space, so the same report pasted, uploaded or imported by URL hashes alike."""
    normal = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return hashlib.sha256(normal.encode("utf-8", "surrogatepass")).hexdigest()
