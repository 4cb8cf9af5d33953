"""Notification preferences, Subscription owners and delivery order keys: rows, not resources.

Preferences are a recipient's settings (not clinical data, not worth a FHIR history); the owner
of a Subscription is who created it, which only the request's transaction knows (the outbox
handler that matches declarations later runs as the platform).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, String, Table, Text

from parcours.store.schema import metadata

__all__ = ["notify_order", "notify_preference", "notify_subscription"]

notify_preference = Table(
    "notify_preference",
    metadata,
    # "Practitioner/1" or "Organization/2".
    Column("recipient", String(140), primary_key=True),
    # Comma-separated channels ("inapp,email"); "" = none at all; NULL = the default.
    Column("channels", String(64), nullable=True),
    # Comma-separated event codes the recipient does not want (TRE_R254 or Parcours codes).
    Column("opted_out", Text, nullable=False, default=""),
    Column("updated_ms", BigInteger, nullable=False),
)

notify_subscription = Table(
    "notify_subscription",
    metadata,
    Column("subscription_id", String(64), primary_key=True),
    # Principal.subject of the creator: "Practitioner/1", "client/hospital-a", "admin"…
    Column("owner_subject", String(140), nullable=False),
    Column("practitioner", String(140), nullable=True),
    # Comma-separated roles and scopes, enough to rebuild the owner's Principal.
    Column("roles", Text, nullable=False),
    Column("scopes", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

# The delivery order keys of every notification request (issue 6, migration 0010): its channel
# and a digest of its endpoint, kept by ``notify.order.on_write`` on every write, so the "is an
# earlier one to the same endpoint undelivered?" probe filters in SQL instead of reading the
# JSON of every pending notification of the patient.
notify_order = Table(
    "notify_order",
    metadata,
    Column("notification_id", String(64), primary_key=True),
    Column("channel", String(16), nullable=False),
    # sha256 hex of the recipient-endpoint URL (URLs may be long; equality is all we need).
    Column("endpoint_key", String(64), nullable=False),
    Index("ix_notify_order_endpoint", "endpoint_key", "channel"),
)
