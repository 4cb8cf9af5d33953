"""Patient identity: blocking keys, flat records, review queue (candidate pairs), merge journal.

Revision ID: 0003
Revises: 0002

Frozen copy of ``parcours.identity.tables`` at this revision: later changes go in new
migrations, never here.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "identity_block",
        sa.Column("pk", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=False),
    )
    op.create_index("ix_identity_block_key", "identity_block", ["key", "patient_id"])
    op.create_index("ix_identity_block_patient", "identity_block", ["patient_id"])
    op.create_table(
        "identity_record",
        sa.Column("unique_id", sa.String(64), primary_key=True),
        sa.Column("birth_name", sa.String(255), nullable=True),
        sa.Column("first_given_name", sa.String(255), nullable=True),
        sa.Column("birth_date", sa.String(10), nullable=True),
        sa.Column("sex", sa.String(1), nullable=True),
        sa.Column("birthplace", sa.String(16), nullable=True),
        sa.Column("ins", sa.String(64), nullable=True),
        sa.Column("name_sx", sa.String(32), nullable=True),
        sa.Column("first_sx", sa.String(32), nullable=True),
        sa.Column("birth_year", sa.Integer(), nullable=True),
        sa.Column("birth_md", sa.String(4), nullable=True),
    )
    op.create_table(
        "identity_candidate",
        sa.Column("pk", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("patient_a", sa.String(64), nullable=False),
        sa.Column("patient_b", sa.String(64), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("grade", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("decided_by", sa.String(255), nullable=True),
        sa.Column("decided_at", sa.BigInteger(), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
    )
    op.create_index(
        "ux_identity_candidate_pair", "identity_candidate", ["patient_a", "patient_b"], unique=True
    )
    op.create_index("ix_identity_candidate_status", "identity_candidate", ["status", "pk"])
    op.create_index("ix_identity_candidate_b", "identity_candidate", ["patient_b"])
    op.create_table(
        "identity_merge",
        sa.Column("pk", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("source_id", sa.String(64), nullable=False),
        sa.Column("target_id", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("merged_at", sa.BigInteger(), nullable=False),
        sa.Column("changes", _JSON, nullable=False),
        sa.Column("undone_at", sa.BigInteger(), nullable=True),
        sa.Column("undone_by", sa.String(255), nullable=True),
        sa.Column("undo_reason", sa.Text(), nullable=True),
    )
    op.create_index("ix_identity_merge_source", "identity_merge", ["source_id"])
    op.create_index("ix_identity_merge_target", "identity_merge", ["target_id"])


def downgrade() -> None:
    op.drop_table("identity_merge")
    op.drop_table("identity_candidate")
    op.drop_table("identity_record")
    op.drop_table("identity_block")
