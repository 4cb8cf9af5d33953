"""Strict and complementary identity traits, read from an FR Core Patient and normalised.

Strict traits (RNIV 1 §3.1.4.1): birth name, first birth given name, list of birth given
names, birth date, sex, birthplace (COG). Complementary traits: used name, used given name.
FR Core 2.1.0 carries them as ``name[use=official]`` (family, given[0], extension
``fr-core-patient-birth-list-given-name``), ``name[use=usual]``, ``birthDate``, ``gender``
and the ``patient-birthPlace`` extension holding ``fr-core-address-insee-code``.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import Enum
from typing import Any, Final

from .errors import InvalidTraitError
from .frcore import (
    BIRTH_LIST_GIVEN_NAME_URL,
    BIRTH_PLACE_URL,
    BIRTHDATE_UPDATE_INDICATOR_URL,
    INSEE_CODE_URL,
)
from .normalize import (
    NO_GIVEN_NAME,
    first_given_name_consistent,
    normalize_given_names,
    normalize_name,
)

__all__ = [
    "UNKNOWN_BIRTHPLACE",
    "ComplementaryTraits",
    "Sex",
    "StrictTraits",
    "Traits",
    "check_first_given_name",
    "extract_traits",
    "is_fallback_birth_date",
    "is_valid_cog",
    "parse_fhir_birth_date",
    "rniv_birth_date",
]

UNKNOWN_BIRTHPLACE: Final = "99999"
# Commune: 2 digits or 2A/2B then 3 digits; abroad: 99 + 3-digit country code.
_COG: Final = re.compile(r"(?:[0-9]{2}|2A|2B)[0-9]{3}")
_FHIR_DATE: Final = re.compile(r"([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?")


class Sex(Enum):
    """RNIV sex: INSi returns only M or F; I (indéterminé) is local and provisional."""

    MALE = "M"
    FEMALE = "F"
    UNDETERMINED = "I"

    @classmethod
    def from_fhir(cls, gender: str | None) -> Sex | None:
        if gender is None:
            return None
        return {"male": cls.MALE, "female": cls.FEMALE}.get(gender, cls.UNDETERMINED)

    def to_fhir(self) -> str:
        return {"M": "male", "F": "female"}.get(self.value, "unknown")


def is_valid_cog(code: str) -> bool:
    """Shape of an INSEE COG: 5 characters, a commune (incl. 2A/2B) or 99xxx abroad."""
    return bool(_COG.fullmatch(code))


def rniv_birth_date(
    year: int,
    month: int | None = None,
    day: int | None = None,
    *,
    infant_estimated_month: int | None = None,
) -> date:
    """Complete an incomplete birth date with the RNIV fallback values (RNIV 1 §1.6 table).

    Day unknown -> 01/MM; month unknown -> DD/01; both unknown -> 31/12, except for a child
    under one year whose care started before 31/12, for whom the caller estimates the month
    (``infant_estimated_month``) and the day is 01.
    """
    if month is None and day is None:
        if infant_estimated_month is not None:
            return date(year, infant_estimated_month, 1)
        return date(year, 12, 31)
    if month is None:
        assert day is not None
        return date(year, 1, day)
    if day is None:
        return date(year, month, 1)
    return date(year, month, day)


def is_fallback_birth_date(value: date) -> bool:
    """True when the date may be an RNIV fallback (01/MM, DD/01 or 31/12): trust it less."""
    return value.day == 1 or value.month == 1 or (value.day == 31 and value.month == 12)


def parse_fhir_birth_date(raw: str) -> tuple[date, bool]:
    """FHIR ``date`` (YYYY, YYYY-MM or YYYY-MM-DD) -> (RNIV complete date, estimated?)."""
    match = _FHIR_DATE.fullmatch(raw.strip())
    if not match:
        raise InvalidTraitError(
            "birthDate must be a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)", field="Patient.birthDate"
        )
    year, month, day = (int(g) if g else None for g in match.groups())
    assert year is not None
    if month is not None and not 1 <= month <= 12:
        raise InvalidTraitError("birthDate month must be 01 to 12", field="Patient.birthDate")
    if month is not None and day is not None:
        if not 1 <= day <= calendar.monthrange(year, month)[1]:
            raise InvalidTraitError(
                "birthDate day does not exist in that month", field="Patient.birthDate"
            )
        return date(year, month, day), False
    return rniv_birth_date(year, month, None), True


@dataclass(frozen=True, slots=True)
class StrictTraits:
    """The strict traits in RNIV storage form; ``None`` means "not provided"."""

    birth_name: str | None
    first_given_name: str | None
    given_names: str | None
    """All birth given names, space-separated, first one included (INSi format)."""
    birth_date: date | None
    sex: Sex | None
    birthplace: str | None
    """INSEE COG of the commune, ``99xxx`` for a country, ``99999`` when unknown."""
    birth_date_estimated: bool = False
    """Partial FHIR date completed by the RNIV fallback, or birthdate-update-indicator set."""

    @property
    def given_name_list(self) -> tuple[str, ...]:
        if not self.given_names or self.given_names == NO_GIVEN_NAME:
            return ()
        return tuple(self.given_names.split(" "))

    def missing(self) -> list[str]:
        """The five traits RNIV requires to create an identity [EXI PP 02] that are absent."""
        required = {
            "birth_name": self.birth_name,
            "first_given_name": self.first_given_name,
            "birth_date": self.birth_date,
            "sex": self.sex,
            "birthplace": self.birthplace,
        }
        return [name for name, value in required.items() if value is None]


@dataclass(frozen=True, slots=True)
class ComplementaryTraits:
    """Used name and used given name: recorded only when they differ [EXI PP 17/18]."""

    used_name: str | None = None
    used_given_name: str | None = None


@dataclass(frozen=True, slots=True)
class Traits:
    strict: StrictTraits
    complementary: ComplementaryTraits = field(default_factory=ComplementaryTraits)


def _names(patient: Mapping[str, Any]) -> list[tuple[int, Mapping[str, Any]]]:
    names = patient.get("name") or []
    if not isinstance(names, Sequence):
        return []
    return [(i, n) for i, n in enumerate(names) if isinstance(n, Mapping)]


def _official_name(patient: Mapping[str, Any]) -> tuple[int, Mapping[str, Any]] | None:
    names = _names(patient)
    official = [(i, n) for i, n in names if n.get("use") == "official"]
    if official:
        return official[0]
    # Senders outside FR Core often leave ``use`` empty for the only name they have.
    untyped = [(i, n) for i, n in names if not n.get("use")]
    return untyped[0] if untyped else None


def _extension(element: Mapping[str, Any], url: str) -> Mapping[str, Any] | None:
    for ext in element.get("extension") or ():
        if isinstance(ext, Mapping) and ext.get("url") == url:
            return ext
    return None


def _given(name: Mapping[str, Any]) -> list[str]:
    given = name.get("given") or []
    return [g for g in given if isinstance(g, str)] if isinstance(given, Sequence) else []


def _birthplace(patient: Mapping[str, Any]) -> str | None:
    ext = _extension(patient, BIRTH_PLACE_URL)
    address = ext.get("valueAddress") if ext else None
    if not isinstance(address, Mapping):
        return None
    insee = _extension(address, INSEE_CODE_URL)
    coding = insee.get("valueCoding") if insee else None
    code = coding.get("code") if isinstance(coding, Mapping) else None
    return code.strip().upper() if isinstance(code, str) else None


def extract_traits(patient: Mapping[str, Any]) -> Traits:
    """Strict and complementary traits of a FHIR R4 Patient dict, in RNIV storage form.

    Raises :class:`InvalidTraitError` only for a malformed birthDate; absent traits are
    ``None`` so the caller decides whether they are required (see ``StrictTraits.missing``).
    """
    birth_name = first_given = given_list = None
    official = _official_name(patient)
    if official is not None:
        _, name = official
        family = name.get("family")
        if isinstance(family, str):
            birth_name = normalize_name(family)
        given = _given(name)
        if given:
            first_given = normalize_given_names(given[0])
        listed = _extension(name, BIRTH_LIST_GIVEN_NAME_URL)
        value = listed.get("valueString") if listed else None
        if isinstance(value, str):
            given_list = normalize_given_names(value)
        elif given:
            given_list = normalize_given_names(" ".join(given))

    used_name = used_given = None
    usual = [n for _, n in _names(patient) if n.get("use") == "usual"]
    if usual:
        family = usual[0].get("family")
        if isinstance(family, str):
            used_name = normalize_name(family)
        given = _given(usual[0])
        if given:
            used_given = normalize_given_names(given[0])

    birth_date: date | None = None
    estimated = False
    raw_date = patient.get("birthDate")
    if isinstance(raw_date, str):
        birth_date, estimated = parse_fhir_birth_date(raw_date)
    corrected = _extension(patient, BIRTHDATE_UPDATE_INDICATOR_URL)
    if corrected is not None and corrected.get("valueBoolean") is True:
        estimated = True

    gender = patient.get("gender")
    strict = StrictTraits(
        birth_name=birth_name,
        first_given_name=first_given,
        given_names=given_list,
        birth_date=birth_date,
        sex=Sex.from_fhir(gender if isinstance(gender, str) else None),
        birthplace=_birthplace(patient),
        birth_date_estimated=estimated,
    )
    return Traits(strict, ComplementaryTraits(used_name, used_given))


def check_first_given_name(traits: StrictTraits, *, field: str = "Patient.name.given") -> None:
    """Raise when the first given name is not the start of the given-names list [EXI SI 29]."""
    if traits.first_given_name is None or traits.given_names is None:
        return
    if not first_given_name_consistent(traits.first_given_name, traits.given_names):
        raise InvalidTraitError(
            "the first birth given name must be the first word(s) of the list of birth given "
            "names (hyphen and apostrophe count as a space); correct one of the two",
            field=field,
        )
