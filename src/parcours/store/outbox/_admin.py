"""What operators and probes ask of the outbox: lag, dead letters, manual retry, purge."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import delete, func, select, update

from parcours.errors import NotFound
from parcours.store.clock import now_ms
from parcours.store.outbox._event import EventState, OutboxEvent, event_from_row
from parcours.store.repository import Store
from parcours.store.schema import outbox

__all__ = [
    "DeadLetter",
    "OutboxLag",
    "dead_letter_count",
    "dead_letters",
    "event_state",
    "outbox_lag",
    "purge_processed",
    "retry_dead",
]


class OutboxLag(NamedTuple):
    """Events waiting for delivery (dead letters excluded) and the age of the oldest one."""

    pending: int
    oldest_age_seconds: float


@dataclass(frozen=True, slots=True)
class DeadLetter:
    event: OutboxEvent
    attempts: int
    last_error: str | None
    # Milliseconds since the epoch, UTC.
    dead_at: int


_pending = outbox.c.processed_at.is_(None)


def outbox_lag(store: Store, *, now: int | None = None) -> OutboxLag:
    """``(pending_count, oldest_pending_age_seconds)``; (0, 0.0) when the outbox is drained.

    Events blocked behind a dead letter count as pending: their age is what should alert.
    """
    with store.begin(readonly=True) as tx:
        count, oldest = tx.conn.execute(
            select(func.count(), func.min(outbox.c.created_at)).where(
                _pending, outbox.c.dead_at.is_(None)
            )
        ).one()
    if not count:
        return OutboxLag(0, 0.0)
    age_ms = (now_ms() if now is None else now) - int(oldest)
    return OutboxLag(int(count), max(age_ms, 0) / 1000)


def dead_letter_count(store: Store) -> int:
    with store.begin(readonly=True) as tx:
        return int(
            tx.conn.execute(
                select(func.count()).where(_pending, outbox.c.dead_at.is_not(None))
            ).scalar_one()
        )


def dead_letters(store: Store, *, limit: int = 100) -> list[DeadLetter]:
    """The parked events, oldest first."""
    with store.begin(readonly=True) as tx:
        rows = tx.conn.execute(
            select(outbox)
            .where(_pending, outbox.c.dead_at.is_not(None))
            .order_by(outbox.c.seq)
            .limit(limit)
        ).all()
    return [DeadLetter(event_from_row(r), r.attempts, r.last_error, r.dead_at) for r in rows]


def retry_dead(store: Store, seq: int) -> None:
    """Put a dead letter back in line with a fresh attempt count (after fixing the cause).

    Raises ``NotFound`` when ``seq`` is not a dead letter. ``last_error`` is kept for the record.
    """
    with store.begin() as tx:
        result = tx.conn.execute(
            update(outbox)
            .where(outbox.c.seq == seq, _pending, outbox.c.dead_at.is_not(None))
            .values(dead_at=None, attempts=0, next_attempt_at=None)
        )
        if result.rowcount != 1:
            raise NotFound(f"outbox event {seq} is not a dead letter (see `dead_letters`)")


def event_state(store: Store, seq: int) -> EventState:
    with store.begin(readonly=True) as tx:
        row = tx.conn.execute(
            select(outbox.c.processed_at, outbox.c.dead_at).where(outbox.c.seq == seq)
        ).first()
    if row is None:
        raise NotFound(f"outbox event {seq} does not exist (or was purged)")
    if row.processed_at is not None:
        return EventState.PROCESSED
    return EventState.DEAD if row.dead_at is not None else EventState.PENDING


def purge_processed(store: Store, *, older_than_ms: int) -> int:
    """Delete processed events committed before ``older_than_ms``; returns how many.

    The outbox is a delivery queue, not the history (``resource_version`` is): processed rows
    may go once no one needs to investigate them.
    """
    with store.begin() as tx:
        result = tx.conn.execute(
            delete(outbox).where(
                outbox.c.processed_at.is_not(None), outbox.c.created_at < older_than_ms
            )
        )
        return int(result.rowcount)
