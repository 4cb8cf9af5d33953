"""Matching tiers and outcomes on hand-made pairs; comparisons, blocking and the model file."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from parcours.identity import (
    DEFAULT_COMPARISONS,
    IdentityRecord,
    InsKind,
    Matcher,
    MatchGrade,
    MatchModel,
    Outcome,
    Sex,
    Status,
    Tier,
    blocking_keys,
    ins_key,
    parse_ins,
    record_from_patient,
    soundex2,
)

from .conftest import make_patient

TODAY = date(2026, 11, 23)


LEA = IdentityRecord(
    birth_name="MARTIN",
    first_given_name="LEA",
    given_names="LEA MARIE",
    used_name="DURAND",
    birth_date=date(1985, 7, 1),
    sex=Sex.FEMALE,
    birthplace="21231",
    status=Status.PROV,
    record_id="stored",
)
LEA_INS = parse_ins("2850721231007" + ins_key("2850721231007"), InsKind.NIR.system)


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher()


def test_shipped_model_fits_the_comparisons() -> None:
    model = MatchModel.load()
    model.check(DEFAULT_COMPARISONS)
    assert MatchModel.from_json(model.to_json()) == model
    t = model.thresholds
    assert 0 < t.possible <= t.probable <= t.certain < 1


def test_model_mismatch_is_reported_at_construction() -> None:
    data = MatchModel.load().to_json()
    del data["comparisons"]["sex"]
    data["comparisons"]["birth_date"]["typo"] = {"m": 0.1, "u": 0.1}
    expected = r"birth_date: unknown levels typo; comparison sex has no weights"
    with pytest.raises(ValueError, match=expected):
        Matcher(MatchModel.from_json(data))


def test_identical_adults_auto_link(matcher: Matcher) -> None:
    result = matcher.match(replace(LEA, record_id="in"), LEA, as_of=TODAY)
    assert result.outcome is Outcome.AUTO_LINK
    assert result.grade is MatchGrade.CERTAIN and result.tier is Tier.PROBABILISTIC


def test_same_ins_links(matcher: Matcher) -> None:
    a, b = replace(LEA, ins=LEA_INS), replace(LEA, ins=LEA_INS, birthplace=None)
    result = matcher.match(a, b, as_of=TODAY)
    assert (result.outcome, result.tier, result.grade) == (
        Outcome.AUTO_LINK,
        Tier.INS,
        MatchGrade.CERTAIN,
    )


def test_same_ins_with_conflicting_strict_traits_is_a_collision(matcher: Matcher) -> None:
    stranger = replace(
        LEA, ins=LEA_INS, first_given_name="PAUL", given_names="PAUL", birth_date=date(1950, 2, 3)
    )
    result = matcher.match(stranger, replace(LEA, ins=LEA_INS), as_of=TODAY)
    assert result.outcome is Outcome.COLLISION
    assert set(result.conflicts) == {"first_given_name", "birth_date"}


def test_minor_always_goes_to_review(matcher: Matcher) -> None:
    child = replace(LEA, birth_date=date(2015, 3, 4), used_name=None)
    assert matcher.match(child, replace(child), as_of=TODAY).outcome is Outcome.REVIEW
    with_ins = replace(child, ins=LEA_INS)
    result = matcher.match(with_ins, with_ins, as_of=TODAY)
    assert result.outcome is Outcome.REVIEW and "minor" in result.reasons[-1]


def test_different_ins_never_auto_link(matcher: Matcher) -> None:
    other_ins = parse_ins("2850721231008" + ins_key("2850721231008"), InsKind.NIR.system)
    result = matcher.match(replace(LEA, ins=other_ins), replace(LEA, ins=LEA_INS), as_of=TODAY)
    assert result.outcome is Outcome.REVIEW
    assert result.grade in (MatchGrade.POSSIBLE, MatchGrade.CERTAINLY_NOT)


def test_same_local_id_is_the_same_record_whatever_the_traits(matcher: Matcher) -> None:
    ipp = frozenset({("urn:oid:1.2.250.1.999.1", "A1")})
    renamed = replace(LEA, birth_name="DUPONT", local_ids=ipp)
    result = matcher.match(renamed, replace(LEA, local_ids=ipp), as_of=TODAY)
    assert (result.outcome, result.tier) == (Outcome.AUTO_LINK, Tier.LOCAL_ID)


def test_day_month_swap_is_a_near_match(matcher: Matcher) -> None:
    swapped = replace(LEA, birth_date=date(1985, 1, 7))
    result = matcher.match(swapped, LEA, as_of=TODAY)
    assert result.levels["birth_date"] == "day_month_swap"
    assert result.conflicts == ()
    assert result.outcome in (Outcome.AUTO_LINK, Outcome.REVIEW)


def test_one_digit_year_typo_is_a_near_match(matcher: Matcher) -> None:
    result = matcher.match(replace(LEA, birth_date=date(1986, 7, 1)), LEA, as_of=TODAY)
    assert result.levels["birth_date"] == "one_digit"
    assert result.outcome is not Outcome.NEW


def test_married_name_typed_as_birth_name(matcher: Matcher) -> None:
    typed = replace(LEA, birth_name="DURAND", used_name=None)
    result = matcher.match(typed, LEA, as_of=TODAY)
    assert result.levels["birth_name"] == "cross_used_name"
    assert result.grade in (MatchGrade.CERTAIN, MatchGrade.PROBABLE)
    assert result.outcome is not Outcome.NEW


def test_compound_first_name_written_with_a_space_is_exact(matcher: Matcher) -> None:
    a = replace(LEA, first_given_name="MARIE-CLAIRE", given_names="MARIE-CLAIRE")
    b = replace(LEA, first_given_name="MARIE CLAIRE", given_names="MARIE CLAIRE")
    assert matcher.match(a, b, as_of=TODAY).levels["first_given_name"] == "exact"
    cut = replace(LEA, first_given_name="MARIE", given_names="MARIE")
    assert matcher.match(cut, a, as_of=TODAY).levels["first_given_name"] == "contained"


def test_twin_is_not_linked(matcher: Matcher) -> None:
    twin = replace(LEA, first_given_name="CHLOE", given_names="CHLOE ANNE", record_id="twin")
    result = matcher.match(twin, LEA, as_of=TODAY)
    assert result.outcome is not Outcome.AUTO_LINK
    assert "first_given_name" in result.conflicts


def test_strangers_are_new(matcher: Matcher) -> None:
    stranger = IdentityRecord(
        birth_name="LEROY",
        first_given_name="PAUL",
        birth_date=date(1950, 2, 3),
        sex=Sex.MALE,
        birthplace="99350",
    )
    result = matcher.match(stranger, LEA, as_of=TODAY)
    assert (result.outcome, result.grade) == (Outcome.NEW, MatchGrade.CERTAINLY_NOT)


def test_missing_traits_weigh_nothing(matcher: Matcher) -> None:
    bare = IdentityRecord(birth_name="MARTIN")
    assert matcher.match(bare, LEA, as_of=TODAY).levels == {
        "birth_name": "exact",
        "first_given_name": None,
        "given_names": None,
        "birth_date": None,
        "sex": None,
        "birthplace": None,
    }


def test_rank_puts_collisions_first(matcher: Matcher) -> None:
    stored = [LEA, replace(LEA, ins=LEA_INS, birth_date=date(1950, 1, 2), first_given_name="ZOE")]
    ranked = matcher.rank(replace(LEA, ins=LEA_INS), stored, as_of=TODAY)
    assert ranked[0][1].outcome is Outcome.COLLISION


def test_record_from_fhir_patient() -> None:
    record = record_from_patient(make_patient(ipp=("urn:oid:1.2.250.1.999.1", "A1")))
    assert record.birth_name == "DARK" and record.status is Status.QUAL
    assert record.ins is not None and record.local_ids == {("urn:oid:1.2.250.1.999.1", "A1")}
    assert "DARK" not in repr(record)
    # A mistyped INS does not stop matching: the record is still built, without INS.
    assert record_from_patient(make_patient(ins="260058815400234")).ins is None


def test_blocking_survives_the_usual_errors() -> None:
    keys = blocking_keys(LEA)
    assert keys & blocking_keys(replace(LEA, birth_date=date(1985, 1, 7)))  # swap
    assert keys & blocking_keys(replace(LEA, birth_date=date(1986, 7, 1)))  # year typo
    assert keys & blocking_keys(replace(LEA, birth_name="DURAND", used_name=None))  # marriage
    assert keys & blocking_keys(replace(LEA, birth_name="MARTAIN", birth_date=None))  # typo
    assert not keys & blocking_keys(IdentityRecord(birth_name="LEROY", first_given_name="PAUL"))


@pytest.mark.parametrize(
    ("a", "b"),
    [("MARTIN", "MARTAIN"), ("DUPONT", "DUPOND"), ("PHILIPPE", "FILIPE"), ("THOMAS", "TOMAS")],
)
def test_soundex2_groups_french_spellings(a: str, b: str) -> None:
    assert soundex2(a) == soundex2(b) != ""


def test_soundex2_values() -> None:
    assert soundex2("Martin") == "MRTN"
    assert soundex2("") == ""
    assert len(soundex2("ROUBINOWITZ")) == 4


def test_given_names_list_tells_twins_from_a_cut_first_name(matcher: Matcher) -> None:
    stored = replace(LEA, first_given_name="MARIE-CLAIRE", given_names="MARIE-CLAIRE ANNE")
    cut = replace(stored, first_given_name="MARIE")
    assert matcher.match(cut, stored, as_of=TODAY).levels["given_names"] == "exact"
    twin = replace(stored, first_given_name="MARIE", given_names="MARIE LOUISE")
    assert matcher.match(twin, stored, as_of=TODAY).levels["given_names"] == "else"
    typo = replace(stored, given_names="MARIE-CLAIRR ANNE")
    assert matcher.match(typo, stored, as_of=TODAY).levels["given_names"] == "fuzzy_subset"


def test_name_and_first_name_swapped_at_the_desk(matcher: Matcher) -> None:
    swapped = replace(LEA, birth_name="LEA", first_given_name="MARTIN", given_names=None)
    result = matcher.match(swapped, LEA, as_of=TODAY)
    # Weighed once, by the birth-name comparison; no conflict on the first given name.
    assert (result.levels["birth_name"], result.levels["first_given_name"]) == (
        "swapped_with_given",
        None,
    )
    assert result.conflicts == ()


def test_contradictory_statuses_match_as_prov() -> None:
    patient = make_patient()
    patient["extension"].append(dict(patient["extension"][0]))
    patient["extension"][-1] = {
        "url": patient["extension"][0]["url"],
        "extension": [{"url": "identityStatus", "valueCoding": {"code": "PROV"}}],
    }
    assert record_from_patient(patient).status is Status.PROV
