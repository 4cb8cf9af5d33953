"""Child process: an outbox worker with a recording handler; exits when the outbox is drained.

Usage: python crash_dispatcher.py DATABASE_URL WORKER_NAME EXTERNAL_LOG [GO_FILE]

The handler inserts what it saw into ``crash_seen`` through the dispatcher's transaction (a DB
effect: must be exactly once) and appends the event's seq to EXTERNAL_LOG before returning
(an external effect: at least once). It prints "handled <seq>" as it goes. With GO_FILE, it
prints "ready" once connected and waits for that file to exist, so several workers start at once.
"""

from __future__ import annotations

import os
import sys
import time

from crash_support import seen
from sqlalchemy import insert

from parcours.store import Store, Transaction, make_engine
from parcours.store.outbox import Dispatcher, OutboxEvent, outbox_lag


class Recorder:
    name = "crash-recorder"

    def __init__(self, worker: str, log_path: str) -> None:
        self.worker = worker
        self.log = open(log_path, "a", buffering=1)  # noqa: SIM115 - lives as long as the process

    def handle(self, event: OutboxEvent, tx: Transaction) -> None:
        tx.conn.execute(
            insert(seen).values(
                seq=event.seq,
                res_type=event.res_type,
                res_id=event.res_id,
                version_id=event.version_id,
                worker=self.worker,
            )
        )
        self.log.write(f"{event.seq}\n")
        print(f"handled {event.seq}", flush=True)
        time.sleep(0.002)  # widen the window in which a kill lands mid-transaction


def main(url: str, worker: str, log_path: str, go_file: str | None) -> None:
    store = Store(make_engine(url))
    dispatcher = Dispatcher(store, [Recorder(worker, log_path)])
    if go_file is not None:
        outbox_lag(store)  # connected and warm
        print("ready", flush=True)
        while not os.path.exists(go_file):
            time.sleep(0.005)
    while True:
        if dispatcher.run_once(batch_size=20) == 0:
            if outbox_lag(store).pending == 0:
                break
            time.sleep(0.01)
    print("drained", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
