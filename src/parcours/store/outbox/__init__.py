"""The durable event outbox: every committed write appends an event in its own transaction;
the ``Dispatcher`` hands events to in-process handlers.

Guarantees (details in ``_dispatcher``'s docstring):

- at least once: an event stays pending until a transaction that ran every handler commits;
  a crash, a kill or a database outage only delays it;
- exactly once for database effects: a handler writes through the ``Transaction`` it is given,
  which commits together with the event's ``processed_at`` or not at all;
- commit order per resource: an event is never handled while an earlier event of the same
  resource is unprocessed (pending, retrying, dead, or being handled by another worker);
- failures: retried with exponential backoff (``RetryPolicy``), then parked as a dead letter
  (``dead_letters``, ``retry_dead``); a dead letter blocks the later events of its resource
  only, never other resources;
- SQLite: one dispatching process; PostgreSQL: any number of worker processes
  (``FOR UPDATE SKIP LOCKED``).

Typical wiring::

    dispatcher = Dispatcher(store, [NotifyReactor(...), PathwayReactor(...)])
    run_worker(dispatcher, poll_seconds=settings.outbox_poll_seconds)  # `parcours outbox work`
    async with dispatching(dispatcher, settings.outbox_poll_seconds):  # inside the web server
        ...
"""

from parcours.store.outbox._admin import (
    DeadLetter,
    OutboxLag,
    dead_letter_count,
    dead_letters,
    event_state,
    outbox_lag,
    purge_processed,
    retry_dead,
)
from parcours.store.outbox._dispatcher import Dispatcher, dispatching
from parcours.store.outbox._event import (
    Action,
    DispatchObserver,
    EventState,
    Handler,
    OutboxEvent,
    RetryPolicy,
)
from parcours.store.outbox._worker import run_worker

__all__ = [
    "Action",
    "DeadLetter",
    "DispatchObserver",
    "Dispatcher",
    "EventState",
    "Handler",
    "OutboxEvent",
    "OutboxLag",
    "RetryPolicy",
    "dead_letter_count",
    "dead_letters",
    "dispatching",
    "event_state",
    "outbox_lag",
    "purge_processed",
    "retry_dead",
    "run_worker",
]

for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith(__name__ + "._"):
        _obj.__module__ = __name__
del _name, _obj
