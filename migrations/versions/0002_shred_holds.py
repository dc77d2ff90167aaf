"""Disposal: tombstones with signed receipts, and legal holds.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tombstones",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("subject_id", sa.String(32), nullable=False),
        sa.Column("fields", sa.Text, nullable=True),  # NULL: the whole subject
        sa.Column("shredded_at", TS, nullable=False),
        sa.Column("receipt", sa.Text, nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
    )
    op.create_index("ix_tombstones_subject", "tombstones", ["subject_id"])
    op.create_table(
        "legal_holds",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("subject_id", sa.String(32), nullable=False),
        sa.Column("case_id", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("placed_by", sa.String(200), nullable=False),
        sa.Column("placed_at", TS, nullable=False),
        sa.Column("released_by", sa.String(200), nullable=True),
        sa.Column("released_at", TS, nullable=True),
    )
    op.create_index("ix_legal_holds_subject", "legal_holds", ["subject_id"])


def downgrade() -> None:
    op.drop_table("legal_holds")
    op.drop_table("tombstones")
