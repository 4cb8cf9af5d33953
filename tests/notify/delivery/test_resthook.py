"""rest-hook delivery through the outbox to a real HTTP receiver: the Backport IG shape, the
idempotency key, no second delivery, order per patient after an outage, dead letters and the
manual retry."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select, update

from parcours.cli import main
from parcours.errors import NotFound
from parcours.notify.delivery import deliveries, retry_notifications
from parcours.notify.delivery.resthook import (
    EXT_PAYLOAD_CONTENT,
    PROFILE_NOTIFICATION_R4,
    PROFILE_STATUS_R4,
)
from parcours.notify.delivery.tables import notify_delivery
from parcours.platform import Platform
from parcours.store.outbox import Dispatcher, RetryPolicy, dead_letters
from parcours.store.schema import outbox

from .support import (
    CHANNEL_REST_HOOK,
    Clock,
    Receiver,
    add_declaration,
    add_notification,
    add_patient,
    free_port,
)


def _param(parameters: list[dict[str, object]], name: str) -> dict[str, object]:
    return next(p for p in parameters if p["name"] == name)


def test_rest_hook_posts_a_backport_notification_once(
    platform: Platform, dispatcher_for: Callable[..., Dispatcher], receiver: Receiver
) -> None:
    endpoint = receiver.start()
    with platform.store.begin() as tx:
        add_patient(tx, "pat1")
        add_declaration(tx, "evt-1", "pat1")
        tx.create(
            {
                "resourceType": "Subscription",
                "id": "sub1",
                "status": "active",
                "reason": "admissions",
                "criteria": "https://parcours.sante.fr/fhir/SubscriptionTopic/admission",
                "channel": {
                    "type": "rest-hook",
                    "endpoint": endpoint,
                    "payload": "application/fhir+json",
                    "_payload": {
                        "extension": [{"url": EXT_PAYLOAD_CONTENT, "valueCode": "full-resource"}]
                    },
                    "header": ["Authorization: Bearer abc"],
                },
            },
            res_id="sub1",
        )
        add_notification(
            tx,
            "ntf-a1",
            pid="pat1",
            channel=CHANNEL_REST_HOOK,
            endpoint=endpoint,
            subscription="sub1",
            headers=("Authorization: Bearer abc",),
        )
    dispatcher = dispatcher_for(platform)
    dispatcher.drain()

    assert len(receiver.received) == 1
    got = receiver.received[0]
    assert got.headers["content-type"] == "application/fhir+json"
    assert got.headers["x-parcours-notification-id"] == "ntf-a1"
    assert got.headers["authorization"] == "Bearer abc"
    bundle = got.body
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "history"
    assert bundle["meta"]["profile"] == [PROFILE_NOTIFICATION_R4]
    status = bundle["entry"][0]["resource"]
    assert status["resourceType"] == "Parameters"
    assert status["meta"]["profile"] == [PROFILE_STATUS_R4]
    params = status["parameter"]
    base = platform.settings.base_url
    assert _param(params, "subscription")["valueReference"] == {
        "reference": f"{base}/fhir/Subscription/sub1"
    }
    assert _param(params, "type")["valueCode"] == "event-notification"
    assert _param(params, "status")["valueCode"] == "active"
    assert _param(params, "topic")["valueCanonical"].endswith("/admission")  # type: ignore[union-attr]
    assert _param(params, "events-since-subscription-start")["valueString"] == "1"
    parts = {p["name"]: p for p in _param(params, "notification-event")["part"]}  # type: ignore[union-attr]
    assert parts["event-number"]["valueString"] == "1"
    assert parts["timestamp"]["valueInstant"].endswith("Z")
    focus = f"{base}/fhir/CommunicationRequest/evt-1"
    assert parts["focus"]["valueReference"] == {"reference": focus}
    assert bundle["entry"][0]["request"]["method"] == "GET"
    # full-resource: the event declaration follows.
    assert bundle["entry"][1]["fullUrl"] == focus
    assert bundle["entry"][1]["resource"]["id"] == "evt-1"

    with platform.store.begin(readonly=True) as tx:
        assert tx.read("CommunicationRequest", "ntf-a1")["status"] == "completed"
        row = tx.conn.execute(select(notify_delivery)).one()
    assert (row.notification_id, row.channel, row.attempts) == ("ntf-a1", "rest-hook", 1)

    # Replays: the creation event handed out again (a crash before its commit), and the same
    # request written again by a replayed message: neither sends a second POST.
    with platform.store.begin() as tx:
        tx.conn.execute(
            update(outbox)
            .where(outbox.c.res_id == "ntf-a1", outbox.c.action == "create")
            .values(processed_at=None)
        )
        current = tx.read("CommunicationRequest", "ntf-a1")
        tx.update({**current, "status": "active"})
    dispatcher.drain()
    assert len(receiver.received) == 1


def test_second_notification_of_a_subscription_is_event_number_two(
    platform: Platform, dispatcher_for: Callable[..., Dispatcher], receiver: Receiver
) -> None:
    endpoint = receiver.start()
    with platform.store.begin() as tx:
        add_patient(tx, "pat1")
        add_declaration(tx, "evt-1", "pat1")
        for nid in ("ntf-b1", "ntf-b2"):
            add_notification(
                tx, nid, pid="pat1", channel=CHANNEL_REST_HOOK, endpoint=endpoint, subscription="s9"
            )
    dispatcher_for(platform).drain()
    numbers = [
        _param(r.body["entry"][0]["resource"]["parameter"], "events-since-subscription-start")
        for r in receiver.received
    ]
    assert [n["valueString"] for n in numbers] == ["1", "2"]
    # No Subscription resource stored: id-only, the declaration is not sent.
    assert all(len(r.body["entry"]) == 1 for r in receiver.received)


def test_receiver_down_for_a_minute_gets_everything_in_order_per_patient(
    platform: Platform,
    dispatcher_for: Callable[..., Dispatcher],
    receiver: Receiver,
    clock: Clock,
) -> None:
    """With the outbox's DEFAULT retry policy, simulated time, a receiver answering 503 for
    60 s: every notification arrives, in creation order for each patient."""
    up_at = clock.now + 60_000
    receiver.down = lambda: clock.now < up_at
    endpoint = receiver.start()
    order: dict[str, list[str]] = {"pat1": [], "pat2": []}
    with platform.store.begin() as tx:
        for pid in order:
            add_patient(tx, pid)
            add_declaration(tx, f"evt-{pid}", pid)
    for i in range(3):
        for pid in order:
            nid = f"ntf-{pid}-{i}"
            with platform.store.begin() as tx:
                add_notification(
                    tx,
                    nid,
                    pid=pid,
                    channel=CHANNEL_REST_HOOK,
                    endpoint=endpoint,
                    declaration=f"evt-{pid}",
                )
            order[pid].append(nid)
    dispatcher = dispatcher_for(platform)  # RetryPolicy() as in production
    for _ in range(200):
        dispatcher.run_once()
        clock.advance(1)
    assert receiver.refused > 0
    got = [r.headers["x-parcours-notification-id"] for r in receiver.received]
    assert sorted(got) == sorted(order["pat1"] + order["pat2"])
    for pid, expected in order.items():
        assert [n for n in got if f"-{pid}-" in n] == expected
    assert dead_letters(platform.store) == []
    rows = {r.notification_id: r for r in deliveries(platform.store)}
    assert rows["ntf-pat1-0"].attempts > 1 and rows["ntf-pat1-0"].last_error


def test_dead_letter_then_manual_retry(
    platform: Platform,
    dispatcher_for: Callable[..., Dispatcher],
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dead_port = free_port()  # nothing listens there: connection refused
    endpoint = f"http://127.0.0.1:{dead_port}/hook"
    with platform.store.begin() as tx:
        add_patient(tx, "pat1")
        add_declaration(tx, "evt-1", "pat1")
        for nid in ("ntf-d1", "ntf-d2"):
            add_notification(tx, nid, pid="pat1", channel=CHANNEL_REST_HOOK, endpoint=endpoint)
    dispatcher = dispatcher_for(platform, RetryPolicy(max_attempts=2, first_delay_seconds=0))
    for _ in range(4):
        dispatcher.run_once()
    failed = {r.notification_id: r for r in deliveries(platform.store, failed=True)}
    assert set(failed) == {"ntf-d1", "ntf-d2"}
    assert failed["ntf-d1"].state == "dead" and failed["ntf-d1"].attempts == 2
    assert "ConnectError" in (failed["ntf-d1"].last_error or "")
    # The later one waited for the earlier one: same patient, same endpoint.
    assert "earlier notification" in (failed["ntf-d2"].last_error or "")

    monkeypatch.setenv("PARCOURS_DATABASE_URL", platform.settings.database_url)
    assert main(["notify", "deliveries", "--failed"]) == 0
    listing = capsys.readouterr().out
    assert "ntf-d1\tdead\trest-hook" in listing

    # The receiver comes back at that address; the operator retries everything.
    restarted_endpoint = receiver.start(port=dead_port)
    assert restarted_endpoint == endpoint
    assert main(["notify", "retry", "--all"]) == 0
    assert "ntf-d1\tback in line" in capsys.readouterr().out
    for _ in range(4):
        dispatcher.run_once()
    got = [r.headers["x-parcours-notification-id"] for r in receiver.received]
    assert got == ["ntf-d1", "ntf-d2"]
    assert deliveries(platform.store, failed=True) == []
    with pytest.raises(NotFound, match="no dead letter"):
        retry_notifications(platform.store, ["ntf-d1"])
