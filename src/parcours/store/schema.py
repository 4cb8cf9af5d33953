"""The tables of the resource store.

One row per resource (current version) and one per version; one row per searchable value in a
table per search-parameter type (HAPI's idea: adding a SearchParameter needs no schema change);
one outbox row per committed change. Index rows are derived data: ``parcours db reindex``
rebuilds them from the stored JSON. Never reuse the name of a dropped table or index.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB

__all__ = [
    "INDEX_TABLES",
    "idx_date",
    "idx_number",
    "idx_quantity",
    "idx_reference",
    "idx_string",
    "idx_token",
    "idx_uri",
    "metadata",
    "outbox",
    "resource",
    "resource_version",
]

metadata = MetaData()

# SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")

resource = Table(
    "resource",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("type", String(64), nullable=False),
    Column("id", String(64), nullable=False),
    Column("version_id", Integer, nullable=False),
    # Milliseconds since the epoch, UTC: comparable and sortable the same way on both databases.
    Column("last_updated", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("content", Json, nullable=True),
    # The patient whose compartment holds the resource (its own id for a Patient), so the
    # access policy filters a search with one indexed column instead of a join per type.
    Column("patient_id", String(64), nullable=True),
    Index("ux_resource_type_id", "type", "id", unique=True),
    Index("ix_resource_type_updated", "type", "last_updated"),
    # Search's default order (creation order within a type) and its keyset paging.
    Index("ix_resource_type_pk", "type", "pk"),
    Index("ix_resource_patient", "patient_id", "type"),
)

resource_version = Table(
    "resource_version",
    metadata,
    Column("resource_pk", BigId, ForeignKey("resource.pk"), primary_key=True),
    Column("version_id", Integer, primary_key=True),
    Column("type", String(64), nullable=False),
    Column("id", String(64), nullable=False),
    Column("last_updated", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False),
    # create | update | delete: the Bundle.entry.request.method of the history entry.
    Column("method", String(8), nullable=False),
    Column("content", Json, nullable=True),
    Index("ix_resource_version_type_updated", "type", "last_updated"),
    Index("ix_resource_version_updated", "last_updated"),
)


def _index_table(
    name: str,
    *columns: Column[object],
    indexes: list[list[str]],
    postgresql_ops: dict[str, str] | None = None,
) -> Table:
    """An index table: which resource, which parameter, then the typed value columns.

    Search filters read these tables as ``res_type = … AND param = … AND <value test>``, so
    every composite index starts with (res_type, param).
    """
    table = Table(
        name,
        metadata,
        Column("resource_pk", BigId, ForeignKey("resource.pk"), nullable=False),
        Column("res_type", String(64), nullable=False),
        Column("param", String(100), nullable=False),
        *columns,
        Index(f"ix_{name}_resource", "resource_pk"),
    )
    for cols in indexes:
        Index(
            f"ix_{name}_{'_'.join(cols)}",
            *(table.c[c] for c in cols),
            postgresql_ops=postgresql_ops or {},
        )
    return table


idx_token = _index_table(
    "idx_token",
    Column("system", String(255), nullable=True),
    Column("code", String(255), nullable=True),
    # Folded display/text, for the :text modifier.
    Column("text", String(255), nullable=True),
    indexes=[["res_type", "param", "code", "system"], ["res_type", "param", "system"]],
)

idx_string = _index_table(
    "idx_string",
    # Case and accents folded (default prefix match and :contains).
    Column("value_norm", String(255), nullable=False),
    Column("value_exact", String(255), nullable=False),
    indexes=[["res_type", "param", "value_norm"]],
    # Prefix search is LIKE 'abc%': with a non-C collation PostgreSQL needs the pattern
    # operator class to use the index. (SQLite gets a range test instead, see search/sql.py.)
    postgresql_ops={"value_norm": "text_pattern_ops"},
)

idx_date = _index_table(
    "idx_date",
    # Inclusive range in milliseconds since the epoch UTC: "1952" is all of 1952.
    Column("low", BigInteger, nullable=True),
    Column("high", BigInteger, nullable=True),
    indexes=[["res_type", "param", "low"], ["res_type", "param", "high"]],
)

idx_number = _index_table(
    "idx_number",
    Column("value", Float, nullable=False),
    # Implicit precision range: "100" stands for [99.5, 100.5).
    Column("low", Float, nullable=False),
    Column("high", Float, nullable=False),
    indexes=[["res_type", "param", "value"]],
)

idx_quantity = _index_table(
    "idx_quantity",
    Column("system", String(255), nullable=True),
    Column("code", String(255), nullable=True),
    Column("unit", String(255), nullable=True),
    Column("value", Float, nullable=False),
    Column("low", Float, nullable=False),
    Column("high", Float, nullable=False),
    indexes=[["res_type", "param", "value"]],
)

idx_reference = _index_table(
    "idx_reference",
    Column("target_type", String(64), nullable=True),
    Column("target_id", String(64), nullable=True),
    # The reference as written when it is not a local Type/id (absolute URL, canonical).
    Column("target_url", String(1024), nullable=True),
    # (target_type, target_id, res_type, param): chains, _has and _revinclude go from a target
    # resource to the resources that point at it through one parameter.
    indexes=[
        ["res_type", "param", "target_id"],
        ["target_type", "target_id", "res_type", "param"],
    ],
)

idx_uri = _index_table(
    "idx_uri",
    Column("value", String(1024), nullable=False),
    indexes=[["res_type", "param", "value"]],
)

INDEX_TABLES: dict[str, Table] = {
    "token": idx_token,
    "string": idx_string,
    "date": idx_date,
    "number": idx_number,
    "quantity": idx_quantity,
    "reference": idx_reference,
    "uri": idx_uri,
}

outbox = Table(
    "outbox",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("res_type", String(64), nullable=False),
    Column("res_id", String(64), nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("action", String(8), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("processed_at", BigInteger, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", BigInteger, nullable=True),
    Column("last_error", Text, nullable=True),
    # Set when the event is parked as a dead letter (processed_at stays NULL, so the
    # resource's later events stay blocked); cleared by a manual retry.
    Column("dead_at", BigInteger, nullable=True),
    Index("ix_outbox_pending", "processed_at", "seq"),
    Index("ix_outbox_resource", "res_type", "res_id", "seq"),
)
# The dispatcher's "is an earlier event of this resource still unprocessed?" probe: only pending
# rows, so a resource with a long processed history costs nothing.
Index(
    "ix_outbox_resource_pending",
    outbox.c.res_type,
    outbox.c.res_id,
    outbox.c.seq,
    sqlite_where=outbox.c.processed_at.is_(None),
    postgresql_where=outbox.c.processed_at.is_(None),
)
