"""The bulk demo load leaves the database exactly as the per-resource load does.

The same region (fixed seed, 300 patients, the platform's hooks) is loaded through
``tx.update`` one resource at a time into one database, through
``parcours.store.bulk.create_new`` into another, and through it again with a second process
validating ahead (``parcours.demo.prevalidation``) into a third; then every table of the
databases is compared, row for row. Only what legitimately differs between two runs is set aside:

* the clock: ``last_updated`` / ``meta.lastUpdated`` (also indexed as ``_lastUpdated``), the
  outbox's and the identity queue's ``created_at`` / ``updated_at``, the audit trail's
  ``recorded`` time (also its AuditEvent's ``recorded`` and ``period``) and its hash chain
  (each hash covers the entry's time);
* surrogate keys the database allocates (``pk``, ``seq``): rows pointing at a resource are
  compared through its (type, id) instead, ordered tables (resources, outbox, audit) through
  their order.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, Table, create_engine, select, text

from databases import PG_URL, pg_schema_url, require_postgres
from parcours.config import Settings
from parcours.demo import build_region, load_demo
from parcours.platform import build_platform
from parcours.store.engine import make_engine
from parcours.store.schema_version import ensure_schema

PATIENTS = 300
SEED = 7

# Columns holding a time taken from the clock while loading.
CLOCK_COLUMNS = {
    "resource": {"last_updated"},
    "resource_version": {"last_updated"},
    "outbox": {"created_at"},
    "identity_candidate": {"created_at", "updated_at"},
    "audit_event": {"recorded", "prev_hash", "hash"},
    "audit_head": {"hash"},
}
# Tables whose row order is part of their meaning, by the surrogate key that orders them.
ORDERED = {"resource": "pk", "outbox": "seq", "audit_event": "seq"}
NOT_DATA = {"alembic_version"}


@pytest.fixture
def three_databases(database_url: str, tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """``database_url`` and two more empty databases of the same kind."""
    if database_url.startswith("sqlite"):
        yield database_url, f"sqlite:///{tmp_path / 'bulk.db'}", f"sqlite:///{tmp_path / 'pre.db'}"
        return
    require_postgres()
    schemas = [f"t_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        for schema in schemas:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield database_url, pg_schema_url(schemas[0]), pg_schema_url(schemas[1])
    finally:
        with admin.begin() as conn:
            for schema in schemas:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _load(url: str, *, bulk: bool, prevalidate: bool = False) -> None:
    settings = Settings(database_url=url)
    platform = build_platform(settings)
    try:
        ensure_schema(platform.store.engine)
        load_demo(
            platform.store,
            seed=SEED,
            patients=PATIENTS,
            # Five transactions: the pre-validating process takes the last three.
            batch_size=250,
            bulk=bulk,
            prevalidate=settings if prevalidate else None,
        )
    finally:
        platform.close()


def _without_clock(content: Any) -> Any:
    if not isinstance(content, dict):
        return content
    if content.get("resourceType") == "AuditEvent":
        # The trail's own FHIR view of an entry: when it was recorded.
        return {k: v for k, v in content.items() if k not in ("recorded", "period")}
    meta = dict(content.get("meta") or {})
    meta.pop("lastUpdated", None)
    return {**content, "meta": meta}


def _canonical(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return value


def _surrogate(table: Table) -> set[str]:
    """The table's primary key when the database allocates it (one integer column)."""
    keys = list(table.primary_key.columns)
    if len(keys) == 1 and keys[0].name in ("pk", "seq", "id") and keys[0].type.python_type is int:
        return {keys[0].name}
    return set()


def _dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = make_engine(url)
    try:
        return _rows(engine)
    finally:
        engine.dispose()


def _rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    metadata = MetaData()
    metadata.reflect(engine)
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        resources = {
            row.pk: (row.type, row.id)
            for row in conn.execute(text("SELECT pk, type, id FROM resource"))
        }
        audit_order = {
            seq: i
            for i, (seq,) in enumerate(
                conn.execute(text("SELECT seq FROM audit_event ORDER BY seq"))
            )
        }
        for name, table in sorted(metadata.tables.items()):
            if name in NOT_DATA:
                continue
            order = ORDERED.get(name)
            query = select(table)
            if order is not None:
                query = query.order_by(table.c[order])
            skip = _surrogate(table) | CLOCK_COLUMNS.get(name, set())
            rows = []
            for row in conn.execute(query).mappings():
                item: dict[str, Any] = {}
                for column, value in row.items():
                    if column in skip:
                        continue
                    if column == "resource_pk":
                        value = resources[value]
                    elif column == "content":
                        value = _without_clock(value)
                    elif name in ("audit_patient", "audit_head") and column == "seq":
                        value = audit_order.get(value, value)
                    item[column] = _canonical(value)
                if name == "idx_date" and item["param"] == "_lastUpdated":
                    item["low"] = item["high"] = "clock"
                rows.append(tuple(sorted(item.items())))
            out[name] = rows if order is not None else sorted(rows, key=repr)
    return out


def test_bulk_load_leaves_the_database_of_the_per_resource_load(
    three_databases: tuple[str, str, str],
) -> None:
    each_url, bulk_url, prevalidated_url = three_databases
    _load(each_url, bulk=False)
    _load(bulk_url, bulk=True)
    _load(prevalidated_url, bulk=True, prevalidate=True)
    each, bulk, prevalidated = (_dump(url) for url in three_databases)
    assert sorted(each) == sorted(bulk) == sorted(prevalidated)
    # The comparison compares something: every kind of row the load writes is there.
    written = ("resource", "resource_version", "idx_token", "idx_string", "idx_reference")
    derived = ("identity_block", "identity_record", "identity_candidate", "care_member")
    for name in (*written, "idx_date", "outbox", *derived, "audit_event", "audit_patient"):
        assert each[name], name
    assert len(each["resource"]) == len(build_region(SEED, PATIENTS).resources)
    assert [name for name in sorted(each) if each[name] != bulk[name]] == []
    assert [name for name in sorted(each) if each[name] != prevalidated[name]] == []
