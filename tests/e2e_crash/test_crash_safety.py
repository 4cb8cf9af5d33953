"""Acceptance: real processes, real databases, SIGKILL.

1. A writer process applies multi-resource transactions and is killed mid-stream: every
   transaction it reported committed is fully there, and no transaction is partly there.
2. A dispatcher process is killed mid-run, then restarted (two workers at once on PostgreSQL):
   every event of every committed change is handled, DB effects exactly once, external effects
   at least once, in commit order per resource.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from crash_support import TAG_SYSTEM, kill, metadata, read_until, seen, spawn
from sqlalchemy import Engine, select

from parcours.store import make_engine
from parcours.store.outbox import outbox_lag
from parcours.store.repository import Store
from parcours.store.schema import outbox, resource
from parcours.store.schema_version import ensure_schema


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    ensure_schema(engine)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def committed_of(lines: list[str]) -> dict[int, list[str]]:
    result = {}
    for line in lines:
        word, *rest = line.split()
        if word == "committed":
            result[int(rest[0])] = rest[1:]
    return result


def test_writer_killed_mid_stream_then_dispatcher_killed_mid_run(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    # ---- 1. kill the writer in the middle of a transaction ---------------------------------
    writer = spawn("crash_writer.py", database_url, "100000")
    lines = read_until(writer, lambda line: line.startswith("committed 40 "))
    lines += read_until(writer, lambda line: line.startswith("begin "))
    time.sleep(0.002)  # the child is now inside its transaction (it sleeps 3 ms there)
    lines += kill(writer)
    committed = committed_of(lines)
    assert len(committed) >= 41
    in_flight = max(int(line.split()[1]) for line in lines if line.startswith("begin "))

    store = Store(engine)
    with store.begin(readonly=True) as tx:
        rows = tx.conn.execute(
            select(resource.c.type, resource.c.id, resource.c.version_id, resource.c.content)
        ).all()
    by_tag: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        for tag in row.content.get("meta", {}).get("tag", []):
            if tag["system"] == TAG_SYSTEM:
                by_tag[tag["code"]].add(f"{row.type}/{row.id}")
    # All or nothing, per transaction.
    assert all(len(members) == 4 for members in by_tag.values()), by_tag
    for i, ids in committed.items():
        members = by_tag[f"t{i}"]
        assert {m.split("/")[1] for m in members} == set(ids)
        assert sum(m.startswith("Observation/") for m in members) == 3
    # Nothing beyond the transaction in flight can exist; it may or may not have committed.
    assert {int(code[1:]) for code in by_tag} - set(committed) <= {in_flight}
    last = max(int(code[1:]) for code in by_tag)
    ledger = next(r for r in rows if r.type == "Basic")
    assert ledger.version_id == last + 1  # one version of Basic/ledger per transaction

    # Every committed version has exactly one outbox event.
    with store.begin(readonly=True) as tx:
        events = tx.conn.execute(
            select(outbox.c.seq, outbox.c.res_type, outbox.c.res_id, outbox.c.version_id)
        ).all()
    versions: dict[str, list[int]] = defaultdict(list)
    for e in sorted(events, key=lambda e: e.seq):
        versions[f"{e.res_type}/{e.res_id}"].append(e.version_id)
    assert {ref: max(v) for ref, v in versions.items()} == {
        f"{r.type}/{r.id}": r.version_id for r in rows
    }
    assert all(v == list(range(1, len(v) + 1)) for v in versions.values())

    # ---- 2. kill a dispatcher mid-run, then restart ----------------------------------------
    external = tmp_path / "external.log"
    first = spawn("crash_dispatcher.py", database_url, "first", str(external))
    read_until(first, lambda line: line == "handled " + str(sorted(e.seq for e in events)[60]))
    kill(first)
    assert outbox_lag(store).pending > 0, "the dispatcher finished before it could be killed"

    workers = ["second", "third"] if store.dialect.is_postgres else ["second"]
    restarted = [spawn("crash_dispatcher.py", database_url, w, str(external)) for w in workers]
    for proc in restarted:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
        assert out.rstrip().endswith("drained")

    assert outbox_lag(store).pending == 0
    with store.begin(readonly=True) as tx:
        handled = tx.conn.execute(select(seen).order_by(seen.c.n)).all()
    all_seqs = {e.seq for e in events}
    # DB effects: exactly once, across the kill and the restart.
    assert Counter(h.seq for h in handled) == Counter(all_seqs)
    # External effects: at least once (the killed transaction's may have happened twice).
    logged = Counter(int(s) for s in external.read_text().split())
    assert set(logged) == all_seqs
    # Commit order per resource: versions 1, 2, 3... in the order they were handled.
    order: dict[str, list[int]] = defaultdict(list)
    for h in handled:
        order[f"{h.res_type}/{h.res_id}"].append(h.version_id)
    assert order == versions
    assert len(order["Basic/ledger"]) > 40
    if store.dialect.is_postgres:
        assert {h.worker for h in handled} >= {"first"}
