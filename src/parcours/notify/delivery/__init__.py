"""Delivery of notification requests (NdE flow 4): an outbox handler and three channels.

- ``DeliveryHandler``: registered in ``build_platform``; delivers each new
  ``nde-notificationrequest`` by its channel, in order per patient and endpoint, then marks it
  ``completed`` and records it in ``notify_delivery``; failures are retried by the outbox
  (backoff, then dead letter; ``retry_notifications`` / ``parcours notify retry``).
- channels: ``resthook`` (Subscriptions R5 Backport notification Bundle), ``email`` (SMTP,
  minimal content), in-app ``inbox`` (read marks, live stream: ``routes.inbox_routes``).

See docs/notifications.md, section "Delivery".
"""

from parcours.notify.delivery.admin import DeliveryRow, deliveries, retry_notifications
from parcours.notify.delivery.handler import DeliveryDeferred, DeliveryHandler, UnsupportedChannel
from parcours.notify.delivery.inbox import InboxItem, InboxSignal
from parcours.notify.delivery.resthook import IDEMPOTENCY_HEADER

__all__ = [
    "IDEMPOTENCY_HEADER",
    "DeliveryDeferred",
    "DeliveryHandler",
    "DeliveryRow",
    "InboxItem",
    "InboxSignal",
    "UnsupportedChannel",
    "deliveries",
    "retry_notifications",
]
