"""The in-app inbox over real HTTP (uvicorn in a thread): list, read marks, authentication,
and the SSE stream receiving a newly delivered item live."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from parcours.app import create_app
from parcours.auth import TokenService
from parcours.notify.delivery.routes import inbox_routes
from parcours.platform import Platform
from parcours.security.principal import Principal
from parcours.store.outbox import Dispatcher

from .support import (
    CHANNEL_INAPP,
    INBOX_ENDPOINT,
    add_declaration,
    add_notification,
    add_patient,
    free_port,
)


@pytest.fixture(params=["app"])
def served(
    request: pytest.FixtureRequest, make_platform: Callable[..., Platform]
) -> Iterator[tuple[Platform, str]]:
    """The whole application, or (``stream``) the inbox routes alone with fast heartbeats."""
    port = free_port()
    platform = make_platform(base_url=f"http://127.0.0.1:{port}")
    app: Starlette = (
        create_app(platform, dispatch=False)
        if request.param == "app"
        else Starlette(routes=inbox_routes(platform, heartbeat_seconds=0.3))
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.01)
    yield platform, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    assert not thread.is_alive(), "the server did not stop (a stream left hanging?)"


def _token(platform: Platform, practitioner: str) -> str:
    principal = Principal(
        subject=practitioner,
        roles=frozenset({"professional"}),
        practitioner=practitioner,
        display="Dr Test",
    )
    return TokenService(platform.store, platform.settings).issue(principal, 600)


def _setup(platform: Platform) -> None:
    with platform.store.begin() as tx:
        tx.create({"resourceType": "Practitioner", "id": "p1"}, res_id="p1")
        tx.create({"resourceType": "Practitioner", "id": "p2"}, res_id="p2")
        tx.create({"resourceType": "Organization", "id": "o1", "name": "DAC 21"}, res_id="o1")
        tx.create(
            {
                "resourceType": "PractitionerRole",
                "id": "r1",
                "active": True,
                "practitioner": {"reference": "Practitioner/p1"},
                "organization": {"reference": "Organization/o1"},
            },
            res_id="r1",
        )
        add_patient(tx, "pat1")
        add_declaration(tx, "evt-1", "pat1")
        for nid, recipient in (
            ("ntf-i1", "Practitioner/p1"),
            ("ntf-i2", "Organization/o1"),
            ("ntf-i3", "Practitioner/p2"),
        ):
            add_notification(
                tx,
                nid,
                pid="pat1",
                channel=CHANNEL_INAPP,
                endpoint=INBOX_ENDPOINT,
                recipient=recipient,
            )


def test_inbox_lists_and_marks_read(
    served: tuple[Platform, str], dispatcher_for: Callable[..., Dispatcher]
) -> None:
    platform, base = served
    _setup(platform)
    dispatcher_for(platform).drain()
    headers = {"Authorization": f"Bearer {_token(platform, 'Practitioner/p1')}"}
    with httpx.Client(base_url=base, timeout=10) as client:
        assert client.get("/notify/inbox").status_code == 401
        body = client.get("/notify/inbox", headers=headers).json()
        assert body["unread"] == 2
        assert [i["id"] for i in body["items"]] == ["ntf-i2", "ntf-i1"]  # newest first
        assert body["items"][0]["recipient"] == "Organization/o1"
        assert body["items"][0]["patient"] == "Patient/pat1"
        assert body["items"][0]["text"].startswith("Admission")
        assert body["items"][0]["read"] is False

        assert client.post("/notify/inbox/ntf-i1/read", headers=headers).status_code == 204
        assert client.post("/notify/inbox/ntf-i3/read", headers=headers).status_code == 404
        body = client.get("/notify/inbox", headers=headers).json()
        assert body["unread"] == 1
        assert {i["id"]: i["read"] for i in body["items"]} == {"ntf-i1": True, "ntf-i2": False}

        assert client.post("/notify/inbox/read-all", headers=headers).json() == {"marked": 1}
        assert client.get("/notify/inbox", headers=headers).json()["unread"] == 0

    # Read marks are per person: p2 has its own inbox, untouched.
    other = {"Authorization": f"Bearer {_token(platform, 'Practitioner/p2')}"}
    body = httpx.get(f"{base}/notify/inbox", headers=other, timeout=10).json()
    assert (body["unread"], [i["id"] for i in body["items"]]) == (1, ["ntf-i3"])


@pytest.mark.parametrize("served", ["stream"], indirect=True)
def test_stream_pushes_a_new_item_live(
    served: tuple[Platform, str], dispatcher_for: Callable[..., Dispatcher]
) -> None:
    platform, base = served
    _setup(platform)
    dispatcher = dispatcher_for(platform)
    dispatcher.drain()
    token = _token(platform, "Practitioner/p1")
    lines: queue.Queue[str] = queue.Queue()
    connected = threading.Event()
    stop = threading.Event()

    def listen() -> None:
        headers = {"Authorization": f"Bearer {token}"}
        with (
            httpx.Client(timeout=httpx.Timeout(10)) as client,
            client.stream("GET", f"{base}/notify/stream", headers=headers) as response,
        ):
            lines.put(f"status {response.status_code} {response.headers['content-type']}")
            connected.set()
            # Heartbeats come every 0.3 s: the loop sees ``stop`` soon, then hangs up.
            for line in response.iter_lines():
                lines.put(line)
                if stop.is_set():
                    return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    assert connected.wait(10)
    assert lines.get(timeout=5).startswith("status 200 text/event-stream")
    assert lines.get(timeout=5) == "retry: 3000"

    with platform.store.begin() as tx:
        add_notification(
            tx,
            "ntf-i4",
            pid="pat1",
            channel=CHANNEL_INAPP,
            endpoint=INBOX_ENDPOINT,
            recipient="Practitioner/p1",
        )
    started = time.monotonic()
    dispatcher.drain()
    event: dict[str, str] = {}
    pings = 0
    while "data" not in event:
        line = lines.get(timeout=10)
        pings += line == ": ping"
        if line and not line.startswith(":"):
            field, _, value = line.partition(": ")
            event[field] = value
    # Only the new item (the earlier ones were in the inbox before the stream opened).
    assert event["event"] == "notification"
    item = json.loads(event["data"])
    assert item["id"] == "ntf-i4" and item["read"] is False
    assert int(event["id"]) == item["seq"]
    # The in-process wake-up, not the half-second poll, brought it (generous bound for CI).
    assert time.monotonic() - started < 5
    while pings == 0:
        pings += lines.get(timeout=5) == ": ping"
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
