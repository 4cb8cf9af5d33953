"""The FR Core identity rules as a profile check the store's validator runs on every write.

A Patient is checked when it carries an identifier of the INS arc (``1.2.250.1.213.1.4.*``,
whatever its type) or claims an FR Core Patient profile; other Patients (a partner's plain
R4 Patient) only get the structural R4 check. Production refuses the test and demo INS
authorities.

Key-invalid INS (docs/decisions.md D5): RNIV forbids storing a key-invalid INS *as an INS*,
not recording the identity. So before the checks, :func:`drop_key_invalid_ins` removes every
INS identifier whose matricule is well formed but whose control key is wrong, and, when no
active INS is left, caps the identity status at PROV (an identity whose INS was dropped cannot
be RECUP, VALI or QUAL: the same rule as the HL7 path, PAM FR §6.6.15). The check applies that
to the resource it is given (the store's own top-level copy, as the empty-string drop of
:mod:`parcours.fhir.validation` does: the caller's request is never modified), logs a warning
naming each dropped element, returns a warning issue for each, and hands the dropped values to
``on_drop`` so the write hook queues them for the identity-vigilance referent. Every other INS
fault (length, characters, first digit, type/system mismatch, test INS in production) is still
an error (422 naming the field).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from parcours.errors import Issue

from .frcore import IDENTITY_RELIABILITY_URL, PATIENT_PROFILE
from .ins import find_ins_slots, has_invalid_key
from .validation import validate_patient

__all__ = [
    "DroppedIns",
    "OnDrop",
    "drop_key_invalid_ins",
    "fr_core_patient_check",
    "needs_fr_core_check",
]

log = logging.getLogger(__name__)

_INS_ARC: Final = "urn:oid:1.2.250.1.213.1.4."
# Statuses an identity cannot keep once its only INS is dropped (VALI of FR Core 2.1.0 means
# qualified; an RNIV VALI whose INS has a typing error is doubtful too): they become PROV.
_ABOVE_PROV: Final = frozenset({"RECUP", "VALI", "QUAL"})


@dataclass(frozen=True, slots=True)
class DroppedIns:
    """One key-invalid INS identifier removed from a Patient before storage.

    ``value`` is the matricule as sent: it goes to the review queue for the referent, never
    into the Patient, a log line or an error message.
    """

    location: str
    """``Patient.identifier[i]`` in the resource as sent."""
    system: str
    type_code: str | None
    use: str | None
    value: str

    def as_json(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "system": self.system,
            "type": self.type_code,
            "use": self.use,
            "value": self.value,
        }


# Called with the cleaned resource (the very dict the store writes next), the dropped INS and
# the identity status code before the cap (None when the status was left as sent).
OnDrop = Callable[[dict[str, Any], Sequence[DroppedIns], str | None], None]


def needs_fr_core_check(resource: Mapping[str, Any]) -> bool:
    """True for a Patient with an INS-arc identifier or an FR Core Patient profile."""
    if resource.get("resourceType") != "Patient":
        return False
    identifiers = resource.get("identifier")
    if isinstance(identifiers, list) and any(
        isinstance(i, Mapping)
        and isinstance(i.get("system"), str)
        and i["system"].startswith(_INS_ARC)
        for i in identifiers
    ):
        return True
    meta = resource.get("meta")
    profiles = meta.get("profile") if isinstance(meta, Mapping) else None
    # fr-core-patient and fr-core-patient-ins (and versioned canonicals "...|2.1.0").
    return isinstance(profiles, list) and any(
        isinstance(p, str) and p.startswith(PATIENT_PROFILE) for p in profiles
    )


def _status_codes(ext: Mapping[str, Any]) -> list[str]:
    """The codes above PROV among the statuses of a reliability extension (not attributes)."""
    return [
        str(c.get("code"))
        for sub in ext.get("extension") or ()
        if isinstance(sub, Mapping) and sub.get("url") in ("identityStatus", "comment")
        for c in _codings(sub)
        if c.get("code") in _ABOVE_PROV
    ]


def _codings(sub: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    coding = sub.get("valueCoding")
    if isinstance(coding, Mapping):
        return [coding]
    concept = sub.get("valueCodeableConcept")
    if isinstance(concept, Mapping):
        return [c for c in concept.get("coding") or () if isinstance(c, Mapping)]
    return []


def _prov(coding: Mapping[str, Any]) -> Any:
    if coding.get("code") not in _ABOVE_PROV:
        return coding
    # Same code system as sent (PROV exists in fr-core-cs-v2-0445 and in the RNIV one).
    return {**{k: v for k, v in coding.items() if k != "display"}, "code": "PROV"}


def _capped_sub(sub: Any) -> Any:
    if not isinstance(sub, Mapping) or sub.get("url") not in ("identityStatus", "comment"):
        return sub
    out = dict(sub)
    coding = sub.get("valueCoding")
    if isinstance(coding, Mapping):
        out["valueCoding"] = _prov(coding)
    concept = sub.get("valueCodeableConcept")
    if isinstance(concept, Mapping) and isinstance(concept.get("coding"), list):
        out["valueCodeableConcept"] = {
            **concept,
            "coding": [_prov(c) if isinstance(c, Mapping) else c for c in concept["coding"]],
        }
    return out


def _cap_status(extensions: list[Any]) -> tuple[list[Any], str | None]:
    """The extensions with every status above PROV set to PROV, and the first code replaced."""
    before: str | None = None
    out: list[Any] = []
    for ext in extensions:
        codes = (
            _status_codes(ext)
            if isinstance(ext, Mapping) and ext.get("url") == IDENTITY_RELIABILITY_URL
            else []
        )
        if codes:
            before = before or codes[0]
            ext = {**ext, "extension": [_capped_sub(s) for s in ext.get("extension") or ()]}
        out.append(ext)
    return out, before


def drop_key_invalid_ins(
    patient: Mapping[str, Any], *, allow_test_ins: bool = False
) -> tuple[dict[str, Any], list[DroppedIns], str | None]:
    """The Patient without its key-invalid INS identifiers, what was dropped, the status before.

    Only an INS whose matricule is well formed (15 characters, digits/2A/2B, first digit 1 or
    2) with a wrong control key, and whose type and system name the same authority, is
    dropped; a test/demo INS when ``allow_test_ins`` is false is left for the error of D11.
    When no active typed INS is left, every status above PROV becomes PROV, in the code system
    it was sent in, and the third value is the status code it had; otherwise None.
    The input is never modified (new lists along the changed paths only); it is returned as is
    when nothing is dropped.
    """
    dropped: list[DroppedIns] = []
    for slot in find_ins_slots(patient, accept_untyped_nir=False):
        if slot.value is None or slot.system_kind is not slot.kind:
            continue
        if slot.kind.is_test and not allow_test_ins:
            continue
        if has_invalid_key(slot.value):
            dropped.append(
                DroppedIns(
                    location=slot.location,
                    system=slot.kind.system,
                    type_code=slot.type_kind.type_code if slot.type_kind else None,
                    use=slot.use,
                    value=slot.value,
                )
            )
    if not dropped:
        return dict(patient) if not isinstance(patient, dict) else patient, [], None
    gone = {d.location for d in dropped}
    out = dict(patient)
    kept = [
        identifier
        for i, identifier in enumerate(patient.get("identifier") or ())
        if f"Patient.identifier[{i}]" not in gone
    ]
    if kept:
        out["identifier"] = kept
    else:
        out.pop("identifier", None)
    before = None
    still_ins = any(s.active and s.typed for s in find_ins_slots(out))
    extensions = out.get("extension")
    if not still_ins and isinstance(extensions, list):
        capped, before = _cap_status(extensions)
        if before is not None:
            out["extension"] = capped
    return out, dropped, before


def fr_core_patient_check(
    *, production: bool, on_drop: OnDrop | None = None
) -> Callable[[dict[str, Any]], Iterable[Issue]]:
    """The check for ``make_validator(profile_checks=...)``; test INS only outside production.

    It drops the key-invalid INS from the resource it is given (see the module docstring),
    then checks the rest; ``on_drop`` is called only when the write is acceptable.
    """

    def check(resource: dict[str, Any]) -> Iterable[Issue]:
        if not needs_fr_core_check(resource):
            return ()
        allow_test_ins = not production
        cleaned, dropped, before = drop_key_invalid_ins(resource, allow_test_ins=allow_test_ins)
        issues: list[Issue] = []
        if dropped:
            # The store calls the validator on its own top-level copy of the request: replacing
            # its keys stores the cleaned Patient and leaves the caller's dict as it was.
            resource.clear()
            resource.update(cleaned)
            where = ", ".join(f"{d.location}.value" for d in dropped)
            log.warning(
                "Patient/%s: key-invalid INS dropped at %s (RNIV: never stored as an INS)%s; "
                "queued for identity vigilance",
                resource.get("id"),
                where,
                f", status {before} -> PROV" if before else "",
            )
            issues.extend(
                Issue(
                    message="key-invalid INS dropped: the control key does not match the first "
                    "13 characters (RNIV: never stored as an INS); the identity is kept"
                    + (f", status {before} lowered to PROV" if before else "")
                    + " and queued for the identity-vigilance referent",
                    location=f"{d.location}.value",
                    code="business-rule",
                    severity="warning",
                )
                for d in dropped
            )
        issues.extend(validate_patient(resource, allow_test_ins=allow_test_ins))
        if (
            dropped
            and on_drop is not None
            and not any(i.severity in ("error", "fatal") for i in issues)
        ):
            on_drop(resource, dropped, before)
        return issues

    return check
