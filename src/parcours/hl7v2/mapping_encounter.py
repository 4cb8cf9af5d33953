"""PV1 + ZBE (+ ZFM) -> FHIR R4 Encounter, one per visit number (PV1-19).

Each ITI-31 message is a *movement* (ZBE-1 id, ZBE-2 date, ZBE-4 INSERT/UPDATE/CANCEL).
The Encounter keeps every movement it received in the extension ``hl7v2-movement`` and its
status, class, period, location, participant, statusHistory and classHistory are recomputed
from the non-cancelled movements sorted by date (then arrival). Hence:

* a cancellation (A11, A12, A13, A38, A52, A53, A55, A27, A06/A07 with CANCEL) reverts to
  the state before the cancelled movement, whatever its position (historic movements);
* messages arriving out of order converge to the same Encounter (a cancel that arrives
  before its insert leaves a tombstone that the insert cannot revive);
* a resend of a movement (same ZBE-1) updates it instead of adding a second one;
* the movement semantics stay readable from the Encounter alone: the notification code can
  tell an admission (A01), an ER arrival (A04 with class EMER), a discharge (A03) or a death
  (A03 with ZFM mode de sortie 9 / PV1-36) from the stored movements.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any

from parcours.hl7v2.er7 import Message, Segment, Value, format_instant, parse_ts
from parcours.hl7v2.errors import (
    REQUIRED_FIELD_MISSING,
    SEGMENT_SEQUENCE_ERROR,
    TABLE_VALUE_NOT_FOUND,
    Hl7Error,
    Problem,
)
from parcours.hl7v2.identifiers import (
    FINESS_SYSTEM,
    NAMESPACE,
    Sender,
    cx_system,
    ei_system,
    fhir_identifier,
)

__all__ = [
    "CANCELS",
    "INSERTS",
    "MOVEMENT_TRIGGERS",
    "MOVEMENT_URL",
    "Movement",
    "VisitKeys",
    "apply_movement",
    "fold",
    "read_movement",
    "visit_keys",
]

MOVEMENT_URL = "https://parcours.example/fhir/StructureDefinition/hl7v2-movement"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
DISCHARGE_MODE_SYSTEM = f"{NAMESPACE}/pmsi-mode-sortie"
DISCHARGE_DISPOSITION_SYSTEM = f"{NAMESPACE}/pv1-36"

# Inserting triggers and the Encounter status each one leads to.
INSERTS = {
    "A05": "planned",
    "A14": "planned",
    "A01": "in-progress",
    "A04": "in-progress",
    "A06": "in-progress",
    "A07": "in-progress",
    "A02": "in-progress",
    "A22": "in-progress",
    "A54": "in-progress",
    "A21": "onleave",
    "A03": "finished",
}
# Cancelling triggers and the movements they may cancel (PAM FR §2.2 table).
CANCELS = {
    "A11": ("A01", "A04"),
    "A38": ("A05",),
    "A27": ("A14",),
    "A12": ("A02",),
    "A13": ("A03",),
    "A52": ("A21",),
    "A53": ("A22",),
    "A55": ("A54",),
}
MOVEMENT_TRIGGERS = frozenset(INSERTS) | frozenset(CANCELS) | {"Z99"}
_ADMISSIONS = ("A01", "A04")
_PLANNED = ("A05", "A14")
_ACTIONS = ("INSERT", "UPDATE", "CANCEL")
# PV1-2 (patient class, PAM FR) -> v3 ActCode.
CLASSES = {
    "E": ("EMER", "emergency"),
    "I": ("IMP", "inpatient encounter"),
    "O": ("AMB", "ambulatory"),
    "R": ("AMB", "ambulatory"),
    "V": ("VR", "virtual"),
}


@dataclass(frozen=True, slots=True)
class VisitKeys:
    visit: dict[str, Any] | None
    nda: dict[str, Any] | None

    @property
    def primary(self) -> dict[str, Any]:
        key = self.visit or self.nda
        assert key is not None
        return key


@dataclass(frozen=True, slots=True)
class Movement:
    system: str
    value: str
    trigger: str
    date: str  # FHIR dateTime, UTC
    cancelled: bool = False
    class_code: str = ""
    unit: dict[str, Any] | None = None  # Coding of the UF (medical, else care)
    attender: dict[str, Any] | None = None  # Reference (identifier + display)
    historic: bool = False
    nature: str = ""
    discharge_mode: str = ""
    discharge_disposition: str = ""
    sequence: int = 0
    control_id: str = ""

    def sort_key(self) -> tuple[str, int]:
        return (self.date, self.sequence)

    def to_extension(self) -> dict[str, Any]:
        subs: list[dict[str, Any]] = [
            {"url": "identifier", "valueIdentifier": {"system": self.system, "value": self.value}},
            {"url": "trigger", "valueCode": self.trigger},
            {"url": "date", "valueDateTime": self.date},
            {"url": "cancelled", "valueBoolean": self.cancelled},
            {"url": "sequence", "valueInteger": self.sequence},
        ]
        if self.class_code:
            subs.append({"url": "class", "valueCode": self.class_code})
        if self.unit:
            subs.append({"url": "unit", "valueCoding": self.unit})
        if self.attender:
            subs.append({"url": "attender", "valueReference": self.attender})
        if self.historic:
            subs.append({"url": "historic", "valueBoolean": True})
        if self.nature:
            subs.append({"url": "nature", "valueCode": self.nature})
        if self.discharge_mode:
            subs.append({"url": "dischargeMode", "valueCode": self.discharge_mode})
        if self.discharge_disposition:
            subs.append({"url": "dischargeDisposition", "valueCode": self.discharge_disposition})
        if self.control_id:
            subs.append({"url": "message", "valueString": self.control_id})
        return {"url": MOVEMENT_URL, "extension": subs}

    @classmethod
    def from_extension(cls, ext: dict[str, Any]) -> Movement:
        v: dict[str, Any] = {}
        for sub in ext.get("extension") or []:
            url = sub.get("url")
            value = next((val for key, val in sub.items() if key.startswith("value")), None)
            v[url] = value
        ident = v.get("identifier") or {}
        return cls(
            system=str(ident.get("system", "")),
            value=str(ident.get("value", "")),
            trigger=str(v.get("trigger", "")),
            date=str(v.get("date", "")),
            cancelled=bool(v.get("cancelled", False)),
            class_code=str(v.get("class", "")),
            unit=v.get("unit"),
            attender=v.get("attender"),
            historic=bool(v.get("historic", False)),
            nature=str(v.get("nature", "")),
            discharge_mode=str(v.get("dischargeMode", "")),
            discharge_disposition=str(v.get("dischargeDisposition", "")),
            sequence=int(v.get("sequence", 0)),
            control_id=str(v.get("message", "")),
        )


def visit_keys(msg: Message, sender: Sender) -> VisitKeys:
    pv1 = msg.first("PV1")
    pid = msg.first("PID")
    visit = nda = None
    if pv1 is not None and pv1.get(19):
        rep = pv1.first(19)
        visit = fhir_identifier(cx_system("visit", rep, sender), rep.c(1), type_code="VN")
    if pid is not None and pid.get(18):
        rep = pid.first(18)
        nda = fhir_identifier(cx_system("nda", rep, sender), rep.c(1), type_code="AN")
    if visit is None and nda is None:
        raise Hl7Error.content(
            REQUIRED_FIELD_MISSING,
            "a visit number (PV1-19) or an account number (PID-18) is required",
            "PV1^1^19",
        )
    return VisitKeys(visit, nda)


def _xon_unit(zbe: Segment, n: int, sender: Sender) -> dict[str, Any] | None:
    if not zbe.get(n):
        return None
    xon: Value = zbe.first(n)
    code = xon.c(10) or xon.c(3)
    if not code:
        return None
    authority = xon.c(6, 2) or xon.c(6, 1)
    system = f"{NAMESPACE}/uf/{authority or 'sender:' + sender.key}"
    unit: dict[str, Any] = {"system": system, "code": code}
    if xon.c(1):
        unit["display"] = xon.c(1)
    return unit


def _pl_unit(pv1: Segment, sender: Sender) -> dict[str, Any] | None:
    """PV1-3.1 point of care, when ZBE names no UF."""
    pl = pv1.first(3)
    code = pl.c(1)
    if not code:
        return None
    authority = pl.c(4, 2) or pl.c(4, 1)
    return {"system": f"{NAMESPACE}/uf/{authority or 'sender:' + sender.key}", "code": code}


def _attender(pv1: Segment, sender: Sender) -> dict[str, Any] | None:
    if not pv1.get(7):
        return None
    xcn = pv1.first(7)
    ident = xcn.c(1)
    if not ident:
        return None
    oid, oid_type = xcn.c(9, 2), xcn.c(9, 3)
    if oid and oid_type.upper() == "ISO":
        system = f"urn:oid:{oid}"
    else:
        system = f"{NAMESPACE}/practitioner/{xcn.c(9, 1) or 'sender:' + sender.key}"
    ref: dict[str, Any] = {"identifier": {"system": system, "value": ident}}
    display = " ".join(x for x in (xcn.c(3), xcn.c(2)) if x)
    if display:
        ref["display"] = display
    return ref


def read_movement(
    msg: Message, sender: Sender, sequence: int
) -> tuple[str, Movement, list[Problem]]:
    """(action, movement, warnings) of an ITI-31 message."""
    trigger = msg.trigger
    warnings: list[Problem] = []
    pv1 = msg.first("PV1")
    if pv1 is None:
        raise Hl7Error.content(SEGMENT_SEQUENCE_ERROR, "a PV1 segment is required", "PV1")
    zbe = msg.first("ZBE")
    if zbe is None:
        raise Hl7Error.content(
            SEGMENT_SEQUENCE_ERROR, "a ZBE segment is required in ITI-31 (PAM FR)", "ZBE"
        )
    shift = 0
    if not zbe.get(4) and zbe.get(5).upper() in _ACTIONS:
        # Seen in the ANS example SGL/sortie.er7: a valued ZBE-3 (forbidden) pushed the
        # following fields one place right. Read them where they are and say so.
        shift = 1
        warnings.append(
            Problem(
                SEGMENT_SEQUENCE_ERROR,
                "ZBE fields shifted by one (ZBE-3 is forbidden); read ZBE-4.. one field later",
                zbe.loc(4),
                "W",
            )
        )
    action = zbe.get(4 + shift).upper() or "INSERT"
    if action not in _ACTIONS:
        raise Hl7Error.content(
            TABLE_VALUE_NOT_FOUND, "ZBE-4 must be INSERT, UPDATE or CANCEL", zbe.loc(4)
        )
    if trigger in CANCELS:
        action = "CANCEL"
    elif trigger == "Z99":
        if action != "UPDATE":
            raise Hl7Error.content(
                TABLE_VALUE_NOT_FOUND, "Z99 carries ZBE-4 = UPDATE only", zbe.loc(4)
            )
    elif action == "UPDATE":
        raise Hl7Error.content(
            TABLE_VALUE_NOT_FOUND, "ZBE-4 = UPDATE is only allowed with Z99", zbe.loc(4)
        )
    original = zbe.get(6 + shift).upper()
    if trigger == "Z99" and not original:
        raise Hl7Error.content(
            REQUIRED_FIELD_MISSING, "ZBE-6 (original trigger) is required with UPDATE", zbe.loc(6)
        )
    if not zbe.get(1):
        raise Hl7Error.content(REQUIRED_FIELD_MISSING, "ZBE-1 movement id is required", zbe.loc(1))
    if not zbe.get(2):
        raise Hl7Error.content(
            REQUIRED_FIELD_MISSING, "ZBE-2 movement date is required", zbe.loc(2)
        )
    when, _precision = parse_ts(zbe.get(2), zbe.loc(2))
    patient_class = pv1.get(2).upper()
    if not patient_class:
        raise Hl7Error.content(
            REQUIRED_FIELD_MISSING, "PV1-2 patient class is required", pv1.loc(2)
        )
    if patient_class not in CLASSES:
        raise Hl7Error.content(
            TABLE_VALUE_NOT_FOUND,
            "PV1-2 must be E, I, O, R or V for a movement",
            pv1.loc(2),
        )
    if action == "CANCEL":
        target = original or (CANCELS[trigger][0] if trigger in CANCELS else "")
        if trigger in ("A06", "A07") and not original:
            target = "A07" if trigger == "A06" else "A06"
    elif trigger == "Z99":
        target = original
    else:
        target = trigger
    ei = zbe.first(1)
    zfm = msg.first("ZFM")
    movement = Movement(
        system=ei_system("movement", ei, sender),
        value=ei.c(1),
        trigger=target,
        date=format_instant(when),
        cancelled=action == "CANCEL",
        class_code=CLASSES[patient_class][0],
        unit=(
            _xon_unit(zbe, 7 + shift, sender)
            or _xon_unit(zbe, 8 + shift, sender)
            or _pl_unit(pv1, sender)
        ),
        attender=_attender(pv1, sender),
        historic=zbe.get(5 + shift).upper() == "Y",
        nature=zbe.get(9 + shift).upper(),
        discharge_mode=zfm.get(2) if zfm is not None and target == "A03" else "",
        discharge_disposition=pv1.get(36) if target == "A03" else "",
        sequence=sequence,
        control_id=msg.control_id,
    )
    return action, movement, warnings


def movements_of(encounter: dict[str, Any]) -> list[Movement]:
    return [
        Movement.from_extension(e)
        for e in encounter.get("extension") or []
        if e.get("url") == MOVEMENT_URL
    ]


def apply_movement(encounter: dict[str, Any], action: str, movement: Movement) -> dict[str, Any]:
    """The Encounter with this movement recorded, then refolded."""
    moves = movements_of(encounter)
    idx = next(
        (
            i
            for i, m in enumerate(moves)
            if (m.system, m.value) == (movement.system, movement.value)
        ),
        None,
    )
    if action == "CANCEL":
        if idx is None:
            moves.append(movement)  # tombstone: the insert may still arrive
        else:
            moves[idx] = replace(moves[idx], cancelled=True)
    elif idx is None:
        moves.append(movement)
    else:
        old = moves[idx]
        moves[idx] = replace(
            movement,
            trigger=old.trigger if action == "UPDATE" else movement.trigger,
            cancelled=old.cancelled,
            sequence=old.sequence,
        )
    return fold(encounter, moves)


def _coding_class(code: str) -> dict[str, Any]:
    display = next((d for c, d in CLASSES.values() if c == code), code)
    return {"system": ACT_CODE, "code": code, "display": display}


def fold(encounter: dict[str, Any], moves: list[Movement]) -> dict[str, Any]:
    out = copy.deepcopy(encounter)
    ordered = sorted(moves, key=Movement.sort_key)
    active = [m for m in ordered if not m.cancelled]
    out["extension"] = [e for e in out.get("extension") or [] if e.get("url") != MOVEMENT_URL] + [
        m.to_extension() for m in ordered
    ]
    for key in ("statusHistory", "classHistory", "location", "participant", "period"):
        out.pop(key, None)
    hosp = dict(out.get("hospitalization") or {})
    hosp.pop("dischargeDisposition", None)
    if not active:
        out["status"] = "cancelled"
        out["class"] = (
            _coding_class(ordered[-1].class_code or "AMB") if ordered else _coding_class("AMB")
        )
        if hosp:
            out["hospitalization"] = hosp
        else:
            out.pop("hospitalization", None)
        return out
    status_history: list[dict[str, Any]] = []
    class_history: list[dict[str, Any]] = []
    status = ""
    klass = ""
    for m in active:
        new_status = INSERTS.get(m.trigger, status or "in-progress")
        if status == "finished" and m.trigger != "A03":
            new_status = "finished"  # movements dated after the discharge do not reopen it
        if new_status != status:
            if status_history:
                status_history[-1]["period"]["end"] = m.date
            status_history.append({"status": new_status, "period": {"start": m.date}})
            status = new_status
        if m.class_code and m.class_code != klass:
            if class_history:
                class_history[-1]["period"]["end"] = m.date
            class_history.append(
                {"class": _coding_class(m.class_code), "period": {"start": m.date}}
            )
            klass = m.class_code
    out["status"] = status
    out["class"] = _coding_class(klass or "AMB")
    out["statusHistory"] = status_history
    out["classHistory"] = class_history
    admissions = [m for m in active if m.trigger in _ADMISSIONS]
    planned = [m for m in active if m.trigger in _PLANNED]
    start = (admissions or planned or active)[0].date
    period: dict[str, Any] = {"start": start}
    discharge = next((m for m in reversed(active) if m.trigger == "A03"), None)
    if status == "finished" and discharge is not None:
        period["end"] = discharge.date
        codings = []
        if discharge.discharge_mode:
            codings.append({"system": DISCHARGE_MODE_SYSTEM, "code": discharge.discharge_mode})
        if discharge.discharge_disposition:
            codings.append(
                {"system": DISCHARGE_DISPOSITION_SYSTEM, "code": discharge.discharge_disposition}
            )
        if codings:
            hosp["dischargeDisposition"] = {"coding": codings}
    out["period"] = period
    locations: list[dict[str, Any]] = []
    for m in active:
        if m.unit is None:
            continue
        if (
            locations
            and locations[-1]["location"]["identifier"]["value"] == m.unit["code"]
            and (locations[-1]["location"]["identifier"]["system"] == m.unit["system"])
        ):
            continue
        if locations:
            locations[-1]["period"]["end"] = m.date
            locations[-1]["status"] = "completed"
        ref: dict[str, Any] = {"identifier": {"system": m.unit["system"], "value": m.unit["code"]}}
        if m.unit.get("display"):
            ref["display"] = m.unit["display"]
        locations.append({"location": ref, "status": "active", "period": {"start": m.date}})
    if locations:
        last = locations[-1]
        if status == "finished":
            last["status"] = "completed"
            if "end" in period:
                last["period"]["end"] = period["end"]
        elif status == "planned":
            last["status"] = "planned"
        out["location"] = locations
    attender = next((m.attender for m in reversed(active) if m.attender), None)
    if attender:
        out["participant"] = [
            {
                "type": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                "code": "ATND",
                            }
                        ]
                    }
                ],
                "individual": attender,
            }
        ]
    if hosp:
        out["hospitalization"] = hosp
    else:
        out.pop("hospitalization", None)
    return out


def service_provider(msg: Message, sender: Sender) -> dict[str, Any] | None:
    pv1 = msg.first("PV1")
    if pv1 is None:
        return None
    pl = pv1.first(3)
    finess, name, kind = pl.c(4, 2), pl.c(4, 1), pl.c(4, 3).upper()
    if finess and (kind in ("M", "N") or (len(finess) == 9 and finess.isdigit())):
        ref: dict[str, Any] = {"identifier": {"system": FINESS_SYSTEM, "value": finess}}
        if name:
            ref["display"] = name
        return ref
    if name or sender.facility:
        return {"display": name or sender.facility}
    return None


def new_encounter(
    keys: VisitKeys, patient_id: str, provider: dict[str, Any] | None
) -> dict[str, Any]:
    enc: dict[str, Any] = {
        "resourceType": "Encounter",
        "identifier": [k for k in (keys.visit, keys.nda) if k],
        "status": "unknown",
        "class": _coding_class("AMB"),
        "subject": {"reference": f"Patient/{patient_id}"},
    }
    if provider:
        enc["serviceProvider"] = provider
    return enc
