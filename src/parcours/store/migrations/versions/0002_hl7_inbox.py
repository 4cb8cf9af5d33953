"""HL7 v2 interface: durable message inbox and identifier cross-reference.

Revision ID: 0002
Revises: 0001

Frozen copy of ``parcours.hl7v2.tables`` at this revision: later changes go in new
migrations, never here.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "hl7_inbox",
        sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.Column("dedup_key", sa.String(768), nullable=True),
        sa.Column("sending_application", sa.String(255), nullable=False),
        sa.Column("sending_facility", sa.String(255), nullable=False),
        sa.Column("control_id", sa.String(255), nullable=False),
        sa.Column("message_type", sa.String(16), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("charset", sa.String(32), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("ack_code", sa.String(2), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("patient_key", sa.String(768), nullable=True),
        sa.Column("targets", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("processed_at", sa.BigInteger(), nullable=True),
        sa.Column("peer", sa.String(255), nullable=True),
    )
    op.create_index("ux_hl7_inbox_dedup", "hl7_inbox", ["dedup_key"], unique=True)
    op.create_index("ix_hl7_inbox_status", "hl7_inbox", ["status", "id"])
    op.create_index("ix_hl7_inbox_patient", "hl7_inbox", ["patient_key", "id"])
    op.create_index("ix_hl7_inbox_received", "hl7_inbox", ["received_at"])
    op.create_index("ix_hl7_inbox_control", "hl7_inbox", ["control_id"])
    op.create_table(
        "hl7_xref",
        sa.Column("pk", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("system", sa.String(255), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        sa.Column("res_type", sa.String(64), nullable=False),
        sa.Column("res_id", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=True),
    )
    op.create_index("ix_hl7_xref_value", "hl7_xref", ["kind", "value", "system"])
    op.create_index("ix_hl7_xref_resource", "hl7_xref", ["res_type", "res_id"])
    op.create_index("ix_hl7_xref_patient", "hl7_xref", ["patient_id"])


def downgrade() -> None:
    op.drop_table("hl7_xref")
    op.drop_table("hl7_inbox")
