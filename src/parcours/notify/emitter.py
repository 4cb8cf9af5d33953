"""Émetteur (NdE flow 3): declares events from the platform's own writes.

An outbox handler: for each Encounter, Patient or DocumentReference version it compares the
version with the previous one (``tx.vread``) and declares what changed:

- Encounter newly ``in-progress``: admission (TRE_R254 ``ADM``), or ER visit (``ADM`` +
  Parcours ``URG``) when its class is ``EMER``; an ER encounter turned into a stay (A06: class
  EMER -> IMP while in progress) is an admission too;
- Encounter newly ``finished``: discharge (``SOR``), or death (``SOR`` + ``DCD``) when its
  discharge disposition says so (PMSI mode de sortie / PV1-36 ``9``, as the HL7 mapping writes);
- Patient newly deceased: death (``SOR`` + ``DCD``);
- DocumentReference created: ``DOC``.

Each declaration's id is a digest of what identifies the event (resource, code, the movement's
date), and it is only created when absent: a resent or replayed HL7 message, or a replayed
outbox event, never declares an event twice.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any, Final

from parcours.errors import Gone, NotFound
from parcours.hl7v2.mapping_encounter import DISCHARGE_DISPOSITION_SYSTEM, DISCHARGE_MODE_SYSTEM
from parcours.notify.model import (
    CODE_ADM,
    CODE_DCD,
    CODE_DOC,
    CODE_SOR,
    CODE_URG,
    EXT_EVENT_EMISSION_TIME,
    EXT_EVENT_TIME,
    EXT_EVENT_TYPE,
    PROFILE_EVENT_DECLARATION,
    SYSTEM_EVENEMENT_PARCOURS,
    SYSTEM_TRE_R254,
)
from parcours.notify.text import event_label, payload_text
from parcours.store.clock import instant, now_ms
from parcours.store.outbox import Action, OutboxEvent
from parcours.store.repository import Transaction

__all__ = ["EventEmitter", "declaration_id"]

log = logging.getLogger("parcours.notify")

_DISPLAYS: Final = {
    CODE_ADM: "Admission d'un patient dans un établissement de santé",
    CODE_SOR: "Sortie d'un patient de l'établissement de santé",
    CODE_DOC: "Dépôt d'un document",
    CODE_URG: "Passage aux urgences",
    CODE_DCD: "Décès",
}
_DEATH_CODE: Final = "9"
# Statuses from which reaching in-progress is an arrival (not a return from leave).
_BEFORE_ARRIVAL: Final = frozenset({"planned", "arrived", "triaged", "unknown", "cancelled"})


def declaration_id(*parts: str) -> str:
    return "evt-" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


def _previous(tx: Transaction, event: OutboxEvent) -> dict[str, Any] | None:
    if event.version_id <= 1:
        return None
    try:
        return tx.vread(event.res_type, event.res_id, event.version_id - 1)
    except (NotFound, Gone):
        return None


def _class_code(encounter: dict[str, Any] | None) -> str:
    return str(((encounter or {}).get("class") or {}).get("code") or "")


def _is_death(encounter: dict[str, Any]) -> bool:
    disposition = (encounter.get("hospitalization") or {}).get("dischargeDisposition") or {}
    return any(
        c.get("system") in (DISCHARGE_MODE_SYSTEM, DISCHARGE_DISPOSITION_SYSTEM)
        and c.get("code") == _DEATH_CODE
        for c in disposition.get("coding") or []
    )


def _deceased(patient: dict[str, Any] | None) -> bool:
    if patient is None:
        return False
    return patient.get("deceasedBoolean") is True or bool(patient.get("deceasedDateTime"))


def _patient_id(resource: dict[str, Any], element: str = "subject") -> str | None:
    ref = (resource.get(element) or {}).get("reference")
    if isinstance(ref, str) and ref.startswith("Patient/") and "/" not in ref[8:]:
        return ref[8:]
    return None


class EventEmitter:
    """Outbox handler declaring NdE events; see the module docstring."""

    name = "notify-emitter"

    def handle(self, event: OutboxEvent, tx: Transaction) -> None:
        if event.action == Action.DELETE:
            return
        if event.res_type == "Encounter":
            self._encounter(event, tx)
        elif event.res_type == "Patient":
            self._patient(event, tx)
        elif event.res_type == "DocumentReference" and event.action == Action.CREATE:
            self._document(event, tx)

    # ---- sources ----------------------------------------------------------------------------

    def _encounter(self, event: OutboxEvent, tx: Transaction) -> None:
        current = tx.vread(event.res_type, event.res_id, event.version_id)
        patient_id = _patient_id(current)
        if patient_id is None:
            return
        previous = _previous(tx, event)
        before = (previous or {}).get("status")
        status = current.get("status")
        about = f"Encounter/{event.res_id}"
        requester = current.get("serviceProvider")
        period = current.get("period") or {}
        if status == "in-progress" and (previous is None or before in _BEFORE_ARRIVAL):
            start = str(period.get("start") or instant(event.created_at))
            codes = [CODE_ADM, CODE_URG] if _class_code(current) == "EMER" else [CODE_ADM]
            key = declaration_id(about, "+".join(codes), start)
            self._declare(tx, key, codes, start, patient_id, about, requester)
        elif (
            status == "in-progress"
            and before == "in-progress"
            and _class_code(previous) == "EMER"
            and _class_code(current) not in ("EMER", "")
        ):
            # Kept after the ER visit (A06): now an admission in its own right.
            history = current.get("classHistory") or []
            start = str((history[-1].get("period") or {}).get("start") if history else "") or (
                instant(event.created_at)
            )
            key = declaration_id(about, CODE_ADM, start)
            self._declare(tx, key, [CODE_ADM], start, patient_id, about, requester)
        elif status == "finished" and before != "finished":
            end = str(period.get("end") or instant(event.created_at))
            if _is_death(current):
                # One death per patient, whichever message (A03 mode 9, PID-30) tells it first.
                key = declaration_id(f"Patient/{patient_id}", CODE_DCD)
                self._declare(tx, key, [CODE_SOR, CODE_DCD], end, patient_id, about, requester)
            else:
                key = declaration_id(about, CODE_SOR, end)
                self._declare(tx, key, [CODE_SOR], end, patient_id, about, requester)

    def _patient(self, event: OutboxEvent, tx: Transaction) -> None:
        current = tx.vread(event.res_type, event.res_id, event.version_id)
        if not _deceased(current) or _deceased(_previous(tx, event)):
            return
        when = current.get("deceasedDateTime") or instant(event.created_at)
        about = f"Patient/{event.res_id}"
        key = declaration_id(about, CODE_DCD)
        requester = current.get("managingOrganization")
        self._declare(tx, key, [CODE_SOR, CODE_DCD], str(when), event.res_id, about, requester)

    def _document(self, event: OutboxEvent, tx: Transaction) -> None:
        current = tx.vread(event.res_type, event.res_id, event.version_id)
        patient_id = _patient_id(current)
        if patient_id is None:
            return
        about = f"DocumentReference/{event.res_id}"
        when = str(current.get("date") or instant(event.created_at))
        requester = current.get("custodian") or next(iter(current.get("author") or []), None)
        key = declaration_id(about, CODE_DOC)
        self._declare(tx, key, [CODE_DOC], when, patient_id, about, requester)

    # ---- the declaration ---------------------------------------------------------------------

    def _declare(
        self,
        tx: Transaction,
        res_id: str,
        codes: list[str],
        when: str,
        patient_id: str,
        about: str,
        requester: Any,
    ) -> None:
        if tx.exists("CommunicationRequest", res_id):
            return
        if not tx.exists("Patient", patient_id):
            log.warning("no declaration for %s: Patient/%s is not known", about, patient_id)
            return
        codings = [
            {
                "system": SYSTEM_TRE_R254
                if code in (CODE_ADM, CODE_SOR, CODE_DOC)
                else (SYSTEM_EVENEMENT_PARCOURS),
                "code": code,
                "display": _DISPLAYS[code],
            }
            for code in codes
        ]
        establishment = requester.get("display") if isinstance(requester, dict) else None
        declaration: dict[str, Any] = {
            "resourceType": "CommunicationRequest",
            "id": res_id,
            "meta": {"profile": [PROFILE_EVENT_DECLARATION]},
            "extension": [
                {"url": EXT_EVENT_TYPE, "valueCodeableConcept": {"coding": codings}},
                {"url": EXT_EVENT_TIME, "valueDateTime": when},
                {"url": EXT_EVENT_EMISSION_TIME, "valueDateTime": instant(now_ms())},
            ],
            "status": "active",
            "subject": {"reference": f"Patient/{patient_id}"},
            "about": [{"reference": about}],
            "payload": [{"contentString": payload_text(event_label(codes), when, establishment)}],
            "authoredOn": instant(now_ms()),
        }
        if isinstance(requester, dict) and requester:
            declaration["requester"] = _reference(requester)
        tx.update(declaration)


def _reference(value: dict[str, Any]) -> dict[str, Any]:
    return {k: value[k] for k in ("reference", "identifier", "display", "type") if k in value}
