"""Reading back what the listener wrote (straight from the store tables)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from parcours.hl7v2 import inbox
from parcours.store import Store
from parcours.store.schema import outbox, resource


def resources(store: Store, res_type: str) -> list[dict[str, Any]]:
    with store.begin(readonly=True) as tx:
        rows = tx.conn.execute(
            select(resource.c.content)
            .where(resource.c.type == res_type, resource.c.deleted.is_(False))
            .order_by(resource.c.pk)
        )
        return [dict(r.content) for r in rows]


def one(store: Store, res_type: str) -> dict[str, Any]:
    found = resources(store, res_type)
    assert len(found) == 1, f"expected one {res_type}, found {len(found)}"
    return found[0]


def outbox_count(store: Store) -> int:
    with store.begin(readonly=True) as tx:
        return len(tx.conn.execute(select(outbox.c.seq)).all())


def rows(store: Store) -> list[inbox.InboxRow]:
    return inbox.list_messages(store, limit=10_000, with_raw=True)


def status_of(encounter: dict[str, Any]) -> tuple[str, str]:
    return encounter["status"], encounter["class"]["code"]
