"""Notification preferences and Subscription owners: rows, not resources.

Preferences are a recipient's settings (not clinical data, not worth a FHIR history); the owner
of a Subscription is who created it, which only the request's transaction knows (the outbox
handler that matches declarations later runs as the platform).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, String, Table, Text

from parcours.store.schema import metadata

__all__ = ["notify_preference", "notify_subscription"]

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
