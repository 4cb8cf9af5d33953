"""Issue 6 (speed): the delivery order keys of notification requests, ``notify_order``.

Revision ID: 0010
Revises: 0009

Frozen copy of ``parcours.notify.tables.notify_order`` at this revision. The notification
requests already stored get their row here (same rule as ``parcours.notify.order``), so the
order of the ones still in flight at the upgrade holds.
"""

import hashlib
import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_NDE = "https://interop.esante.gouv.fr/ig/fhir/nde/StructureDefinition/"
_PROFILE = _NDE + "nde-notificationrequest"
_ENDPOINT = _NDE + "recipient-endpoint"
_CANAL = "https://parcours.sante.fr/fhir/CodeSystem/canal-notification"


def _key(content: dict[str, Any]) -> tuple[str, str] | None:
    profiles = [p.split("|", 1)[0] for p in (content.get("meta") or {}).get("profile") or []]
    recipients = content.get("recipient") or []
    claims = any(e.get("url") == _ENDPOINT for r in recipients for e in r.get("extension") or [])
    if _PROFILE not in profiles and not claims:
        return None
    channel = next(
        (
            str(c["code"])
            for m in content.get("medium") or []
            for c in m.get("coding") or []
            if c.get("system") == _CANAL and c.get("code")
        ),
        "",
    )
    endpoint = ""
    for recipient in recipients[:1]:
        for ext in recipient.get("extension") or []:
            if ext.get("url") == _ENDPOINT:
                value = ext.get("valueUrl") or ext.get("valueUri") or ext.get("valueString")
                endpoint = str(value or "")
                break
    return channel[:16], hashlib.sha256(endpoint.encode()).hexdigest()


def upgrade() -> None:
    table = op.create_table(
        "notify_order",
        sa.Column("notification_id", sa.String(64), primary_key=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("endpoint_key", sa.String(64), nullable=False),
    )
    op.create_index("ix_notify_order_endpoint", "notify_order", ["endpoint_key", "channel"])
    resource = sa.table(
        "resource",
        sa.column("id", sa.String),
        sa.column("type", sa.String),
        sa.column("deleted", sa.Boolean),
        sa.column("content", sa.JSON),
    )
    rows = op.get_bind().execute(
        sa.select(resource.c.id, resource.c.content).where(
            resource.c.type == "CommunicationRequest", resource.c.deleted.is_(False)
        )
    )
    keys = []
    for res_id, content in rows:
        parsed = json.loads(content) if isinstance(content, str | bytes) else content
        key = _key(parsed or {})
        if key is not None:
            keys.append({"notification_id": res_id, "channel": key[0], "endpoint_key": key[1]})
    if keys:
        op.bulk_insert(table, keys)


def downgrade() -> None:
    op.drop_index("ix_notify_order_endpoint", table_name="notify_order")
    op.drop_table("notify_order")
