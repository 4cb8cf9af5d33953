"""Order per patient AND endpoint: the order keys (``notify_order``) follow every write of a
notification request, and an undelivered notification holds back the later ones to its own
endpoint only."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import delete, inspect, select

import parcours.store.schema_version as schema_version
from parcours.notify.delivery import deliveries
from parcours.notify.order import endpoint_key
from parcours.notify.tables import notify_order
from parcours.platform import Platform
from parcours.store.maintenance import reindex_all
from parcours.store.outbox import Dispatcher, RetryPolicy
from parcours.store.schema_version import current_revision, upgrade

from .support import (
    CHANNEL_INAPP,
    CHANNEL_REST_HOOK,
    INBOX_ENDPOINT,
    Receiver,
    add_declaration,
    add_notification,
    add_patient,
    free_port,
)


def _keys(platform: Platform) -> dict[str, tuple[str, str]]:
    with platform.store.begin(readonly=True) as tx:
        rows = tx.conn.execute(select(notify_order)).all()
    return {r.notification_id: (r.channel, r.endpoint_key) for r in rows}


def test_order_keys_follow_the_writes_of_notification_requests(platform: Platform) -> None:
    hook_a, hook_b = "https://a.example/hook", "https://b.example/hook"
    with platform.store.begin() as tx:
        add_patient(tx, "pat1")
        add_declaration(tx, "evt-1", "pat1")
        add_notification(tx, "ntf-k1", pid="pat1", channel=CHANNEL_REST_HOOK, endpoint=hook_a)
        add_notification(tx, "ntf-k2", pid="pat1", channel=CHANNEL_INAPP, endpoint=INBOX_ENDPOINT)
    # A declaration is not a notification: no key.
    assert _keys(platform) == {
        "ntf-k1": (CHANNEL_REST_HOOK, endpoint_key(hook_a)),
        "ntf-k2": (CHANNEL_INAPP, endpoint_key(INBOX_ENDPOINT)),
    }
    with platform.store.begin() as tx:
        moved = tx.read("CommunicationRequest", "ntf-k1")
        moved["recipient"][0]["extension"][0]["valueUrl"] = hook_b
        tx.update(moved)
        tx.update({**tx.read("CommunicationRequest", "ntf-k2"), "status": "completed"})
    assert _keys(platform) == {
        "ntf-k1": (CHANNEL_REST_HOOK, endpoint_key(hook_b)),
        "ntf-k2": (CHANNEL_INAPP, endpoint_key(INBOX_ENDPOINT)),
    }
    # Derived rows: a reindex rebuilds them.
    with platform.store.begin() as tx:
        tx.conn.execute(delete(notify_order))
    reindex_all(platform.store, "CommunicationRequest")
    assert _keys(platform) == {
        "ntf-k1": (CHANNEL_REST_HOOK, endpoint_key(hook_b)),
        "ntf-k2": (CHANNEL_INAPP, endpoint_key(INBOX_ENDPOINT)),
    }
    with platform.store.begin() as tx:
        tx.delete("CommunicationRequest", "ntf-k1")
    assert set(_keys(platform)) == {"ntf-k2"}


def test_a_failing_endpoint_holds_back_only_its_own_later_notifications(
    platform: Platform,
    dispatcher_for: Callable[..., Dispatcher],
    receiver: Receiver,
) -> None:
    down = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    up = receiver.start()
    plan = [("ntf-o1", down), ("ntf-o2", up), ("ntf-o3", down), ("ntf-o4", up)]
    with platform.store.begin() as tx:
        add_patient(tx, "pat1")
        add_declaration(tx, "evt-1", "pat1")
        for nid, endpoint in plan:
            add_notification(tx, nid, pid="pat1", channel=CHANNEL_REST_HOOK, endpoint=endpoint)
    dispatcher = dispatcher_for(platform, RetryPolicy(max_attempts=2, first_delay_seconds=0))
    for _ in range(4):
        dispatcher.run_once()
    got = [r.headers["x-parcours-notification-id"] for r in receiver.received]
    assert got == ["ntf-o2", "ntf-o4"]
    failed = {r.notification_id: r for r in deliveries(platform.store, failed=True)}
    assert set(failed) == {"ntf-o1", "ntf-o3"}
    assert "ConnectError" in (failed["ntf-o1"].last_error or "")
    assert "waiting for CommunicationRequest/ntf-o1" in (failed["ntf-o3"].last_error or "")


def _downgrade(platform: Platform, revision: str) -> None:
    config = Config()
    config.set_main_option(
        "script_location", str(Path(schema_version.__file__).with_name("migrations"))
    )
    with platform.store.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def test_migration_0010_matches_the_table_and_backfills_the_keys(platform: Platform) -> None:
    with platform.store.begin() as tx:
        add_patient(tx, "pat1")
        add_declaration(tx, "evt-1", "pat1")
        add_notification(
            tx, "ntf-m1", pid="pat1", channel=CHANNEL_REST_HOOK, endpoint="https://x/h"
        )
        add_notification(tx, "ntf-m2", pid="pat1", channel=CHANNEL_INAPP, endpoint=INBOX_ENDPOINT)
        add_notification(tx, "ntf-m3", pid="pat1", channel=CHANNEL_INAPP, endpoint=INBOX_ENDPOINT)
        tx.delete("CommunicationRequest", "ntf-m3")
    written = _keys(platform)
    assert set(written) == {"ntf-m1", "ntf-m2"}

    _downgrade(platform, "0009")
    assert current_revision(platform.store.engine) == "0009"
    assert not inspect(platform.store.engine).has_table("notify_order")
    upgrade(platform.store.engine, "head")
    # The notifications stored before the upgrade got the keys the write hook gives.
    assert _keys(platform) == written
    found = inspect(platform.store.engine)
    columns = {c["name"]: c for c in found.get_columns("notify_order")}
    assert set(columns) == set(notify_order.c.keys())
    for column in notify_order.c:
        assert columns[column.name]["nullable"] == column.nullable, column.name
    indexes = {i["name"] for i in found.get_indexes("notify_order")}
    assert indexes == {i.name for i in notify_order.indexes}
