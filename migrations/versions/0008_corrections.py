"""Correction history: one row per stored value a CorrectValue call corrected.

A row says when, who, why, under which case and request id, and holds a keyed fingerprint
of the old value (HMAC-SHA256 under a key derived from the index root for this use only),
never the old value. It references the value it describes with ON DELETE CASCADE, so every
path that destroys a value (a shred of the subject or of the field, retention disposal)
destroys its history with it, in the same statement.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "value_corrections",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("value_id", BigId, sa.ForeignKey("field_values.id", ondelete="CASCADE"), nullable=False),
        sa.Column("subject_id", sa.String(32), nullable=False),
        sa.Column("field", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("token", sa.String(256), nullable=False),
        sa.Column("token_changed", sa.Boolean, nullable=False),
        sa.Column("old_fingerprint", sa.LargeBinary, nullable=False),
        sa.Column("corrected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("corrected_by", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("case_id", sa.String(200), nullable=True),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("request_fingerprint", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_value_corrections_subject", "value_corrections", ["subject_id"])
    op.create_index("ix_value_corrections_value", "value_corrections", ["value_id"])
    # A retried request finds its first answer by this.
    op.create_index("ix_value_corrections_request", "value_corrections", ["corrected_by", "request_id"])


def downgrade() -> None:
    op.drop_table("value_corrections")
