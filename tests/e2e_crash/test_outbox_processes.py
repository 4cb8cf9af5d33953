"""Several real worker processes sharing one outbox: each event handled exactly once (handlers
succeed), in commit order per resource. PostgreSQL is the deployment this is for; SQLite is run
too, to show that extra processes there are safe (merely useless)."""

from __future__ import annotations

import signal
import time
from collections import Counter, defaultdict
from pathlib import Path

from crash_support import metadata, read_until, seen, spawn
from sqlalchemy import select

from parcours.store import Store, make_engine
from parcours.store.outbox import outbox_lag
from parcours.store.schema import outbox
from parcours.store.schema_version import ensure_schema


def test_three_worker_processes(database_url: str, tmp_path: Path) -> None:
    engine = make_engine(database_url)
    ensure_schema(engine)
    metadata.create_all(engine)
    store = Store(engine)
    try:
        for version in range(6):
            with store.begin() as tx:
                for r in range(25):
                    tx.update(
                        {"resourceType": "Patient", "id": f"p{r}", "birthDate": f"19{50 + version}"}
                    )
        go = tmp_path / "go"
        workers = [
            spawn("crash_dispatcher.py", database_url, f"w{i}", str(tmp_path / "ext.log"), str(go))
            for i in range(3)
        ]
        for proc in workers:
            read_until(proc, lambda line: line == "ready")
        go.touch()
        for proc in workers:
            _out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err[-2000:]

        assert outbox_lag(store).pending == 0
        with store.begin(readonly=True) as tx:
            handled = tx.conn.execute(select(seen).order_by(seen.c.n)).all()
            all_seqs = set(tx.conn.execute(select(outbox.c.seq)).scalars())
        assert Counter(h.seq for h in handled) == Counter(all_seqs)  # exactly once
        order: dict[str, list[int]] = defaultdict(list)
        for h in handled:
            order[h.res_id].append(h.version_id)
        assert all(v == [1, 2, 3, 4, 5, 6] for v in order.values()), order
        if store.dialect.is_postgres:
            assert len({h.worker for h in handled}) > 1, "no overlap: the test proved nothing"
    finally:
        engine.dispose()


def test_sigterm_stops_a_worker_after_the_event_in_progress(database_url: str) -> None:
    engine = make_engine(database_url)
    ensure_schema(engine)
    metadata.create_all(engine)
    store = Store(engine)
    try:
        for i in range(20):
            store.update({"resourceType": "Patient", "id": f"p{i}"})
        worker = spawn("graceful_worker.py", database_url)
        read_until(worker, lambda line: line.startswith("handled "))
        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=30)
        assert worker.returncode == 0, err[-2000:]
        assert time.monotonic() - started < 5  # one 0.2 s event, not the 19 others
        assert out.rstrip().endswith("stopped")

        with store.begin(readonly=True) as tx:
            handled = set(tx.conn.execute(select(seen.c.seq)).scalars())
            processed = set(
                tx.conn.execute(
                    select(outbox.c.seq).where(outbox.c.processed_at.is_not(None))
                ).scalars()
            )
        assert handled == processed  # the event in progress committed with its mark
        assert 0 < len(processed) < 20  # stopped mid-stream: some, not all
    finally:
        engine.dispose()
