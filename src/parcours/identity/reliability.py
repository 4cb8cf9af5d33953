"""The FR Core ``identityReliability`` extension on a Patient dict, and INS exposure.

FR Core 2.1.0 (the pinned package): extension
``https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-identity-reliability``, repeatable
on Patient, with sub-extensions ``identityStatus`` (Coding, extensible binding to
``fr-core-cs-v2-0445``), ``methodCollection`` (Coding), ``dateCollection`` (date),
``validationDate`` (date) and ``validationMode`` (Coding, required binding). 2.1.0 has no
``comment`` sub-extension, so attributes (HOMA, DOUT, FICT, DPOT...) are written as further
repetitions whose ``identityStatus`` is the attribute code, like PID-32 repetitions in PAM FR.
The 2.2 ``comment`` sub-extension is accepted on read.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from datetime import date
from enum import Enum
from typing import Any, Final

from .errors import IdentityError, InvalidInsError
from .frcore import (
    CS_IDENTITY_STATUS_2_2,
    CS_METHOD_COLLECTION,
    CS_MODE_VALIDATION,
    CS_V2_0445,
    IDENTITY_RELIABILITY_URL,
)
from .ins import find_ins_slots, parse_ins
from .rniv import Attribute, IdentityState, Status

__all__ = [
    "StatusCoding",
    "exposable_identifiers",
    "read_reliability",
    "write_reliability",
]

# validationMode is a required binding in 2.1.0: only these codes may be written there.
_MODES_2_1: Final = frozenset({"AN", "CC", "CE", "CM", "CN", "CS", "LE", "PA", "PC", "TC"})
_ATTRIBUTE_CODES: Final = {a.value: a for a in Attribute}


class StatusCoding(Enum):
    """How the status is written.

    ``RNIV`` is lossless (PROV/RECUP/VALI/QUAL, system of the FR Core 2.2 line) and is the
    storage form. ``FR_CORE_2_1`` is for partners on FR Core 2.1.0 / PAM FR 2.11, where
    ``VALI`` with an INS means qualified: QUAL -> VALI, RECUP -> PROV, VALI -> VALI.
    """

    RNIV = "rniv"
    FR_CORE_2_1 = "fr-core-2.1"


def _reliability_extensions(patient: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    extensions = patient.get("extension") or []
    if not isinstance(extensions, Sequence):
        return []
    return [
        e for e in extensions if isinstance(e, Mapping) and e.get("url") == IDENTITY_RELIABILITY_URL
    ]


def _codings(sub: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    coding = sub.get("valueCoding")
    if isinstance(coding, Mapping):
        return [coding]
    concept = sub.get("valueCodeableConcept")
    if isinstance(concept, Mapping):
        return [c for c in concept.get("coding") or () if isinstance(c, Mapping)]
    return []


def _date(sub: Mapping[str, Any]) -> date | None:
    value = sub.get("valueDate")
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise IdentityError(
            "identityReliability dates must be FHIR dates (YYYY-MM-DD)",
            field=f"Patient.extension[identityReliability].extension[{sub.get('url')}]",
        ) from exc


def _has_active_ins(patient: Mapping[str, Any]) -> bool:
    return any(slot.active and slot.typed for slot in find_ins_slots(patient))


def read_reliability(patient: Mapping[str, Any]) -> IdentityState:
    """The RNIV state of a Patient dict.

    No status at all, or ``VIDE``, reads as PROV (RNIV: PROV is the default status).
    ``VALI`` from the 2.1.0 code system reads as QUAL when the Patient carries an active
    typed INS (PAM FR / FR Core 2.1.0 meaning) and as VALI otherwise.
    Raises :class:`IdentityError` when two different statuses are present [EXI SI 07], and
    :class:`IllegalTransitionError` when the attributes contradict the status.
    """
    statuses: set[Status] = set()
    attributes: set[Attribute] = set()
    method = mode = None
    collected = validated = None
    for ext in _reliability_extensions(patient):
        for sub in ext.get("extension") or ():
            if not isinstance(sub, Mapping):
                continue
            url = sub.get("url")
            if url in ("identityStatus", "comment"):
                for coding in _codings(sub):
                    code = coding.get("code")
                    if code in _ATTRIBUTE_CODES:
                        attributes.add(_ATTRIBUTE_CODES[code])
                    elif code == "VALI" and coding.get("system") != CS_IDENTITY_STATUS_2_2:
                        statuses.add(Status.QUAL if _has_active_ins(patient) else Status.VALI)
                    elif code in ("PROV", "RECUP", "VALI", "QUAL"):
                        statuses.add(Status(code))
                    elif code == "VIDE":
                        statuses.add(Status.PROV)
            elif url == "methodCollection":
                method = next((c.get("code") for c in _codings(sub)), None)
            elif url == "validationMode":
                mode = next((c.get("code") for c in _codings(sub)), None)
            elif url == "dateCollection":
                collected = _date(sub)
            elif url == "validationDate":
                validated = _date(sub)
    if len(statuses) > 1:
        raise IdentityError(
            "an identity carries exactly one RNIV status [EXI SI 07]; found "
            + ", ".join(sorted(s.value for s in statuses)),
            field="Patient.extension[identityReliability]",
        )
    return IdentityState(
        status=statuses.pop() if statuses else Status.PROV,
        attributes=frozenset(attributes),
        collection_method=method if isinstance(method, str) else None,
        collected_on=collected,
        validation_mode=mode if isinstance(mode, str) else None,
        validated_on=validated,
    )


def _status_coding(status: Status, coding: StatusCoding) -> dict[str, str]:
    if coding is StatusCoding.RNIV:
        return {"system": CS_IDENTITY_STATUS_2_2, "code": status.value}
    code = {Status.QUAL: "VALI", Status.RECUP: "PROV"}.get(status, status.value)
    return {"system": CS_V2_0445, "code": code}


def write_reliability(
    patient: Mapping[str, Any],
    state: IdentityState,
    *,
    coding: StatusCoding = StatusCoding.RNIV,
) -> dict[str, Any]:
    """A copy of ``patient`` whose identityReliability extensions express ``state``."""
    out = copy.deepcopy(dict(patient))
    others = [
        e
        for e in out.get("extension") or []
        if not (isinstance(e, Mapping) and e.get("url") == IDENTITY_RELIABILITY_URL)
    ]
    subs: list[dict[str, Any]] = [
        {"url": "identityStatus", "valueCoding": _status_coding(state.status, coding)}
    ]
    if state.collection_method:
        subs.append(
            {
                "url": "methodCollection",
                "valueCoding": {"system": CS_METHOD_COLLECTION, "code": state.collection_method},
            }
        )
    if state.collected_on:
        subs.append({"url": "dateCollection", "valueDate": state.collected_on.isoformat()})
    if state.validated_on:
        subs.append({"url": "validationDate", "valueDate": state.validated_on.isoformat()})
    mode = state.validation_mode
    if mode and (coding is StatusCoding.RNIV or mode in _MODES_2_1):
        subs.append(
            {"url": "validationMode", "valueCoding": {"system": CS_MODE_VALIDATION, "code": mode}}
        )
    reliability = [{"url": IDENTITY_RELIABILITY_URL, "extension": subs}]
    for attribute in sorted(state.attributes, key=lambda a: a.value):
        reliability.append(
            {
                "url": IDENTITY_RELIABILITY_URL,
                "extension": [
                    {
                        "url": "identityStatus",
                        "valueCoding": {"system": CS_V2_0445, "code": attribute.value},
                    }
                ],
            }
        )
    out["extension"] = reliability + others
    return out


def exposable_identifiers(
    patient: Mapping[str, Any], *, allow_test_ins: bool = False
) -> list[dict[str, Any]]:
    """Identifiers that may leave the platform: the INS only when the identity is QUAL.

    "Only a QUAL identity may use its INS in exchanges" [RNIV EXI SI 08]. Deactivated
    (``use = old``) and invalid INS never leave; neither does an untyped identifier with the
    NIR OID, which could be an INS in disguise. Other identifiers (IPP, NSS, RRI) are kept.
    """
    identifiers = patient.get("identifier") or []
    if not isinstance(identifiers, Sequence):
        return []
    state = read_reliability(patient)
    ins_indexes = {s.index: s for s in find_ins_slots(patient, accept_untyped_nir=True)}
    out: list[dict[str, Any]] = []
    for index, identifier in enumerate(identifiers):
        if not isinstance(identifier, Mapping):
            continue
        slot = ins_indexes.get(index)
        if slot is not None:
            if not (state.status.may_expose_ins and slot.active and slot.typed):
                continue
            if slot.kind is not slot.type_kind or slot.value is None:
                continue
            try:
                parse_ins(slot.value, slot.kind.system, allow_test_ins=allow_test_ins)
            except InvalidInsError:
                continue
        out.append(copy.deepcopy(dict(identifier)))
    return out
