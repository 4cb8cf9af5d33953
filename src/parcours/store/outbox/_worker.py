"""The main loop of an outbox worker process (``parcours outbox work``)."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from parcours.store.outbox._dispatcher import Dispatcher

__all__ = ["run_worker"]

log = logging.getLogger("parcours.outbox")


def run_worker(
    dispatcher: Dispatcher,
    *,
    poll_seconds: float = 0.2,
    batch_size: int = 100,
    once: bool = False,
    stop: threading.Event | None = None,
) -> int:
    """Dispatch until SIGTERM or SIGINT (or ``stop``), or, with ``once``, until nothing is due.

    The signal lets the event in progress finish (its transaction commits), then returns 0, the
    process's exit status. Call it from the main thread: that is where Python runs signal
    handlers. A SIGKILL loses nothing either; the event in progress is simply redone.
    """
    if once:
        done = dispatcher.drain(batch_size)
        log.info("outbox drained: %d events processed", done)
        return 0
    stop = stop or threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("outbox worker stopping (%s)", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    log.info(
        "outbox worker started: %d handlers (%s)",
        len(dispatcher.handlers),
        ", ".join(h.name for h in dispatcher.handlers) or "none",
    )
    try:
        dispatcher.run_forever(stop, poll_seconds, batch_size)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
