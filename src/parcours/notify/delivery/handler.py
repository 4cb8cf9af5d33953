"""The outbox handler that delivers notification requests (NdE flow 4) by their channel.

It reacts to the CREATION of a notification request only: the manager writes each one once,
with a deterministic id, so a resent or replayed HL7 message that declares the same event again
finds the request already there and creates nothing, and nothing is delivered twice. Our own
status update (``active`` -> ``completed``) is an update event, ignored.

At least once: the external effect (POST, SMTP) happens before the transaction that marks the
event processed commits; a crash in between sends it again, with the same idempotency key
(``X-Parcours-Notification-Id`` header, Bundle id, e-mail ``Message-ID``).

Order per patient and endpoint: a notification is not sent while an EARLIER one (by the time of
the event it announces, then by creation order) for the same patient, channel and endpoint is
still undelivered — by event time, because the declarations of two movements of one patient may
be created out of order when one of them had to be retried;
it raises ``DeliveryDeferred`` and the outbox retries it with backoff. So a receiver that was
down gets the backlog in order once it is back. An earlier notification that became a dead
letter holds the later ones back until an operator retries it (``parcours notify retry``),
like the outbox holds the later events of a resource.

Retry budget: the dispatcher has ONE ``RetryPolicy`` for all its handlers (no per-handler
policy). Its default (8 attempts, 1 s doubling) retries at +1, 3, 7, 15, 31, 63 and 127 s after
the first failure: a receiver down for up to about two minutes gets everything; a longer
outage leaves dead letters for ``parcours notify retry --all``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from sqlalchemy import and_, func, insert, select

from parcours.config import Settings
from parcours.errors import Gone, NotFound
from parcours.notify.delivery import email, resthook
from parcours.notify.delivery.inbox import InboxSignal
from parcours.notify.delivery.tables import notify_delivery
from parcours.notify.model import (
    CHANNEL_EMAIL,
    CHANNEL_INAPP,
    CHANNEL_REST_HOOK,
    DEFAULT_SUBSCRIPTION_DISPLAY,
    channel_of,
    declaration_of,
    endpoint_of,
    event_codes_of,
    event_time_of,
    is_notification_request,
    recipient_of,
    subscription_of,
)
from parcours.notify.order import channel_key, endpoint_key
from parcours.notify.tables import notify_order
from parcours.store.clock import now_ms, parse_instant_ms
from parcours.store.outbox import Action, OutboxEvent
from parcours.store.repository import Transaction
from parcours.store.schema import idx_reference, outbox, resource

__all__ = ["DeliveryDeferred", "DeliveryHandler", "UnsupportedChannel"]

log = logging.getLogger("parcours.notify.delivery")

_TYPE = "CommunicationRequest"


def _event_ms(notification: dict[str, Any]) -> int:
    raw = event_time_of(notification)
    try:
        return parse_instant_ms(raw) if raw else 0
    except ValueError:
        return 0


class DeliveryDeferred(Exception):
    """An earlier notification to the same endpoint about the same patient is not delivered
    yet; this one waits its turn (the outbox retries it later)."""


class UnsupportedChannel(Exception):
    """The notification names no channel or endpoint we can deliver to."""


class DeliveryHandler:
    """Delivers each new ``nde-notificationrequest`` by its channel, then marks it completed."""

    name = "notify-delivery"

    def __init__(
        self,
        settings: Settings,
        *,
        signal: InboxSignal | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.settings = settings
        # One per process: the inbox routes of this process listen to it.
        self.signal = signal or InboxSignal()
        self._clock = clock
        # One connection pool per process: a client per POST would build a new TLS context
        # each time (≈ 40 ms, the largest cost of a delivery in bench/notify_bench.py).
        self._http: httpx.Client | None = None

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client()
        return self._http

    def handle(self, event: OutboxEvent, tx: Transaction) -> None:
        if event.res_type != _TYPE or event.action != Action.CREATE:
            return
        try:
            notification: dict[str, Any] = tx.read(_TYPE, event.res_id)
        except (NotFound, Gone):
            return  # deleted since: nobody is waiting for it any more
        if not is_notification_request(notification):
            return
        if notification.get("status") != "active":
            return  # revoked or completed before we got to it: nothing to deliver
        notification_id = event.res_id
        if self._delivered(tx, notification_id):
            return  # the same request created again after a delete: delivered once already
        channel = channel_of(notification)
        endpoint = endpoint_of(notification)
        if channel is None or endpoint is None:
            raise UnsupportedChannel(
                f"{_TYPE}/{notification_id} names no Parcours channel or no recipient-endpoint"
            )
        patient_id = tx.compartment(_TYPE, notification_id)
        if channel == CHANNEL_EMAIL and not self.settings.smtp_host:
            # No relay configured (the embedded demo): park it, visible and not retried in a
            # loop; it is not "delivered" and does not hold the patient's later e-mails.
            log.warning(
                "%s/%s: no SMTP relay (PARCOURS_SMTP_HOST): on hold", _TYPE, notification_id
            )
            tx.update({**notification, "status": "on-hold"})
            return
        if channel != CHANNEL_INAPP:
            self._wait_for_earlier(tx, event, notification, patient_id, channel, endpoint)
        if channel == CHANNEL_REST_HOOK:
            self._rest_hook(tx, event, notification, endpoint)
        elif channel == CHANNEL_EMAIL:
            self._email(tx, event, notification, endpoint, patient_id)
        elif channel == CHANNEL_INAPP:
            # Nothing to send: delivered is "in the inbox"; live streams learn it after commit.
            tx.after_commit.append(self.signal.notify)
        else:
            raise UnsupportedChannel(f"{_TYPE}/{notification_id}: unknown channel {channel!r}")
        self._record(tx, event, notification, channel, endpoint, patient_id)

    # ---- order -------------------------------------------------------------------------

    def _wait_for_earlier(
        self,
        tx: Transaction,
        event: OutboxEvent,
        notification: dict[str, Any],
        patient_id: str | None,
        channel: str,
        endpoint: str,
    ) -> None:
        # Earlier = an unprocessed creation event whose (event time, seq) comes first: processed
        # means delivered (or given up on purpose: revoked, deleted). The order keys
        # (``notify_order``: channel, endpoint digest) and the resource's compartment narrow the
        # candidates in SQL to this patient's notifications to this endpoint before any JSON is
        # read; the checks below still decide on the stored content.
        mine = (_event_ms(notification), event.seq)
        rows = tx.conn.execute(
            select(resource.c.id, resource.c.content, outbox.c.seq)
            .select_from(
                outbox.join(notify_order, notify_order.c.notification_id == outbox.c.res_id).join(
                    resource,
                    and_(resource.c.type == outbox.c.res_type, resource.c.id == outbox.c.res_id),
                )
            )
            .where(
                notify_order.c.endpoint_key == endpoint_key(endpoint),
                notify_order.c.channel == channel_key(channel),
                outbox.c.res_type == _TYPE,
                outbox.c.action == Action.CREATE.value,
                outbox.c.processed_at.is_(None),
                outbox.c.seq != event.seq,
                resource.c.patient_id == patient_id
                if patient_id is not None
                else resource.c.patient_id.is_(None),
                resource.c.deleted.is_(False),
            )
            .order_by(outbox.c.seq)
        ).all()
        for row in rows:
            other: Mapping[str, Any] = row.content
            if (
                is_notification_request(dict(other))
                and other.get("status") == "active"
                and channel_of(dict(other)) == channel
                and endpoint_of(dict(other)) == endpoint
                and (_event_ms(dict(other)), row.seq) < mine
            ):
                raise DeliveryDeferred(
                    f"waiting for {_TYPE}/{row.id}, an earlier notification to the same "
                    "endpoint about the same patient"
                )

    # ---- channels ----------------------------------------------------------------------

    def _rest_hook(
        self, tx: Transaction, event: OutboxEvent, notification: dict[str, Any], endpoint: str
    ) -> None:
        fhir_base = f"{self.settings.base_url}/fhir"
        subscription_ref = subscription_of(notification)
        subscription: dict[str, Any] | None = None
        if subscription_ref is not None:
            sub_id = subscription_ref.rsplit("Subscription/", 1)[1].split("/", 1)[0]
            try:
                subscription = tx.read("Subscription", sub_id)
            except (NotFound, Gone):
                subscription = None
            subscription_url: str | None = f"{fhir_base}/Subscription/{sub_id}"
            event_number = self._subscription_event_number(tx, sub_id, event.res_id)
        else:
            subscription_url = None
            event_number = self._endpoint_event_number(tx, endpoint)
        declaration_ref = declaration_of(notification)
        focus_ref = declaration_ref or f"{_TYPE}/{event.res_id}"
        focus: dict[str, Any] | None = None
        if resthook.payload_content(subscription) == "full-resource":
            focus_type, _, focus_id = focus_ref.partition("/")
            try:
                focus = tx.read(focus_type, focus_id)
            except (NotFound, Gone):
                focus = None
        criteria = (subscription or {}).get("criteria")
        bundle = resthook.notification_bundle(
            notification_id=event.res_id,
            subscription_url=subscription_url,
            subscription_display=None if subscription_url else DEFAULT_SUBSCRIPTION_DISPLAY,
            topic=criteria if isinstance(criteria, str) and "://" in criteria else None,
            event_number=event_number,
            timestamp_ms=event.created_at,
            focus_url=f"{fhir_base}/{focus_ref}",
            focus=focus,
        )
        resthook.post_notification(
            endpoint,
            bundle,
            notification_id=event.res_id,
            headers=resthook.hook_headers(notification, subscription),
            timeout=self.settings.rest_hook_timeout_seconds,
            client=self._client(),
        )

    def _subscription_event_number(self, tx: Transaction, sub_id: str, res_id: str) -> int:
        """How many notifications the subscription generated up to this one (creation order):
        the same number on every retry, and contiguous, so a receiver can spot a gap."""
        mine = select(resource.c.pk).where(resource.c.type == _TYPE, resource.c.id == res_id)
        count = tx.conn.execute(
            select(func.count())
            .select_from(idx_reference)
            .where(
                idx_reference.c.res_type == _TYPE,
                idx_reference.c.param == "based-on",
                idx_reference.c.target_type == "Subscription",
                idx_reference.c.target_id == sub_id,
                idx_reference.c.resource_pk <= mine.scalar_subquery(),
            )
        ).scalar_one()
        return max(int(count), 1)

    def _endpoint_event_number(self, tx: Transaction, endpoint: str) -> int:
        # No Subscription resource (the care circle's default): count what this endpoint got.
        count = tx.conn.execute(
            select(func.count()).where(notify_delivery.c.endpoint == endpoint)
        ).scalar_one()
        return int(count) + 1

    def _email(
        self,
        tx: Transaction,
        event: OutboxEvent,
        notification: dict[str, Any],
        endpoint: str,
        patient_id: str | None,
    ) -> None:
        if not endpoint.lower().startswith("mailto:"):
            raise UnsupportedChannel(f"e-mail endpoint {endpoint[:200]!r} is not a mailto: URL")
        address = endpoint[len("mailto:") :].split("?", 1)[0]
        patient: dict[str, Any] | None = None
        if patient_id is not None:
            try:
                patient = tx.read("Patient", patient_id)
            except (NotFound, Gone):
                patient = None
        msg = email.compose_email(
            notification_id=event.res_id,
            to=address,
            settings=self.settings,
            codes=event_codes_of(notification),
            event_time=event_time_of(notification),
            establishment=self._establishment(tx, notification),
            patient_id=patient_id,
            patient=patient,
            sent_at_ms=event.created_at,
        )
        email.send_email(msg, self.settings)

    def _establishment(self, tx: Transaction, notification: Mapping[str, Any]) -> str | None:
        requester = notification.get("requester") or {}
        if requester.get("display"):
            return str(requester["display"])
        ref = requester.get("reference")
        if isinstance(ref, str) and ref.startswith("Organization/"):
            try:
                org = tx.read("Organization", ref.split("/", 1)[1])
            except (NotFound, Gone):
                return None
            name = org.get("name")
            return str(name) if name else None
        return None

    # ---- bookkeeping -------------------------------------------------------------------

    def _delivered(self, tx: Transaction, notification_id: str) -> bool:
        return (
            tx.conn.execute(
                select(notify_delivery.c.seq).where(
                    notify_delivery.c.notification_id == notification_id
                )
            ).first()
            is not None
        )

    def _record(
        self,
        tx: Transaction,
        event: OutboxEvent,
        notification: dict[str, Any],
        channel: str,
        endpoint: str,
        patient_id: str | None,
    ) -> None:
        # The failures before this success are on the outbox row (our writes of a failed
        # attempt were rolled back with its savepoint).
        before = tx.conn.execute(
            select(outbox.c.attempts, outbox.c.last_error).where(outbox.c.seq == event.seq)
        ).first()
        tx.conn.execute(
            insert(notify_delivery).values(
                notification_id=event.res_id,
                channel=channel,
                endpoint=endpoint,
                recipient=recipient_of(notification),
                patient_id=patient_id,
                attempts=(before.attempts if before is not None else 0) + 1,
                last_error=before.last_error if before is not None else None,
                delivered_at=self._clock(),
            )
        )
        tx.update({**notification, "status": "completed"})
        log.info("notification %s delivered by %s", event.res_id, channel)
