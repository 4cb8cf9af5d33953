"""Wave 1: ppcs — no table of its own (a no-op, kept so that revisions stay in sequence).

A PPCS is a CarePlan in the resource store: its versions are the store's history, its
sign-off a Provenance and a DocumentReference, its rules a store write hook (docs/ppcs.md).

Revision ID: 0011
Revises: 0010
"""

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
