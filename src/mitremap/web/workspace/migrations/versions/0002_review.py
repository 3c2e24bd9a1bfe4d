"""A team's working day: report versions (ETag / If-Match), metadata (TLP, tags, source
organisation, publication date), the review in numbers on the report row, the normalised text
hash (duplicates), tags, indicator decisions, history events, comments, drafts, and the
full-text index (SQLite FTS5, PostgreSQL tsvector + GIN).

Existing reports are brought up to date here: their hash, counts and search entries.

Revision ID: 0002_review
Revises: 0001
Create Date: 2026-12-07
"""

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002_review"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("tlp", sa.String(16), nullable=False, server_default="amber"))
        batch.add_column(sa.Column("source_org", sa.String(300), nullable=False, server_default=""))
        batch.add_column(sa.Column("published", sa.Date(), nullable=True))
        batch.add_column(sa.Column("text_hash", sa.String(64), nullable=False, server_default=""))
        for name in ("accepted_count", "pending_count", "rejected_count", "added_count"):
            batch.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("technique_ids", sa.JSON(), nullable=False, server_default="[]"))
        batch.create_index("ix_reports_text_hash", ["text_hash"])
    op.create_table(
        "report_tags",
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("report_id", "tag"),
    )
    op.create_index("ix_report_tags_tag", "report_tags", ["tag"])
    op.create_table(
        "indicator_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("user_name", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_indicator_decisions_report_id", "indicator_decisions", ["report_id"])
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(400), nullable=False),
        sa.Column("before", sa.Text(), nullable=False),
        sa.Column("after", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("detail", sa.String(500), nullable=False),
        sa.Column("user_name", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_events_report_subject", "events", ["report_id", "subject", "version"])
    op.create_index("ix_events_at", "events", ["at"])
    op.create_table(
        "comments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("user_name", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_comments_report_id", "comments", ["report_id"])
    op.create_table(
        "drafts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("user_name", sa.String(64), nullable=False),
        sa.Column("key", sa.String(400), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("report_id", "user_name", "key"),
    )
    _create_search_index()
    _bring_reports_up_to_date()


def _create_search_index() -> None:
    """`workspace.search`'s index: an FTS5 table on SQLite, a tsvector table on PostgreSQL."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE report_search USING fts5("
            "title, body, iocs, tokenize = 'unicode61 remove_diacritics 2')"
        )
        return
    from sqlalchemy.dialects.postgresql import TSVECTOR

    op.create_table(
        "report_search",
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("document", TSVECTOR(), nullable=False),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("report_id"),
    )
    op.create_index(
        "ix_report_search_document", "report_search", ["document"], postgresql_using="gin"
    )


def _bring_reports_up_to_date() -> None:
    """Hash, review counts and search entry of every report kept before this revision."""
    from mitremap.web.workspace import metadata, reviews, search

    bind = op.get_bind()
    index = search.search_index(bind.dialect.name)
    for report_id, title, text in bind.execute(sa.text("SELECT id, title, text FROM reports")):
        latest = bind.execute(
            sa.text(
                "SELECT id, threshold, indicators FROM analyses WHERE report_id = :r "
                "ORDER BY id DESC LIMIT 1"
            ),
            {"r": report_id},
        ).first()
        suggestions = []
        if latest is not None:
            rows = bind.execute(
                sa.text(
                    "SELECT technique, technique_name, tactics, confidence, evidence "
                    "FROM suggestions WHERE analysis_id = :a"
                ),
                {"a": latest[0]},
            )
            suggestions = [_suggestion(*row) for row in rows]
        decisions = [
            reviews.DecisionRow(*row)
            for row in bind.execute(
                sa.text(
                    "SELECT id, technique, action, span_start, span_end, note, user_name, at "
                    "FROM decisions WHERE report_id = :r ORDER BY id"
                ),
                {"r": report_id},
            )
        ]
        state = reviews.review(suggestions, decisions, latest[1] if latest else 1.0)
        counts = reviews.summary_counts(state)
        bind.execute(
            sa.text(
                "UPDATE reports SET text_hash = :h, accepted_count = :accepted, "
                "pending_count = :pending, rejected_count = :rejected, added_count = :added, "
                "technique_ids = :ids WHERE id = :r"
            ),
            {
                "h": metadata.text_hash(text),
                **{k: v for k, v in counts.items() if k != "techniques"},
                "ids": json.dumps(counts["techniques"]),
                "r": report_id,
            },
        )
        indicators = _json(latest[2]) if latest else []
        values = [str(i.get("value", "")) for i in indicators if isinstance(i, dict)]
        index.put(bind, report_id, title, text, values)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else (value or [])


def _suggestion(technique: str, name: str, tactics: Any, confidence: float, evidence: Any) -> Any:
    from mitremap.web.workspace import reviews

    return reviews.SuggestionRow(
        technique,
        name,
        tuple(_json(tactics)),
        confidence,
        tuple((e["start"], e["end"], e["confidence"]) for e in _json(evidence)),
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE report_search")
    else:
        op.drop_table("report_search")
    op.drop_table("drafts")
    op.drop_index("ix_comments_report_id", table_name="comments")
    op.drop_table("comments")
    op.drop_index("ix_events_at", table_name="events")
    op.drop_index("ix_events_report_subject", table_name="events")
    op.drop_table("events")
    op.drop_index("ix_indicator_decisions_report_id", table_name="indicator_decisions")
    op.drop_table("indicator_decisions")
    op.drop_index("ix_report_tags_tag", table_name="report_tags")
    op.drop_table("report_tags")
    with op.batch_alter_table("reports") as batch:
        batch.drop_index("ix_reports_text_hash")
        for name in (
            "technique_ids", "added_count", "rejected_count", "pending_count", "accepted_count",
            "text_hash", "published", "source_org", "tlp", "version",
        ):  # fmt: skip
            batch.drop_column(name)
