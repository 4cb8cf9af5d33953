"""Initial store: resources, versions, search index tables, outbox.

Revision ID: 0001
Revises:
"""

from alembic import op
from sqlalchemy import Index, MetaData, Table

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


# Columns that later migrations add: left out here so that the later migration adds them.
_ADDED_LATER = {"resource": frozenset({"patient_id"})}


def _tables_at_this_revision() -> list[Table]:
    frozen = MetaData()
    tables = []
    for name in _TABLES:
        source = metadata.tables[name]
        later = _ADDED_LATER.get(name, frozenset())
        columns = [c._copy() for c in source.columns if c.name not in later]
        indexes = [
            Index(i.name, *(c.name for c in i.columns), unique=i.unique, **i.dialect_kwargs)
            for i in source.indexes
            if not {c.name for c in i.columns} & later
        ]
        tables.append(Table(name, frozen, *columns, *indexes))
    return tables


def upgrade() -> None:
    bind = op.get_bind()
    tables = _tables_at_this_revision()
    tables[0].metadata.create_all(bind, tables=tables)


def downgrade() -> None:
    bind = op.get_bind()
    metadata.drop_all(bind, tables=[metadata.tables[name] for name in reversed(_TABLES)])
