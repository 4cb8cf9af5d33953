"""The in-app inbox: the ``inapp`` notification requests delivered to a user, read marks, and
the wake-up that makes the live stream immediate.

A user's inbox is what was addressed to them as a Practitioner, or to an Organization they work
for through an active PractitionerRole (the same roles the access policy reads). An item
appears once delivered (a ``notify_delivery`` row), so the list and the live stream agree, and
the row's ``seq`` is the stream's cursor. Read marks are per person (``Principal.subject``):
one colleague reading an Organization's notification does not mark it read for the others.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, insert, select
from sqlalchemy.exc import IntegrityError

from parcours.notify.delivery.tables import notify_delivery, notify_read
from parcours.notify.model import CHANNEL_INAPP, event_codes_of, event_time_of
from parcours.security.policy import access_for
from parcours.security.principal import Principal
from parcours.store.clock import instant, now_ms
from parcours.store.repository import Transaction
from parcours.store.schema import resource

__all__ = [
    "InboxItem",
    "InboxSignal",
    "inbox_items",
    "inbox_targets",
    "latest_seq",
    "mark_all_read",
    "mark_read",
    "unread_count",
]


class InboxSignal:
    """Wakes the live streams of this process when an in-app notification is delivered.

    The dispatcher delivers in a worker thread; streams wait in the event loop: ``notify`` may
    be called from any thread. Streams also poll the database, so a delivery made by another
    process (an outbox worker) still shows up, half a second later.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def notify(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop is closed: its stream is gone
                continue

    @contextmanager
    def listen(self) -> Iterator[asyncio.Event]:
        """An event set at each delivery while the block runs (call from the event loop)."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.add(entry)
        try:
            yield entry[1]
        finally:
            with self._lock:
                self._waiters.discard(entry)


@dataclass(frozen=True, slots=True)
class InboxItem:
    seq: int
    id: str
    recipient: str
    patient: str | None
    text: str
    event_codes: list[tuple[str, str]]
    event_time: str | None
    delivered_at: int
    read_at: int | None

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "id": self.id,
            "recipient": self.recipient,
            "patient": self.patient,
            "text": self.text,
            "event": [{"system": s, "code": c} for s, c in self.event_codes],
            "eventTime": self.event_time,
            "delivered": instant(self.delivered_at),
            "read": self.read_at is not None,
            "readAt": instant(self.read_at) if self.read_at is not None else None,
        }


def inbox_targets(tx: Transaction, principal: Principal) -> list[str]:
    """The recipient references whose in-app notifications this person reads."""
    if not principal.practitioner:
        return []
    access = access_for(tx, principal)
    return [principal.practitioner, *(o for o in access.org_keys if o.startswith("Organization/"))]


def _mine(targets: Sequence[str]) -> Any:
    return and_(
        notify_delivery.c.channel == CHANNEL_INAPP, notify_delivery.c.recipient.in_(targets)
    )


def inbox_items(
    tx: Transaction,
    targets: Sequence[str],
    reader: str,
    *,
    after_seq: int = 0,
    limit: int = 50,
    newest_first: bool = True,
) -> list[InboxItem]:
    if not targets:
        return []
    read = notify_read.alias("r")
    order = notify_delivery.c.seq.desc() if newest_first else notify_delivery.c.seq.asc()
    rows = tx.conn.execute(
        select(notify_delivery, resource.c.content, read.c.read_at)
        .join(
            resource,
            and_(
                resource.c.type == "CommunicationRequest",
                resource.c.id == notify_delivery.c.notification_id,
            ),
        )
        .outerjoin(
            read,
            and_(
                read.c.notification_id == notify_delivery.c.notification_id,
                read.c.reader == reader,
            ),
        )
        .where(_mine(targets), notify_delivery.c.seq > after_seq, resource.c.deleted.is_(False))
        .order_by(order)
        .limit(limit)
    ).all()
    items = []
    for row in rows:
        content = row.content
        payload = (content.get("payload") or [{}])[0]
        items.append(
            InboxItem(
                seq=row.seq,
                id=row.notification_id,
                recipient=row.recipient,
                patient=f"Patient/{row.patient_id}" if row.patient_id else None,
                text=str(payload.get("contentString") or ""),
                event_codes=event_codes_of(content),
                event_time=event_time_of(content),
                delivered_at=row.delivered_at,
                read_at=row.read_at,
            )
        )
    return items


def unread_count(tx: Transaction, targets: Sequence[str], reader: str) -> int:
    if not targets:
        return 0
    read = notify_read.alias("r")
    return int(
        tx.conn.execute(
            select(func.count())
            .select_from(notify_delivery)
            .outerjoin(
                read,
                and_(
                    read.c.notification_id == notify_delivery.c.notification_id,
                    read.c.reader == reader,
                ),
            )
            .where(_mine(targets), read.c.read_at.is_(None))
        ).scalar_one()
    )


def latest_seq(tx: Transaction, targets: Sequence[str]) -> int:
    if not targets:
        return 0
    value = tx.conn.execute(select(func.max(notify_delivery.c.seq)).where(_mine(targets)))
    return int(value.scalar() or 0)


def mark_read(tx: Transaction, targets: Sequence[str], reader: str, notification_id: str) -> bool:
    """False when the notification is not in this person's inbox."""
    if not targets:
        return False
    found = tx.conn.execute(
        select(notify_delivery.c.seq).where(
            _mine(targets), notify_delivery.c.notification_id == notification_id
        )
    ).first()
    if found is None:
        return False
    _insert_marks(tx, [notification_id], reader)
    return True


def mark_all_read(tx: Transaction, targets: Sequence[str], reader: str) -> int:
    if not targets:
        return 0
    read = notify_read.alias("r")
    unread = (
        tx.conn.execute(
            select(notify_delivery.c.notification_id)
            .outerjoin(
                read,
                and_(
                    read.c.notification_id == notify_delivery.c.notification_id,
                    read.c.reader == reader,
                ),
            )
            .where(_mine(targets), read.c.read_at.is_(None))
        )
        .scalars()
        .all()
    )
    _insert_marks(tx, list(unread), reader)
    return len(unread)


def _insert_marks(tx: Transaction, ids: list[str], reader: str) -> None:
    now = now_ms()
    for notification_id in ids:
        # Marking twice keeps the first time; a concurrent mark is the same fact.
        exists = tx.conn.execute(
            select(notify_read.c.read_at).where(
                notify_read.c.notification_id == notification_id, notify_read.c.reader == reader
            )
        ).first()
        if exists is not None:
            continue
        try:
            with tx.savepoint():
                tx.conn.execute(
                    insert(notify_read).values(
                        notification_id=notification_id, reader=reader, read_at=now
                    )
                )
        except IntegrityError:
            continue
