"""Custom SearchParameter resources: searchable as soon as the write commits, no restart.

When a transaction writes a SearchParameter resource, ``on_searchparameter_write``:

1. reads it (a bad definition fails the write with InvalidResource, nothing is stored);
2. reindexes, **synchronously in the same transaction**, the stored resources of its base
   types for that one parameter (rows of that code are replaced), so the new parameter is
   complete the moment it becomes visible, and a rollback leaves nothing behind;
3. registers it in the registry after the commit (``Transaction.after_commit``); resources
   written later in the same transaction are indexed with it too (the transaction's
   ``pending_params``).

Limits: the reindex costs one pass over every resource of the base types inside the writing
transaction (fine for thousands, minutes for a million: a background reindex job reading the
outbox is the next step); other processes learn the parameter at their next start
(``registry.load_custom``). Retiring or deleting the SearchParameter unregisters it after
commit; its index rows stay until the next reindex, harmlessly, since nothing queries them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select

from parcours.store.schema import INDEX_TABLES, resource
from parcours.store.search.registry import SearchParam, SearchParameterRegistry

if TYPE_CHECKING:
    from parcours.store.repository import Transaction

__all__ = ["on_searchparameter_delete", "on_searchparameter_write", "pending_rows"]

_BATCH = 500


def on_searchparameter_write(
    tx: Transaction, registry: SearchParameterRegistry, content: dict[str, Any]
) -> None:
    url = content.get("url")
    if content.get("status") != "active":
        if isinstance(url, str) and (registry.by_url(url) or _pending(tx).get(url)):
            _pending(tx).pop(url, None)
            tx.after_commit.append(lambda: _discard(registry.remove(url)))
        return
    param = SearchParam.from_resource(content, custom=True)
    # Validates base types and the expression before anything is written.
    _check(registry, content)
    _pending(tx)[param.url] = param
    _reindex(tx, registry, param)
    tx.after_commit.append(lambda: _discard(registry.add(content)))


def on_searchparameter_delete(
    tx: Transaction, registry: SearchParameterRegistry, content: dict[str, Any] | None
) -> None:
    url = (content or {}).get("url")
    if isinstance(url, str):
        _pending(tx).pop(url, None)
        tx.after_commit.append(lambda: _discard(registry.remove(url)))


def pending_rows(
    tx: Transaction, registry: SearchParameterRegistry, content: dict[str, Any]
) -> dict[str, list[dict[str, Any]]]:
    """Index rows for parameters written earlier in this still-open transaction."""
    pending = _pending(tx)
    res_type = content.get("resourceType")
    if not pending or not isinstance(res_type, str):
        return {}
    plans = tuple(
        plan
        for param in pending.values()
        if res_type in param.base or {"Resource", "DomainResource"} & set(param.base)
        for plan in [registry.plan_param(res_type, param)]
        if plan is not None
    )
    return registry.index_plans(content, plans)


def _discard(_value: object) -> None:
    return None


def _pending(tx: Transaction) -> dict[str, SearchParam]:
    pending: dict[str, SearchParam] = tx.pending_params
    return pending


def _check(registry: SearchParameterRegistry, content: dict[str, Any]) -> None:
    # A throw-away registry with the same types runs the same checks as ``add`` would.
    probe = SearchParameterRegistry(registry.resource_types(), base_urls=registry.base_urls)
    probe.add(content)


def _reindex(tx: Transaction, registry: SearchParameterRegistry, param: SearchParam) -> None:
    if {"Resource", "DomainResource"} & set(param.base):
        types = sorted(registry.resource_types())
    else:
        types = list(param.base)
    for res_type in types:
        plan = registry.plan_param(res_type, param)
        table = INDEX_TABLES.get(param.type)
        if plan is None or table is None:
            continue
        for kind, t in INDEX_TABLES.items():
            names = [param.code]
            if kind == "token":
                names += [param.code + ":identifier", param.code + ":of-type"]
            tx.conn.execute(delete(t).where(t.c.res_type == res_type, t.c.param.in_(names)))
        last_pk = 0
        while True:
            batch = tx.conn.execute(
                select(resource.c.pk, resource.c.content)
                .where(
                    resource.c.type == res_type,
                    resource.c.deleted.is_(False),
                    resource.c.pk > last_pk,
                )
                .order_by(resource.c.pk)
                .limit(_BATCH)
            ).all()
            if not batch:
                break
            last_pk = batch[-1].pk
            by_kind: dict[str, list[dict[str, Any]]] = {}
            for row in batch:
                for kind, rows in registry.index_plans(row.content, (plan,)).items():
                    by_kind.setdefault(kind, []).extend(
                        {**r, "resource_pk": row.pk, "res_type": res_type} for r in rows
                    )
            for kind, rows in by_kind.items():
                tx.conn.execute(insert(INDEX_TABLES[kind]), rows)
