"""Issue 5 (speed): ``circle_epoch``, the count of commits that changed who sees which patient.

Revision ID: 0011
Revises: 0010

Frozen copy of ``parcours.security.tables.circle_epoch`` at this revision, with its one row.

On PostgreSQL, ``resource.patient_id`` keeps 10 most common values instead of 100: a search
filtered by the caller's visible patients (``patient_id = ANY(list)``) is planned element by
element against that list, which took 3 ms for 500 patients with 100 values and 1 ms with 10.
Each patient holds a tiny share of the rows, so the longer list did not improve estimates.
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
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE resource ALTER COLUMN patient_id SET STATISTICS 10")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE resource ALTER COLUMN patient_id SET STATISTICS -1")
    op.drop_table("circle_epoch")
