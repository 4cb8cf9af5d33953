"""What one audited action is (``AuditEntry``) and its AuditEvent (``build_audit_event``).

The AuditEvent follows the ANS TdE profile ``tde-auditevent`` (one subtype, at most two
agents, each with ``who``, ``period.start``) and, where the TdE IG says nothing, IHE BALP:
the token or session id goes in ``agent.policy``, the request id in an ``XrequestId`` entity.
Only references and codes are recorded: no name or INS of a patient, and the search query
as the client sent it (base64, as ``entity.query`` requires).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Final

from parcours.security.principal import Principal
from parcours.store.clock import instant

__all__ = [
    "ACTIONS",
    "INTERACTIONS",
    "OUTCOMES",
    "PROFILE",
    "SUBTYPE_INTERACTIONS",
    "AuditEntry",
    "action_for",
    "build_audit_event",
    "outcome_display",
    "outcome_for_status",
    "patients_of",
]

PROFILE: Final = "https://interop.esante.gouv.fr/ig/fhir/tde/StructureDefinition/tde-auditevent"

ACTIONS: Final = frozenset({"C", "R", "U", "D", "E"})
OUTCOMES: Final = frozenset({0, 4, 8, 12})

_REST_INTERACTIONS: Final = (
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "history-system",
    "create",
    "search-type",
    "search-system",
    "operation",
    "transaction",
    "batch",
)
INTERACTIONS: Final = frozenset(
    (*_REST_INTERACTIONS, "login", "logout", "export", "merge", "break-glass")
)

_ACTION_OF: Final = {
    "read": "R",
    "vread": "R",
    "history-instance": "R",
    "history-type": "R",
    "history-system": "R",
    "search-type": "E",
    "search-system": "E",
    "create": "C",
    "update": "U",
    "patch": "U",
    "merge": "U",
    "delete": "D",
    "export": "R",
}

_DCM = "http://dicom.nema.org/resources/ontology/DCM"
_REST = "http://hl7.org/fhir/restful-interaction"
_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
_ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
_OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
_ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
_BALP_ENTITY = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"

_TYPE_REST: Final = {"system": _EVENT_TYPE, "code": "rest", "display": "RESTful Operation"}
# (type, subtype) of the events that are not a FHIR REST interaction: DICOM audit codes.
_NON_REST: Final[dict[str, tuple[dict[str, str], dict[str, str]]]] = {
    "login": (
        {"system": _DCM, "code": "110114", "display": "User Authentication"},
        {"system": _DCM, "code": "110122", "display": "Login"},
    ),
    "logout": (
        {"system": _DCM, "code": "110114", "display": "User Authentication"},
        {"system": _DCM, "code": "110123", "display": "Logout"},
    ),
    "break-glass": (
        {"system": _DCM, "code": "110113", "display": "Security Alert"},
        {"system": _DCM, "code": "110127", "display": "Emergency Override Started"},
    ),
    "export": (
        {"system": _DCM, "code": "110106", "display": "Export"},
        {"system": _REST, "code": "operation", "display": "$export"},
    ),
    "merge": (
        _TYPE_REST,
        {"system": _REST, "code": "operation", "display": "$merge"},
    ),
}
# Search by subtype code: the codes of _NON_REST map back to our interaction names.
SUBTYPE_INTERACTIONS: Final[dict[str, frozenset[str]]] = {
    "110122": frozenset({"login"}),
    "110123": frozenset({"logout"}),
    "110127": frozenset({"break-glass"}),
    "operation": frozenset({"operation", "export", "merge"}),
}

_OUTCOME_DISPLAY: Final = {
    0: "Success",
    4: "Minor failure",
    8: "Serious failure",
    12: "Major failure",
}


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audited action: who, on which patient(s), what, when, from where, with what result."""

    recorded_ms: int
    action: str
    interaction: str
    outcome: int
    agent: Principal
    outcome_text: str | None = None
    source_address: str | None = None
    # Patient ids, without the "Patient/" prefix; the first is the main one.
    patients: tuple[str, ...] = ()
    # Other resources acted upon, as references ("Observation/1/_history/2").
    entities: tuple[str, ...] = ()
    # The query string of a search, as received.
    query: str | None = None
    # "BTG" when the action relies on break-the-glass; ``reason`` is the justification given.
    purpose: str | None = None
    reason: str | None = None
    request_id: str | None = None
    resource_type: str | None = None

    def __post_init__(self) -> None:
        # A wrong code here would be stored forever in an append-only trail: refuse it early.
        if self.action not in ACTIONS:
            raise ValueError(f"audit action {self.action!r} is not one of C R U D E")
        if self.interaction not in INTERACTIONS:
            raise ValueError(f"audit interaction {self.interaction!r} is unknown")
        if self.outcome not in OUTCOMES:
            raise ValueError(f"audit outcome {self.outcome!r} is not one of 0 4 8 12")
        if self.interaction == "break-glass" and self.purpose is None:
            # The break-glass review lists entries by purpose: the act itself must be there.
            object.__setattr__(self, "purpose", "BTG")


def action_for(interaction: str) -> str:
    """The AuditEvent action of an interaction (E for searches, operations, login…)."""
    return _ACTION_OF.get(interaction, "E")


def outcome_for_status(status: int) -> int:
    """The AuditEvent outcome of an HTTP status: 0 below 400, 4 for 4xx, 8 for 5xx."""
    if status < 400:
        return 0
    return 4 if status < 500 else 8


def _text(value: str | None) -> str | None:
    # PostgreSQL's jsonb refuses NUL characters, and free text may echo a client's input.
    return value.replace("\x00", "") if value else value


def build_audit_event(entry: AuditEntry) -> dict[str, Any]:
    """The ``tde-auditevent`` of an entry, without ``id`` (the trail assigns it)."""
    when = instant(entry.recorded_ms)
    if entry.interaction in _NON_REST:
        event_type, subtype = _NON_REST[entry.interaction]
    else:
        event_type = _TYPE_REST
        subtype = {"system": _REST, "code": entry.interaction, "display": entry.interaction}
    principal = entry.agent
    who: dict[str, Any]
    if principal.practitioner:
        who = {"reference": principal.practitioner}
    else:
        who = {"identifier": {"value": principal.subject}}
        if principal.has_role("system"):
            who["type"] = "Device"
    if principal.display:
        who["display"] = _text(principal.display)
    agent: dict[str, Any] = {"who": who, "altId": principal.subject, "requestor": True}
    if principal.display:
        agent["name"] = _text(principal.display)
    if principal.roles:
        agent["role"] = [{"text": role} for role in sorted(principal.roles)]
    if principal.session:
        agent["policy"] = [principal.session]
    if entry.source_address:
        # 2: IP address (network-type).
        agent["network"] = {"address": _text(entry.source_address), "type": "2"}
    purpose: list[dict[str, Any]] | None = None
    if entry.purpose:
        concept: dict[str, Any] = {"coding": [_purpose_coding(entry.purpose)]}
        if entry.reason:
            concept["text"] = _text(entry.reason)
        purpose = [concept]
        agent["purposeOfUse"] = purpose

    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "meta": {"profile": [PROFILE]},
        "type": event_type,
        "subtype": [subtype],
        "action": entry.action,
        "period": {"start": when, "end": when},
        "recorded": when,
        "outcome": str(entry.outcome),
    }
    if entry.outcome_text:
        event["outcomeDesc"] = _text(entry.outcome_text)
    if purpose:
        event["purposeOfEvent"] = purpose
    event["agent"] = [agent]
    event["source"] = {
        "site": "Parcours",
        "observer": {"type": "Device", "display": "Parcours"},
        "type": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                "code": "4",
                "display": "Application Server",
            }
        ],
    }
    entities = [_patient_entity(pid) for pid in entry.patients]
    entities.extend(_resource_entity(ref) for ref in entry.entities)
    if entry.query is not None:
        query: dict[str, Any] = {
            "type": {"system": _ENTITY_TYPE, "code": "2", "display": "System Object"},
            "role": {"system": _OBJECT_ROLE, "code": "24", "display": "Query"},
            "query": base64.b64encode(entry.query.encode()).decode(),
        }
        if entry.resource_type:
            # Not ``name``: sev-1 forbids a name together with a query.
            query["description"] = f"{entry.resource_type} search"
        entities.append(query)
    if entry.request_id:
        entities.append(
            {
                "what": {"identifier": {"value": _text(entry.request_id)}},
                "type": {"system": _BALP_ENTITY, "code": "XrequestId"},
            }
        )
    if entities:
        event["entity"] = entities
    return event


def _purpose_coding(purpose: str) -> dict[str, str]:
    if purpose == "BTG":
        return {"system": _ACT_REASON, "code": "BTG", "display": "break the glass"}
    return {"system": _ACT_REASON, "code": purpose}


def _patient_entity(patient_id: str) -> dict[str, Any]:
    return {
        "what": {"reference": f"Patient/{patient_id}"},
        "type": {"system": _ENTITY_TYPE, "code": "1", "display": "Person"},
        "role": {"system": _OBJECT_ROLE, "code": "1", "display": "Patient"},
    }


def _resource_entity(reference: str) -> dict[str, Any]:
    return {
        "what": {"reference": reference},
        "type": {"system": _ENTITY_TYPE, "code": "2", "display": "System Object"},
        "role": {"system": _OBJECT_ROLE, "code": "4", "display": "Domain Resource"},
    }


def patients_of(event: dict[str, Any]) -> list[str]:
    """The patient ids an AuditEvent names, in order (what ``build_audit_event`` wrote)."""
    ids: list[str] = []
    for entity in event.get("entity", ()):
        role = entity.get("role") or {}
        ref = (entity.get("what") or {}).get("reference", "")
        is_patient = role.get("system") == _OBJECT_ROLE and role.get("code") == "1"
        if is_patient and ref.startswith("Patient/"):
            ids.append(ref[len("Patient/") :])
    return ids


def outcome_display(outcome: int) -> str:
    return _OUTCOME_DISPLAY.get(outcome, str(outcome))
