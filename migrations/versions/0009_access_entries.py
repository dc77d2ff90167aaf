"""One access-log entry per request: an items column on access_log, and the per-subject index.

An entry written from this revision on holds one request's items: in `items` (encoded, see
vault.storage.access_items) when there are several, in the subject, field, token and outcome
columns when there is one. Rows written before it are entries of one item, chained as they
were, so they are kept as they are: converting them would change what their MACs cover, and
the migration cannot recompute a MAC (the chain key is Vault's to unwrap). `pdv audit verify`
checks both forms, in one chain if an upgrade happened mid-chain.

`access_subjects` (subject, entry) is filled from the existing rows here, so a person's
accesses from before the upgrade are found through it too.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # A nullable column without a default: a plain ALTER TABLE on both databases, no rewrite.
    with op.batch_alter_table("access_log") as batch:
        batch.add_column(sa.Column("items", sa.LargeBinary, nullable=True))
    op.create_table(
        "access_subjects",
        sa.Column("subject_id", sa.String(32), nullable=False),
        sa.Column("entry_id", BigId, nullable=False),
        sa.PrimaryKeyConstraint("subject_id", "entry_id"),
        sqlite_with_rowid=False,
    )
    op.execute("INSERT INTO access_subjects (subject_id, entry_id) "
               "SELECT subject_id, id FROM access_log WHERE subject_id IS NOT NULL")


def downgrade() -> None:
    # Entries of several items have no form revision 0008 can read: refuse rather than lose them.
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT 1 FROM access_log WHERE items IS NOT NULL LIMIT 1")).first() is not None:
        raise RuntimeError("access_log holds entries of several items (written by revision 0009); "
                           "revision 0008 cannot read them, so the downgrade stops here")
    op.drop_table("access_subjects")
    with op.batch_alter_table("access_log") as batch:
        batch.drop_column("items")
