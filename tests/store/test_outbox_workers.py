"""Several dispatchers sharing one outbox, each on its own connections (threads here; real
processes in tests/e2e_crash): every event handled exactly once, commit order per resource."""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from collections.abc import Iterator

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select

from parcours.store import Store, Transaction, make_engine
from parcours.store.outbox import Dispatcher, OutboxEvent, outbox_lag
from parcours.store.schema_version import ensure_schema

seen_metadata = MetaData()
seen = Table(
    "test_outbox_seen",
    seen_metadata,
    Column("n", Integer, primary_key=True, autoincrement=True),
    Column("seq", Integer, nullable=False),
    Column("res_id", String(64), nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("worker", String(16), nullable=False),
)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    engine = make_engine(database_url)
    ensure_schema(engine)
    seen_metadata.create_all(engine)
    yield Store(engine)
    engine.dispose()


class SlowRecorder:
    """Records into a table through the dispatcher's transaction, slowly, to force overlap."""

    name = "slow-recorder"

    def __init__(self, worker: str) -> None:
        self.worker = worker
        self.random = random.Random(worker)

    def handle(self, event: OutboxEvent, tx: Transaction) -> None:
        time.sleep(self.random.uniform(0, 0.004))
        tx.conn.execute(
            insert(seen).values(
                seq=event.seq, res_id=event.res_id, version_id=event.version_id, worker=self.worker
            )
        )


def test_concurrent_dispatchers_deliver_once_and_in_order(store: Store) -> None:
    resources, versions = 12, 5
    for version in range(versions):
        with store.begin() as tx:  # interleave resources inside each transaction
            for r in range(resources):
                tx.update(
                    {
                        "resourceType": "Patient",
                        "id": f"p{r}",
                        "gender": ["male", "female"][version % 2],
                        "birthDate": f"19{50 + version}",
                    }
                )
    total = resources * versions

    errors: list[BaseException] = []

    def work(worker: str) -> None:
        dispatcher = Dispatcher(store, [SlowRecorder(worker)])
        try:
            deadline = time.monotonic() + 60
            while outbox_lag(store).pending and time.monotonic() < deadline:
                if dispatcher.run_once(batch_size=7) == 0:
                    time.sleep(0.005)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    assert not errors, errors
    assert outbox_lag(store).pending == 0

    with store.begin(readonly=True) as tx:
        rows = tx.conn.execute(select(seen).order_by(seen.c.n)).all()
    assert len(rows) == total
    assert len({r.seq for r in rows}) == total  # exactly once
    order: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        order[r.res_id].append(r.version_id)
    assert all(v == list(range(1, versions + 1)) for v in order.values()), order
    if store.dialect.is_postgres:
        # Not a guarantee, but if a single worker did everything the test proved nothing.
        assert len({r.worker for r in rows}) > 1
