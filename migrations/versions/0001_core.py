"""Core schema: subjects, wrapped data keys, encrypted field values, idempotency, access log.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "subjects",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "data_keys",
        sa.Column("subject_id", sa.String(32), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("wrapped", sa.Text, nullable=False),
        sa.Column("kek_version", sa.Integer, nullable=False),
        sa.Column("encryptions", sa.BigInteger, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["subject_id"], ["subjects.id"], ondelete="CASCADE"),
    )
    op.create_index("ix_data_keys_kek_version", "data_keys", ["kek_version"])
    op.create_table(
        "field_values",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("subject_id", sa.String(32), nullable=False),
        sa.Column("field", sa.String(64), nullable=False),
        sa.Column("token", sa.String(256), nullable=False),
        sa.Column("key_version", sa.Integer, nullable=False),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("blind_index", sa.LargeBinary, nullable=True),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("notice_id", sa.String(200), nullable=True),
        sa.Column("collected_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["subject_id", "key_version"], ["data_keys.subject_id", "data_keys.version"], ondelete="CASCADE"
        ),
    )
    op.create_index("ux_field_values_token", "field_values", ["token", "field", "subject_id"], unique=True)
    # Only searchable fields carry a blind index; the others stay out of the index.
    op.create_index(
        "ix_field_values_index", "field_values", ["field", "blind_index"],
        sqlite_where=sa.text("blind_index IS NOT NULL"), postgresql_where=sa.text("blind_index IS NOT NULL"),
    )
    op.create_index("ix_field_values_subject", "field_values", ["subject_id"])
    op.create_index("ix_field_values_expires", "field_values", ["expires_at"])
    op.create_table(
        "reserved_tokens",
        sa.Column("field", sa.String(64), primary_key=True),
        sa.Column("token", sa.String(256), primary_key=True),
    )
    op.create_table(
        "tokenize_requests",
        sa.Column("principal", sa.String(200), primary_key=True),
        sa.Column("request_id", sa.String(128), primary_key=True),
        sa.Column("fingerprint", sa.LargeBinary, nullable=False),
        sa.Column("response", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "access_log",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("principal", sa.String(200), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("subject_id", sa.String(32), nullable=True),
        sa.Column("field", sa.String(64), nullable=True),
        sa.Column("token", sa.String(256), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=False),
    )
    op.create_table(
        "wrapped_secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("wrapped", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )


def downgrade() -> None:
    for table in ("wrapped_secrets", "access_log", "tokenize_requests", "reserved_tokens", "field_values", "data_keys", "subjects"):
        op.drop_table(table)
