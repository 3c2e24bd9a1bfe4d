"""The extractor: refang once, run every pass, resolve overlaps, map offsets back.

Each pass looks for its own anchor in the refanged text (`://`, `@`, a backslash, `.x`, a colon,
a long alphanumeric run, a literal such as `CVE-`), reads the candidate with a bounded pattern
from there, and judges it. The resolver then makes one stretch of text one indicator (a URL's
host is not also a domain), with a fixed priority between types.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from operator import itemgetter

from mitremap.deadline import Deadline
from mitremap.errors import MitreMapError
from mitremap.iocs import colons, dotted, ids, paths, runs, urls
from mitremap.iocs.allowlist import Allowlist, default_allowlist, user_allowlist
from mitremap.iocs.model import IOC_TYPES, Indicator
from mitremap.iocs.refanging import Refanged, refang_map
from mitremap.iocs.resolver import resolve
from mitremap.iocs.scanner import Candidate

Pass = Callable[[str, Refanged], Iterable[Candidate]]

# Every pass, each with its own anchor. Their order does not matter: the resolver decides.
PASSES: tuple[Pass, ...] = (
    urls.find_urls,
    urls.find_emails,
    paths.find_registry_keys,
    paths.find_windows_paths,
    paths.find_unix_paths,
    ids.find_arns,
    ids.find_user_agents,
    ids.find_yara_rules,
    runs.find_runs,
    dotted.find_dotted,
    colons.find_colon_names,
    colons.find_dashed_macs,
    ids.find_cves,
    ids.find_attack_ids,
    ids.find_asns,
)

_new_object = object.__new__
_SPACE = re.compile(r"\s")

PIECE_CHARS = 1 << 20
"""Text is read in pieces of at least this size (see `IocExtractor.extract`)."""
MAX_INDICATORS = 100_000
"""Indicators a report's analysis lists at most (about 150 MB of results and their JSON; a
text with more is a feed, not a report): past them the rest is left out, with a note."""


def _pieces(text: str, size: int) -> Iterator[tuple[int, int]]:
    """[start, end) pieces of `text` of `size` to twice that, cut after a line break (no
    indicator spans one), else after whitespace."""
    position, length = 0, len(text)
    while length - position > 2 * size:
        low, high = position + size, position + 2 * size
        end = text.find("\n", low, high) + 1
        if end < 1:
            space = _SPACE.search(text, low, high)
            end = space.end() if space else high
        yield position, end
        position = end
    yield position, length


def _indicator(kind: str, value: str, raw: str, start: int, end: int, private: bool) -> Indicator:
    """An `Indicator` built without the frozen dataclass's `__init__`, whose six
    `object.__setattr__` calls cost as much as finding some of the indicators."""
    indicator = _new_object(Indicator)
    indicator.__dict__.update(
        type=kind, value=value, raw=raw, start=start, end=end, private=private
    )
    return indicator


class IocExtractor:
    """Extract indicators of compromise from report text.

    `types` limits the result to some of `IOC_TYPES`; `allowlist` drops well-known benign
    values (True: a built-in list, plus MISP's warning lists with `mitremap[warninglists]`; or
    your own domains/IPs); `include_private=False` drops private and documentation addresses.
    Construct once and reuse: it holds no per-text state.
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
        self.allowlist: Allowlist | None = None
        if allowlist is True:
            self.allowlist = default_allowlist()
        elif allowlist is not False:
            self.allowlist = user_allowlist(allowlist)
        self.include_private = include_private

    def extract(
        self, text: str, *, deadline: Deadline | None = None, limit: int | None = None
    ) -> list[Indicator]:
        """Every indicator occurrence in `text`, in order of position (the first `limit`
        of them); `TimeLimitError` when `deadline` passes.

        A long text is read a piece of about `PIECE_CHARS` at a time, cut after a line
        break (no indicator spans one), so memory follows the piece and what is kept, and
        the work stops once `limit` indicators are found."""
        deadline = deadline or Deadline.none()
        found: list[Indicator] = []
        for start, end in _pieces(text, PIECE_CHARS):
            found.extend(self._extract(text, start, end, deadline))
            if limit is not None and len(found) >= limit:
                return found[:limit]
        return found

    def _extract(self, whole: str, offset: int, end: int, deadline: Deadline) -> list[Indicator]:
        text = whole[offset:end]
        refanged = refang_map(text)
        clean = refanged.text
        candidates: list[Candidate] = []
        for find in PASSES:
            deadline.check("looking for indicators")
            candidates.extend(find(clean, refanged))
        kept = resolve(candidates)
        if (
            len(self.types) < len(IOC_TYPES)
            or self.allowlist is not None
            or not self.include_private
        ):
            kept = [candidate for candidate in kept if self._wanted(candidate)]
        starts = refanged.original_starts(list(map(itemgetter(0), kept)))
        ends = refanged.original_ends(list(map(itemgetter(1), kept)))
        return [
            _indicator(kind, value, text[start:stop], start + offset, stop + offset, private)
            for (_, _, kind, value, private), start, stop in zip(kept, starts, ends, strict=True)
        ]

    def _wanted(self, candidate: Candidate) -> bool:
        """A candidate of a wanted type, private only when asked for, not allowlisted."""
        kind, value, private = candidate[2:]
        if kind not in self.types or (private and not self.include_private):
            return False
        return self.allowlist is None or (kind, value) not in self.allowlist


_DEFAULT_EXTRACTOR: IocExtractor | None = None


def extract_iocs(
    text: str,
    types: Iterable[str] | None = None,
    *,
    allowlist: bool | Iterable[str] = False,
    include_private: bool = True,
    deadline: Deadline | None = None,
    limit: int | None = None,
) -> list[Indicator]:
    """Every indicator in `text`, the first `limit` of them (see `IocExtractor`)."""
    global _DEFAULT_EXTRACTOR
    if types is None and allowlist is False and include_private:
        if _DEFAULT_EXTRACTOR is None:
            _DEFAULT_EXTRACTOR = IocExtractor()
        return _DEFAULT_EXTRACTOR.extract(text, deadline=deadline, limit=limit)
    extractor = IocExtractor(types, allowlist=allowlist, include_private=include_private)
    return extractor.extract(text, deadline=deadline, limit=limit)
