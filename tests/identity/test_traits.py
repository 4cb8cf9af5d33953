"""RNIV character rules, first given name rules, fallback dates and FR Core trait extraction."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parcours.identity import (
    NO_GIVEN_NAME,
    NO_NAME,
    InvalidTraitError,
    Sex,
    StrictTraits,
    check_first_given_name,
    comparison_form,
    extract_traits,
    first_given_name_consistent,
    first_given_name_from_document,
    is_fallback_birth_date,
    is_valid_cog,
    normalize_given_names,
    normalize_name,
    parse_fhir_birth_date,
    rniv_birth_date,
)

from .conftest import CorpusLoader, make_patient


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("Dark", "DARK"),  # upper case
        ("Lefèvre", "LEFEVRE"),  # no diacritics
        ("Éléonore", "ELEONORE"),
        ("Müller", "MULLER"),
        ("Saint-Martin", "SAINT-MARTIN"),  # hyphen kept
        ("d'Almeida", "D'ALMEIDA"),  # apostrophe kept
        ("d’Almeida", "D'ALMEIDA"),  # typographic apostrophe
        ("Martin/Dupont", "MARTIN DUPONT"),  # other characters become a space
        ("Martin,  Dupont.", "MARTIN DUPONT"),  # spaces collapsed, trimmed
        ("  de   la  Fontaine ", "DE LA FONTAINE"),
        ("Jean – Pierre", "JEAN-PIERRE"),  # dash variants and spaces around a hyphen
        ("Lætitia", "LAETITIA"),  # ligatures expanded (decision, RNIV silent)
        ("Œdipe", "OEDIPE"),
        ("Strauß", "STRAUSS"),
    ],
)
def test_storage_form(raw: str, stored: str) -> None:
    assert normalize_name(raw) == stored


@pytest.mark.parametrize("raw", [None, "", "   ", "XXX", "xx", "///"])
def test_no_name_is_sansnom(raw: str | None) -> None:
    assert normalize_name(raw) == NO_NAME


@pytest.mark.parametrize("raw", [None, "", "XXX", "sansprenom"])
def test_no_given_name_is_sansprenom(raw: str | None) -> None:
    assert normalize_given_names(raw) == NO_GIVEN_NAME


def test_given_names_list_drops_commas() -> None:
    assert normalize_given_names("Jeanne, Marie, Cécile") == "JEANNE MARIE CECILE"


def test_comparison_form_reads_hyphen_and_apostrophe_as_space() -> None:
    assert comparison_form("JEAN-PIERRE D'ARC") == "JEAN PIERRE D ARC"


@pytest.mark.parametrize(
    ("document", "first"),
    [
        ("Jean Roger, Pierre", "JEAN ROGER"),  # everything before the first comma
        ("Jean-Roger Pierre", "JEAN-ROGER"),  # else the first hyphenated string
        ("Jean Roger Pierre", "JEAN"),  # else the first word
        ("", NO_GIVEN_NAME),
    ],
)
def test_first_given_name_from_document(document: str, first: str) -> None:
    assert first_given_name_from_document(document) == first


@pytest.mark.parametrize(
    ("first", "ok"),
    [
        ("MAX", True),
        ("MAX PATRICK", True),
        ("MAX-PATRICK", True),
        ("PATRICK", False),
        ("MA", False),
    ],
)
def test_first_given_name_must_start_the_list(first: str, ok: bool) -> None:
    # RNIV [EXI SI 29] example: list MAX PATRICK.
    assert first_given_name_consistent(first, "MAX PATRICK") is ok


def test_check_first_given_name_raises_with_location() -> None:
    traits = StrictTraits("DARK", "CECILE", "JEANNE MARIE CECILE", None, None, None)
    with pytest.raises(InvalidTraitError, match="first word") as info:
        check_first_given_name(traits, field="Patient.name[0].given[0]")
    assert info.value.field == "Patient.name[0].given[0]"
    check_first_given_name(StrictTraits("DARK", "JEANNE", "JEANNE MARIE", None, None, None))


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ((1970, 5, None), date(1970, 5, 1)),  # day unknown -> 01/MM
        ((1970, None, 17), date(1970, 1, 17)),  # month unknown -> DD/01
        ((1970, None, None), date(1970, 12, 31)),  # both unknown -> 31/12
    ],
)
def test_rniv_fallback_dates(parts: tuple[int, int | None, int | None], expected: date) -> None:
    assert rniv_birth_date(*parts) == expected
    assert is_fallback_birth_date(expected)


def test_infant_with_unknown_date_uses_the_estimated_month() -> None:
    assert rniv_birth_date(2026, infant_estimated_month=3) == date(2026, 3, 1)


def test_partial_fhir_dates_are_completed_and_flagged() -> None:
    assert parse_fhir_birth_date("1970") == (date(1970, 12, 31), True)
    assert parse_fhir_birth_date("1970-05") == (date(1970, 5, 1), True)
    assert parse_fhir_birth_date("1970-05-30") == (date(1970, 5, 30), False)
    assert not is_fallback_birth_date(date(1970, 5, 30))
    for bad in ("1970-13", "1970-02-30", "30/05/1970"):
        with pytest.raises(InvalidTraitError) as info:
            parse_fhir_birth_date(bad)
        assert info.value.field == "Patient.birthDate"


@pytest.mark.parametrize(
    ("code", "ok"),
    [("88154", True), ("2A004", True), ("2B033", True), ("99350", True), ("99999", True),
     ("8815", False), ("2C004", False), ("88 154", False), ("881540", False)],
)  # fmt: skip
def test_cog_shape(code: str, ok: bool) -> None:
    assert is_valid_cog(code) is ok


def test_sex_mapping() -> None:
    assert Sex.from_fhir("male") is Sex.MALE
    assert Sex.from_fhir("female") is Sex.FEMALE
    assert Sex.from_fhir("unknown") is Sex.UNDETERMINED
    assert Sex.from_fhir("other") is Sex.UNDETERMINED
    assert Sex.from_fhir(None) is None
    assert Sex.UNDETERMINED.to_fhir() == "unknown"


def test_extract_traits_from_rniv_example() -> None:
    traits = extract_traits(make_patient(family="Dark", given="Jeanne", used_name="Martin"))
    strict = traits.strict
    assert strict.birth_name == "DARK"
    assert strict.first_given_name == "JEANNE"
    assert strict.given_names == "JEANNE MARIE CECILE"
    assert strict.given_name_list == ("JEANNE", "MARIE", "CECILE")
    assert strict.birth_date == date(1960, 5, 30)
    assert strict.sex is Sex.FEMALE
    assert strict.birthplace == "88154"
    assert strict.missing() == []
    assert traits.complementary.used_name == "MARTIN"


def test_missing_traits_are_listed() -> None:
    strict = extract_traits(make_patient(birthplace=None, gender=None, birth_date=None)).strict
    assert strict.missing() == ["birth_date", "sex", "birthplace"]


def test_list_defaults_to_given_when_extension_absent() -> None:
    patient = make_patient(given_list=None)
    patient["name"][0]["given"] = ["Jean-Pierre", "Paul"]
    strict = extract_traits(patient).strict
    assert strict.first_given_name == "JEAN-PIERRE"
    assert strict.given_names == "JEAN-PIERRE PAUL"


def test_extract_traits_from_fr_core_example(load_fhir: CorpusLoader) -> None:
    strict = extract_traits(load_fhir("fr-core/Patient-FRCorePatientINSExample.json")).strict
    assert (strict.birth_name, strict.first_given_name, strict.given_names) == (
        "DURAND",
        "PIERRE",
        "PIERRE YVES",
    )
    assert strict.birth_date == date(1974, 12, 25)
    assert strict.sex is Sex.MALE
    assert strict.birthplace == "01006"
    assert not strict.birth_date_estimated


@given(st.text())
def test_normalisation_is_idempotent_and_uses_the_rniv_alphabet(raw: str) -> None:
    stored = normalize_name(raw)
    assert normalize_name(stored) == stored
    assert set(stored) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ' -")
    assert "  " not in stored and stored == stored.strip()
