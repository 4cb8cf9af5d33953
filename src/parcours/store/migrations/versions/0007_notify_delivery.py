"""Issue 6: notification delivery: delivered notifications and their read marks.

Revision ID: 0007
Revises: 0006

Frozen copy of ``parcours.notify.delivery.tables`` at this revision: later changes go in new
migrations, never here.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "notify_delivery",
        sa.Column("seq", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("notification_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("endpoint", sa.String(1024), nullable=False),
        sa.Column("recipient", sa.String(128), nullable=True),
        sa.Column("patient_id", sa.String(64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.BigInteger(), nullable=False),
    )
    op.create_index(
        "ux_notify_delivery_notification", "notify_delivery", ["notification_id"], unique=True
    )
    op.create_index(
        "ix_notify_delivery_recipient", "notify_delivery", ["recipient", "channel", "seq"]
    )
    op.create_table(
        "notify_read",
        sa.Column("notification_id", sa.String(64), primary_key=True),
        sa.Column("reader", sa.String(255), primary_key=True),
        sa.Column("read_at", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("notify_read")
    op.drop_index("ix_notify_delivery_recipient", table_name="notify_delivery")
    op.drop_index("ux_notify_delivery_notification", table_name="notify_delivery")
    op.drop_table("notify_delivery")
