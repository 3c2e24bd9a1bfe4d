"""A report's metadata, checked and normalised: its TLP marking, tags, source organisation and
publication date (`stated_date`, from the core: the CLI's exports use it too), and the
normalised hash by which the same report added twice is recognised.
"""

from __future__ import annotations

import hashlib
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


def text_hash(text: str) -> str:
    """SHA-256 of the text normalised: Unicode NFKC, case folded, every run of white space one
    space, so the same report pasted, uploaded or imported by URL hashes alike."""
    normal = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return hashlib.sha256(normal.encode("utf-8", "surrogatepass")).hexdigest()
