"""The outbox dispatcher on a real database of each kind: delivery, atomicity of handler writes,
backoff, dead letters, per-resource order, and the loops."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy import select

from parcours.errors import NotFound
from parcours.store import Store, Transaction, make_engine
from parcours.store.outbox import (
    Action,
    Dispatcher,
    EventState,
    OutboxEvent,
    RetryPolicy,
    dead_letter_count,
    dead_letters,
    dispatching,
    event_state,
    outbox_lag,
    purge_processed,
    retry_dead,
)
from parcours.store.schema import outbox
from parcours.store.schema_version import ensure_schema


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    engine = make_engine(database_url)
    ensure_schema(engine)
    yield Store(engine)
    engine.dispose()


class Clock:
    """A settable clock (milliseconds), injected into the dispatcher."""

    def __init__(self, start: int = 1_700_000_000_000) -> None:
        self.now = start

    def __call__(self) -> int:
        return self.now


@dataclass
class Recorder:
    """Remembers what it saw; fails while ``failing`` holds the reference."""

    name: str = "recorder"
    seen: list[OutboxEvent] = field(default_factory=list)
    failing: set[str] = field(default_factory=set)

    def handle(self, event: OutboxEvent, tx: Transaction) -> None:
        if event.reference in self.failing:
            raise RuntimeError(f"cannot handle {event.reference}")
        self.seen.append(event)


@dataclass
class Writer:
    """Writes a Basic resource per event through the given transaction (a DB effect)."""

    name: str = "writer"

    def handle(self, event: OutboxEvent, tx: Transaction) -> None:
        if event.res_type == "Patient":
            tx.create(
                {"resourceType": "Basic", "id": f"seen-{event.seq}"}, res_id=f"seen-{event.seq}"
            )


def patient(pid: str, family: str = "Martin") -> dict[str, object]:
    return {"resourceType": "Patient", "id": pid, "name": [{"family": family}]}


def test_delivers_each_event_once_with_its_fields(store: Store) -> None:
    store.update(patient("p1"))
    store.update(patient("p1", "Durand"))
    store.delete("Patient", "p1")
    recorder = Recorder()
    dispatcher = Dispatcher(store, [recorder])

    assert dispatcher.drain() == 3
    assert dispatcher.run_once() == 0
    assert [(e.version_id, e.action) for e in recorder.seen] == [
        (1, Action.CREATE),
        (2, Action.UPDATE),
        (3, Action.DELETE),
    ]
    assert {e.reference for e in recorder.seen} == {"Patient/p1"}
    assert outbox_lag(store) == (0, 0.0)
    assert event_state(store, recorder.seen[0].seq) is EventState.PROCESSED


def test_one_round_hands_out_only_the_oldest_event_of_a_resource(store: Store) -> None:
    with store.begin() as tx:
        tx.update(patient("p1"))
        tx.update(patient("p1", "Durand"))
        tx.update(patient("p2"))
    recorder = Recorder()
    dispatcher = Dispatcher(store, [recorder])
    assert dispatcher.run_once() == 2  # p1 v1 and p2 v1; p1 v2 waits for the next round
    assert dispatcher.run_once() == 1
    assert [(e.res_id, e.version_id) for e in recorder.seen] == [("p1", 1), ("p2", 1), ("p1", 2)]


def test_handler_writes_commit_with_the_event_and_roll_back_with_a_failure(store: Store) -> None:
    store.update(patient("p1"))
    clock = Clock()
    recorder = Recorder(failing={"Patient/p1"})
    # The writer runs first and succeeds; the recorder then fails: the write must vanish.
    dispatcher = Dispatcher(store, [Writer(), recorder], clock=clock)
    assert dispatcher.run_once() == 0
    with store.begin(readonly=True) as tx:
        row = tx.conn.execute(select(outbox).where(outbox.c.res_id == "p1")).one()
        assert not tx.exists("Basic", f"seen-{row.seq}")
    assert row.attempts == 1
    assert row.processed_at is None
    assert row.next_attempt_at == clock.now + 1000
    assert row.last_error == "recorder: RuntimeError: cannot handle Patient/p1"

    recorder.failing.clear()
    clock.now += 1000
    assert dispatcher.run_once() == 1
    with store.begin(readonly=True) as tx:
        assert tx.exists("Basic", f"seen-{row.seq}")
    # The Basic resource written by the handler is itself an event, delivered like any other.
    assert dispatcher.drain() == 1
    assert [e.res_type for e in recorder.seen] == ["Patient", "Basic"]


def test_backoff_then_dead_letter_blocks_its_resource_only(store: Store) -> None:
    store.update(patient("bad"))
    store.update(patient("bad", "Durand"))
    store.update(patient("good"))
    clock = Clock()
    recorder = Recorder(failing={"Patient/bad"})
    policy = RetryPolicy(max_attempts=3, first_delay_seconds=2, max_delay_seconds=3)
    dispatcher = Dispatcher(store, [recorder], retry=policy, clock=clock)

    assert dispatcher.run_once() == 1  # "good" goes through despite "bad" failing
    assert [e.res_id for e in recorder.seen] == ["good"]
    assert dispatcher.run_once() == 0  # not due yet: nothing attempted
    first = dead_letters(store)
    assert first == []

    for delay_ms in (2000, 3000):  # 2 s, then 4 s capped at 3 s
        clock.now += delay_ms - 1
        assert dispatcher.run_once() == 0
        clock.now += 1
        assert dispatcher.run_once() == 0

    [dead] = dead_letters(store)
    assert (dead.event.res_id, dead.event.version_id, dead.attempts) == ("bad", 1, 3)
    assert dead.last_error is not None and "RuntimeError" in dead.last_error
    assert dead_letter_count(store) == 1
    assert event_state(store, dead.event.seq) is EventState.DEAD
    # The second version of "bad" is pending, blocked behind the dead letter, and ages.
    clock.now += 3_600_000
    assert outbox_lag(store, now=clock.now).pending == 1
    assert dispatcher.run_once() == 0

    recorder.failing.clear()
    retry_dead(store, dead.event.seq)
    assert event_state(store, dead.event.seq) is EventState.PENDING
    assert dispatcher.drain() == 2
    assert [(e.res_id, e.version_id) for e in recorder.seen] == [
        ("good", 1),
        ("bad", 1),
        ("bad", 2),
    ]
    with pytest.raises(NotFound):
        retry_dead(store, dead.event.seq)


def test_a_crash_inside_a_handler_leaves_the_event_pending(store: Store) -> None:
    store.update(patient("p1"))

    class Crash:
        name = "crash"

        def handle(self, event: OutboxEvent, tx: Transaction) -> None:
            tx.create({"resourceType": "Basic"})
            raise SystemExit("the process dies here")  # not an Exception: no failure recorded

    with pytest.raises(SystemExit):
        Dispatcher(store, [Crash()]).run_once()
    with store.begin(readonly=True) as tx:
        row = tx.conn.execute(select(outbox)).one()
        assert tx.history("Basic")[1] == 0
    assert (row.processed_at, row.attempts) == (None, 0)
    recorder = Recorder()
    assert Dispatcher(store, [recorder]).run_once() == 1
    assert recorder.seen[0].seq == row.seq


def test_lag_counts_pending_events_and_the_oldest_age(store: Store) -> None:
    store.update(patient("p1"))
    store.update(patient("p2"))
    with store.begin(readonly=True) as tx:
        oldest = tx.conn.execute(select(outbox.c.created_at).order_by(outbox.c.seq)).scalar()
    assert oldest is not None
    lag = outbox_lag(store, now=oldest + 2500)
    assert lag.pending == 2
    assert lag.oldest_age_seconds == pytest.approx(2.5)


def test_purge_removes_only_old_processed_events(store: Store) -> None:
    store.update(patient("p1"))
    Dispatcher(store, []).drain()
    store.update(patient("p2"))
    with store.begin(readonly=True) as tx:
        newest = tx.conn.execute(select(outbox.c.created_at).order_by(outbox.c.seq.desc())).scalar()
    assert newest is not None
    assert purge_processed(store, older_than_ms=newest + 1) == 1
    assert outbox_lag(store).pending == 1


def test_handler_names_must_be_unique(store: Store) -> None:
    with pytest.raises(ValueError, match="recorder"):
        Dispatcher(store, [Recorder(), Recorder()])


def test_retry_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    assert RetryPolicy(first_delay_seconds=1, max_delay_seconds=5).delay_ms(10) == 5000


def test_run_forever_in_a_thread_until_stopped(store: Store) -> None:
    recorder = Recorder()
    stop = threading.Event()
    thread = threading.Thread(
        target=Dispatcher(store, [recorder]).run_forever, args=(stop, 0.05), daemon=True
    )
    thread.start()
    try:
        for i in range(5):
            store.update(patient(f"p{i}"))
        _eventually(lambda: len(recorder.seen) == 5)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_dispatching_inside_an_event_loop(store: Store) -> None:
    recorder = Recorder()

    async def scenario() -> None:
        async with dispatching(Dispatcher(store, [recorder]), poll_seconds=0.05):
            await asyncio.to_thread(store.update, patient("p1"))
            for _ in range(200):
                if recorder.seen:
                    break
                await asyncio.sleep(0.05)

    asyncio.run(scenario())
    assert [e.res_id for e in recorder.seen] == ["p1"]


def _eventually(check: object, timeout: float = 10.0) -> None:
    import time

    assert callable(check)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_after_commit_callbacks_of_a_failed_event_are_dropped(store: Store) -> None:
    store.update(patient("p1"))
    ran: list[str] = []

    class QueuesThenFails:
        name = "queues-then-fails"

        def handle(self, event: OutboxEvent, tx: Transaction) -> None:
            tx.after_commit.append(lambda: ran.append("callback"))
            raise RuntimeError("after queueing a callback")

    with store.begin(readonly=True) as probe:
        if not hasattr(probe, "after_commit"):
            pytest.skip("this repository has no after-commit callbacks")
    Dispatcher(store, [QueuesThenFails()]).run_once()
    assert ran == []
