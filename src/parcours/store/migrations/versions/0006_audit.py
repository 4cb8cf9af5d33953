"""Audit trail: hash-chained AuditEvents, their extra patients, the chain head.

Revision ID: 0006
Revises: 0005

Frozen copy of ``parcours.audit.tables`` at this revision: later changes go in new
migrations, never here. On PostgreSQL a trigger makes the event tables append-only.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(JSONB(), "postgresql")
_GENESIS = "0" * 64

_REFUSE = """
CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only: % on % refused', TG_OP, TG_TABLE_NAME;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "audit_event",
        sa.Column("seq", _BIG_ID, primary_key=True, autoincrement=False),
        sa.Column("recorded", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(1), nullable=False),
        sa.Column("interaction", sa.String(32), nullable=False),
        sa.Column("outcome", sa.SmallInteger(), nullable=False),
        sa.Column("agent", sa.String(255), nullable=False),
        sa.Column("practitioner", sa.String(255), nullable=True),
        sa.Column("patient_id", sa.String(64), nullable=True),
        sa.Column("purpose", sa.String(16), nullable=True),
        sa.Column("source_address", sa.String(64), nullable=True),
        sa.Column("content", _JSON, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_event_patient", "audit_event", ["patient_id", "seq"])
    op.create_index("ix_audit_event_agent", "audit_event", ["agent", "seq"])
    op.create_index("ix_audit_event_practitioner", "audit_event", ["practitioner", "seq"])
    op.create_index("ix_audit_event_recorded", "audit_event", ["recorded"])
    op.create_index(
        "ix_audit_event_purpose",
        "audit_event",
        ["purpose", "seq"],
        postgresql_where=sa.text("purpose IS NOT NULL"),
        sqlite_where=sa.text("purpose IS NOT NULL"),
    )
    op.create_table(
        "audit_patient",
        sa.Column("patient_id", sa.String(64), primary_key=True),
        sa.Column("seq", _BIG_ID, primary_key=True, autoincrement=False),
    )
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": _GENESIS}])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_REFUSE)
        for table in ("audit_event", "audit_patient"):
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
                f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()"
            )


def downgrade() -> None:
    op.drop_table("audit_head")
    op.drop_table("audit_patient")
    op.drop_table("audit_event")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION audit_refuse_change()")
