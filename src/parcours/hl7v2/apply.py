"""One PAM FR message -> FHIR writes, inside the caller's store transaction.

Dispatch on MSH-9.2 (never on MSH-9.3, rule sheet §3.8):

* ITI-30 identity: A28/A31 create-or-update, A40 merge, A47 identifier change (IPP change,
  INS deletion, NIR change);
* ITI-31 movements: see ``mapping_encounter`` (the patient in PID is created or updated too);
* everything else (A08, excluded in France; A24/A37 link option; pending movements A15,
  A16, A25, A26; A44; unknown triggers) is acknowledged AA and ignored, as PAM FR says for
  unknown triggers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import update

from parcours.hl7v2.er7 import Message
from parcours.hl7v2.errors import SEGMENT_SEQUENCE_ERROR, UNKNOWN_KEY, Hl7Error, Problem
from parcours.hl7v2.identifiers import Sender, cx_system
from parcours.hl7v2.mapping_encounter import (
    MOVEMENT_TRIGGERS,
    apply_movement,
    new_encounter,
    read_movement,
    service_provider,
    visit_keys,
)
from parcours.hl7v2.mapping_patient import INS_OIDS, PatientData, map_patient, merge_patient
from parcours.hl7v2.resolver import IdentityService, Xref
from parcours.hl7v2.settings import Hl7Settings
from parcours.hl7v2.tables import hl7_xref
from parcours.store.repository import Transaction

__all__ = ["IDENTITY_TRIGGERS", "Applied", "apply_message", "is_handled"]

IDENTITY_TRIGGERS = frozenset({"A28", "A31", "A40", "A47"})


def is_handled(trigger: str) -> bool:
    return trigger in IDENTITY_TRIGGERS or trigger in MOVEMENT_TRIGGERS


@dataclass
class Applied:
    status: str  # applied | ignored
    targets: list[str] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


def _upsert_patient(
    tx: Transaction,
    data: PatientData,
    sender: Sender,
    identity: IdentityService,
    *,
    target_id: str | None = None,
    drop: set[tuple[str, str]] | None = None,
    create_only: bool = False,
) -> tuple[str, bool]:
    """Create or update the Patient; returns (id, whether a version was written)."""
    patient_id = target_id or identity.resolve(tx, data.as_patient(), sender)
    written = False
    if patient_id is not None and create_only:
        return patient_id, False
    if patient_id is None:
        created = tx.create(merge_patient(None, data))
        patient_id = str(created["id"])
        final: dict[str, Any] = created
        written = True
    else:
        existing = tx.read("Patient", patient_id)
        if drop:
            existing = dict(existing)
            existing["identifier"] = [
                i
                for i in existing.get("identifier") or []
                if (i.get("system"), i.get("value")) not in drop
            ]
        updated = merge_patient(existing, data)
        result = tx.update(updated)
        final = result.resource
        written = result.resource.get("meta", {}).get("versionId") != existing.get("meta", {}).get(
            "versionId"
        )
    Xref(tx).set_patient_identifiers(patient_id, final.get("identifier") or [])
    return patient_id, written


def _mrg_identifiers(msg: Message, sender: Sender) -> list[tuple[str, str, str]]:
    """(kind, system, value) of MRG-1, the prior identifiers."""
    mrg = msg.first("MRG")
    if mrg is None:
        raise Hl7Error.content(SEGMENT_SEQUENCE_ERROR, f"{msg.trigger} needs an MRG segment", "MRG")
    out: list[tuple[str, str, str]] = []
    for rep in mrg.reps(1):
        value, type_code = rep.c(1), rep.c(5).upper()
        if not value:
            continue
        if type_code == "INS":
            oid = rep.c(4, 2)
            system = f"urn:oid:{oid}"
            if system in INS_OIDS:
                out.append(("ins", system, value.upper()))
        elif type_code in ("PI", ""):
            out.append(("ipp", cx_system("ipp", rep, sender), value))
    if not out:
        raise Hl7Error.content(UNKNOWN_KEY, "MRG-1 holds no IPP (PI) or INS identifier", mrg.loc(1))
    return out


def _find(tx: Transaction, keys: list[tuple[str, str, str]]) -> str | None:
    xref = Xref(tx)
    for kind, system, value in keys:
        hit = xref.find(kind, system, value)
        if hit and tx.exists("Patient", hit[0]):
            return hit[0]
    return None


def _identity(
    tx: Transaction, msg: Message, settings: Hl7Settings, sender: Sender, identity: IdentityService
) -> Applied:
    data = map_patient(msg, settings, sender)
    applied = Applied("applied", warnings=list(data.warnings))
    trigger = msg.trigger
    if trigger in ("A28", "A31"):
        pid, _ = _upsert_patient(tx, data, sender, identity)
        applied.targets.append(f"Patient/{pid}")
        return applied
    prior = _mrg_identifiers(msg, sender)
    if trigger == "A40":
        survivor, _ = _upsert_patient(tx, data, sender, identity)
        applied.targets.append(f"Patient/{survivor}")
        obsolete = _find(tx, prior)
        if obsolete is None:
            applied.warnings.append(
                Problem(
                    UNKNOWN_KEY, "merged identity unknown here: nothing to merge", "MRG^1^1", "W"
                )
            )
        elif obsolete != survivor:
            for ref in identity.merge(tx, survivor, obsolete):
                if ref not in applied.targets:
                    applied.targets.append(ref)
        return applied
    # A47: the patient is found by its prior identifiers (MRG-1), else by the new IPP.
    target = _find(tx, prior) or identity.resolve(tx, data.as_patient(), sender)
    if target is None:
        raise Hl7Error.content(
            UNKNOWN_KEY, "no patient carries the prior identifier of MRG-1", "MRG^1^1"
        )
    drop = {(system, value) for kind, system, value in prior if kind == "ipp"}
    new_ipps = {(i["system"], i["value"]) for i in data.ipps}
    drop -= new_ipps
    if any(kind == "ins" for kind, _s, _v in prior):
        # NIR change or INS deletion (PAM FR §4.4): every INS of the patient goes, the new
        # one (if any, and if kept by the INS rules) comes from PID-3.
        data.ins_deleted = True
    pid, _ = _upsert_patient(tx, data, sender, identity, target_id=target, drop=drop)
    xref = Xref(tx)
    for system, value in drop:
        xref.remove("ipp", system, value)
    applied.targets.append(f"Patient/{pid}")
    return applied


def _movement(
    tx: Transaction,
    msg: Message,
    settings: Hl7Settings,
    sender: Sender,
    identity: IdentityService,
    sequence: int,
) -> Applied:
    data = map_patient(msg, settings, sender)
    keys = visit_keys(msg, sender)
    action, movement, warnings = read_movement(msg, sender, sequence)
    applied = Applied("applied", warnings=[*data.warnings, *warnings])
    # Identity changes travel in ITI-30 (A31, A47...); the PID of a movement only creates
    # a patient we do not know yet, so a late or stale movement never rewrites an identity.
    patient_id, _ = _upsert_patient(tx, data, sender, identity, create_only=True)
    applied.targets.append(f"Patient/{patient_id}")
    xref = Xref(tx)
    kind = "visit" if keys.visit else "nda"
    hit = xref.find(kind, keys.primary["system"], keys.primary["value"])
    if hit is not None and tx.exists("Encounter", hit[0]):
        encounter = dict(tx.read("Encounter", hit[0]))
        encounter["subject"] = {"reference": f"Patient/{patient_id}"}
        if keys.nda and not any(
            i.get("value") == keys.nda["value"] and i.get("system") == keys.nda["system"]
            for i in encounter.get("identifier") or []
        ):
            encounter["identifier"] = [*(encounter.get("identifier") or []), keys.nda]
        result = tx.update(apply_movement(encounter, action, movement))
        enc_id = str(result.resource["id"])
    else:
        base = new_encounter(keys, patient_id, service_provider(msg, sender))
        enc_id = str(tx.create(apply_movement(base, action, movement))["id"])
    for k, ident in (("visit", keys.visit), ("nda", keys.nda)):
        if ident is not None:
            xref.add(k, ident["system"], ident["value"], "Encounter", enc_id, patient_id)
    # The visit row carries the patient so a merge can re-point the Encounter.
    tx.conn.execute(
        update(hl7_xref)
        .where(hl7_xref.c.res_type == "Encounter", hl7_xref.c.res_id == enc_id)
        .values(patient_id=patient_id)
    )
    applied.targets.append(f"Encounter/{enc_id}")
    return applied


def apply_message(
    tx: Transaction,
    msg: Message,
    settings: Hl7Settings,
    sender: Sender,
    identity: IdentityService,
    *,
    sequence: int,
) -> Applied:
    trigger = msg.trigger
    if trigger in IDENTITY_TRIGGERS:
        return _identity(tx, msg, settings, sender, identity)
    if trigger in MOVEMENT_TRIGGERS:
        return _movement(tx, msg, settings, sender, identity, sequence)
    return Applied("ignored")
