"""Sequential storage keys behind random tokens.

A random token issued from this version on is one AES-256 block over its row's locator and
a random check (vault/crypto/locators.py): `field_values.locator` (sequential, so inserting
a row appends to its index instead of dirtying a random page) and `field_values.token_check`.
The token index keeps only rows without a locator — deterministic, format-preserving and
every random token issued before — so tokens already issued keep working through it.
`locator_blocks` holds the next free locator; each server reserves a block at a time.

Every row keeps its token text (its AAD binds it), so the downgrade only puts every row
back into the token index: values and the tokens issued for them survive it.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

FIRST_LOCATOR = 1


def upgrade() -> None:
    # Plain ALTER TABLE on both databases: a batch-mode copy of field_values on SQLite would
    # cascade-delete the correction history from it (see 0010).
    op.add_column("field_values", sa.Column("locator", sa.BigInteger, nullable=True))
    op.add_column("field_values", sa.Column("token_check", sa.LargeBinary, nullable=True))
    op.drop_index("ux_field_values_token", "field_values")
    op.create_index("ux_field_values_token", "field_values", ["token", "field", "subject_id"], unique=True,
                    sqlite_where=sa.text("locator IS NULL"), postgresql_where=sa.text("locator IS NULL"))
    op.create_index("ux_field_values_locator", "field_values", ["locator"], unique=True,
                    sqlite_where=sa.text("locator IS NOT NULL"), postgresql_where=sa.text("locator IS NOT NULL"))
    blocks = op.create_table(
        "locator_blocks",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("next", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(blocks, [{"name": "field_values", "next": FIRST_LOCATOR}])


def downgrade() -> None:
    op.drop_table("locator_blocks")
    op.drop_index("ux_field_values_locator", "field_values")
    op.drop_index("ux_field_values_token", "field_values")
    # Every row, sequential tokens included, is found by its token again (their texts are unique).
    op.create_index("ux_field_values_token", "field_values", ["token", "field", "subject_id"], unique=True)
    op.execute("ALTER TABLE field_values DROP COLUMN token_check")
    op.execute("ALTER TABLE field_values DROP COLUMN locator")
