"""The dispatcher: hands each committed event to the registered handlers, in commit order per
resource, at least once, with retries and dead letters.

How one event is processed (``Dispatcher._process``), in ONE database transaction:

1. lock the row, re-checking that it is still pending, due, not dead and that no earlier
   event of the same resource is unprocessed (PostgreSQL: ``FOR UPDATE OF outbox SKIP
   LOCKED``, so a row another worker holds is skipped, and an earlier event another worker
   holds still counts as unprocessed because its ``processed_at`` is NULL until that worker
   commits; SQLite: the transaction is ``BEGIN IMMEDIATE``, which serialises every writer);
2. run the handlers in a SAVEPOINT;
3. success: mark ``processed_at``; failure: roll back to the savepoint (the handlers' DB writes
   vanish) and record attempts / next_attempt_at / last_error, or park it as dead;
4. commit. A crash anywhere before the commit leaves the row pending: it is simply picked up
   again (at least once), and the handlers' DB writes were never committed (exactly once).

Per-resource order holds because, for one resource, ``seq`` order is commit order: the
repository locks the resource row (PostgreSQL) or the database (SQLite) for every write, so a
later write of the same resource draws its ``seq`` after the earlier one committed.

A failing or dead event blocks the later events of ITS resource only (they would otherwise be
delivered out of order); other resources go on. Events of one resource are handed out one per
round (only the oldest unprocessed event of a resource is a candidate), so a burst of updates
to one resource takes one round each.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, or_, select, update

from parcours.store.clock import now_ms
from parcours.store.outbox._event import (
    DispatchObserver,
    Handler,
    OutboxEvent,
    RetryPolicy,
    event_from_row,
)
from parcours.store.repository import Store, Transaction
from parcours.store.schema import outbox

__all__ = ["Dispatcher", "dispatching"]

log = logging.getLogger("parcours.outbox")

_MAX_ERROR_CHARS = 2000


def _due(now: int) -> ColumnElement[bool]:
    """Pending, not dead, due, and first in line for its resource."""
    earlier = outbox.alias("earlier")
    blocked = exists().where(
        earlier.c.res_type == outbox.c.res_type,
        earlier.c.res_id == outbox.c.res_id,
        earlier.c.seq < outbox.c.seq,
        earlier.c.processed_at.is_(None),
    )
    return and_(
        outbox.c.processed_at.is_(None),
        outbox.c.dead_at.is_(None),
        or_(outbox.c.next_attempt_at.is_(None), outbox.c.next_attempt_at <= now),
        ~blocked,
    )


class Dispatcher:
    """Delivers outbox events to ``handlers``; see the module docstring for the guarantees.

    On SQLite run ONE dispatching process (several are correct but gain nothing: SQLite
    serialises writers). On PostgreSQL run as many worker processes as needed.
    """

    def __init__(
        self,
        store: Store,
        handlers: Sequence[Handler],
        *,
        retry: RetryPolicy | None = None,
        observers: Sequence[DispatchObserver] = (),
        clock: Callable[[], int] = now_ms,
    ) -> None:
        names = [h.name for h in handlers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"outbox handler names must be unique; repeated: {duplicates}")
        self.store = store
        self.handlers = tuple(handlers)
        self.retry = retry or RetryPolicy()
        self.observers = tuple(observers)
        self._clock = clock

    # ---- one round ---------------------------------------------------------------------

    def run_once(self, batch_size: int = 100, *, stop: threading.Event | None = None) -> int:
        """Process up to ``batch_size`` due events; returns how many were processed successfully.

        ``stop`` (optional) is checked between events, so a shutdown waits for one event at most.
        Raises ``parcours.errors.Unavailable`` when the database cannot be reached.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be at least 1")
        with self.store.begin(readonly=True) as tx:
            seqs = (
                tx.conn.execute(
                    select(outbox.c.seq)
                    .where(_due(self._clock()))
                    .order_by(outbox.c.seq)
                    .limit(batch_size)
                )
                .scalars()
                .all()
            )
        done = 0
        for seq in seqs:
            if stop is not None and stop.is_set():
                break
            done += self._process(seq)
        return done

    def drain(self, batch_size: int = 100) -> int:
        """Run rounds until none processes anything (``parcours outbox work --once``)."""
        total = 0
        while (done := self.run_once(batch_size)) > 0:
            total += done
        return total

    def _lock(self, seq: int) -> Select[Any]:
        stmt = select(outbox).where(outbox.c.seq == seq, _due(self._clock()))
        if self.store.dialect.supports_skip_locked:
            stmt = stmt.with_for_update(skip_locked=True, of=outbox)
        return stmt

    def _process(self, seq: int) -> int:
        started = time.perf_counter()
        dead = False
        with self.store.begin() as tx:
            row = tx.conn.execute(self._lock(seq)).first()
            if row is None:
                # Taken by another worker, processed meanwhile, or not first in line any more.
                return 0
            event = event_from_row(row)
            failure = self._run_handlers(event, tx)
            if failure is None:
                tx.conn.execute(
                    update(outbox).where(outbox.c.seq == seq).values(processed_at=self._clock())
                )
            else:
                dead = self._record_failure(tx, event, row.attempts, *failure)
        if failure is None:
            elapsed = time.perf_counter() - started
            for observer in self.observers:
                observer.dispatched(event, elapsed)
            return 1
        for observer in self.observers:
            observer.failed(event, failure[0], dead)
        return 0

    def _run_handlers(self, event: OutboxEvent, tx: Transaction) -> tuple[str, Exception] | None:
        """Run every handler in one savepoint; the failing handler's name and error, if any."""
        current = ""
        try:
            with tx.savepoint():
                for handler in self.handlers:
                    current = handler.name
                    handler.handle(event, tx)
        except Exception as exc:  # a handler's failure, whatever it is, is retried later
            return current, exc
        return None

    def _record_failure(
        self,
        tx: Transaction,
        event: OutboxEvent,
        attempts_before: int,
        handler: str,
        exc: Exception,
    ) -> bool:
        attempts = attempts_before + 1
        now = self._clock()
        dead = self.retry.is_dead(attempts)
        error = f"{handler}: {type(exc).__name__}: {exc}"[:_MAX_ERROR_CHARS]
        tx.conn.execute(
            update(outbox)
            .where(outbox.c.seq == event.seq)
            .values(
                attempts=attempts,
                last_error=error,
                next_attempt_at=now + self.retry.delay_ms(attempts),
                dead_at=now if dead else None,
            )
        )
        if dead:
            log.error(
                "outbox event %d (%s %s) is a dead letter after %d attempts; last failure in "
                "handler %s: %s; later events of this resource wait for `retry_dead`",
                event.seq,
                event.action,
                event.res_type,
                attempts,
                handler,
                type(exc).__name__,
            )
        else:
            log.warning(
                "outbox event %d (%s %s) failed in handler %s (attempt %d of %d): %s",
                event.seq,
                event.action,
                event.res_type,
                handler,
                attempts,
                self.retry.max_attempts,
                type(exc).__name__,
            )
        return dead

    # ---- loops -------------------------------------------------------------------------

    def run_forever(
        self, stop: threading.Event, poll_seconds: float = 0.2, batch_size: int = 100
    ) -> None:
        """Dispatch until ``stop`` is set; meant as a thread's target or a worker's main loop.

        When the database is unreachable it logs, waits (doubling up to 30 s) and goes on.
        """
        failures = 0
        while not stop.is_set():
            try:
                done = self.run_once(batch_size, stop=stop)
                failures = 0
            except Exception:  # the loop must survive a database outage
                failures += 1
                wait = min(poll_seconds * 2**failures, 30.0)
                log.exception("outbox dispatch round failed; next try in %.1f s", wait)
                stop.wait(wait)
                continue
            if done == 0:
                stop.wait(poll_seconds)

    async def run_async(
        self, stop: asyncio.Event, poll_seconds: float = 0.2, batch_size: int = 100
    ) -> None:
        """``run_forever`` for an event loop: each round runs in a worker thread."""
        failures = 0
        while not stop.is_set():
            try:
                done = await asyncio.to_thread(self.run_once, batch_size)
                failures = 0
            except Exception:  # the loop must survive a database outage
                failures += 1
                wait = min(poll_seconds * 2**failures, 30.0)
                log.exception("outbox dispatch round failed; next try in %.1f s", wait)
                await _wait(stop, wait)
                continue
            if done == 0:
                await _wait(stop, poll_seconds)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


@asynccontextmanager
async def dispatching(
    dispatcher: Dispatcher, poll_seconds: float = 0.2, batch_size: int = 100
) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``dispatcher`` in the current event loop for the duration of the block.

    For the web server's lifespan (SQLite deployments, where the server process is the one
    dispatcher)::

        @asynccontextmanager
        async def lifespan(app):
            async with dispatching(Dispatcher(store, handlers), settings.outbox_poll_seconds):
                yield

    Leaving the block lets the current round finish (its transaction commits or rolls back),
    then returns.
    """
    stop = asyncio.Event()
    task = asyncio.create_task(
        dispatcher.run_async(stop, poll_seconds, batch_size), name="parcours-outbox"
    )
    try:
        yield task
    finally:
        stop.set()
        await task
