"""The INSi protocol through its in-memory twin: codes 00 / 01 / 02 and trait discrepancies."""

from __future__ import annotations

from datetime import date

import pytest

from parcours.identity import (
    CarteVitaleQuery,
    InsiIdentity,
    InsiResultCode,
    InsiService,
    Sex,
    SimulatedInsi,
    StrictTraits,
    TraitsQuery,
    compare_with_insi,
    ins_key,
    parse_ins,
)

DARK = StrictTraits("DARK", "JEANNE", "JEANNE MARIE CECILE", date(1960, 5, 30), Sex.FEMALE, "88154")


def identity(first13: str, traits: StrictTraits) -> InsiIdentity:
    return InsiIdentity(
        parse_ins(first13 + ins_key(first13), "urn:oid:1.2.250.1.213.1.4.8"), traits
    )


JEANNE = identity("2600588154002", DARK)
# A namesake born the same day elsewhere, with another second given name.
NAMESAKE = identity(
    "2600521231007",
    StrictTraits("DARK", "JEANNE", "JEANNE LOUISE", date(1960, 5, 30), Sex.FEMALE, "21231"),
)


@pytest.fixture
def insi() -> InsiService:
    return SimulatedInsi([JEANNE, NAMESAKE])


def query(**changes: object) -> TraitsQuery:
    base: dict[str, object] = {
        "birth_name": "Dark",
        "given_names": "Jeanne",
        "sex": Sex.FEMALE,
        "birth_date": date(1960, 5, 30),
    }
    base.update(changes)
    return TraitsQuery(**base)  # type: ignore[arg-type]


def test_several_then_one_when_the_birthplace_is_added(insi: InsiService) -> None:
    assert insi.recover_by_traits(query()).code is InsiResultCode.SEVERAL
    result = insi.recover_by_traits(query(birthplace="88154"))
    assert result.code is InsiResultCode.FOUND
    assert result.identity == JEANNE


def test_other_given_names_also_disambiguate(insi: InsiService) -> None:
    result = insi.recover_by_traits(query(given_names="Jeanne Marie"))
    assert result.code is InsiResultCode.FOUND and result.identity == JEANNE


def test_none_found(insi: InsiService) -> None:
    assert insi.recover_by_traits(query(sex=Sex.MALE)).code is InsiResultCode.NOT_FOUND
    assert insi.recover_by_traits(query(given_names="Marie")).code is InsiResultCode.NOT_FOUND


def test_hyphen_and_accents_do_not_matter(insi: InsiService) -> None:
    result = insi.recover_by_traits(query(given_names="Jeanne-Marie", birth_name="DÂRK"))
    assert result.code is InsiResultCode.FOUND


def test_carte_vitale_recovery(insi: InsiService) -> None:
    card = CarteVitaleQuery(JEANNE.ins.matricule, "DARK", "JEANNE", date(1960, 5, 30))
    result = insi.recover_by_carte_vitale(card)
    assert result.code is InsiResultCode.FOUND and result.identity == JEANNE


def test_verification(insi: InsiService) -> None:
    assert insi.verify(JEANNE.ins, DARK).code is InsiResultCode.FOUND
    moved = StrictTraits(
        "DARK", "JEANNE", "JEANNE MARIE CECILE", date(1960, 5, 31), Sex.FEMALE, "88154"
    )
    assert insi.verify(JEANNE.ins, moved).code is InsiResultCode.NOT_FOUND


def test_simulator_refuses_undetermined_sex() -> None:
    undetermined = identity(
        "2600588154003", StrictTraits("X", "Y", "Y", None, Sex.UNDETERMINED, None)
    )
    with pytest.raises(ValueError, match="M or F"):
        SimulatedInsi([undetermined])


def test_blocking_and_acceptable_discrepancies() -> None:
    same_but_hyphen = StrictTraits(
        "DARK", "JEANNE", "JEANNE-MARIE CECILE", date(1960, 5, 30), Sex.FEMALE, "88154"
    )
    assert compare_with_insi(same_but_hyphen, DARK).acceptable
    other_place = StrictTraits("DARK", "JEANNE", "JEANNE", date(1960, 5, 30), Sex.FEMALE, "88160")
    result = compare_with_insi(other_place, DARK)
    assert result.acceptable and result.to_analyse == ("given_names", "birthplace")
    wrong = StrictTraits("DARC", "JEANNE", None, None, Sex.MALE, "88154")
    assert compare_with_insi(wrong, DARK).blocking == ("birth_name", "sex", "birth_date")
