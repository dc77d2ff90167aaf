"""An index on the access log's (chain_id, id): the access report's predecessor lookup.

The report checks each entry it cites against the entry just before it on its chain
(vault/services/audit_cited.py): `WHERE chain_id = c AND id < x ORDER BY id DESC LIMIT 1`.
Without this index PostgreSQL, planning on a table it has not analyzed, scanned the whole
log for each cited entry (about 3 s for a report at 10k entries). With it the lookup is one
index probe on either database, whatever the statistics say. Building it reads the log
once; rows written afterwards pay one more index entry each.

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_access_log_chain_id", "access_log", ["chain_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_access_log_chain_id", table_name="access_log")
