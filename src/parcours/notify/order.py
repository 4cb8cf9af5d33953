"""Delivery order keys of notification requests (``notify_order``), kept on every write.

A store derived hook (like the care circle's rows): whoever writes a notification request (the
manager, a test, an import), its channel and a digest of its endpoint are recorded in the same
transaction (and rebuilt by ``parcours.store.maintenance.reindex_all``), so delivery finds the
earlier notifications to the same endpoint with one indexed query instead of reading the JSON
of every pending notification of the patient.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import delete, insert

from parcours.notify.model import channel_of, endpoint_of, is_notification_request
from parcours.notify.tables import notify_order
from parcours.store.repository import Transaction

__all__ = ["channel_key", "endpoint_key", "on_write", "order_key"]

_TYPE = "CommunicationRequest"


def endpoint_key(endpoint: str) -> str:
    return hashlib.sha256(endpoint.encode()).hexdigest()


def channel_key(channel: str) -> str:
    return channel[:16]  # the column's width; every channel of ours is shorter


def order_key(content: dict[str, Any] | None) -> tuple[str, str] | None:
    """(channel, endpoint digest) of a notification request; None for anything else."""
    if content is None or not is_notification_request(content):
        return None
    return channel_key(channel_of(content) or ""), endpoint_key(endpoint_of(content) or "")


def on_write(tx: Transaction, new: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
    current = new or old
    if current is None or current.get("resourceType") != _TYPE:
        return
    key, before = order_key(new), order_key(old)
    rebuild = new is not None and new is old  # ``Transaction.reindex``: rewrite the row
    if key == before and not rebuild and (key is None or (new is not None and old is not None)):
        return  # not a notification, or a status change (delivered, on hold): same keys
    res_id = str(current.get("id"))
    tx.conn.execute(delete(notify_order).where(notify_order.c.notification_id == res_id))
    if key is not None:
        tx.conn.execute(
            insert(notify_order).values(notification_id=res_id, channel=key[0], endpoint_key=key[1])
        )
