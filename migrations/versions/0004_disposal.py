"""Retention and disposal.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # What de-identification leaves of an expired value: the catalog's chosen pseudonym or
    # aggregate, with no subject id, token or ciphertext, so nothing links it back to a person
    # through PDV once the value is gone.
    op.create_table(
        "deidentified_values",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("field", sa.String(64), nullable=False),
        sa.Column("kept", sa.String(32), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("disposed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_deidentified_values_field", "deidentified_values", ["field"])


def downgrade() -> None:
    op.drop_table("deidentified_values")
