"""Collection notices: whether the person was told of the collection of each value.

`field_values.notice_given` is true or false for every value collected from this version
on (TokenizeRequest.notice_given; unset, it is whether a notice id was given). Values
collected before keep NULL, "not recorded", except those collected with a notice id, which
says a notice was given. The access report shows it.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE on both databases (SQLite >= 3.35 drops columns too): a batch-mode
    # copy of field_values on SQLite would cascade-delete the correction history from it.
    op.add_column("field_values", sa.Column("notice_given", sa.Boolean, nullable=True))
    op.execute("UPDATE field_values SET notice_given = TRUE WHERE notice_id IS NOT NULL")


def downgrade() -> None:
    op.drop_column("field_values", "notice_given")
