"""Initial store: resources, versions, search index tables, outbox.

Revision ID: 0001
Revises:
"""

from alembic import op

from parcours.store.schema import metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen list: later migrations change tables through op.* calls, never by editing this one.
_TABLES = (
    "resource",
    "resource_version",
    "idx_token",
    "idx_string",
    "idx_date",
    "idx_number",
    "idx_quantity",
    "idx_reference",
    "idx_uri",
    "outbox",
)


def upgrade() -> None:
    bind = op.get_bind()
    metadata.create_all(bind, tables=[metadata.tables[name] for name in _TABLES])


def downgrade() -> None:
    bind = op.get_bind()
    metadata.drop_all(bind, tables=[metadata.tables[name] for name in reversed(_TABLES)])
