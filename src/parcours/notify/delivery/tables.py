"""Tables of notification delivery, on the store's metadata (created by migration 0007).

``notify_delivery`` holds one row per DELIVERED notification request: the failures of the ones
still in flight live in the outbox row of their creation event (``attempts``, ``last_error``,
``dead_at``), because a failing handler's writes are rolled back with its savepoint and could
not record them here. Its ``seq`` orders deliveries: the live inbox stream reads it as a cursor.
Times are milliseconds since the epoch, UTC, like the store.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text

from parcours.store.schema import metadata

__all__ = ["notify_delivery", "notify_read"]

# SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")

notify_delivery = Table(
    "notify_delivery",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("notification_id", String(64), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("endpoint", String(1024), nullable=False),
    # "Practitioner/1" or "Organization/2": whose inbox an in-app notification lands in.
    Column("recipient", String(128), nullable=True),
    Column("patient_id", String(64), nullable=True),
    # Attempts it took (the successful one included) and the failure before the success.
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("delivered_at", BigInteger, nullable=False),
    Index("ux_notify_delivery_notification", "notification_id", unique=True),
    Index("ix_notify_delivery_recipient", "recipient", "channel", "seq"),
)

notify_read = Table(
    "notify_read",
    metadata,
    Column("notification_id", String(64), primary_key=True),
    # Principal.subject of the reader: an Organization's notification is read per person.
    Column("reader", String(255), primary_key=True),
    Column("read_at", BigInteger, nullable=False),
)
