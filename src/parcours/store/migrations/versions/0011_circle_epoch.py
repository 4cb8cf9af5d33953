"""Issue 5 (speed): ``circle_epoch``, the count of commits that changed who sees which patient.

Revision ID: 0011
Revises: 0010

Frozen copy of ``parcours.security.tables.circle_epoch`` at this revision, with its one row.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "circle_epoch",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(table, [{"id": 1, "value": 0}])


def downgrade() -> None:
    op.drop_table("circle_epoch")
