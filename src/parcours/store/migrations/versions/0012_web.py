"""Web workspace: no table of its own (a no-op kept for the revision chain).

The workspace stores nothing beside what the platform stores: sessions are ``auth_session``
(migration of issue 4), read marks ``notify_read`` (issue 6), everything else FHIR resources
written through the engine (docs/web.md, decision D31).

Revision ID: 0012
Revises: 0011
"""

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
