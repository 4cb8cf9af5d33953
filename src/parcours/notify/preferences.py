"""Recipients' notification preferences: channels and per-event opt-outs.

Default (no row): in-app always, plus e-mail when an e-mail address is known for the
recipient (its own telecom, else its PractitionerRoles', for a practitioner). A row replaces
the channels (possibly none at all) and lists the event codes not wanted: a declaration is not
notified when ANY of its codes is opted out, so opting out of ``ADM`` also silences ER visits
(``ADM`` + ``URG``) while opting out of ``URG`` silences ER visits only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select

from parcours.errors import Gone, InvalidInput, NotFound
from parcours.notify.model import (
    CHANNEL_EMAIL,
    CHANNEL_INAPP,
    CODE_ADM,
    CODE_DCD,
    CODE_DOC,
    CODE_NOT,
    CODE_SOR,
    CODE_URG,
)
from parcours.notify.tables import notify_preference
from parcours.store.clock import now_ms
from parcours.store.repository import Transaction
from parcours.store.schema import idx_reference, resource

__all__ = [
    "EVENT_CODES",
    "PERSONAL_CHANNELS",
    "Preference",
    "email_of",
    "preference_of",
    "routing_preferences",
    "save_preference",
]

EVENT_CODES = frozenset({CODE_ADM, CODE_SOR, CODE_DOC, CODE_NOT, CODE_URG, CODE_DCD})
# What a recipient may choose for the care-circle default; rest-hook needs a Subscription.
PERSONAL_CHANNELS = (CHANNEL_INAPP, CHANNEL_EMAIL)


@dataclass(frozen=True, slots=True)
class Preference:
    recipient: str
    channels: tuple[str, ...]
    opted_out: frozenset[str]
    email: str | None
    default: bool

    def wants(self, codes: list[str]) -> bool:
        return not self.opted_out.intersection(codes)


def _email(res: dict[str, Any] | None) -> str | None:
    for point in (res or {}).get("telecom") or []:
        if point.get("system") == "email" and point.get("value"):
            value = str(point["value"]).strip()
            return value.removeprefix("mailto:")
    return None


def _read(tx: Transaction, ref: str) -> dict[str, Any] | None:
    res_type, _, res_id = ref.partition("/")
    try:
        return tx.read(res_type, res_id)
    except (NotFound, Gone):
        return None


def email_of(tx: Transaction, recipient: str) -> str | None:
    """The recipient's e-mail (MSSanté) address: its own, else one of its active roles'."""
    found = _email(_read(tx, recipient))
    if found or not recipient.startswith("Practitioner/"):
        return found
    role = resource.alias()
    rows = tx.conn.execute(
        select(role.c.content)
        .join(idx_reference, idx_reference.c.resource_pk == role.c.pk)
        .where(
            idx_reference.c.res_type == "PractitionerRole",
            idx_reference.c.param == "practitioner",
            idx_reference.c.target_type == "Practitioner",
            idx_reference.c.target_id == recipient.split("/", 1)[1],
            idx_reference.c.target_url.is_(None),
            role.c.deleted.is_(False),
        )
        .order_by(role.c.id)
    )
    for (content,) in rows:
        if content.get("active") is not False and (address := _email(content)):
            return address
    return None


def preference_of(tx: Transaction, recipient: str) -> Preference:
    email = email_of(tx, recipient)
    row = tx.conn.execute(
        select(notify_preference).where(notify_preference.c.recipient == recipient)
    ).first()
    return _preference(recipient, row, email)


def routing_preferences(tx: Transaction, recipients: list[str]) -> dict[str, Preference]:
    """``preference_of`` for each recipient, for routing a notification: the rows in one
    query, and the e-mail address looked up only when the channels may use it (``email``
    is None for a recipient whose chosen channels leave e-mail out)."""
    rows = {
        str(row.recipient): row
        for row in tx.conn.execute(
            select(notify_preference).where(notify_preference.c.recipient.in_(recipients))
        )
    }
    out: dict[str, Preference] = {}
    for recipient in recipients:
        row = rows.get(recipient)
        needs_email = (
            row is None or row.channels is None or CHANNEL_EMAIL in row.channels.split(",")
        )
        email = email_of(tx, recipient) if needs_email else None
        out[recipient] = _preference(recipient, row, email)
    return out


def _preference(recipient: str, row: Any, email: str | None) -> Preference:
    if row is None or row.channels is None:
        channels: tuple[str, ...] = (CHANNEL_INAPP, CHANNEL_EMAIL) if email else (CHANNEL_INAPP,)
    else:
        channels = tuple(c for c in row.channels.split(",") if c)
    opted_out = frozenset(c for c in (row.opted_out if row else "").split(",") if c)
    return Preference(recipient, channels, opted_out, email, row is None)


def save_preference(
    tx: Transaction,
    recipient: str,
    channels: list[str] | None,
    opted_out: list[str],
) -> Preference:
    """Replace the recipient's preference (``channels`` None: back to the default channels)."""
    for channel in channels or []:
        if channel not in PERSONAL_CHANNELS:
            raise InvalidInput(
                f"channel {channel[:32]!r} is not one of {', '.join(PERSONAL_CHANNELS)} "
                "(rest-hook notifications need a Subscription)"
            )
    for code in opted_out:
        if code not in EVENT_CODES:
            raise InvalidInput(f"event code {code[:32]!r} is not one of {sorted(EVENT_CODES)}")
    tx.conn.execute(delete(notify_preference).where(notify_preference.c.recipient == recipient))
    tx.conn.execute(
        insert(notify_preference).values(
            recipient=recipient,
            channels=None if channels is None else ",".join(dict.fromkeys(channels)),
            opted_out=",".join(sorted(set(opted_out))),
            updated_ms=now_ms(),
        )
    )
    return preference_of(tx, recipient)
