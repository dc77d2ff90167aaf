"""Token domains and the token issuance ledger.

`field_values.domain` names the token domain a value row's token was issued in (policy
`domain`; vault/services/domains). Every row stored before this revision was issued in the
default domain, `city`, whose keys are the ones used before domains existed: the column's
default says so, and nothing is re-issued or re-keyed.

`token_holders` is the issuance ledger: one row per (subject, domain, principal) that was
handed tokens of the subject (a tokenize answer, a lookup match, a translation), with the
first and last time. It holds no token and no value. A whole-subject shred deletes its rows.

`token_translations` records, per translated item, the domain a token came from and the one
it went to, written in the transaction that logs the translation (the chained access log's
format stays as it is; its rows carry the request id that ties the two).

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # A constant default: an O(1) catalog change on PostgreSQL 11+ and SQLite, no table rewrite.
    op.add_column("field_values", sa.Column("domain", sa.String(256), nullable=False, server_default="city"))
    op.create_table(
        "token_holders",
        sa.Column("subject_id", sa.String(32), nullable=False),
        sa.Column("domain", sa.String(256), nullable=False),
        sa.Column("principal", sa.String(200), nullable=False),
        sa.Column("first_issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subject_id", "domain", "principal"),
    )
    op.create_table(
        "token_translations",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("principal", sa.String(200), nullable=False),
        sa.Column("subject_id", sa.String(32), nullable=True),
        sa.Column("field", sa.String(64), nullable=True),
        sa.Column("from_domain", sa.String(256), nullable=False),
        sa.Column("to_domain", sa.String(256), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
    )
    op.create_index("ix_token_translations_request", "token_translations", ["principal", "request_id"])
    op.create_index("ix_token_translations_subject", "token_translations", ["subject_id"])


def downgrade() -> None:
    op.drop_table("token_translations")
    op.drop_table("token_holders")
    # Rows of other domains have no place in the older schema: their tokens would become
    # valid everywhere. They go with the column (their subjects keep their other values).
    op.execute("DELETE FROM field_values WHERE domain <> 'city'")
    # In place on both databases (SQLite 3.35+): a batch rebuild of field_values would drop
    # the table under value_corrections' cascading foreign key.
    op.execute("ALTER TABLE field_values DROP COLUMN domain")
