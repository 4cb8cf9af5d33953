"""Gestionnaire de notifications (NdE flow 4): who is told about a declared event, and how.

An outbox handler reacting to the creation of an event declaration (the platform's own, see
``emitter``, or one POSTed over FHIR by an external NdE emitter). It writes one notification
request (``model``'s contract) per (recipient, channel):

1. the patient: the local ``subject``; for a contained Patient (external emitters, as in the
   NdE examples), the local Patient with one of its INS, else no one is notified (logged);
2. explicit Subscriptions whose criteria match and whose owner may see the patient
   (``subscriptions.matching``);
3. the care circle's default subscription: every member active at the event's time (a
   practitioner, the practitioner of an active PractitionerRole, an organisation or the
   circle's managing organisation), kept only if the policy lets that recipient see the
   patient now (an opposition or an ended participation stops notifications as it stops
   access), then filtered and routed by the recipient's preferences.

Ids are a digest of (declaration, recipient, channel) and an existing notification is never
rewritten: a replayed event is a no-op, and delivery owns the status once it is written.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from parcours.errors import Gone, NotFound
from parcours.identity.ins import InsKind
from parcours.notify.model import (
    CHANNEL_EMAIL,
    CHANNEL_INAPP,
    CHANNEL_REST_HOOK,
    DEFAULT_SUBSCRIPTION_DISPLAY,
    EXT_EVENT_TIME,
    EXT_EVENT_TYPE,
    EXT_RECIPIENT_ENDPOINT,
    EXT_REST_HOOK_HEADER,
    INBOX_ENDPOINT,
    PROFILE_NOTIFICATION_REQUEST,
    SYSTEM_CANAL_NOTIFICATION,
    event_codes_of,
    event_time_of,
    is_event_declaration,
)
from parcours.notify.preferences import Preference, routing_preferences
from parcours.notify.subscriptions import Match, matching
from parcours.notify.text import event_label, payload_text
from parcours.security.policy import Access, access_for
from parcours.security.principal import Principal
from parcours.security.tables import care_member
from parcours.store.clock import instant, now_ms
from parcours.store.outbox import Action, OutboxEvent
from parcours.store.repository import Transaction
from parcours.store.schema import resource
from parcours.store.search import parse_search
from parcours.store.search.values import date_range

__all__ = ["NotificationManager", "circle_recipients", "notification_id", "resolve_patient"]

log = logging.getLogger("parcours.notify")

_CHANNEL_DISPLAYS = {
    CHANNEL_INAPP: "Messagerie de la plateforme",
    CHANNEL_EMAIL: "Courrier électronique",
    CHANNEL_REST_HOOK: "Rest-hook",
}
_INS_SYSTEMS = frozenset(kind.system for kind in InsKind)


def notification_id(declaration_id: str, recipient: str, channel: str) -> str:
    digest = hashlib.sha256(f"{declaration_id}|{recipient}|{channel}".encode()).hexdigest()
    return "ntf-" + digest[:24]


def resolve_patient(tx: Transaction, declaration: dict[str, Any]) -> str | None:
    """The local Patient id of the declaration's subject, or None."""
    ref = (declaration.get("subject") or {}).get("reference")
    if not isinstance(ref, str):
        return None
    if ref.startswith("#"):
        contained = next(
            (
                c
                for c in declaration.get("contained") or []
                if c.get("resourceType") == "Patient" and c.get("id") == ref[1:]
            ),
            None,
        )
        return _patient_by_ins(tx, contained or {})
    head = ref.split("/_history/", 1)[0]
    parts = head.rsplit("/", 2)
    if len(parts) >= 2 and parts[-2] == "Patient" and tx.exists("Patient", parts[-1]):
        return parts[-1]
    return None


def _patient_by_ins(tx: Transaction, patient: dict[str, Any]) -> str | None:
    registry = tx.store.registry
    if registry is None:
        return None
    for ident in patient.get("identifier") or []:
        system, value = ident.get("system"), ident.get("value")
        if system not in _INS_SYSTEMS or not value:
            continue
        request = parse_search("Patient", [("identifier", f"{system}|{value}")], registry)
        found = tx.search(request).matches
        if len(found) == 1:
            return str(found[0]["id"])
    return None


def _event_ms(declaration: dict[str, Any], fallback: int) -> int:
    when = event_time_of(declaration)
    bounds = date_range(when) if when else None
    return bounds[0] if bounds else fallback


def _recipient_access(tx: Transaction, recipient: str, at_ms: int) -> Access:
    if recipient.startswith("Organization/"):
        # Its coordinators read its inbox: the organisation sees what a coordinator of it sees.
        principal = Principal(subject=recipient, roles=frozenset({"coordinator"}))
        return Access(principal, at_ms, org_keys=(recipient,))
    principal = Principal(
        subject=recipient, roles=frozenset({"professional"}), practitioner=recipient
    )
    return access_for(tx, principal, at_ms)


def circle_recipients(
    tx: Transaction,
    patient_id: str,
    event_ms: int,
    now: int,
    keep: Callable[[list[str]], list[str]] | None = None,
) -> list[str]:
    """Members of the patient's circle at ``event_ms`` whom the policy lets see it at ``now``.

    ``keep`` (optional) narrows the members before the access checks, the costly part (the
    manager drops those whose preferences give them nothing to receive)."""
    rows = tx.conn.execute(
        select(care_member.c.member)
        .where(
            care_member.c.patient_id == patient_id,
            (care_member.c.start_ms.is_(None)) | (care_member.c.start_ms <= event_ms),
            (care_member.c.end_ms.is_(None)) | (care_member.c.end_ms > event_ms),
        )
        .order_by(care_member.c.member)
    ).all()
    recipients: list[str] = []
    for (member,) in rows:
        recipient = _recipient_of_member(tx, str(member))
        if recipient is not None and recipient not in recipients:
            recipients.append(recipient)
    if keep is not None:
        recipients = keep(recipients)
    return [r for r in recipients if _recipient_access(tx, r, now).sees_patient(tx, patient_id)]


def _recipient_of_member(tx: Transaction, member: str) -> str | None:
    kind, _, member_id = member.partition("/")
    if kind in ("Practitioner", "Organization"):
        return member
    if kind != "PractitionerRole":
        return None  # a RelatedPerson has no professional inbox
    try:
        role = tx.read("PractitionerRole", member_id)
    except (NotFound, Gone):
        return None
    if role.get("active") is False:
        return None
    ref = (role.get("practitioner") or {}).get("reference")
    if isinstance(ref, str) and ref.startswith("Practitioner/") and ref.count("/") == 1:
        return ref
    return None


def _routes(preference: Preference, codes: list[str]) -> bool:
    """Whether the default subscription writes anything for this recipient."""
    if not preference.wants(codes):
        return False
    return CHANNEL_INAPP in preference.channels or (
        CHANNEL_EMAIL in preference.channels and bool(preference.email)
    )


class NotificationManager:
    """Outbox handler writing notification requests; see the module docstring."""

    name = "notify-manager"

    def handle(self, event: OutboxEvent, tx: Transaction) -> None:
        if event.res_type != "CommunicationRequest" or event.action != Action.CREATE:
            return
        declaration = tx.vread(event.res_type, event.res_id, event.version_id)
        if not is_event_declaration(declaration):
            return
        patient_id = resolve_patient(tx, declaration)
        if patient_id is None:
            log.warning(
                "event declaration CommunicationRequest/%s: its patient is not known here "
                "(no local reference, no matching INS); kept without notifying",
                event.res_id,
            )
            return
        now = now_ms()
        codes = [code for _system, code in event_codes_of(declaration)]
        writer = _Writer(tx, declaration, patient_id, codes)
        for match in matching(tx, declaration, patient_id, now):
            writer.explicit(match)
        event_ms = _event_ms(declaration, event.created_at)
        preferences: dict[str, Preference] = {}

        def receiving(members: list[str]) -> list[str]:
            preferences.update(routing_preferences(tx, members))
            return [m for m in members if _routes(preferences[m], codes)]

        for recipient in circle_recipients(tx, patient_id, event_ms, now, keep=receiving):
            preference = preferences[recipient]
            for channel in preference.channels:
                if channel == CHANNEL_INAPP:
                    writer.write(recipient, channel, INBOX_ENDPOINT, None)
                elif channel == CHANNEL_EMAIL and preference.email:
                    writer.write(recipient, channel, f"mailto:{preference.email}", None)
        writer.flush()


class _Writer:
    def __init__(
        self, tx: Transaction, declaration: dict[str, Any], patient_id: str, codes: list[str]
    ) -> None:
        self.tx = tx
        self.declaration = declaration
        self.patient_id = patient_id
        self.codes = codes
        # Written by ``flush`` in this order; the first one planned for an id wins.
        self.planned: dict[str, dict[str, Any]] = {}

    def flush(self) -> None:
        """Write the planned notifications that do not exist yet (one query checks them all):
        an existing notification is never rewritten."""
        if not self.planned:
            return
        existing = set(
            self.tx.conn.execute(
                select(resource.c.id).where(
                    resource.c.type == "CommunicationRequest",
                    resource.c.id.in_(list(self.planned)),
                    resource.c.deleted.is_(False),
                )
            ).scalars()
        )
        for res_id, planned in self.planned.items():
            if res_id not in existing:
                self.tx.update(planned)
        self.planned = {}

    def explicit(self, match: Match) -> None:
        if match.channel == CHANNEL_REST_HOOK:
            # The hook belongs to the subscription: two subscriptions, two deliveries.
            key = f"Subscription/{match.subscription_id}"
            self.write(match.recipient, CHANNEL_REST_HOOK, match.endpoint, match, key=key)
        elif match.channel == CHANNEL_EMAIL:
            endpoint = match.endpoint
            if not endpoint.startswith("mailto:"):
                endpoint = f"mailto:{endpoint}"
            recipient = match.recipient or match.owner.subject
            self.write(match.recipient, CHANNEL_EMAIL, endpoint, match, key=recipient)
        else:
            log.warning(
                "Subscription/%s: channel %r is not delivered", match.subscription_id, match.channel
            )

    def write(
        self,
        recipient: str | None,
        channel: str,
        endpoint: str,
        match: Match | None,
        *,
        key: str | None = None,
    ) -> None:
        declaration_id = str(self.declaration["id"])
        res_id = notification_id(declaration_id, key or recipient or "", channel)
        if res_id in self.planned:
            return
        extensions = [
            e
            for e in self.declaration.get("extension") or []
            if e.get("url") in (EXT_EVENT_TYPE, EXT_EVENT_TIME)
        ]
        headers = match.headers if match is not None and channel == CHANNEL_REST_HOOK else ()
        target: dict[str, Any] = {
            "extension": [
                {"url": EXT_RECIPIENT_ENDPOINT, "valueUrl": endpoint},
                *({"url": EXT_REST_HOOK_HEADER, "valueString": h} for h in headers),
            ]
        }
        if recipient is not None:
            target["reference"] = recipient
        elif match is not None:
            target["display"] = match.owner.subject
        based_on = (
            {"reference": f"Subscription/{match.subscription_id}"}
            if match is not None
            else {"display": DEFAULT_SUBSCRIPTION_DISPLAY}
        )
        requester = self.declaration.get("requester")
        establishment = requester.get("display") if isinstance(requester, dict) else None
        notification: dict[str, Any] = {
            "resourceType": "CommunicationRequest",
            "id": res_id,
            "meta": {"profile": [PROFILE_NOTIFICATION_REQUEST]},
            "extension": extensions,
            "basedOn": [based_on],
            "status": "active",
            "medium": [
                {
                    "coding": [
                        {
                            "system": SYSTEM_CANAL_NOTIFICATION,
                            "code": channel,
                            "display": _CHANNEL_DISPLAYS[channel],
                        }
                    ]
                }
            ],
            "subject": {"reference": f"Patient/{self.patient_id}"},
            "about": [{"reference": f"CommunicationRequest/{declaration_id}"}],
            "payload": [
                {
                    "contentString": payload_text(
                        event_label(self.codes), event_time_of(self.declaration), establishment
                    )
                }
            ],
            "authoredOn": instant(now_ms()),
            "recipient": [target],
        }
        if isinstance(requester, dict) and not str(requester.get("reference", "")).startswith("#"):
            notification["requester"] = requester
        self.planned[res_id] = notification
