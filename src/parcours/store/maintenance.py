"""Maintenance over the whole store: rebuilding the derived search index."""

from __future__ import annotations

from sqlalchemy import select

from parcours.store.repository import Store
from parcours.store.schema import resource

__all__ = ["reindex_all"]


def reindex_all(store: Store, res_type: str | None = None, batch: int = 500) -> int:
    """Rebuild the index rows of every live resource (of one type), in batches; returns the count.

    Index rows are derived from the stored JSON, so this is safe to rerun at any time, e.g. after
    a SearchParameter definition changed.
    """
    done = 0
    last_pk = 0
    while True:
        stmt = select(resource.c.pk, resource.c.type, resource.c.id).where(
            resource.c.pk > last_pk, resource.c.deleted.is_(False)
        )
        if res_type is not None:
            stmt = stmt.where(resource.c.type == res_type)
        with store.begin() as tx:
            rows = tx.conn.execute(stmt.order_by(resource.c.pk).limit(batch)).all()
            for row in rows:
                tx.reindex(row.type, row.id)
        if not rows:
            return done
        done += len(rows)
        last_pk = rows[-1].pk
