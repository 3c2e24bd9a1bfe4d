"""Full-text search over reports: their title, text and indicator values, behind one interface.

Why two backends: SQLite's FTS5 and PostgreSQL's tsvector are each the database's own index,
fast at a team's scale (thousands of reports) with nothing else to run. Both tokenise the same
way for what analysts type (words, ids, hashes, addresses) and neither stems, so a query finds
the same reports on either. Indicator values are indexed as extracted (refanged): a search for
`185.220.101.47` finds a report that wrote `185.220.101[.]47`.

The index lives beside the tables (`report_search`, made by the migration): the store puts a
report's entry when it is added or analysed again, and drops it when the report is deleted
(PostgreSQL's rows go with the report by their foreign key; FTS5 has none).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol

from sqlalchemy import Connection, bindparam, text
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql import ColumnElement

MAX_INDEXED_CHARS = 500_000
"""A report's text is indexed up to here (PostgreSQL caps a tsvector at 1 MB); indicator
values are indexed whole."""
MAX_TERMS = 12
_WORD = re.compile(r"\w")
Column = ColumnElement[int] | QueryableAttribute[int]


class SearchIndex(Protocol):
    """What the store asks of the full-text index."""

    def put(
        self, connection: Connection, report_id: int, title: str, body: str, iocs: Iterable[str]
    ) -> None:
        """Index (or index again) one report."""

    def drop(self, connection: Connection, report_ids: Iterable[int]) -> None:
        """Forget reports (deleted)."""

    def matching(self, query: str, report_id: Column) -> ColumnElement[bool] | None:
        """A condition true for reports that hold every term of `query` (None: no term)."""


def terms(query: str) -> list[str]:
    """The words of a query as typed, the ones that hold something to find."""
    return [t for t in query.split() if _WORD.search(t)][:MAX_TERMS]


def _iocs_text(iocs: Iterable[str]) -> str:
    return "\n".join(dict.fromkeys(v for v in iocs if v))


class Fts5Index:
    """SQLite FTS5: the report's id is the row id; each term a quoted phrase (so `1.2.3.4` is
    four tokens in a row, and nothing typed is read as FTS syntax)."""

    def put(
        self, connection: Connection, report_id: int, title: str, body: str, iocs: Iterable[str]
    ) -> None:
        params = {"id": report_id}
        connection.execute(text("DELETE FROM report_search WHERE rowid = :id"), params)
        connection.execute(
            text("INSERT INTO report_search (rowid, title, body, iocs) VALUES (:id, :t, :b, :i)"),
            {**params, "t": title, "b": body[:MAX_INDEXED_CHARS], "i": _iocs_text(iocs)},
        )

    def drop(self, connection: Connection, report_ids: Iterable[int]) -> None:
        for report_id in report_ids:
            connection.execute(
                text("DELETE FROM report_search WHERE rowid = :id"), {"id": report_id}
            )

    def matching(self, query: str, report_id: Column) -> ColumnElement[bool] | None:
        words = terms(query)
        if not words:
            return None
        phrase = " ".join('"' + w.replace('"', '""') + '"' for w in words)
        found = text("SELECT rowid FROM report_search WHERE report_search MATCH :fts").bindparams(
            bindparam("fts", phrase)
        )
        return report_id.in_(found)


class TsvectorIndex:
    """PostgreSQL: one tsvector a report (the 'simple' configuration: no stemming, no stop
    words), a GIN index; every term must match (`plainto_tsquery`)."""

    def put(
        self, connection: Connection, report_id: int, title: str, body: str, iocs: Iterable[str]
    ) -> None:
        connection.execute(
            text(
                "INSERT INTO report_search (report_id, document) VALUES (:id, "
                "setweight(to_tsvector('simple', :t), 'A') || to_tsvector('simple', :b) "
                "|| to_tsvector('simple', :i)) "
                "ON CONFLICT (report_id) DO UPDATE SET document = EXCLUDED.document"
            ),
            {"id": report_id, "t": title, "b": body[:MAX_INDEXED_CHARS], "i": _iocs_text(iocs)},
        )

    def drop(self, connection: Connection, report_ids: Iterable[int]) -> None:
        """Nothing to do: the rows go with their report (foreign key, ON DELETE CASCADE)."""

    def matching(self, query: str, report_id: Column) -> ColumnElement[bool] | None:
        words = terms(query)
        if not words:
            return None
        found = text(
            "SELECT report_id FROM report_search WHERE document @@ plainto_tsquery('simple', :tsq)"
        ).bindparams(bindparam("tsq", " ".join(words)))
        return report_id.in_(found)


def search_index(kind: str) -> SearchIndex:
    """The index of a database kind ('sqlite' or 'postgresql')."""
    return Fts5Index() if kind == "sqlite" else TsvectorIndex()
