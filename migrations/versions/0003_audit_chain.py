"""Tamper-evident access log: chain columns on access_log, chain heads, signed checkpoints.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Rows written before this revision stay unchained; `pdv audit verify` reports them.
    with op.batch_alter_table("access_log") as batch:
        batch.add_column(sa.Column("chain_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("seq", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("mac", sa.LargeBinary, nullable=True))
    op.create_table(
        "audit_chains",
        sa.Column("chain_id", sa.String(32), primary_key=True),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("mac", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("chain_id", sa.String(32), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("mac", sa.LargeBinary, nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
    )
    op.create_index("ux_audit_checkpoints_chain_seq", "audit_checkpoints", ["chain_id", "seq"], unique=True)


def downgrade() -> None:
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_chains")
    with op.batch_alter_table("access_log") as batch:
        batch.drop_column("mac")
        batch.drop_column("seq")
        batch.drop_column("chain_id")
