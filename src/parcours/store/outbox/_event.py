"""What a handler receives (``OutboxEvent``), what it must implement (``Handler``), and the rules
for failures (``RetryPolicy``)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from parcours.store.repository import Transaction

__all__ = [
    "Action",
    "DispatchObserver",
    "EventState",
    "Handler",
    "OutboxEvent",
    "RetryPolicy",
    "event_from_row",
]


class Action(StrEnum):
    """The change an event reports; the ``Bundle.entry.request.method`` of the version."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


class EventState(StrEnum):
    """Where an outbox row stands. Allowed transitions:

    ``PENDING -> PROCESSED``  every handler succeeded (committed with their DB writes);
    ``PENDING -> PENDING``    a handler failed: attempts + 1, next_attempt_at pushed back;
    ``PENDING -> DEAD``       a handler failed for the ``RetryPolicy.max_attempts``-th time;
    ``DEAD -> PENDING``       an operator called ``retry_dead`` (attempts reset to 0).
    ``PROCESSED`` is final. ``DEAD`` and ``PENDING`` both block the resource's later events.
    """

    PENDING = "pending"
    PROCESSED = "processed"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One committed change of one resource; ``seq`` orders events in commit order per resource."""

    seq: int
    res_type: str
    res_id: str
    version_id: int
    action: Action
    # Milliseconds since the epoch, UTC: when the change was committed.
    created_at: int

    @property
    def reference(self) -> str:
        return f"{self.res_type}/{self.res_id}"


def event_from_row(row: Any) -> OutboxEvent:
    """The event of an ``outbox`` row (any row object with the table's column names)."""
    return OutboxEvent(
        seq=row.seq,
        res_type=row.res_type,
        res_id=row.res_id,
        version_id=row.version_id,
        action=Action(row.action),
        created_at=row.created_at,
    )


class Handler(Protocol):
    """A reactor to committed changes, registered in-process with the ``Dispatcher``.

    ``handle`` runs inside the transaction that marks the event processed: whatever it writes
    through ``tx`` commits with that mark or not at all (exactly once for database effects).
    Anything it does outside the database (HTTP, SMTP) may be repeated after a crash or a
    failure of another handler, so it must be idempotent (at least once for external effects).
    Raising any exception counts as a failure; the event is retried later.
    """

    @property
    def name(self) -> str:
        """Unique among the dispatcher's handlers; shown in errors, logs and metrics."""
        ...

    def handle(self, event: OutboxEvent, tx: Transaction) -> None: ...


class DispatchObserver(Protocol):
    """Told about each outcome (metrics); must not raise and must not block."""

    def dispatched(self, event: OutboxEvent, seconds: float) -> None: ...

    def failed(self, event: OutboxEvent, handler: str, dead: bool) -> None: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff: ``first_delay * 2**(attempts-1)``, capped; dead after max_attempts.

    Without jitter, on purpose: events of one resource are retried one at a time anyway, and a
    deterministic schedule is what an operator reading ``next_attempt_at`` expects.
    """

    max_attempts: int = 8
    first_delay_seconds: float = 1.0
    max_delay_seconds: float = 600.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"RetryPolicy.max_attempts={self.max_attempts} must be at least 1")
        if not 0 <= self.first_delay_seconds <= self.max_delay_seconds:
            raise ValueError(
                "RetryPolicy needs 0 <= first_delay_seconds <= max_delay_seconds, got "
                f"{self.first_delay_seconds} and {self.max_delay_seconds}"
            )

    def delay_ms(self, attempts: int) -> int:
        """The wait after the ``attempts``-th failure (attempts >= 1)."""
        exponent = min(max(attempts - 1, 0), 62)
        delay = min(self.first_delay_seconds * 2.0**exponent, self.max_delay_seconds)
        return int(delay * 1000)

    def is_dead(self, attempts: int) -> bool:
        return attempts >= self.max_attempts
