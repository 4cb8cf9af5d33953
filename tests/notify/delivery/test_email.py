"""e-mail delivery to a real SMTP server (aiosmtpd): minimal content, idempotent Message-ID;
no relay configured: a failure the outbox retries."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from parcours.notify.delivery import deliveries
from parcours.platform import Platform
from parcours.store.outbox import Dispatcher

from .support import CHANNEL_EMAIL, add_declaration, add_notification, add_patient, free_port


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def test_email_carries_the_minimum(
    make_platform: Callable[..., Platform],
    dispatcher_for: Callable[..., Dispatcher],
    smtp: tuple[Inbox, int],
) -> None:
    inbox, port = smtp
    platform = make_platform(
        smtp_host="127.0.0.1", smtp_port=port, smtp_from="notifications@parcours.example"
    )
    with platform.store.begin() as tx:
        add_patient(tx, "pat1", given="Jeanne", family="MARTIN")
        add_declaration(tx, "evt-1", "pat1")
        add_notification(
            tx,
            "ntf-e1",
            pid="pat1",
            channel=CHANNEL_EMAIL,
            endpoint="mailto:dr.durand@medecin.mssante.fr",
        )
    dispatcher_for(platform).drain()

    assert len(inbox.messages) == 1
    rcpts, msg = inbox.messages[0]
    assert rcpts == ["dr.durand@medecin.mssante.fr"]
    assert msg["From"] == "notifications@parcours.example"
    assert msg["Message-ID"] == "<ntf-e1@parcours.example>"
    assert msg["X-Parcours-Notification-Id"] == "ntf-e1"
    subject = str(msg["Subject"])
    assert "admission" in subject
    body = msg.get_payload(decode=True).decode(msg.get_content_charset() or "utf-8")  # type: ignore[union-attr]
    assert "J. M., né(e) en 1952" in body
    assert "CHU de Dijon" in body and "02/05/2024 à 08:30" in body
    assert f"{platform.settings.base_url}/patients/pat1" in body
    for identity in ("Jeanne", "MARTIN", "Martin", "1952-03-14", "14/03/1952", "778899"):
        assert identity not in body and identity not in subject
    with platform.store.begin(readonly=True) as tx:
        assert tx.read("CommunicationRequest", "ntf-e1")["status"] == "completed"


def test_no_relay_puts_the_email_on_hold(
    make_platform: Callable[..., Platform], dispatcher_for: Callable[..., Dispatcher]
) -> None:
    platform = make_platform()  # PARCOURS_SMTP_HOST unset
    with platform.store.begin() as tx:
        add_patient(tx, "pat1")
        add_declaration(tx, "evt-1", "pat1")
        add_notification(
            tx, "ntf-e2", pid="pat1", channel=CHANNEL_EMAIL, endpoint="mailto:a@b.mssante.fr"
        )
    dispatcher_for(platform).run_once()
    # Parked, not retried in a loop, and not counted as delivered.
    assert deliveries(platform.store, failed=True) == []
    with platform.store.begin(readonly=True) as tx:
        assert tx.read("CommunicationRequest", "ntf-e2")["status"] == "on-hold"
