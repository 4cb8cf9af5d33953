"""FR Core Patient identity checks on a Patient dict, reported all at once with locations.

Each problem is a :class:`parcours.errors.Issue` whose ``location`` is a FHIRPath-like path
(``Patient.identifier[0].value``), so the API can answer 422 with an OperationOutcome that
names the field. Nothing here raises for a bad resource; messages never quote the name or
the matricule.

Invariants checked (FR Core 2.1.0 ``fr-core-patient-ins``):

* ``fr-core-1`` (published FHIRPath)::

    (extension.where(url= 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-identity-
    reliability').extension.where(url = 'identityStatus').value.code = 'VALI') implies
    (identifier.where(system = 'urn:oid:1.2.250.1.213.1.4.8').exists() or
    identifier.where(system = 'urn:oid:1.2.250.1.213.1.4.9').exists() or
    identifier.where(system = 'urn:oid:1.2.250.1.213.1.4.10').exists() or
    identifier.where(system = 'urn:oid:1.2.250.1.213.1.4.10').exists())

  The published expression tests ``.10`` twice and never ``.11`` although its human text
  lists INS-NIR-DEMO; we check the four OIDs, and apply the same rule to ``QUAL``.
* ``fr-core-2`` is not in the 2.1.0 package (it comes from the 2.2 ballot: "if VALI, only one
  official identifier is allowed, or a temp NIA"); we check it as: a validated or qualified
  identity has at most one active INS-NIR (or test/demo) and at most one active INS-NIA.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from parcours.errors import Issue

from .errors import IdentityError, InvalidInsError
from .frcore import (
    BIRTH_LIST_GIVEN_NAME_URL,
    BIRTH_PLACE_URL,
    BIRTHDATE_UPDATE_INDICATOR_URL,
    CS_IDENTITY_STATUS_2_2,
    IDENTITY_RELIABILITY_URL,
    INSEE_CODE_URL,
    PATIENT_INS_PROFILE,
)
from .ins import InsKind, find_ins_slots, parse_ins
from .normalize import first_given_name_consistent
from .reliability import read_reliability
from .traits import is_valid_cog, parse_fhir_birth_date

__all__ = ["operation_outcome", "validate_patient"]

_INS_GENDERS: Final = frozenset({"male", "female", "unknown"})
_ALLOWED_USES: Final = {
    InsKind.NIR: {"official", "old"},
    InsKind.NIR_TEST: {"official", "old"},
    InsKind.NIR_DEMO: {"official", "old"},
    InsKind.NIA: {"temp", "old"},
}


def _error(location: str, message: str, code: str = "invalid") -> Issue:
    return Issue(message=message, location=location, code=code, severity="error")


def _warning(location: str, message: str, code: str = "business-rule") -> Issue:
    return Issue(message=message, location=location, code=code, severity="warning")


def _indexed(element: Mapping[str, Any], key: str) -> list[tuple[int, Mapping[str, Any]]]:
    items = element.get(key) or []
    if not isinstance(items, Sequence):
        return []
    return [(i, x) for i, x in enumerate(items) if isinstance(x, Mapping)]


def _check_ins_identifiers(patient: Mapping[str, Any], allow_test_ins: bool) -> list[Issue]:
    issues: list[Issue] = []
    for slot in find_ins_slots(patient, accept_untyped_nir=False):
        loc = slot.location
        if slot.type_kind is None:
            issues.append(
                _warning(
                    f"{loc}.type",
                    "identifier with an INS OID but no FR Core type; FR Core slices on type, "
                    f"add type {slot.kind.type_code} (fr-core-cs-v2-0203)",
                    code="invalid",
                )
            )
        elif slot.system_kind is not slot.type_kind:
            issues.append(
                _error(
                    f"{loc}.system",
                    f"type {slot.type_kind.type_code} requires system {slot.type_kind.system}",
                )
            )
            continue
        if slot.use not in _ALLOWED_USES[slot.kind]:
            allowed = " or ".join(sorted(_ALLOWED_USES[slot.kind]))
            issues.append(
                _error(f"{loc}.use", f"{slot.kind.type_code} identifiers have use {allowed}")
            )
        if slot.value is None:
            issues.append(_error(f"{loc}.value", "an INS identifier needs a value", "required"))
            continue
        try:
            parse_ins(slot.value, slot.kind.system, allow_test_ins=allow_test_ins, field=loc)
        except InvalidInsError as exc:
            issues.append(_error(exc.field or loc, exc.message, "value"))
    return issues


def _reliability_location(patient: Mapping[str, Any]) -> str:
    for i, ext in _indexed(patient, "extension"):
        if ext.get("url") == IDENTITY_RELIABILITY_URL:
            return f"Patient.extension[{i}]"
    return "Patient.extension"


def _raw_status_codes(patient: Mapping[str, Any]) -> list[tuple[str | None, str | None]]:
    found: list[tuple[str | None, str | None]] = []
    for _, ext in _indexed(patient, "extension"):
        if ext.get("url") != IDENTITY_RELIABILITY_URL:
            continue
        for _, sub in _indexed(ext, "extension"):
            coding = sub.get("valueCoding")
            if sub.get("url") == "identityStatus" and isinstance(coding, Mapping):
                found.append((coding.get("system"), coding.get("code")))
    return found


def _check_invariants(patient: Mapping[str, Any]) -> list[Issue]:
    issues: list[Issue] = []
    slots = [s for s in find_ins_slots(patient, accept_untyped_nir=True) if s.active]
    codes = _raw_status_codes(patient)
    claims_ins = any(
        code == "QUAL" or (code == "VALI" and system != CS_IDENTITY_STATUS_2_2)
        for system, code in codes
    )
    loc = _reliability_location(patient)
    if claims_ins and not slots:
        issues.append(
            _error(
                loc,
                "fr-core-1: a qualified identity (status VALI in FR Core 2.1.0, QUAL in RNIV) "
                "must carry its INS (INS-NIR, INS-NIA, INS-NIR-TEST or INS-NIR-DEMO)",
                "invariant",
            )
        )
    validated = claims_ins or any(code == "VALI" for _, code in codes)
    if validated:
        nir = [s for s in slots if s.kind is not InsKind.NIA]
        nia = [s for s in slots if s.kind is InsKind.NIA]
        if len(nir) > 1 or len(nia) > 1:
            issues.append(
                _error(
                    "Patient.identifier",
                    "fr-core-2: a validated identity has only one active official INS (or one "
                    "temp NIA); mark the replaced ones use = old",
                    "invariant",
                )
            )
    return issues


def _check_reliability(patient: Mapping[str, Any]) -> list[Issue]:
    issues: list[Issue] = []
    try:
        state = read_reliability(patient)
    except IdentityError as exc:
        return [_error(exc.field or _reliability_location(patient), exc.message, "business-rule")]
    has_ins = any(s.active and s.typed for s in find_ins_slots(patient))
    if has_ins and not state.status.ins_retrieved:
        issues.append(
            _warning(
                "Patient.identifier",
                f"an INS on a {state.status.value} identity is not exposed to other systems "
                "(only QUAL may use it [EXI SI 08])",
            )
        )
    for i, ext in _indexed(patient, "extension"):
        corrected = (
            ext.get("url") == BIRTHDATE_UPDATE_INDICATOR_URL and ext.get("valueBoolean") is True
        )
        if corrected and state.status.ins_retrieved:
            issues.append(
                _error(
                    f"Patient.extension[{i}]",
                    "an identity whose birth date was corrected can be neither RECUP nor "
                    "QUAL (PAM FR §6.6.4); downgrade it or remove the correction flag",
                    "business-rule",
                )
            )
    return issues


def _check_birthplace(patient: Mapping[str, Any], required: bool) -> list[Issue]:
    for i, ext in _indexed(patient, "extension"):
        if ext.get("url") != BIRTH_PLACE_URL:
            continue
        address = ext.get("valueAddress")
        base = f"Patient.extension[{i}].valueAddress"
        if not isinstance(address, Mapping):
            return [_error(base, "the birthPlace extension carries a valueAddress", "required")]
        for j, sub in _indexed(address, "extension"):
            if sub.get("url") != INSEE_CODE_URL:
                continue
            coding = sub.get("valueCoding")
            code = coding.get("code") if isinstance(coding, Mapping) else None
            loc = f"{base}.extension[{j}].valueCoding.code"
            if not isinstance(code, str) or not is_valid_cog(code):
                return [
                    _error(
                        loc,
                        "the birthplace is an INSEE COG of 5 characters: commune code (2A/2B "
                        "for Corsica), 99 + country code if born abroad, 99999 if unknown",
                        "value",
                    )
                ]
            return []
        if required:
            return [
                _error(
                    f"{base}.extension",
                    "the birthplace needs the fr-core-address-insee-code extension (COG)",
                    "required",
                )
            ]
        return []
    if required:
        return [
            _error(
                "Patient.extension",
                "a Patient with an INS needs the birthPlace extension with its INSEE COG",
                "required",
            )
        ]
    return []


def _check_names(patient: Mapping[str, Any], ins_profile: bool) -> list[Issue]:
    issues: list[Issue] = []
    official = [(i, n) for i, n in _indexed(patient, "name") if n.get("use") == "official"]
    if ins_profile and len(official) != 1:
        issues.append(
            _error(
                "Patient.name",
                "a Patient with an INS has exactly one name with use = official (birth name)",
                "required",
            )
        )
    for i, name in official:
        loc = f"Patient.name[{i}]"
        if not isinstance(name.get("family"), str):
            issues.append(_error(f"{loc}.family", "the birth name is required", "required"))
        given = name.get("given") or []
        if not given:
            issues.append(_error(f"{loc}.given", "the first birth given name is required"))
            continue
        if ins_profile and len(given) > 1:
            issues.append(
                _error(
                    f"{loc}.given",
                    "with an INS, given holds only the first birth given name; put the full "
                    "list in the fr-core-patient-birth-list-given-name extension",
                )
            )
        listed = None
        for j, ext in _indexed(name, "extension"):
            if ext.get("url") == BIRTH_LIST_GIVEN_NAME_URL:
                listed = (j, ext.get("valueString"))
        if listed is None:
            if ins_profile:
                issues.append(
                    _error(
                        f"{loc}.extension",
                        "with an INS, the list of birth given names is required "
                        "(fr-core-patient-birth-list-given-name)",
                        "required",
                    )
                )
            continue
        _, value = listed
        inconsistent = (
            isinstance(value, str)
            and isinstance(given[0], str)
            and not first_given_name_consistent(given[0], value)
        )
        if inconsistent:
            issues.append(
                _error(
                    f"{loc}.given[0]",
                    "the first birth given name must be the first word(s) of the list of "
                    "birth given names [EXI SI 29]; correct one of the two",
                    "business-rule",
                )
            )
    return issues


def validate_patient(patient: Mapping[str, Any], *, allow_test_ins: bool = False) -> list[Issue]:
    """Every identity problem of a FHIR R4 Patient dict (empty list when it is acceptable)."""
    if patient.get("resourceType") != "Patient":
        return [_error("resourceType", "expected a Patient resource")]
    issues: list[Issue] = []
    meta = patient.get("meta")
    profiles = meta.get("profile") if isinstance(meta, Mapping) else None
    has_ins = any(s.active for s in find_ins_slots(patient))
    ins_profile = has_ins or (isinstance(profiles, list) and PATIENT_INS_PROFILE in profiles)

    issues += _check_ins_identifiers(patient, allow_test_ins)
    issues += _check_invariants(patient)
    issues += _check_reliability(patient)
    issues += _check_birthplace(patient, required=ins_profile)
    issues += _check_names(patient, ins_profile)

    gender = patient.get("gender")
    if ins_profile and gender not in _INS_GENDERS:
        issues.append(
            _error(
                "Patient.gender",
                "with an INS, gender is required and is male, female or unknown",
                "required" if gender is None else "code-invalid",
            )
        )
    raw_date = patient.get("birthDate")
    if isinstance(raw_date, str):
        try:
            parse_fhir_birth_date(raw_date)
        except IdentityError as exc:
            issues.append(_error("Patient.birthDate", exc.message, "value"))
    elif ins_profile:
        issues.append(
            _error("Patient.birthDate", "with an INS, the birth date is required", "required")
        )
    if ins_profile and not any(
        ext.get("url") == IDENTITY_RELIABILITY_URL for _, ext in _indexed(patient, "extension")
    ):
        issues.append(
            _error(
                "Patient.extension",
                "with an INS, the identityReliability extension (RNIV status) is required",
                "required",
            )
        )
    return issues


def operation_outcome(issues: Sequence[Issue]) -> dict[str, Any]:
    """An R4 OperationOutcome for ``issues``, each naming its element in ``expression``."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": issue.severity,
                "code": issue.code or "invalid",
                "diagnostics": issue.message,
                **({"expression": [issue.location]} if issue.location else {}),
            }
            for issue in issues
        ],
    }
