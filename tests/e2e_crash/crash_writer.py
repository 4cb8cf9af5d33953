"""Child process: applies a stream of multi-resource transactions until killed.

Usage: python crash_writer.py DATABASE_URL COUNT

Transaction i creates Patient/p<i> and three Observations about it, all tagged t<i>, updates
Basic/ledger (one resource with many versions) and updates Patient/p<i-1> (a second version).
It prints "begin <i>" before the transaction and "committed <i> <ids>" right after the commit.
"""

from __future__ import annotations

import sys
import time

from crash_support import TAG_SYSTEM

from parcours.store import Store, make_engine


def main(url: str, count: int) -> None:
    store = Store(make_engine(url))
    for i in range(count):
        tag = {"system": TAG_SYSTEM, "code": f"t{i}"}
        print(f"begin {i}", flush=True)
        with store.begin() as tx:
            pid = f"p{i}"
            tx.update({"resourceType": "Patient", "id": pid, "meta": {"tag": [tag]}})
            time.sleep(0.003)  # widen the window in which a kill lands mid-transaction
            ids = [pid]
            for k in range(3):
                obs = tx.create(
                    {
                        "resourceType": "Observation",
                        "meta": {"tag": [tag]},
                        "status": "final",
                        "code": {"text": f"measure {k}"},
                        "subject": {"reference": f"Patient/{pid}"},
                    }
                )
                ids.append(obs["id"])
            tx.update({"resourceType": "Basic", "id": "ledger", "code": {"text": f"after t{i}"}})
            if i > 0:
                tx.update(
                    {
                        "resourceType": "Patient",
                        "id": f"p{i - 1}",
                        "meta": {"tag": [{"system": TAG_SYSTEM, "code": f"t{i - 1}"}]},
                        "active": True,
                    }
                )
        print(f"committed {i} {' '.join(ids)}", flush=True)
        time.sleep(0.002)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
