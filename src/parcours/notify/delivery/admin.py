"""What operators ask of delivery: the deliveries with their attempts, and the manual retry of
notifications that became dead letters (``parcours notify deliveries|retry``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select

from parcours.errors import NotFound
from parcours.notify.delivery.tables import notify_delivery
from parcours.notify.model import channel_of, endpoint_of, is_notification_request
from parcours.store.clock import instant
from parcours.store.outbox import retry_dead
from parcours.store.repository import Store
from parcours.store.schema import outbox, resource

__all__ = ["DeliveryRow", "deliveries", "retry_notifications"]

_TYPE = "CommunicationRequest"


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    notification_id: str
    channel: str
    endpoint: str
    # delivered | retrying | dead
    state: str
    attempts: int
    last_error: str | None
    # Milliseconds since the epoch: delivered_at, or the next attempt / the parking time.
    at: int | None

    def as_json(self) -> dict[str, Any]:
        return {
            "notification": self.notification_id,
            "channel": self.channel,
            "endpoint": self.endpoint,
            "state": self.state,
            "attempts": self.attempts,
            "lastError": self.last_error,
            "at": instant(self.at) if self.at is not None else None,
        }


def _failing(store: Store, limit: int) -> list[DeliveryRow]:
    """Notifications whose delivery failed at least once and is not done: from the outbox,
    the one record of failures (a failed attempt's own writes are rolled back)."""
    with store.begin(readonly=True) as tx:
        rows = tx.conn.execute(
            select(outbox, resource.c.content)
            .join(
                resource,
                and_(resource.c.type == outbox.c.res_type, resource.c.id == outbox.c.res_id),
            )
            .where(
                outbox.c.res_type == _TYPE,
                outbox.c.processed_at.is_(None),
                outbox.c.attempts > 0,
            )
            .order_by(outbox.c.seq)
            .limit(limit)
        ).all()
    found = []
    for row in rows:
        content = row.content
        if not is_notification_request(content):
            continue
        dead = row.dead_at is not None
        found.append(
            DeliveryRow(
                notification_id=row.res_id,
                channel=channel_of(content) or "?",
                endpoint=endpoint_of(content) or "?",
                state="dead" if dead else "retrying",
                attempts=row.attempts,
                last_error=row.last_error,
                at=row.dead_at if dead else row.next_attempt_at,
            )
        )
    return found


def deliveries(store: Store, *, failed: bool = False, limit: int = 100) -> list[DeliveryRow]:
    """Failing deliveries (oldest first), then, unless ``failed``, the delivered ones (newest
    first)."""
    rows = _failing(store, limit)
    if failed:
        return rows
    with store.begin(readonly=True) as tx:
        delivered = tx.conn.execute(
            select(notify_delivery).order_by(notify_delivery.c.seq.desc()).limit(limit)
        ).all()
    rows += [
        DeliveryRow(
            notification_id=r.notification_id,
            channel=r.channel,
            endpoint=r.endpoint,
            state="delivered",
            attempts=r.attempts,
            last_error=r.last_error,
            at=r.delivered_at,
        )
        for r in delivered
    ]
    return rows


def retry_notifications(store: Store, notification_ids: list[str] | None = None) -> list[str]:
    """Put the dead letters of notification requests back in line (all of them when
    ``notification_ids`` is None), oldest first so that per-patient order holds; returns the
    notification ids retried. ``NotFound`` when a given id has no dead letter."""
    wanted = None if notification_ids is None else {_bare(i) for i in notification_ids}
    with store.begin(readonly=True) as tx:
        query = (
            select(outbox.c.seq, outbox.c.res_id, resource.c.content)
            .join(
                resource,
                and_(resource.c.type == outbox.c.res_type, resource.c.id == outbox.c.res_id),
            )
            .where(
                outbox.c.res_type == _TYPE,
                outbox.c.processed_at.is_(None),
                outbox.c.dead_at.is_not(None),
            )
            .order_by(outbox.c.seq)
        )
        if wanted is not None:
            query = query.where(outbox.c.res_id.in_(sorted(wanted)))
        rows = tx.conn.execute(query).all()
    dead = [r for r in rows if is_notification_request(r.content)]
    if wanted is not None:
        missing = wanted - {r.res_id for r in dead}
        if missing:
            raise NotFound(
                f"no dead letter for notification(s) {', '.join(sorted(missing))} "
                "(see `parcours notify deliveries --failed`)"
            )
    for row in dead:
        retry_dead(store, row.seq)
    return list(dict.fromkeys(r.res_id for r in dead))


def _bare(value: str) -> str:
    return value.rsplit("/", 1)[-1] if value.startswith(_TYPE + "/") else value
