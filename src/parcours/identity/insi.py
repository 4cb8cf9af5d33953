"""INSi teleservice adapter: the protocol the platform codes against, and an in-memory twin.

The real INSi service (Assurance Maladie) needs a CPS/e-CPS card or a software certificate
of the structure and the SESAM-Vitale stack; it is out of reach here (docs/identity.md).
:class:`SimulatedInsi` answers from a reference set given at construction, with the
récupération codes of RNIV 1 §4.4: 00 one identity, 01 none, 02 several.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import Enum
from typing import Protocol

from .ins import InsIdentifier, InsKind
from .normalize import comparison_form, normalize_given_names, normalize_name
from .traits import Sex, StrictTraits

__all__ = [
    "CarteVitaleQuery",
    "InsiDiscrepancies",
    "InsiIdentity",
    "InsiResult",
    "InsiResultCode",
    "InsiService",
    "SimulatedInsi",
    "TraitsQuery",
    "compare_with_insi",
]


class InsiResultCode(Enum):
    FOUND = "00"
    """Exactly one identity: the INS and its traits are returned."""
    NOT_FOUND = "01"
    """No identity: for a vérification, the INS and the traits do not correspond."""
    SEVERAL = "02"
    """Several identities: retry adding the birthplace, then the other given names."""


@dataclass(frozen=True, slots=True)
class InsiIdentity:
    """An identity of the national base: the INS and its five traits (sex is M or F)."""

    ins: InsIdentifier
    traits: StrictTraits


@dataclass(frozen=True, slots=True)
class InsiResult:
    code: InsiResultCode
    identity: InsiIdentity | None = None


@dataclass(frozen=True, slots=True)
class TraitsQuery:
    """Récupération by traits. ``given_names`` may be the first or several given names."""

    birth_name: str
    given_names: str
    sex: Sex
    birth_date: date
    birthplace: str | None = None


@dataclass(frozen=True, slots=True)
class CarteVitaleQuery:
    """Récupération from the data read on a carte Vitale for one beneficiary of the card."""

    card_nir: str
    """NIR printed on the card (the holder's, also for an ayant droit)."""
    birth_name: str
    first_given_name: str
    birth_date: date


class InsiService(Protocol):
    """What the platform needs from INSi; the real client and the simulator implement it."""

    def recover_by_traits(self, query: TraitsQuery) -> InsiResult: ...

    def recover_by_carte_vitale(self, query: CarteVitaleQuery) -> InsiResult: ...

    def verify(self, ins: InsIdentifier, traits: StrictTraits) -> InsiResult:
        """00 when the INS exists and its traits match ``traits``, 01 otherwise."""
        ...


@dataclass(frozen=True, slots=True)
class InsiDiscrepancies:
    """Result of comparing local traits with INSi traits (RNIV 1 §4.5.3-4.5.4)."""

    blocking: tuple[str, ...]
    """Birth name, first given name, sex, birth date or a missing trait: forbid RECUP/QUAL."""
    to_analyse: tuple[str, ...]
    """Other given names or birthplace: may be accepted after analysis."""

    @property
    def acceptable(self) -> bool:
        return not self.blocking


def _same(a: str | None, b: str | None) -> bool:
    # Hyphen and apostrophe differences are not a discrepancy [EXI PP 20].
    return a is not None and b is not None and comparison_form(a) == comparison_form(b)


def compare_with_insi(local: StrictTraits, insi: StrictTraits) -> InsiDiscrepancies:
    """Which traits differ between the local record and the INSi answer, and how badly."""
    blocking: list[str] = []
    to_analyse: list[str] = []
    if not _same(local.birth_name, insi.birth_name):
        blocking.append("birth_name")
    if not _same(local.first_given_name, insi.first_given_name):
        blocking.append("first_given_name")
    if local.sex is None or local.sex != insi.sex:
        blocking.append("sex")
    if local.birth_date is None or local.birth_date != insi.birth_date:
        blocking.append("birth_date")
    if not _same(local.given_names, insi.given_names):
        to_analyse.append("given_names")
    if local.birthplace != insi.birthplace:
        to_analyse.append("birthplace")
    return InsiDiscrepancies(tuple(blocking), tuple(to_analyse))


def _answer(found: list[InsiIdentity]) -> InsiResult:
    if not found:
        return InsiResult(InsiResultCode.NOT_FOUND)
    if len(found) > 1:
        return InsiResult(InsiResultCode.SEVERAL)
    return InsiResult(InsiResultCode.FOUND, found[0])


class SimulatedInsi:
    """INSi answering from an in-memory reference set (tests, demo, training)."""

    def __init__(self, reference: Iterable[InsiIdentity]) -> None:
        self._reference = tuple(reference)
        for identity in self._reference:
            if identity.traits.sex not in (Sex.MALE, Sex.FEMALE):
                raise ValueError("INSi identities have sex M or F only")

    def recover_by_traits(self, query: TraitsQuery) -> InsiResult:
        name = comparison_form(normalize_name(query.birth_name))
        asked = comparison_form(normalize_given_names(query.given_names)).split(" ")
        found = []
        for identity in self._reference:
            traits = identity.traits
            words = comparison_form(traits.given_names or "").split(" ")
            if (
                comparison_form(traits.birth_name or "") == name
                and traits.sex == query.sex
                and traits.birth_date == query.birth_date
                and words[: len(asked)] == asked
                and (query.birthplace is None or traits.birthplace == query.birthplace)
            ):
                found.append(identity)
        return _answer(found)

    def recover_by_carte_vitale(self, query: CarteVitaleQuery) -> InsiResult:
        name = comparison_form(normalize_name(query.birth_name))
        first = comparison_form(normalize_given_names(query.first_given_name))
        found = []
        for identity in self._reference:
            traits = identity.traits
            # The card NIR is the holder's; an ayant droit is found by the other card data.
            if (
                traits.birth_date == query.birth_date
                and comparison_form(traits.first_given_name or "") == first
                and comparison_form(traits.birth_name or "") == name
                and identity.ins.kind in (InsKind.NIR, InsKind.NIR_TEST, InsKind.NIR_DEMO)
            ):
                found.append(identity)
        if len(found) > 1:
            found = [i for i in found if i.ins.matricule == query.card_nir] or found
        return _answer(found)

    def verify(self, ins: InsIdentifier, traits: StrictTraits) -> InsiResult:
        for identity in self._reference:
            if identity.ins == ins:
                if compare_with_insi(traits, identity.traits).acceptable:
                    return InsiResult(InsiResultCode.FOUND, identity)
                break
        return InsiResult(InsiResultCode.NOT_FOUND)
