"""The TAXII feed's ledger: which version of which STIX object each reviewed report
publishes, since when (`feed_objects`), and the report version it was made from
(`feed_reports`). Filled by the feed itself on its first read, so nothing is migrated here.

Revision ID: 0004_feed
Revises: 0003_accounts
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_feed"
down_revision = "0003_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feed_reports",
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("membership", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("report_id"),
    )
    op.create_table(
        "feed_objects",
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("object_id", sa.String(200), nullable=False),
        sa.Column("version", sa.String(40), nullable=False),
        sa.Column("modified", sa.DateTime(timezone=True), nullable=False),
        sa.Column("date_added", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("report_id", "object_id", "version"),
    )
    op.create_index("ix_feed_objects_object", "feed_objects", ["object_id", "version"])
    op.create_index("ix_feed_objects_date_added", "feed_objects", ["date_added"])


def downgrade() -> None:
    op.drop_index("ix_feed_objects_date_added", table_name="feed_objects")
    op.drop_index("ix_feed_objects_object", table_name="feed_objects")
    op.drop_table("feed_objects")
    op.drop_table("feed_reports")
