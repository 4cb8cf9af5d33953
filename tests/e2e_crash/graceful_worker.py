"""Child process: ``run_worker`` with a slow recording handler, until SIGTERM.

Usage: python graceful_worker.py DATABASE_URL
"""

from __future__ import annotations

import sys
import time

from crash_support import seen
from sqlalchemy import insert

from parcours.store import Store, Transaction, make_engine
from parcours.store.outbox import Dispatcher, OutboxEvent, run_worker


class SlowRecorder:
    name = "slow-recorder"

    def handle(self, event: OutboxEvent, tx: Transaction) -> None:
        tx.conn.execute(
            insert(seen).values(
                seq=event.seq,
                res_type=event.res_type,
                res_id=event.res_id,
                version_id=event.version_id,
                worker="graceful",
            )
        )
        print(f"handled {event.seq}", flush=True)
        time.sleep(0.2)


if __name__ == "__main__":
    store = Store(make_engine(sys.argv[1]))
    code = run_worker(Dispatcher(store, [SlowRecorder()]), poll_seconds=0.05)
    print("stopped", flush=True)
    sys.exit(code)
