"""The date a report says it was published, found in its text.

Why only next to a word that says what the date is ("Published", "Posted on", a front matter
`date:`): a report names many dates (when an attack happened, when a CVE was disclosed), and a
wrong publication date is worse than none — exports then fall back to the time of the analysis,
and in the workspace the analyst sets it.
"""

from __future__ import annotations

import re
from datetime import date, datetime

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


def stated_date(text: str, reader_date: str = "") -> date | None:
    """The publication date a report states: the reader's (from the document's own metadata),
    else one written next to "Published", "Posted on", "Date:" … in its first lines."""
    if reader_date:
        try:
            return datetime.fromisoformat(reader_date.strip()[:10]).date()
        except ValueError:
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
