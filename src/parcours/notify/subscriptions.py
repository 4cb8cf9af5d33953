"""Gestionnaire d'abonnements: explicit Subscriptions, their owners, and matching.

- ``on_write`` (a store write hook, in the request's transaction): records who created a
  Subscription (``tx.access.principal``: only that transaction knows), and refuses an update
  or a deletion by someone else than its owner (admins apart);
- ``SubscriptionActivator`` (outbox handler): a Subscription created ``requested`` becomes
  ``active`` (FHIR R4: the server sets the status once it accepts the subscription);
- ``matching``: the active Subscriptions a declaration matches. The criteria are run as a
  search restricted to the declaration (an extra ``_id``), so what matches is exactly what the
  search engine would answer; the owner must be allowed to see the patient.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import delete, insert, select

from parcours.errors import Forbidden, InvalidInput
from parcours.notify.model import CHANNEL_EMAIL, CHANNEL_REST_HOOK, NDE_BASE
from parcours.notify.tables import notify_subscription
from parcours.security.policy import access_for
from parcours.security.principal import Principal
from parcours.store.clock import now_ms
from parcours.store.outbox import Action, OutboxEvent
from parcours.store.repository import Transaction
from parcours.store.schema import resource
from parcours.store.search import parse_search
from parcours.store.search.values import date_range

__all__ = ["Match", "SubscriptionActivator", "matching", "on_write", "owner_of"]

log = logging.getLogger("parcours.notify")

_EXT_SUBSCRIBER = NDE_BASE + "subscriber"
_EXT_SUBJECT = NDE_BASE + "subject"


def on_write(tx: Transaction, new: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
    current = new or old
    if current is None or current.get("resourceType") != "Subscription":
        return
    sub_id = str(current.get("id"))
    access = tx.access
    if access is None:
        return  # the platform's own work (activation, imports)
    principal: Principal = access.principal
    owner = tx.conn.execute(
        select(notify_subscription.c.owner_subject).where(
            notify_subscription.c.subscription_id == sub_id
        )
    ).scalar_one_or_none()
    if old is None and owner is None:
        tx.conn.execute(
            insert(notify_subscription).values(
                subscription_id=sub_id,
                owner_subject=principal.subject,
                practitioner=principal.practitioner,
                roles=",".join(sorted(principal.roles)),
                scopes=",".join(sorted(principal.scopes)),
                created_ms=now_ms(),
            )
        )
        return
    if owner is not None and owner != principal.subject and not principal.is_admin:
        raise Forbidden(f"Subscription/{sub_id} belongs to {owner}: only its owner may change it")
    if new is None:
        tx.conn.execute(
            delete(notify_subscription).where(notify_subscription.c.subscription_id == sub_id)
        )


def owner_of(tx: Transaction, sub_id: str) -> Principal | None:
    row = tx.conn.execute(
        select(notify_subscription).where(notify_subscription.c.subscription_id == sub_id)
    ).first()
    return None if row is None else _principal(row)


def _owners(tx: Transaction) -> dict[str, Principal]:
    """Every Subscription's owner, in one query."""
    rows = tx.conn.execute(select(notify_subscription)).all()
    return {str(row.subscription_id): _principal(row) for row in rows}


def _principal(row: Any) -> Principal:
    return Principal(
        subject=row.owner_subject,
        roles=frozenset(r for r in row.roles.split(",") if r),
        practitioner=row.practitioner,
        scopes=frozenset(s for s in row.scopes.split(",") if s),
    )


class SubscriptionActivator:
    """Outbox handler: ``requested`` -> ``active`` once the Subscription is stored."""

    name = "notify-subscription-activator"

    def handle(self, event: OutboxEvent, tx: Transaction) -> None:
        if event.res_type != "Subscription" or event.action != Action.CREATE:
            return
        if not tx.exists("Subscription", event.res_id):
            return
        current = tx.read("Subscription", event.res_id)
        if current.get("status") != "requested":
            return
        channel = (current.get("channel") or {}).get("type")
        updated = dict(current)
        if channel in (CHANNEL_REST_HOOK, CHANNEL_EMAIL) and _criteria_ok(tx, current):
            updated["status"] = "active"
            updated.pop("error", None)
        else:
            updated["status"] = "error"
            updated["error"] = (
                "canal non pris en charge (rest-hook ou email)"
                if channel not in (CHANNEL_REST_HOOK, CHANNEL_EMAIL)
                else "critère invalide : CommunicationRequest?… attendu"
            )
        tx.update(updated)


def _criteria_ok(tx: Transaction, subscription: dict[str, Any]) -> bool:
    try:
        _criteria_request(tx, subscription, "x")
    except InvalidInput:
        return False
    return True


def _criteria_request(tx: Transaction, subscription: dict[str, Any], declaration_id: str) -> Any:
    criteria = str(subscription.get("criteria") or "")
    res_type, _, query = criteria.partition("?")
    if res_type != "CommunicationRequest":
        raise InvalidInput(f"criteria {criteria[:80]!r} is not a CommunicationRequest search")
    registry = tx.store.registry
    if registry is None:
        raise InvalidInput("this store was built without search parameters")
    params = [*parse_qsl(query, keep_blank_values=True), ("_id", declaration_id)]
    return parse_search(res_type, params, registry)


@dataclass(frozen=True, slots=True)
class Match:
    subscription_id: str
    owner: Principal
    channel: str
    endpoint: str
    headers: tuple[str, ...]
    # "Practitioner/…" / "Organization/…": the NdE subscriber, else the owner's practitioner.
    recipient: str | None


def _local(ref: Any, types: tuple[str, ...]) -> str | None:
    value = ref.get("reference") if isinstance(ref, dict) else None
    if isinstance(value, str) and value.split("/", 1)[0] in types and value.count("/") == 1:
        return value
    return None


def _extension(subscription: dict[str, Any], url: str) -> Any:
    return next(
        (
            e.get("valueReference")
            for e in subscription.get("extension") or []
            if e.get("url") == url
        ),
        None,
    )


def _expired(subscription: dict[str, Any], at_ms: int) -> bool:
    end = subscription.get("end")
    bounds = date_range(end) if isinstance(end, str) else None
    return bounds is not None and bounds[1] < at_ms


def matching(
    tx: Transaction, declaration: dict[str, Any], patient_id: str, at_ms: int
) -> list[Match]:
    """The active Subscriptions ``declaration`` (already stored) matches, for their owners."""
    rows = tx.conn.execute(
        select(resource.c.id, resource.c.content).where(
            resource.c.type == "Subscription", resource.c.deleted.is_(False)
        )
    ).all()
    owners = _owners(tx)
    # Subscriptions usually share a few criteria (``event-type=ADM``…): one search per
    # distinct criteria, not one per Subscription.
    found: dict[str, bool] = {}
    out: list[Match] = []
    for row in rows:
        sub: dict[str, Any] = row.content
        if sub.get("status") != "active" or _expired(sub, at_ms):
            continue
        subject = _extension(sub, _EXT_SUBJECT)
        if subject is not None and _local(subject, ("Patient",)) != f"Patient/{patient_id}":
            # An NdE subscription about one patient (a contained copy cannot be trusted).
            continue
        criteria = str(sub.get("criteria") or "")
        if criteria not in found:
            try:
                request = _criteria_request(tx, sub, str(declaration["id"]))
            except InvalidInput as exc:
                log.warning("Subscription/%s: criteria not usable: %s", row.id, exc)
                continue
            found[criteria] = bool(tx.search(request).matches)
        if not found[criteria]:
            continue
        owner = owners.get(str(row.id))
        if owner is None:
            log.warning("Subscription/%s has no recorded owner: not notified", row.id)
            continue
        if not access_for(tx, owner, at_ms).sees_patient(tx, patient_id):
            continue
        channel = sub.get("channel") or {}
        recipient = _local(_extension(sub, _EXT_SUBSCRIBER), ("Practitioner", "Organization")) or (
            owner.practitioner if owner.practitioner else None
        )
        out.append(
            Match(
                subscription_id=str(row.id),
                owner=owner,
                channel=str(channel.get("type") or ""),
                endpoint=str(channel.get("endpoint") or ""),
                headers=tuple(str(h) for h in channel.get("header") or []),
                recipient=recipient,
            )
        )
    return out
