"""Issue 7: open pathway tasks (derived rows read by the overdue sweep).

Revision ID: 0009
Revises: 0008

Frozen copy of ``parcours.pathways.tables`` at this revision. The shipped pathway library is
not written here: resources go through the repository (validated, indexed, audited, evented),
which a migration's connection cannot do; ``parcours.pathways.load_library`` runs after the
migrations instead, idempotently by version (decision D21).
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pathway_task",
        sa.Column("task_id", sa.String(64), primary_key=True),
        sa.Column("careplan_id", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=True),
        sa.Column("task_code", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("due_ms", sa.BigInteger(), nullable=True),
        sa.Column("next_alert_ms", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_pathway_task_next_alert", "pathway_task", ["next_alert_ms"])
    op.create_index("ix_pathway_task_careplan", "pathway_task", ["careplan_id"])


def downgrade() -> None:
    op.drop_index("ix_pathway_task_careplan", table_name="pathway_task")
    op.drop_index("ix_pathway_task_next_alert", table_name="pathway_task")
    op.drop_table("pathway_task")
