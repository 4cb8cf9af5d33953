"""Builders and test servers of the delivery tests: notification requests as
``parcours.notify.model`` describes them, a recording HTTP receiver, a settable clock."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from parcours.notify.model import (
    CHANNEL_EMAIL,
    CHANNEL_INAPP,
    CHANNEL_REST_HOOK,
    CODE_ADM,
    DEFAULT_SUBSCRIPTION_DISPLAY,
    EXT_EVENT_TIME,
    EXT_EVENT_TYPE,
    EXT_RECIPIENT_ENDPOINT,
    EXT_REST_HOOK_HEADER,
    INBOX_ENDPOINT,
    PROFILE_EVENT_DECLARATION,
    PROFILE_NOTIFICATION_REQUEST,
    SYSTEM_CANAL_NOTIFICATION,
    SYSTEM_TRE_R254,
)
from parcours.store import Store, Transaction
from parcours.store.clock import now_ms

__all__ = [
    "CHANNEL_EMAIL",
    "CHANNEL_INAPP",
    "CHANNEL_REST_HOOK",
    "INBOX_ENDPOINT",
    "Clock",
    "Receiver",
    "add_declaration",
    "add_notification",
    "add_patient",
    "free_port",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Clock:
    """Milliseconds, moved by hand; starts at the real time so outbox rows line up."""

    def __init__(self) -> None:
        self.now = now_ms()

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1000)


def add_patient(
    tx: Transaction, pid: str, given: str = "Jeanne", family: str = "MARTIN"
) -> dict[str, Any]:
    return tx.create(
        {
            "resourceType": "Patient",
            "id": pid,
            "identifier": [{"system": "urn:oid:1.2.250.1.999.1", "value": f"IPP-{pid}-778899"}],
            "name": [{"family": family, "given": [given]}],
            "gender": "female",
            "birthDate": "1952-03-14",
        },
        res_id=pid,
    )


def add_declaration(tx: Transaction, did: str, pid: str) -> dict[str, Any]:
    return tx.create(
        {
            "resourceType": "CommunicationRequest",
            "id": did,
            "meta": {"profile": [PROFILE_EVENT_DECLARATION]},
            "extension": [
                {
                    "url": EXT_EVENT_TYPE,
                    "valueCodeableConcept": {
                        "coding": [{"system": SYSTEM_TRE_R254, "code": CODE_ADM}]
                    },
                },
                {"url": EXT_EVENT_TIME, "valueDateTime": "2024-05-02T08:30:00+02:00"},
            ],
            "status": "active",
            "subject": {"reference": f"Patient/{pid}"},
            "requester": {"display": "CHU de Dijon"},
            "payload": [{"contentString": "Admission le 02/05/2024 au CHU de Dijon"}],
        },
        res_id=did,
    )


def add_notification(
    tx: Transaction,
    nid: str,
    *,
    pid: str,
    channel: str,
    endpoint: str,
    recipient: str = "Practitioner/p1",
    declaration: str = "evt-1",
    subscription: str | None = None,
    headers: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A notification request exactly as ``parcours.notify.model`` specifies it."""
    target: dict[str, Any] = {
        "reference": recipient,
        "extension": [
            {"url": EXT_RECIPIENT_ENDPOINT, "valueUrl": endpoint},
            *({"url": EXT_REST_HOOK_HEADER, "valueString": h} for h in headers),
        ],
    }
    return tx.create(
        {
            "resourceType": "CommunicationRequest",
            "id": nid,
            "meta": {"profile": [PROFILE_NOTIFICATION_REQUEST]},
            "extension": [
                {
                    "url": EXT_EVENT_TYPE,
                    "valueCodeableConcept": {
                        "coding": [{"system": SYSTEM_TRE_R254, "code": CODE_ADM}]
                    },
                },
                {"url": EXT_EVENT_TIME, "valueDateTime": "2024-05-02T08:30:00+02:00"},
            ],
            "basedOn": [
                {"reference": f"Subscription/{subscription}"}
                if subscription
                else {"display": DEFAULT_SUBSCRIPTION_DISPLAY}
            ],
            "status": "active",
            "medium": [{"coding": [{"system": SYSTEM_CANAL_NOTIFICATION, "code": channel}]}],
            "subject": {"reference": f"Patient/{pid}"},
            "about": [{"reference": f"CommunicationRequest/{declaration}"}],
            "payload": [{"contentString": "Admission le 02/05/2024 au CHU de Dijon"}],
            "authoredOn": "2024-05-02T06:31:00.000Z",
            "requester": {"display": "CHU de Dijon"},
            "recipient": [target],
        },
        res_id=nid,
    )


def create(store: Store, build: Callable[[Transaction], Any]) -> Any:
    with store.begin() as tx:
        return build(tx)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Receiver:
    """A real HTTP server recording the POSTs it accepts; answers 503 while ``down()``."""

    down: Callable[[], bool] = lambda: False
    received: list[Received] = field(default_factory=list)
    refused: int = 0

    def start(self, port: int = 0) -> str:
        receiver = self

        class Handle(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                if receiver.down():
                    receiver.refused += 1
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.received.append(
                    Received(
                        self.path, {k.lower(): v for k, v in self.headers.items()}, json.loads(raw)
                    )
                )
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handle)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def stop(self) -> None:
        if not hasattr(self, "_server"):
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
