"""Residents' privacy requests and complaints: the request, its status history, and the
actions (shreds, consent changes, holds) taken under it.

A request's free text (description, contact, response) is stored sealed with AES-256-GCM
under the request's own DEK, which is kept wrapped by the KEK in wrapped_secrets (named
"request:<case id>"), so `pdv keys rewrap` and trim cover it like the index root. There is
no foreign key to subjects: a deletion request outlives the subject it shredded.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "privacy_requests",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject_id", sa.String(32), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("received_at", When, nullable=False),
        sa.Column("due_at", When, nullable=False),
        sa.Column("closed_at", When, nullable=True),
        sa.Column("opened_by", sa.String(200), nullable=False),
        sa.Column("description", sa.LargeBinary, nullable=False),
        sa.Column("contact", sa.LargeBinary, nullable=True),
        sa.Column("response", sa.LargeBinary, nullable=True),
    )
    op.create_index("ix_privacy_requests_subject", "privacy_requests", ["subject_id"])
    op.create_index("ix_privacy_requests_due", "privacy_requests", ["closed_at", "due_at"])
    op.create_table(
        "privacy_request_history",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(32), sa.ForeignKey("privacy_requests.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", When, nullable=False),
        sa.Column("principal", sa.String(200), nullable=False),
        sa.Column("from_status", sa.String(32), nullable=True),
        sa.Column("to_status", sa.String(32), nullable=False),
        sa.Column("response_set", sa.Boolean, nullable=False),
    )
    op.create_index("ix_privacy_request_history_request", "privacy_request_history", ["request_id"])
    op.create_table(
        "request_actions",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(32), sa.ForeignKey("privacy_requests.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", When, nullable=False),
        sa.Column("principal", sa.String(200), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("subject_id", sa.String(32), nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("outcome", sa.String(32), nullable=False),
    )
    op.create_index("ix_request_actions_request", "request_actions", ["request_id"])


def downgrade() -> None:
    op.drop_table("request_actions")
    op.drop_table("privacy_request_history")
    op.drop_table("privacy_requests")
    op.execute("DELETE FROM wrapped_secrets WHERE name LIKE 'request:%'")
