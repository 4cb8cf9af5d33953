"""Creating many new resources in one transaction, in a few statements instead of a dozen each.

``create_new(tx, resources)`` stores each resource exactly as ``tx.update`` stores a resource
whose id is unknown (update-as-create): the same validation, version 1 with its own
``meta.lastUpdated``, the same search index rows and compartment owner, one version row, one
outbox event, one ``tx.written`` entry, and every write hook and derived hook called with the
resource. What changes is how the rows travel:

* no look-up of the current version: the caller guarantees the ids are new (an initial import
  into an empty database), and the unique index on (type, id) still refuses a duplicate, as
  ``Conflict``;
* the resource rows of the whole call go in one statement with their primary keys allocated
  beforehand (in order, so creation order and search's default order are those of the list),
  and the version, index and outbox rows in one executemany per table;
* the hooks then run resource after resource, in the list's order, with nothing left to flush
  between two of them (the per-resource path flushes each resource's queued rows before a
  hook may read).

So the database ends up as the per-resource path leaves it (tests/demo compare both, table by
table), provided that no hook depends on a resource *later* in the same call: every resource
row of the call is stored before the first hook runs. Callers order the list so that a
resource comes after the ones it refers to (the demo region does) and keep custom
``SearchParameter`` resources, whose write changes the search registry, out of it. Likewise
every resource of the call is validated before the first hook runs: identity matching keeps
what the FR Core check hands it (a dropped INS) for the last 1,024 Patients validated, so a
call holds at most 1,000 resources.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError

from parcours.errors import Conflict, InvalidResource
from parcours.store.clock import now_ms
from parcours.store.compartment import patient_of
from parcours.store.repository import (
    Resource,
    Transaction,
    Validator,
    as_version,
    check_id,
    resource_type,
)
from parcours.store.schema import INDEX_TABLES, outbox, resource, resource_version

__all__ = ["MAX_RESOURCES", "create_new", "first_version"]

MAX_RESOURCES = 1000
# Their write changes the search registry mid-transaction (see store/search/custom.py).
_UNSUPPORTED = frozenset({"SearchParameter"})

_INSERT_RESOURCE = insert(resource)
_INSERT_VERSION = insert(resource_version)
_INSERT_EVENT = insert(outbox)
_INSERT_INDEX = {kind: insert(table) for kind, table in INDEX_TABLES.items()}
_PG_NEXT_PKS = text(
    "SELECT nextval(pg_get_serial_sequence('resource', 'pk')) FROM generate_series(1, :n)"
)


@dataclass(frozen=True, slots=True)
class _Prepared:
    res_type: str
    res_id: str
    stamp: int
    content: Resource
    index: Mapping[str, Sequence[Mapping[str, Any]]]
    owner: str | None


def create_new(
    tx: Transaction, resources: Sequence[Resource], *, validator: Validator | None = None
) -> list[Resource]:
    """Store ``resources`` (each with a new id) as version 1; returns the stored contents.

    ``validator`` stands in for the store's own (``tx.store.validator``) when the caller
    already knows the outcome of some validations; it must then call the store's validator
    for every other resource (see ``parcours.demo.prevalidation``).
    """
    if len(resources) > MAX_RESOURCES:
        raise ValueError(f"create_new takes at most {MAX_RESOURCES} resources per call")
    if tx.pending_params:
        raise ValueError(
            "create_new cannot run after a SearchParameter write in the same transaction"
        )
    validate = validator or tx.store.validator
    prepared = [_prepare(tx, res, validate) for res in resources]
    if not prepared:
        return []
    conn = tx.conn  # applies the rows the transaction had queued before this call
    pks = _allocate_pks(tx, len(prepared))
    try:
        conn.execute(
            _INSERT_RESOURCE,
            [
                {
                    "pk": pk,
                    "type": p.res_type,
                    "id": p.res_id,
                    "version_id": 1,
                    "last_updated": p.stamp,
                    "deleted": False,
                    "content": p.content,
                    "patient_id": p.owner,
                }
                for pk, p in zip(pks, prepared, strict=True)
            ],
        )
    except IntegrityError as exc:
        raise Conflict(
            "a resource of this import already exists: the bulk path only creates new ids"
        ) from exc
    conn.execute(
        _INSERT_VERSION,
        [
            {
                "resource_pk": pk,
                "version_id": 1,
                "type": p.res_type,
                "id": p.res_id,
                "last_updated": p.stamp,
                "deleted": False,
                "method": "create",
                "content": p.content,
            }
            for pk, p in zip(pks, prepared, strict=True)
        ],
    )
    index_rows: dict[str, list[dict[str, Any]]] = {}
    for pk, p in zip(pks, prepared, strict=True):
        for kind, rows in p.index.items():
            index_rows.setdefault(kind, []).extend(
                {**r, "resource_pk": pk, "res_type": p.res_type} for r in rows
            )
    for kind, rows in index_rows.items():
        if rows:
            conn.execute(_INSERT_INDEX[kind], rows)
    conn.execute(
        _INSERT_EVENT,
        [
            {
                "res_type": p.res_type,
                "res_id": p.res_id,
                "version_id": 1,
                "action": "create",
                "created_at": p.stamp,
                "attempts": 0,
            }
            for p in prepared
        ],
    )
    hooks = (*tx.store.write_hooks, *tx.store.derived_hooks)
    for p in prepared:
        tx.written.append((p.res_type, p.res_id, 1, "create", p.owner))
        for hook in hooks:
            hook(tx, p.content, None)
    return [p.content for p in prepared]


def first_version(res: Resource, stamp: int) -> Resource:
    """The content ``Transaction.create`` validates and stores: the resource as version 1,
    last updated at ``stamp`` (ms since the epoch)."""
    res_type = resource_type(res)
    if res_type in _UNSUPPORTED:
        raise ValueError(f"create_new does not write {res_type} resources; use tx.update")
    res_id = res.get("id")
    if not isinstance(res_id, str):
        raise InvalidResource("an update needs the resource's id in its body", [])
    check_id(res_id)
    return as_version(res, res_id, 1, stamp)


def _prepare(tx: Transaction, res: Resource, validate: Validator) -> _Prepared:
    """What ``Transaction.create`` computes before it writes: the stored content (validated),
    its index rows and its compartment owner."""
    stamp = now_ms()
    content = first_version(res, stamp)
    validate(content)
    index = tx.store.indexer(content)
    res_type, res_id = str(content["resourceType"]), str(content["id"])
    return _Prepared(res_type, res_id, stamp, content, index, patient_of(res_type, res_id, index))


def _allocate_pks(tx: Transaction, count: int) -> list[int]:
    """The primary keys the database would give ``count`` inserts in a row, in order."""
    if tx.store.dialect.is_postgres:
        values = tx.conn.execute(_PG_NEXT_PKS, {"n": count}).scalars()
        return sorted(int(v) for v in values)
    # SQLite gives an INTEGER PRIMARY KEY (no AUTOINCREMENT) the largest rowid plus one; the
    # write transaction (BEGIN IMMEDIATE) keeps any other writer out until the commit.
    top = tx.conn.execute(select(func.coalesce(func.max(resource.c.pk), 0))).scalar_one()
    return list(range(int(top) + 1, int(top) + 1 + count))
