"""Policy, purposes and consent: per-subject opt-outs by purpose.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per (subject, purpose) the resident opted out of; opting back in deletes it.
    # The access log keeps the history (action "consent").
    op.create_table(
        "consent_optouts",
        sa.Column("subject_id", sa.String(32), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("set_by", sa.String(200), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subject_id", "purpose"),
    )


def downgrade() -> None:
    op.drop_table("consent_optouts")
