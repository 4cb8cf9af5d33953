"""The shape of NdE resources in Parcours: THE CONTRACT between who declares and notifies
(``parcours.notify.emitter``, ``parcours.notify.manager``) and who delivers
(``parcours.notify.delivery``).

Event declaration (NdE flow 3, profile ``nde-eventdeclaration``)
    A ``CommunicationRequest`` with ``meta.profile`` = ``PROFILE_EVENT_DECLARATION`` (or, for
    an external emitter that omits it, an ``EXT_EVENT_TYPE`` extension and no recipient):

    - ``extension[EXT_EVENT_TYPE].valueCodeableConcept.coding``: one ``SYSTEM_TRE_R254``
      coding (``ADM`` / ``SOR`` / ``DOC`` / ``NOT``) plus, for Parcours events that TRE_R254
      has no code for, one ``SYSTEM_EVENEMENT_PARCOURS`` coding: ER visit = ADM + ``URG``,
      death = SOR + ``DCD``;
    - ``extension[EXT_EVENT_TIME].valueDateTime``: when it happened (admission, discharge…);
    - ``subject``: ``Patient/{id}`` (a LOCAL reference, not a contained copy, so the access
      policy and the patient compartment apply); external declarations may contain the Patient;
    - ``about``: the Encounter or DocumentReference the event is about;
    - ``requester``: the declaring organisation (hospital) when known; ``payload``: French text.
    Ids of platform declarations are ``"evt-" + sha256(...)[:24]`` (see ``emitter``).

Notification request (NdE flow 4, profile ``nde-notificationrequest``) — what delivery reads
    One per (declaration, recipient, channel), written once by ``manager``:

    - ``id`` = ``"ntf-" + sha256(declaration id, recipient reference, channel)[:24]``
      (``notification_id``): the idempotency key; the manager never rewrites an existing one;
    - ``meta.profile`` = [``PROFILE_NOTIFICATION_REQUEST``];
    - ``status``: ``"active"`` when written = to deliver. After creation the resource belongs
      to delivery, which updates the status (e.g. ``completed`` once delivered, ``revoked``
      when it gives up) — the manager never touches it again;
    - ``medium[0].coding[0]``: ``SYSTEM_CANAL_NOTIFICATION`` | ``CHANNEL_INAPP`` /
      ``CHANNEL_REST_HOOK`` / ``CHANNEL_EMAIL`` -> ``channel_of``;
    - ``recipient[0]``: ``Practitioner/{id}`` or ``Organization/{id}``, carrying the
      ``EXT_RECIPIENT_ENDPOINT`` extension (``valueUrl``): ``INBOX_ENDPOINT`` for in-app, the
      ``mailto:`` address for e-mail, the Subscription's ``channel.endpoint`` URL for rest-hook
      -> ``endpoint_of``, ``recipient_of``; for rest-hook, ``EXT_REST_HOOK_HEADER``
      extensions on the recipient repeat ``Subscription.channel.header`` (``valueString``);
    - ``basedOn[0]``: ``Subscription/{id}`` for an explicit subscription, else a reference
      with only ``display`` = ``DEFAULT_SUBSCRIPTION_DISPLAY`` (the care circle's default
      subscription) -> ``subscription_of`` (None for the default);
    - ``about[0]``: ``CommunicationRequest/{declaration id}`` -> ``declaration_of``;
    - ``subject``: ``Patient/{id}`` (local: the notification is in the patient's compartment);
    - ``extension``: the declaration's ``EXT_EVENT_TYPE`` / ``EXT_EVENT_TIME`` copied
      -> ``event_codes_of``;
    - ``payload[0].contentString``: short French text (event, date, establishment), what an
      inbox line, an e-mail subject/body or a push shows; ``authoredOn``: when written;
    - ``requester``: the declaration's requester when it has one (else absent).
"""

from __future__ import annotations

from typing import Any, Final

__all__ = [
    "CHANNELS",
    "CHANNEL_EMAIL",
    "CHANNEL_INAPP",
    "CHANNEL_REST_HOOK",
    "CODE_ADM",
    "CODE_DCD",
    "CODE_DOC",
    "CODE_NOT",
    "CODE_SOR",
    "CODE_URG",
    "DEFAULT_SUBSCRIPTION_DISPLAY",
    "EXT_EVENT_EMISSION_TIME",
    "EXT_EVENT_TIME",
    "EXT_EVENT_TYPE",
    "EXT_RECIPIENT_ENDPOINT",
    "EXT_REST_HOOK_HEADER",
    "INBOX_ENDPOINT",
    "NDE_BASE",
    "PROFILE_EVENT_DECLARATION",
    "PROFILE_NOTIFICATION_REQUEST",
    "PROFILE_SUBSCRIPTION",
    "SYSTEM_CANAL_NOTIFICATION",
    "SYSTEM_EVENEMENT_PARCOURS",
    "SYSTEM_TRE_R254",
    "channel_of",
    "declaration_of",
    "endpoint_of",
    "event_codes_of",
    "event_time_of",
    "is_event_declaration",
    "is_notification_request",
    "profiles_of",
    "recipient_of",
    "subscription_of",
]

NDE_BASE: Final = "https://interop.esante.gouv.fr/ig/fhir/nde/StructureDefinition/"
PROFILE_EVENT_DECLARATION: Final = NDE_BASE + "nde-eventdeclaration"
PROFILE_NOTIFICATION_REQUEST: Final = NDE_BASE + "nde-notificationrequest"
PROFILE_SUBSCRIPTION: Final = NDE_BASE + "nde-subscription"
EXT_EVENT_TYPE: Final = NDE_BASE + "event-type"
EXT_EVENT_TIME: Final = NDE_BASE + "event-time"
EXT_EVENT_EMISSION_TIME: Final = NDE_BASE + "event-emission-time"
EXT_RECIPIENT_ENDPOINT: Final = NDE_BASE + "recipient-endpoint"
# Parcours' own: the HTTP headers a rest-hook Subscription asked for (Subscription.channel.header).
EXT_REST_HOOK_HEADER: Final = "https://parcours.sante.fr/fhir/StructureDefinition/rest-hook-header"

SYSTEM_TRE_R254: Final = (
    "https://mos.esante.gouv.fr/NOS/TRE_R254-TypeEvenement/FHIR/TRE-R254-TypeEvenement"
)
CODE_ADM: Final = "ADM"
CODE_SOR: Final = "SOR"
CODE_DOC: Final = "DOC"
CODE_NOT: Final = "NOT"

# TRE_R254 has no ER visit and no death: a second coding refines ADM / SOR (see docs).
SYSTEM_EVENEMENT_PARCOURS: Final = "https://parcours.sante.fr/fhir/CodeSystem/evenement-parcours"
CODE_URG: Final = "URG"
CODE_DCD: Final = "DCD"

SYSTEM_CANAL_NOTIFICATION: Final = "https://parcours.sante.fr/fhir/CodeSystem/canal-notification"
CHANNEL_INAPP: Final = "inapp"
CHANNEL_REST_HOOK: Final = "rest-hook"
CHANNEL_EMAIL: Final = "email"
CHANNELS: Final = (CHANNEL_INAPP, CHANNEL_REST_HOOK, CHANNEL_EMAIL)

INBOX_ENDPOINT: Final = "parcours:inbox"
DEFAULT_SUBSCRIPTION_DISPLAY: Final = "abonnement par défaut du cercle de soins"


def profiles_of(resource: dict[str, Any]) -> list[str]:
    meta = resource.get("meta") or {}
    return [p.split("|", 1)[0] for p in meta.get("profile") or [] if isinstance(p, str)]


def _has_event_type(resource: dict[str, Any]) -> bool:
    return any(e.get("url") == EXT_EVENT_TYPE for e in resource.get("extension") or [])


def is_notification_request(resource: dict[str, Any]) -> bool:
    """A flow-4 notification request (ours, or one that claims the NdE profile)."""
    if resource.get("resourceType") != "CommunicationRequest":
        return False
    if PROFILE_NOTIFICATION_REQUEST in profiles_of(resource):
        return True
    return any(
        e.get("url") == EXT_RECIPIENT_ENDPOINT
        for r in resource.get("recipient") or []
        for e in r.get("extension") or []
    )


def is_event_declaration(resource: dict[str, Any]) -> bool:
    """A flow-3 event declaration: the NdE profile, or an event type without a recipient."""
    if resource.get("resourceType") != "CommunicationRequest":
        return False
    if is_notification_request(resource):
        return False
    if PROFILE_EVENT_DECLARATION in profiles_of(resource):
        return True
    return _has_event_type(resource) and not resource.get("recipient")


def channel_of(notification: dict[str, Any]) -> str | None:
    """``inapp`` / ``rest-hook`` / ``email``, or None when the medium is not one of ours."""
    for medium in notification.get("medium") or []:
        for coding in medium.get("coding") or []:
            if coding.get("system") == SYSTEM_CANAL_NOTIFICATION and coding.get("code"):
                return str(coding["code"])
    return None


def endpoint_of(notification: dict[str, Any]) -> str | None:
    """The first recipient's ``recipient-endpoint`` URL (``parcours:inbox``, ``mailto:…``, URL)."""
    for recipient in (notification.get("recipient") or [])[:1]:
        for ext in recipient.get("extension") or []:
            if ext.get("url") == EXT_RECIPIENT_ENDPOINT:
                value = ext.get("valueUrl") or ext.get("valueUri") or ext.get("valueString")
                return str(value) if value else None
    return None


def recipient_of(notification: dict[str, Any]) -> str | None:
    """``Practitioner/{id}`` or ``Organization/{id}``."""
    for recipient in (notification.get("recipient") or [])[:1]:
        ref = recipient.get("reference")
        return str(ref) if ref else None
    return None


def subscription_of(notification: dict[str, Any]) -> str | None:
    """``Subscription/{id}`` for an explicit subscription; None for the care-circle default."""
    for based in notification.get("basedOn") or []:
        ref = based.get("reference")
        if isinstance(ref, str) and "Subscription/" in ref:
            return ref
    return None


def declaration_of(notification: dict[str, Any]) -> str | None:
    """``CommunicationRequest/{id}`` of the event declaration the notification is about."""
    for about in notification.get("about") or []:
        ref = about.get("reference")
        if isinstance(ref, str) and ref.startswith("CommunicationRequest/"):
            return ref
    return None


def event_codes_of(resource: dict[str, Any]) -> list[tuple[str, str]]:
    """The (system, code) pairs of the event-type extension, e.g. [(TRE_R254, ADM), (…, URG)]."""
    return [
        (str(c.get("system") or ""), str(c["code"]))
        for e in resource.get("extension") or []
        if e.get("url") == EXT_EVENT_TYPE
        for c in (e.get("valueCodeableConcept") or {}).get("coding") or []
        if c.get("code")
    ]


def event_time_of(resource: dict[str, Any]) -> str | None:
    for e in resource.get("extension") or []:
        if e.get("url") == EXT_EVENT_TIME and e.get("valueDateTime"):
            return str(e["valueDateTime"])
    return None
