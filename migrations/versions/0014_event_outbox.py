"""Events to token holders: the transactional outbox and each holder's cursor.

`event_outbox` holds one row per change and holder principal of the subject (the token
issuance ledger, token_holders), written in the transaction of the change: a shred, field
shred, disposal, de-identification, correction, consent change, legal-hold placement or
release. A row carries the holder's own tokens of the subject as field_values stores them
(JSON), the kind, the time and a reference (a shred receipt's SHA-256, a correction's
request id): never a value. Ids are not a sequence: each is max(last id + 1, the commit's
time in microseconds), taken under a lock held to the commit, so ids rise in commit order
and keep rising after a database is restored from an older copy. Rows go after
event_retention_seconds (vault/services/events); the unique key lets a shred replayed
after a restore write its events once.

`event_cursors` holds, per principal, the last acknowledged event and the highest id of
its events already purged (a cursor below that is OUT_OF_RANGE).

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_outbox",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("principal", sa.String(200), nullable=False),
        sa.Column("subject_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("ref", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("tokens", sa.Text(), nullable=False),
    )
    op.create_index("ix_event_outbox_principal", "event_outbox", ["principal", "id"])
    op.create_index("ix_event_outbox_at", "event_outbox", ["at"])
    op.create_index("ux_event_outbox_change", "event_outbox", ["principal", "subject_id", "kind", "ref"], unique=True)
    op.create_table(
        "event_cursors",
        sa.Column("principal", sa.String(200), primary_key=True),
        sa.Column("acked", sa.BigInteger(), nullable=False),
        sa.Column("purged_through", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("event_cursors")
    op.drop_table("event_outbox")
