"""Access policy: each resource's patient compartment, care-circle memberships, oppositions,
break-glass grants.

Revision ID: 0004
Revises: 0003

Frozen copy of ``parcours.security.tables`` and of ``resource.patient_id`` at this revision.
Existing resources get their ``patient_id`` from their index rows (the reference parameters
``patient``, ``subject``, ``beneficiary`` pointing to a Patient, as the repository does);
memberships and oppositions of existing CareTeams and Consents are rebuilt by
``parcours db reindex``.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("resource") as batch:
        batch.add_column(sa.Column("patient_id", sa.String(64), nullable=True))
    op.create_index("ix_resource_patient", "resource", ["patient_id", "type"])
    op.execute("UPDATE resource SET patient_id = id WHERE type = 'Patient'")
    for param in ("beneficiary", "subject", "patient"):
        # Later parameters win, so "patient" has the last word, as in the repository.
        op.execute(
            "UPDATE resource SET patient_id = ("
            " SELECT MIN(r.target_id) FROM idx_reference r"
            " WHERE r.resource_pk = resource.pk AND r.param = '" + param + "'"
            " AND r.target_type = 'Patient' AND r.target_url IS NULL)"
            " WHERE type <> 'Patient' AND EXISTS ("
            " SELECT 1 FROM idx_reference r WHERE r.resource_pk = resource.pk"
            " AND r.param = '" + param + "' AND r.target_type = 'Patient'"
            " AND r.target_url IS NULL)"
        )
    op.create_table(
        "care_member",
        sa.Column("pk", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("careteam_id", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("member", sa.String(140), nullable=False),
        sa.Column("member_org", sa.String(140), nullable=True),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=True),
        sa.Column("end_ms", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_care_member_member", "care_member", ["member", "patient_id"])
    op.create_index("ix_care_member_org", "care_member", ["member_org", "patient_id"])
    op.create_index("ix_care_member_team", "care_member", ["careteam_id"])
    op.create_index("ix_care_member_patient", "care_member", ["patient_id"])
    op.create_table(
        "care_opposition",
        sa.Column("pk", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("consent_id", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(140), nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=True),
        sa.Column("end_ms", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_care_opposition_patient", "care_opposition", ["patient_id", "actor"])
    op.create_index("ix_care_opposition_consent", "care_opposition", ["consent_id"])
    op.create_table(
        "access_grant",
        sa.Column("pk", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("subject", sa.String(140), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("granted_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
    )
    op.create_index(
        "ix_access_grant_subject", "access_grant", ["subject", "patient_id", "expires_ms"]
    )
    op.create_index("ix_access_grant_patient", "access_grant", ["patient_id", "granted_ms"])
    op.create_table(
        "platform_secret",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("platform_secret")
    op.drop_table("access_grant")
    op.drop_table("care_opposition")
    op.drop_table("care_member")
    op.drop_index("ix_resource_patient", "resource")
    with op.batch_alter_table("resource") as batch:
        batch.drop_column("patient_id")
