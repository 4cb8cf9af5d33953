"""The flat view of one identity that matching compares: traits, INS, local ids, status."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from .errors import IdentityError, InvalidInsError
from .frcore import BIRTH_LIST_GIVEN_NAME_URL, CS_V2_0203_HL7
from .ins import InsIdentifier, extract_ins
from .reliability import read_reliability
from .rniv import Status
from .traits import Sex, extract_traits

__all__ = ["IdentityRecord", "record_from_patient"]


@dataclass(frozen=True, slots=True)
class IdentityRecord:
    """Normalised traits (RNIV storage form) plus what the deterministic tiers need."""

    birth_name: str | None = None
    first_given_name: str | None = None
    given_names: str | None = None
    """The list of birth given names when the sender gave one (None when only a first name)."""
    used_name: str | None = None
    used_given_name: str | None = None
    birth_date: date | None = None
    birth_date_estimated: bool = False
    sex: Sex | None = None
    birthplace: str | None = None
    ins: InsIdentifier | None = None
    local_ids: frozenset[tuple[str, str]] = frozenset()
    """(assigning authority system, IPP) pairs: identifiers of type PI."""
    status: Status = Status.PROV
    record_id: str | None = None

    def __repr__(self) -> str:
        # Traits are personal data: keep them out of logs and assertion messages.
        return f"IdentityRecord(record_id={self.record_id!r}, status={self.status.value})"

    def age_on(self, day: date) -> int | None:
        if self.birth_date is None:
            return None
        born = self.birth_date
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def _local_ids(patient: Mapping[str, Any]) -> frozenset[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    identifiers = patient.get("identifier") or []
    if not isinstance(identifiers, Sequence):
        return frozenset()
    for identifier in identifiers:
        if not isinstance(identifier, Mapping):
            continue
        type_ = identifier.get("type")
        codings = type_.get("coding") or [] if isinstance(type_, Mapping) else []
        is_pi = any(
            isinstance(c, Mapping) and c.get("system") == CS_V2_0203_HL7 and c.get("code") == "PI"
            for c in codings
        )
        system, value = identifier.get("system"), identifier.get("value")
        if is_pi and isinstance(system, str) and isinstance(value, str):
            found.add((system, value))
    return frozenset(found)


def _has_given_names_list(patient: Mapping[str, Any]) -> bool:
    for name in patient.get("name") or ():
        if not isinstance(name, Mapping) or name.get("use") not in ("official", None):
            continue
        extensions = name.get("extension") or ()
        if any(
            isinstance(e, Mapping) and e.get("url") == BIRTH_LIST_GIVEN_NAME_URL for e in extensions
        ):
            return True
        given = name.get("given") or ()
        return isinstance(given, Sequence) and len(given) > 1
    return False


def record_from_patient(
    patient: Mapping[str, Any], *, allow_test_ins: bool = False
) -> IdentityRecord:
    """Build the matching view of a FHIR Patient dict; an invalid INS is left out, not fatal.

    Raises :class:`InvalidTraitError` only for a malformed ``birthDate``.

    Validation (``validate_patient``) is where a bad INS is reported; matching must still
    find the candidates of a record whose INS was mistyped.
    """
    traits = extract_traits(patient)
    try:
        ins = extract_ins(patient, allow_test_ins=allow_test_ins)
    except InvalidInsError:
        ins = None
    strict, extra = traits.strict, traits.complementary
    # extract_traits falls back to the first name for the list; for matching, a list that
    # was never sent is unknown, not a one-name list.
    listed = strict.given_names if _has_given_names_list(patient) else None
    try:
        status = read_reliability(patient).status
    except IdentityError:
        # Contradictory statuses: match it as the least trusted, validation reports it.
        status = Status.PROV
    record_id = patient.get("id")
    return IdentityRecord(
        birth_name=strict.birth_name,
        first_given_name=strict.first_given_name,
        given_names=listed,
        used_name=extra.used_name,
        used_given_name=extra.used_given_name,
        birth_date=strict.birth_date,
        birth_date_estimated=strict.birth_date_estimated,
        sex=strict.sex,
        birthplace=strict.birthplace,
        ins=ins,
        local_ids=_local_ids(patient),
        status=status,
        record_id=record_id if isinstance(record_id, str) else None,
    )
