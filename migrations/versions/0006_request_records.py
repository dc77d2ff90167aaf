"""Tokenize answers kept for retries are stored per record, so a shred can scrub them.

A retried tokenize is answered from what the first one returned. Until now that was one
JSON document per request listing every record's subject id and tokens; a shred had no
cheap way to find, or take its subject out of, the answers naming it. Each stored record
is now a row of request_records, indexed by subject; tokenize_requests keeps the
fingerprint, the number of records and the per-record errors.

Revision ID: 0006
Revises: 0005
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "request_records",
        sa.Column("principal", sa.String(200), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("subject_id", sa.String(32), nullable=False),  # "" once shredded
        sa.Column("tokens", sa.Text, nullable=False),  # JSON: field -> token
        sa.PrimaryKeyConstraint("principal", "request_id", "position"),
    )
    op.create_index("ix_request_records_subject", "request_records", ["subject_id"])
    # Move the records of answers stored before this migration.
    conn = op.get_bind()
    requests = conn.execute(sa.text("SELECT principal, request_id, response FROM tokenize_requests")).fetchall()
    for principal, request_id, response in requests:
        body = json.loads(response)
        rows = [
            {"p": principal, "r": request_id, "i": i, "s": subject_id, "t": json.dumps(tokens)}
            for i, (subject_id, tokens) in enumerate(body["results"]) if subject_id
        ]
        if rows:
            conn.execute(sa.text("INSERT INTO request_records (principal, request_id, position, subject_id, tokens) "
                                 "VALUES (:p, :r, :i, :s, :t)"), rows)
        conn.execute(
            sa.text("UPDATE tokenize_requests SET response = :body WHERE principal = :p AND request_id = :r"),
            {"body": json.dumps({"records": len(body["results"]), "errors": body["errors"]}), "p": principal, "r": request_id},
        )


def downgrade() -> None:
    op.drop_table("request_records")
