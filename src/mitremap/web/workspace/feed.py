"""The workspace as a TAXII 2.1 feed: which reviewed reports each collection holds, the STIX
objects they publish, and since when.

A reviewed report publishes the objects of its reviewed STIX export (accepted and added
techniques as ATT&CK's own attack-patterns, accepted or unreviewed non-benign indicators,
the report's TLP marking; rejected and known-benign values left out). Those ids are stable, so
the same object in two reports is one object, and a report changed after its review publishes
new versions or new objects beside the ones it kept.

Why a ledger (`models.FeedObject`) and not bundles made on each request: a TAXII client polls
with `added_after`, so an object version's `date_added` must be when the feed first served it,
and must not move while the report keeps it. `Feed.sync` brings the ledger up to date before
every read: reports that became reviewed (or changed since) are exported and their new object
versions dated now; objects a report no longer has, and reports no longer reviewed, leave it;
a report whose TLP or tags changed is published afresh (it joined other collections, whose
clients must see it as new). Exporting happens outside any write transaction; the writes then
run one sync at a time (SQLite's write lock, a PostgreSQL advisory lock), each dated after it
holds the lock, so dates are committed in order and a client's last `date_added` is a safe
place to continue from.

TLP:RED reports are never exported, stored or served: no collection holds them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, exists, func, or_, select, text, tuple_
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from mitremap.errors import DataError, MissingExtraError, MitreMapError
from mitremap.web.workspace.errors import BadRequestError, NotFoundError
from mitremap.web.workspace.models import (
    TLP_LEVELS,
    FeedObject,
    FeedReport,
    Report,
    ReportTag,
    utcnow,
)

if TYPE_CHECKING:
    from mitremap.attack import AttackKB
    from mitremap.web.workspace.reports import Describe
    from mitremap.web.workspace.store import Store

STIX_MEDIA_TYPE = "application/stix+json;version=2.1"
SPEC_VERSION = "2.1"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
SHARED_TLP = tuple(t for t in TLP_LEVELS if t != "red")
"""The markings a report may carry and still be in the feed."""
_LOCK_KEY = 0x6D6D7461786969  # PostgreSQL advisory lock: one feed sync at a time
_TYPE_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-")


@dataclass(frozen=True)
class FeedCollection:
    """A TAXII collection: the reviewed reports, or those of one TLP level or one tag."""

    alias: str
    title: str
    description: str
    tlp: str | None = None
    tag: str | None = None

    @property
    def id(self) -> str:
        """A UUID made from the alias: the same collection has the same id everywhere."""
        digest = hashlib.sha256(f"mitremap-taxii\x1f{self.alias}".encode()).digest()
        return str(uuid.UUID(bytes=digest[:16], version=4))

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "alias": self.alias,
            "can_read": True,
            "can_write": False,
            "media_types": [STIX_MEDIA_TYPE],
        }

    def members(self) -> list[ColumnElement[bool]]:
        """Which reports it holds, read live: reviewed, never TLP:RED, then its own filter."""
        where = [Report.status == "reviewed", Report.tlp.in_(SHARED_TLP)]
        if self.tlp is not None:
            where.append(Report.tlp == self.tlp)
        if self.tag is not None:
            where.append(
                exists().where(
                    ReportTag.report_id == Report.id, func.lower(ReportTag.tag) == self.tag.lower()
                )
            )
        return where


REVIEWED = FeedCollection(
    "reviewed",
    "Reviewed reports",
    "Every report an analyst marked reviewed, as STIX 2.1: accepted and added ATT&CK "
    "techniques, indicators as reviewed, marked with the report's TLP (TLP:RED never).",
)
BY_TLP = tuple(
    FeedCollection(
        f"tlp-{level.replace('+', '-')}",
        f"Reviewed reports marked TLP:{level.upper()}",
        f"The reviewed reports marked TLP:{level.upper()}.",
        tlp=level,
    )
    for level in SHARED_TLP
)


def tag_collection(tag: str) -> FeedCollection:
    return FeedCollection(
        f"tag-{tag.lower()}",
        f"Reviewed reports tagged {tag}",
        f"The reviewed reports tagged {tag!r} (TLP:RED never).",
        tag=tag,
    )


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the `next` a client sends back (opaque to it)."""

    added: datetime
    object_id: str
    version: str

    def token(self) -> str:
        raw = f"{stamp(self.added)}|{self.object_id}|{self.version}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def parse(cls, token: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            added, object_id, version = raw.split("|")
            return cls(parse_time(added), object_id, version)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise BadRequestError("'next' is not a value this server gave") from None


@dataclass(frozen=True)
class FeedQuery:
    """TAXII's filters and paging: `added_after`, `match[id]`, `match[type]`,
    `match[version]` ("last" unless asked: first, all, or timestamps), `match[spec_version]`,
    `limit` and `next`."""

    added_after: datetime | None = None
    ids: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    versions: tuple[str, ...] = ("last",)
    spec_versions: tuple[str, ...] = ()
    limit: int = DEFAULT_LIMIT
    after: Cursor | None = None

    @classmethod
    def parse(cls, **raw: str | None) -> FeedQuery:
        """From the query string (`BadRequestError`, 400, for a value that is not one)."""
        versions = _items(raw.get("version")) or ("last",)
        for v in versions:
            if v not in ("first", "last", "all"):
                parse_time(v)
        types = _items(raw.get("type"))
        if any(not set(t) <= _TYPE_CHARS for t in types):
            raise BadRequestError("match[type] takes STIX type names: indicator,attack-pattern")
        added = raw.get("added_after")
        nxt = raw.get("next")
        return cls(
            added_after=parse_time(added) if added else None,
            ids=_items(raw.get("id")),
            types=types,
            versions=versions,
            spec_versions=_items(raw.get("spec_version")),
            limit=_limit(raw.get("limit")),
            after=Cursor.parse(nxt) if nxt else None,
        )


@dataclass(frozen=True)
class Entry:
    """One object version in a collection: TAXII's manifest record."""

    id: str
    version: str
    modified: datetime
    added: datetime

    def manifest(self) -> dict[str, str]:
        return {
            "id": self.id,
            "date_added": stamp(self.added),
            "version": self.version,
            "media_type": STIX_MEDIA_TYPE,
        }


@dataclass(frozen=True)
class Page:
    """A page of entries (oldest added first), and the `next` that continues it."""

    entries: list[Entry]
    more: bool
    next: str | None = None
    objects: list[dict[str, Any]] | None = None

    def headers(self) -> dict[str, str]:
        if not self.entries:
            return {}
        return {
            "X-TAXII-Date-Added-First": stamp(self.entries[0].added),
            "X-TAXII-Date-Added-Last": stamp(self.entries[-1].added),
        }

    def envelope(self, key: str, items: Sequence[Any]) -> dict[str, Any]:
        """TAXII's envelope: empty when there is nothing (as the reference server answers)."""
        if not items:
            return {}
        out: dict[str, Any] = {"more": self.more}
        if self.next:
            out["next"] = self.next
        out[key] = list(items)
        return out


class Feed:
    """The feed over a workspace's store (one per app: it holds the sync lock and the ATT&CK
    knowledge the exports are read in)."""

    def __init__(self, store: Store, describe: Callable[[], Describe]) -> None:
        self.store = store
        self.describe = describe
        self._lock = threading.Lock()
        self._kbs: dict[str, AttackKB] = {}

    # ---- collections -------------------------------------------------------------------------

    def collections(self) -> list[FeedCollection]:
        """The reviewed reports, one per TLP level (red aside), one per tag in use."""
        with self.store.db.session(read=True) as s:
            rows = s.scalars(
                select(ReportTag.tag)
                .join(Report, Report.id == ReportTag.report_id)
                .where(*REVIEWED.members())
                .distinct()
            )
            tags: dict[str, str] = {}
            for tag in rows:
                tags.setdefault(tag.lower(), tag)
        return [REVIEWED, *BY_TLP, *(tag_collection(tags[k]) for k in sorted(tags))]

    def collection(self, ident: str) -> FeedCollection:
        """A collection by its id or alias (404 when there is none)."""
        for found in self.collections():
            if ident in (found.id, found.alias):
                return found
        raise NotFoundError(f"no collection {ident[:80]!r}; GET collections/ lists them")

    # ---- reading -----------------------------------------------------------------------------

    def page(
        self,
        collection: FeedCollection,
        query: FeedQuery,
        *,
        object_id: str | None = None,
        bodies: bool = False,
    ) -> Page:
        """A page of the collection's object versions (one object's with `object_id`; 404
        when it holds no such object), with the objects themselves when `bodies`."""
        self.sync()
        with self.store.db.session(read=True) as s:
            if object_id is not None and not _holds(s, collection, object_id):
                raise NotFoundError(f"the collection holds no object {object_id[:120]!r}")
            rows = _entries(s, collection, query, object_id)
            more = len(rows) > query.limit
            entries = rows[: query.limit]
            following = _cursor(entries[-1]).token() if more else None
            objects = _bodies(s, collection, entries) if bodies else None
        return Page(entries, more, following, objects)

    # ---- keeping the ledger up to date ---------------------------------------------------------

    def sync(self) -> None:
        """Publish what changed since the last sync (see the module docstring)."""
        with self._lock:
            wanted, published = self._plan()
            stale = {r: p for r, p in wanted.items() if published.get(r, (None,))[0] != p[0]}
            gone = [r for r in published if r not in wanted]
            if not stale and not gone:
                return
            describe = self.describe()
            built = {r: (p, self._objects(r, describe)) for r, p in stale.items()}
            self._apply(built, gone)

    def _plan(self) -> tuple[dict[int, tuple[int, str]], dict[int, tuple[int, str]]]:
        """Report id → (version, membership): what should be published, and what is."""
        with self.store.db.session(read=True) as s:
            reports = s.execute(
                select(Report.id, Report.version, Report.tlp).where(*REVIEWED.members())
            ).all()
            tags: dict[int, list[str]] = {}
            for report_id, tag in s.execute(
                select(ReportTag.report_id, ReportTag.tag).where(
                    ReportTag.report_id.in_(select(Report.id).where(*REVIEWED.members()))
                )
            ):
                tags.setdefault(report_id, []).append(tag.lower())
            published = {
                r: (v, m)
                for r, v, m in s.execute(
                    select(FeedReport.report_id, FeedReport.version, FeedReport.membership)
                )
            }
        wanted = {r: (v, json.dumps([tlp, sorted(tags.get(r, []))])) for r, v, tlp in reports}
        return wanted, published

    def _objects(self, report_id: int, describe: Describe) -> list[dict[str, Any]] | None:
        """The report's reviewed STIX objects (its bundle's, without the bundle); None when it
        was deleted meanwhile."""
        from mitremap.export import to_stix
        from mitremap.web.workspace.combined import export_options

        try:
            result = self.store.reviewed_result(report_id, describe)
        except NotFoundError:
            return None
        options = export_options(result, benign="omit")
        version = str(result.to_dict().get("model", {}).get("attack_version") or "")
        try:
            bundle = to_stix(result, None, replace(options, kb=self._attack(version)))
        except (DataError, MissingExtraError):
            raise
        except MitreMapError:  # nothing to export: no technique and no indicator
            return []
        return list(bundle["objects"])

    def _attack(self, version: str) -> AttackKB:
        """ATT&CK as the exports read it, loaded once per version."""
        if version not in self._kbs:
            from mitremap.classify.knowledge import attack_for_model

            self._kbs[version] = attack_for_model(version or None)
        return self._kbs[version]

    def _apply(
        self,
        built: dict[int, tuple[tuple[int, str], list[dict[str, Any]] | None]],
        gone: Iterable[int],
    ) -> None:
        """Write the changes, one sync at a time, dated once the lock is held."""
        with self.store.db.session() as s:
            connection = s.connection()  # the transaction, and SQLite's write lock, start here
            if connection.dialect.name == "postgresql":
                s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
            now = utcnow()
            dropped = list(gone)
            if dropped:
                s.execute(delete(FeedObject).where(FeedObject.report_id.in_(dropped)))
                s.execute(delete(FeedReport).where(FeedReport.report_id.in_(dropped)))
            for report_id, ((version, membership), objects) in built.items():
                if objects is not None:
                    _publish(s, report_id, version, membership, objects, now)


def _publish(
    s: Session,
    report_id: int,
    version: int,
    membership: str,
    objects: list[dict[str, Any]],
    now: datetime,
) -> None:
    """One report's objects into the ledger: new versions dated `now`, earlier versions it
    keeps left as they were, objects it no longer has taken out — and so are versions dated
    after the one it now has (its date moved earlier): the latest is always what it says."""
    row = s.get(FeedReport, report_id)
    if row is not None and row.version >= version:
        return  # another server published this version (or a newer one) meanwhile
    if s.get(Report, report_id) is None:
        return  # deleted meanwhile
    if row is not None and row.membership != membership:  # other collections: published anew
        s.execute(delete(FeedObject).where(FeedObject.report_id == report_id))
    current = {str(o["id"]): _version(o) for o in objects}
    mine = FeedObject.report_id == report_id
    s.execute(delete(FeedObject).where(mine, FeedObject.object_id.not_in(list(current))))
    have: set[tuple[str, str | None]] = set()
    kept = s.execute(
        select(FeedObject.object_id, FeedObject.version, FeedObject.modified).where(mine)
    ).all()
    for object_id, written, modified in kept:
        latest = current[object_id]
        if latest is None:  # an object without versions (an observable): there once
            have.add((object_id, None))
        elif utc(modified) <= parse_time(latest):
            have.add((object_id, written))
        else:
            later = and_(FeedObject.object_id == object_id, FeedObject.version == written)
            s.execute(delete(FeedObject).where(mine, later))
    for obj in objects:
        key = (str(obj["id"]), current[str(obj["id"])])
        if key in have:
            continue
        have.add(key)
        text = key[1] or stamp(now)
        s.add(
            FeedObject(
                report_id=report_id,
                object_id=key[0],
                version=text,
                modified=parse_time(text),
                date_added=now,
                body=json.dumps(obj, ensure_ascii=False, separators=(",", ":")),
            )
        )
    if row is None:
        s.add(FeedReport(report_id=report_id, version=version, membership=membership))
    else:
        row.version, row.membership = version, membership


def _version(obj: dict[str, Any]) -> str | None:
    """TAXII's version of an object: its `modified`, else `created`; None for one that has
    neither (an observable: one version, dated when it was added)."""
    written = obj.get("modified") or obj.get("created")
    return str(written) if written else None


# ---- queries ----------------------------------------------------------------------------------


def _holds(s: Session, collection: FeedCollection, object_id: str) -> bool:
    return (
        s.scalar(
            select(FeedObject.object_id)
            .join(Report, Report.id == FeedObject.report_id)
            .where(FeedObject.object_id == object_id, *collection.members())
            .limit(1)
        )
        is not None
    )


def _entries(
    s: Session, collection: FeedCollection, query: FeedQuery, object_id: str | None
) -> list[Entry]:
    """One row per object version the collection holds (dated by the first of its reports to
    publish it), filtered, in TAXII's order (date added, then id and version), one past the
    page so that the caller knows whether there is more."""
    if query.spec_versions and SPEC_VERSION not in query.spec_versions:
        return []
    grouped = (
        select(
            FeedObject.object_id.label("id"),
            FeedObject.version.label("version"),
            FeedObject.modified.label("modified"),
            func.min(FeedObject.date_added).label("added"),
        )
        .join(Report, Report.id == FeedObject.report_id)
        .where(*collection.members())
        .group_by(FeedObject.object_id, FeedObject.version, FeedObject.modified)
    )
    ids = (object_id,) if object_id is not None else query.ids
    if ids:
        grouped = grouped.where(FeedObject.object_id.in_(ids))
    if query.types:
        grouped = grouped.where(
            or_(*(FeedObject.object_id.startswith(f"{t}--", autoescape=True) for t in query.types))
        )
    g = grouped.subquery()
    ranked = select(
        g,
        func.max(g.c.modified).over(partition_by=g.c.id).label("newest"),
        func.min(g.c.modified).over(partition_by=g.c.id).label("oldest"),
    ).subquery()
    where = _version_filter(ranked.c, query.versions)
    if query.added_after is not None:
        where.append(ranked.c.added > query.added_after)
    if query.after is not None:
        a = query.after
        where.append(
            or_(
                ranked.c.added > a.added,
                and_(
                    ranked.c.added == a.added,
                    or_(
                        ranked.c.id > a.object_id,
                        and_(ranked.c.id == a.object_id, ranked.c.version > a.version),
                    ),
                ),
            )
        )
    rows = s.execute(
        select(ranked.c.id, ranked.c.version, ranked.c.modified, ranked.c.added)
        .where(*where)
        .order_by(ranked.c.added, ranked.c.id, ranked.c.version)
        .limit(query.limit + 1)
    ).all()
    return [Entry(i, v, utc(m), utc(a)) for i, v, m, a in rows]


def _version_filter(c: Any, versions: tuple[str, ...]) -> list[ColumnElement[bool]]:
    """`match[version]`: all, first, last, and/or the versions named."""
    if "all" in versions:
        return []
    chosen: list[ColumnElement[bool]] = []
    if "last" in versions:
        chosen.append(c.modified == c.newest)
    if "first" in versions:
        chosen.append(c.modified == c.oldest)
    named = [parse_time(v) for v in versions if v not in ("first", "last")]
    if named:
        chosen.append(c.modified.in_(named))
    return [or_(*chosen)]


def _bodies(s: Session, collection: FeedCollection, entries: list[Entry]) -> list[dict[str, Any]]:
    """The objects of `entries`, each as first published in the collection."""
    if not entries:
        return []
    # which report published each first (an object many reports share: read one copy only)
    owners = s.execute(
        select(FeedObject.object_id, FeedObject.version, func.min(FeedObject.report_id))
        .join(Report, Report.id == FeedObject.report_id)
        .where(
            tuple_(FeedObject.object_id, FeedObject.version, FeedObject.date_added).in_(
                [(e.id, e.version, e.added) for e in entries]
            ),
            *collection.members(),
        )
        .group_by(FeedObject.object_id, FeedObject.version)
    ).all()
    rows = s.execute(
        select(FeedObject.object_id, FeedObject.version, FeedObject.body).where(
            tuple_(FeedObject.report_id, FeedObject.object_id, FeedObject.version).in_(
                [(r, o, v) for o, v, r in owners]
            )
        )
    )
    first = {(o, v): body for o, v, body in rows}
    return [json.loads(first[(e.id, e.version)]) for e in entries if (e.id, e.version) in first]


def _cursor(entry: Entry) -> Cursor:
    return Cursor(entry.added, entry.id, entry.version)


# ---- values -----------------------------------------------------------------------------------


def utc(moment: datetime) -> datetime:
    """Aware and in UTC (SQLite hands back naive datetimes: they are UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def stamp(moment: datetime) -> str:
    """A TAXII timestamp: UTC, microseconds, Z."""
    return utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str) -> datetime:
    """An RFC 3339 timestamp (Z or an offset; none: UTC) as an aware datetime."""
    try:
        return utc(datetime.fromisoformat(value.strip().replace("z", "Z")))
    except ValueError:
        raise BadRequestError(
            f"{value[:40]!r} is not a timestamp; use e.g. 2026-01-02T03:04:05.000Z"
        ) from None


def _items(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def _limit(value: str | None) -> int:
    if value is None or not value.strip():
        return DEFAULT_LIMIT
    try:
        limit = int(value)
    except ValueError:
        raise BadRequestError("limit is a whole number") from None
    if limit < 1:
        raise BadRequestError("limit is at least 1")
    return min(limit, MAX_LIMIT)
