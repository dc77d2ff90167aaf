"""Which subjects each stored tokenize answer names, so a shred can scrub them.

A retried tokenize returns the answer stored in tokenize_requests, which lists subject ids
and tokens. This index lets a shred find the answers that name a shredded subject without
scanning them all, and remove the subject from them.

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
        "request_subjects",
        sa.Column("subject_id", sa.String(32), nullable=False),
        sa.Column("principal", sa.String(200), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("subject_id", "principal", "request_id"),
    )
    # Answers stored before this migration name their subjects too.
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT principal, request_id, response FROM tokenize_requests")).fetchall()
    pairs = {
        (subject_id, principal, request_id)
        for principal, request_id, response in rows
        for subject_id, _tokens in json.loads(response)["results"]
        if subject_id
    }
    if pairs:
        conn.execute(
            sa.text("INSERT INTO request_subjects (subject_id, principal, request_id) VALUES (:s, :p, :r)"),
            [{"s": s, "p": p, "r": r} for s, p, r in sorted(pairs)],
        )


def downgrade() -> None:
    op.drop_table("request_subjects")
