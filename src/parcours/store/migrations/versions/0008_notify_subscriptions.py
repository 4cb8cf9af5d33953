"""Issue 6: notification preferences and Subscription owners.

Revision ID: 0008
Revises: 0007

Frozen copy of ``parcours.notify.tables`` at this revision.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notify_preference",
        sa.Column("recipient", sa.String(140), primary_key=True),
        sa.Column("channels", sa.String(64), nullable=True),
        sa.Column("opted_out", sa.Text(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "notify_subscription",
        sa.Column("subscription_id", sa.String(64), primary_key=True),
        sa.Column("owner_subject", sa.String(140), nullable=False),
        sa.Column("practitioner", sa.String(140), nullable=True),
        sa.Column("roles", sa.Text(), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("notify_subscription")
    op.drop_table("notify_preference")
