"""PID (+ ZFD) -> FHIR R4 Patient following FR Core 2.1 and the PAM FR 2.11.1 rules.

Semantics of HL7 fields (ITI TF Appendix C, rule sheet §3.1): a field that is absent means
"keep what you have", ``""`` means "delete it". The mapping therefore returns what the
message states (``PatientData``) and :func:`merge_patient` folds that into the stored
Patient.

INS rules (rule sheet §1.7 and §3.3, PAM FR §6.6.15): an INS is kept only when PID-32 is
VALI, the key is valid, the authority is an INS authority (test/demo ones only when the
platform allows them), the birth date was not corrected (ZFD-4) and the identity is neither
douteuse nor fictive; otherwise it is dropped, the rest of the message is integrated and the
ACK carries a warning (ERR severity W). Kept INS + VALI (+ trust contract) -> QUAL; VALI
without INS -> VALI; anything else -> PROV. The INS is kept on the Patient only while the
status is QUAL.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from parcours.hl7v2.er7 import PARIS, Message, Segment, Value, format_date, format_instant, parse_ts
from parcours.hl7v2.errors import (
    DATA_TYPE_ERROR,
    REQUIRED_FIELD_MISSING,
    SEGMENT_SEQUENCE_ERROR,
    TABLE_VALUE_NOT_FOUND,
    Hl7Error,
    Problem,
)
from parcours.hl7v2.identifiers import Sender, cx_system, fhir_identifier
from parcours.hl7v2.settings import Hl7Settings
from parcours.identity.errors import InvalidInsError
from parcours.identity.frcore import (
    BIRTH_LIST_GIVEN_NAME_URL,
    BIRTH_PLACE_URL,
    BIRTHDATE_UPDATE_INDICATOR_URL,
    CS_IDENTITY_STATUS_2_2,
    CS_METHOD_COLLECTION,
    CS_MODE_VALIDATION,
    CS_V2_0203_FR,
    CS_V2_0445,
    IDENTITY_RELIABILITY_URL,
    INSEE_CODE_URL,
    INSEE_COMMUNE_SYSTEM,
)
from parcours.identity.ins import InsKind, validate_matricule

__all__ = ["INS_OIDS", "PatientData", "map_patient", "merge_patient", "patient_key"]

INS_OIDS = {k.system for k in InsKind}
NSS_SYSTEM = "urn:oid:1.2.250.1.213.1.4.8"
_SEX = {"F": "female", "M": "male", "U": "unknown", "O": "other"}
_ADDRESS_USE = {"H": "home", "O": "work", "C": "temp", "BA": "billing", "M": "home"}
_FORBIDDEN_NAME_TYPES = set("ABCIMNPRT")
_MODES = frozenset({"AN", "CC", "CE", "CM", "CN", "CS", "LE", "PA", "PC", "TC"})
_ATTRIBUTES_BLOCKING_INS = {"DOUT", "FICT"}


@dataclass
class PatientData:
    """What one PID says about the patient; ``elements`` are set, ``removed`` deleted."""

    elements: dict[str, Any] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)
    official_name: dict[str, Any] | None = None
    usual_name: dict[str, Any] | None = None
    delete_usual_name: bool = False
    other_names: list[dict[str, Any]] = field(default_factory=list)
    ipps: list[dict[str, Any]] = field(default_factory=list)
    other_identifiers: list[dict[str, Any]] = field(default_factory=list)
    ins: list[dict[str, Any]] = field(default_factory=list)
    ins_deleted: bool = False
    # RNIV status to store (PROV/VALI/QUAL), None when PID-32 was absent.
    status: str | None = None
    reliability: list[dict[str, Any]] | None = None
    warnings: list[Problem] = field(default_factory=list)

    def as_patient(self) -> dict[str, Any]:
        """The Patient as this message alone describes it (for the resolver)."""
        return merge_patient(None, self)


def patient_key(data: PatientData) -> str | None:
    if not data.ipps:
        return None
    first = data.ipps[0]
    return f"{first['system']}|{first['value']}"


def _drop(data: PatientData, location: str, text: str) -> None:
    data.warnings.append(Problem(DATA_TYPE_ERROR, text, location, "W"))


def _ins_candidates(
    pid: Segment, settings: Hl7Settings, data: PatientData
) -> list[tuple[InsKind, str, str]]:
    found: list[tuple[InsKind, str, str]] = []
    for i, rep in enumerate(pid.reps(3), start=1):
        if rep.c(5).upper() != "INS":
            continue
        loc = pid.loc(3, i, 1)
        oid = rep.c(4, 2)
        if rep.components()[0] == '""':
            data.ins_deleted = True
            continue
        kind = InsKind.from_system(oid)
        if kind is None:
            _drop(data, pid.loc(3, i, 4), "INS dropped: assigning authority is not an INS OID")
            continue
        if kind.is_test and not settings.allow_test_ins:
            _drop(data, pid.loc(3, i, 4), "INS dropped: test/demo INS authority refused here")
            continue
        try:
            matricule = validate_matricule(rep.c(1))
        except InvalidInsError:
            _drop(data, loc, "INS dropped: invalid matricule or control key")
            continue
        found.append((kind, matricule, loc))
    # NIA -> NIR transition: both may be present; the receiver keeps the NIR (PAM FR §6.6.1).
    nir = [f for f in found if f[0] is not InsKind.NIA]
    return nir[:1] if nir else found[:1]


def _ipps(pid: Segment, sender: Sender, data: PatientData) -> None:
    for rep in pid.reps(3):
        type_code = rep.c(5).upper()
        value = rep.c(1)
        if not value or type_code == "INS":
            continue
        if type_code in ("PI", ""):
            data.ipps.append(
                fhir_identifier(cx_system("ipp", rep, sender), value, type_code="PI", use="usual")
            )
        elif type_code == "NH" and rep.c(4, 2) == NSS_SYSTEM.removeprefix("urn:oid:"):
            data.other_identifiers.append(
                fhir_identifier(NSS_SYSTEM, value, type_code="NH", use="official")
            )
    if not data.ipps:
        raise Hl7Error.content(
            REQUIRED_FIELD_MISSING, "an IPP (PID-3 with CX-5 = PI) is required", pid.loc(3)
        )


def _xpn(rep: Value) -> dict[str, Any]:
    name: dict[str, Any] = {}
    if rep.c(1):
        name["family"] = rep.c(1)
    if rep.c(2):
        name["given"] = [rep.c(2)]
    if rep.c(5):
        name["prefix"] = [rep.c(5)]
    return name


def _names(pid: Segment, data: PatientData) -> None:
    reps = pid.reps(5)
    if not reps:
        raise Hl7Error.content(REQUIRED_FIELD_MISSING, "PID-5 patient name is required", pid.loc(5))
    for i, rep in enumerate(reps, start=1):
        kind = rep.c(7).upper() or "L"
        if kind in _FORBIDDEN_NAME_TYPES:
            data.warnings.append(
                Problem(
                    TABLE_VALUE_NOT_FOUND,
                    f"name type {kind} is not allowed in France; repetition ignored",
                    pid.loc(5, i, 7),
                    "W",
                )
            )
            continue
        name = _xpn(rep)
        if kind == "L":
            if not name.get("family"):
                raise Hl7Error.content(
                    REQUIRED_FIELD_MISSING, "the legal name has no family name", pid.loc(5, i, 1)
                )
            name = {"use": "official", **name}
            if rep.c(3):
                name["extension"] = [{"url": BIRTH_LIST_GIVEN_NAME_URL, "valueString": rep.c(3)}]
            data.official_name = name
        elif kind == "D":
            if not name.get("family") and not name.get("given"):
                data.delete_usual_name = True
            else:
                data.usual_name = {"use": "usual", **name}
        else:
            if name:
                data.other_names.append({"use": "anonymous", **name} if kind == "S" else name)
    if data.official_name is None and data.usual_name is None and not data.other_names:
        raise Hl7Error.content(REQUIRED_FIELD_MISSING, "PID-5 holds no usable name", pid.loc(5))


def _birth_date(pid: Segment, data: PatientData, now: datetime) -> None:
    if not pid.present(7):
        return
    if pid.first(7).is_delete:
        data.removed.add("birthDate")
        return
    dt, precision = parse_ts(pid.get(7), pid.loc(7))
    if dt.date() > (now + timedelta(days=1)).date():
        raise Hl7Error.content(DATA_TYPE_ERROR, "birth date is in the future", pid.loc(7))
    data.elements["birthDate"] = format_date(dt, precision)


def _gender(pid: Segment, data: PatientData) -> None:
    if not pid.present(8):
        return
    if pid.first(8).is_delete:
        data.removed.add("gender")
        return
    code = pid.get(8).upper()
    if code not in _SEX:
        raise Hl7Error.content(
            TABLE_VALUE_NOT_FOUND, "administrative sex must be F, M or U", pid.loc(8)
        )
    data.elements["gender"] = _SEX[code]


def _addresses(pid: Segment, data: PatientData) -> None:
    if not pid.present(11):
        return
    if pid.first(11).is_delete:
        data.removed.update({"address"})
        return
    addresses: list[dict[str, Any]] = []
    for rep in pid.reps(11):
        kind = rep.c(7).upper()
        if kind == "BDL":
            place: dict[str, Any] = {}
            cog = rep.c(9)
            if cog:
                place["extension"] = [
                    {
                        "url": INSEE_CODE_URL,
                        "valueCoding": {"system": INSEE_COMMUNE_SYSTEM, "code": cog},
                    }
                ]
            if rep.c(3) or pid.get(23):
                place["city"] = rep.c(3) or pid.get(23)
            if rep.c(6):
                place["country"] = rep.c(6)
            if place:
                data.elements["__birthplace"] = place
            continue
        address: dict[str, Any] = {}
        if kind in _ADDRESS_USE:
            address["use"] = _ADDRESS_USE[kind]
        lines = [x for x in (rep.c(1), rep.c(2)) if x]
        if lines:
            address["line"] = lines
        for key, idx in (("city", 3), ("state", 4), ("postalCode", 5), ("country", 6)):
            if rep.c(idx):
                address[key] = rep.c(idx)
        if len(address) > ("use" in address):
            addresses.append(address)
    if addresses:
        data.elements["address"] = addresses
    if "__birthplace" not in data.elements and pid.get(23):
        data.elements["__birthplace"] = {"city": pid.get(23)}


def _telecom(pid: Segment, data: PatientData) -> None:
    if not pid.present(13) and not pid.present(14):
        return
    telecom: list[dict[str, Any]] = []
    for n, default_use in ((13, "home"), (14, "work")):
        for rep in pid.reps(n):
            if rep.is_delete:
                continue
            equipment = rep.c(3).upper()
            email = rep.c(4)
            if email or equipment in ("INTERNET", "X.400"):
                if email or rep.c(1):
                    telecom.append({"system": "email", "value": email or rep.c(1)})
                continue
            number = rep.c(12) or rep.c(1)
            if not number:
                continue
            point: dict[str, Any] = {"system": "fax" if equipment == "FX" else "phone"}
            point["value"] = number
            point["use"] = "mobile" if equipment == "CP" else default_use
            telecom.append(point)
    if telecom:
        data.elements["telecom"] = telecom
    else:
        data.removed.add("telecom")


def _death(pid: Segment, data: PatientData) -> None:
    if pid.present(29) and not pid.first(29).is_delete:
        dt, precision = parse_ts(pid.get(29), pid.loc(29))
        data.elements["deceasedDateTime"] = (
            format_instant(dt) if precision >= 12 else format_date(dt, precision)
        )
        data.removed.add("deceasedBoolean")
    elif pid.present(30):
        flag = pid.get(30).upper()
        if flag == "Y":
            data.elements["deceasedBoolean"] = True
            data.removed.add("deceasedDateTime")
        elif flag == "N" or pid.first(30).is_delete:
            data.removed.update({"deceasedBoolean", "deceasedDateTime"})
        else:
            raise Hl7Error.content(
                TABLE_VALUE_NOT_FOUND, "death indicator must be Y or N", pid.loc(30)
            )


def _zfd_date(zfd: Segment, n: int) -> str | None:
    raw = zfd.get(n)
    if not raw:
        return None
    dt, precision = parse_ts(raw, zfd.loc(n))
    return format_date(dt, max(precision, 8)) if precision >= 8 else None


def _reliability(
    pid: Segment,
    zfd: Segment | None,
    settings: Hl7Settings,
    data: PatientData,
    ins: list[tuple[InsKind, str, str]],
) -> None:
    codes = [r.c(1).upper() for r in pid.reps(32) if r.c(1)]
    corrected = zfd is not None and zfd.get(4).upper() == "Y"
    if zfd is not None and zfd.get(4).upper() in ("Y", "N"):
        data.elements["__birthdate_corrected"] = corrected
    if not codes:
        # PID-32 missing: keep the stored status (a new Patient is PROV), drop any INS.
        if ins:
            _drop(data, pid.loc(32), "INS dropped: PID-32 absent (an INS needs VALI)")
        return
    first, attributes = codes[0], codes[1:]
    if ins:
        reason = None
        if first != "VALI":
            reason = f"INS dropped: PID-32 is {first}, an INS is only integrated with VALI"
        elif not settings.trust_contract:
            reason = "INS dropped: no trust contract with this sender (RNIV EXI SI 34)"
        elif corrected:
            reason = "INS dropped: birth date corrected (ZFD-4 = Y), identity cannot be QUAL"
        elif _ATTRIBUTES_BLOCKING_INS & set(attributes):
            reason = "INS dropped: a douteuse or fictive identity stays PROV"
        if reason:
            _drop(data, pid.loc(32), reason)
            ins = []
    kept = bool(ins)
    sent_ins = kept or any(p.text.startswith("INS dropped") for p in data.warnings)
    if first == "VALI" and kept:
        status = "QUAL"
    elif (
        first == "VALI"
        and not sent_ins
        and settings.trust_contract
        and not (_ATTRIBUTES_BLOCKING_INS & set(attributes))
    ):
        status = "VALI"
    else:
        status = "PROV"
    data.status = status
    for kind, matricule, _loc in ins:
        data.ins.append(
            {
                "use": kind.use,
                "type": {
                    "coding": [
                        {
                            "system": CS_V2_0203_FR,
                            "code": kind.type_code,
                        }
                    ]
                },
                "system": kind.system,
                "value": matricule,
            }
        )
    subs: list[dict[str, Any]] = [
        {"url": "identityStatus", "valueCoding": {"system": CS_IDENTITY_STATUS_2_2, "code": status}}
    ]
    if zfd is not None:
        method = zfd.get(5).upper()
        if method:
            subs.append(
                {
                    "url": "methodCollection",
                    "valueCoding": {"system": CS_METHOD_COLLECTION, "code": method},
                }
            )
        collected = _zfd_date(zfd, 6)
        if collected:
            subs.append({"url": "dateCollection", "valueDate": collected})
        mode = zfd.get(7).upper()
        if mode in _MODES:
            subs.append(
                {
                    "url": "validationMode",
                    "valueCoding": {"system": CS_MODE_VALIDATION, "code": mode},
                }
            )
    reliability = [{"url": IDENTITY_RELIABILITY_URL, "extension": subs}]
    for code in dict.fromkeys(attributes):
        reliability.append(
            {
                "url": IDENTITY_RELIABILITY_URL,
                "extension": [
                    {"url": "identityStatus", "valueCoding": {"system": CS_V2_0445, "code": code}}
                ],
            }
        )
    data.reliability = reliability


def map_patient(
    msg: Message, settings: Hl7Settings, sender: Sender, *, now: datetime | None = None
) -> PatientData:
    pid = msg.first("PID")
    if pid is None:
        raise Hl7Error.content(SEGMENT_SEQUENCE_ERROR, "a PID segment is required", "PID")
    data = PatientData()
    _ipps(pid, sender, data)
    _names(pid, data)
    _birth_date(pid, data, now or datetime.now(PARIS))
    _gender(pid, data)
    _addresses(pid, data)
    _telecom(pid, data)
    _death(pid, data)
    ins = _ins_candidates(pid, settings, data)
    _reliability(pid, msg.first("ZFD"), settings, data, ins)
    return data


def _is_ins(identifier: dict[str, Any]) -> bool:
    # The billing NIR (NSS, type NH) shares the INS-NIR OID: tell them apart by type.
    if identifier.get("system") not in INS_OIDS:
        return False
    codes = {c.get("code") for c in (identifier.get("type") or {}).get("coding", [])}
    return "NH" not in codes


def merge_patient(existing: dict[str, Any] | None, data: PatientData) -> dict[str, Any]:
    """The stored Patient updated with what the message states."""
    out: dict[str, Any] = copy.deepcopy(existing) if existing else {"resourceType": "Patient"}
    out.setdefault("active", True)
    for key, value in data.elements.items():
        if not key.startswith("__"):
            out[key] = copy.deepcopy(value)
    for key in data.removed:
        out.pop(key, None)
    # Identifiers: existing ones kept, new IPPs added; the INS follows the status.
    identifiers: list[dict[str, Any]] = list(out.get("identifier") or [])
    status = data.status
    drop_ins = data.ins_deleted or bool(data.ins) or (status is not None and status != "QUAL")
    if drop_ins:
        identifiers = [i for i in identifiers if not _is_ins(i)]
    seen = {(i.get("system"), i.get("value")) for i in identifiers}
    for ident in [*data.ipps, *data.other_identifiers, *data.ins]:
        if (ident["system"], ident["value"]) not in seen:
            identifiers.append(copy.deepcopy(ident))
            seen.add((ident["system"], ident["value"]))
    out["identifier"] = identifiers
    # Names: official replaced when sent, usual replaced/deleted when sent, others replaced.
    names: list[dict[str, Any]] = list(out.get("name") or [])
    if data.official_name is not None:
        names = [n for n in names if n.get("use") != "official"] + [data.official_name]
    if data.usual_name is not None or data.delete_usual_name:
        names = [n for n in names if n.get("use") != "usual"]
        if data.usual_name is not None:
            names.append(data.usual_name)
    if data.other_names:
        names = [n for n in names if n.get("use") in ("official", "usual")] + data.other_names
    order = {"official": 0, "usual": 1}
    out["name"] = sorted(copy.deepcopy(names), key=lambda n: order.get(n.get("use", ""), 2))
    # Extensions: reliability (when PID-32 was sent), birthplace, birth-date correction.
    extensions: list[dict[str, Any]] = list(out.get("extension") or [])
    if data.reliability is not None:
        extensions = [e for e in extensions if e.get("url") != IDENTITY_RELIABILITY_URL]
        extensions.extend(copy.deepcopy(data.reliability))
    elif not any(e.get("url") == IDENTITY_RELIABILITY_URL for e in extensions):
        extensions.append(
            {
                "url": IDENTITY_RELIABILITY_URL,
                "extension": [
                    {
                        "url": "identityStatus",
                        "valueCoding": {"system": CS_IDENTITY_STATUS_2_2, "code": "PROV"},
                    }
                ],
            }
        )
    if "__birthplace" in data.elements:
        extensions = [e for e in extensions if e.get("url") != BIRTH_PLACE_URL]
        extensions.append({"url": BIRTH_PLACE_URL, "valueAddress": data.elements["__birthplace"]})
    if "__birthdate_corrected" in data.elements:
        extensions = [e for e in extensions if e.get("url") != BIRTHDATE_UPDATE_INDICATOR_URL]
        if data.elements["__birthdate_corrected"]:
            extensions.append({"url": BIRTHDATE_UPDATE_INDICATOR_URL, "valueBoolean": True})
    out["extension"] = extensions
    if not out["extension"]:
        del out["extension"]
    return out


def stored_status(patient: dict[str, Any]) -> str | None:
    for ext in patient.get("extension") or []:
        if ext.get("url") != IDENTITY_RELIABILITY_URL:
            continue
        for sub in ext.get("extension") or []:
            coding = sub.get("valueCoding") or {}
            if (
                sub.get("url") == "identityStatus"
                and coding.get("system") == CS_IDENTITY_STATUS_2_2
            ):
                code = coding.get("code")
                return str(code) if code else None
    return None


def ins_identifiers(patient: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in patient.get("identifier") or [] if _is_ins(i)]
