"""INS matricule rules: length, characters, first digit, Corsica, key, OIDs, extraction."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parcours.identity import (
    InsIdentifier,
    InsKind,
    InvalidInsError,
    extract_ins,
    has_invalid_key,
    ins_key,
    is_valid_matricule,
    parse_ins,
    validate_matricule,
)

from .conftest import CorpusLoader, make_patient

NIR = "urn:oid:1.2.250.1.213.1.4.8"
NIA = "urn:oid:1.2.250.1.213.1.4.9"
TEST = "urn:oid:1.2.250.1.213.1.4.10"
DEMO = "urn:oid:1.2.250.1.213.1.4.11"


def with_key(first13: str) -> str:
    return first13 + ins_key(first13)


@pytest.mark.parametrize(
    ("matricule", "key"),
    [
        ("260058815400233", "33"),  # RNIV 1 §2.2 example (DARK Jeanne)
        ("279035121518989", "89"),  # ANS example quoted in the rule sheet
        ("172116912304521", "21"),
    ],
)
def test_published_examples_have_valid_keys(matricule: str, key: str) -> None:
    assert ins_key(matricule[:13]) == key
    assert validate_matricule(matricule) == matricule


def test_key_is_97_minus_mod_97_on_two_digits() -> None:
    first13 = "1850712345678"
    assert ins_key(first13) == f"{97 - int(first13) % 97:02d}"
    # A remainder of 96 gives a one-digit key, which must be zero-padded.
    n = next(n for n in range(1000000000000, 1000000010000) if n % 97 == 96)
    assert ins_key(str(n)) == "01"


@pytest.mark.parametrize(
    ("corsican", "numeric"),
    [("285072A004123", "2850719004123"), ("179022B033456", "1790218033456")],
)
def test_corsica_departments_are_keyed_as_19_and_18(corsican: str, numeric: str) -> None:
    assert ins_key(corsican) == ins_key(numeric)
    assert ins_key("285072A004123") == "38"  # value given in the rule sheet
    assert is_valid_matricule(with_key(corsican))


def test_lowercase_corsica_is_canonicalised() -> None:
    assert validate_matricule(with_key("285072A004123").lower()) == "285072A00412338"


@pytest.mark.parametrize("value", ["26005881540023", "2600588154002333", ""])
def test_length_must_be_15(value: str) -> None:
    with pytest.raises(InvalidInsError, match="exactly 15 characters") as info:
        validate_matricule(value, field="Patient.identifier[0].value")
    assert info.value.field == "Patient.identifier[0].value"


@pytest.mark.parametrize(
    "value",
    [
        "2600588154002 3",
        "26005881540023A",
        "2600A88154002 33"[:15],
        "2600588-5400233",
        "2600528A5400233",
    ],
)
def test_only_digits_except_2a_2b_at_positions_6_7(value: str) -> None:
    with pytest.raises(InvalidInsError, match="digits only"):
        validate_matricule(value)


def test_2a_elsewhere_than_positions_6_7_is_refused() -> None:
    with pytest.raises(InvalidInsError, match="digits only"):
        validate_matricule("2A0058815400233")


@pytest.mark.parametrize("first", ["0", "3", "4", "7", "8", "9"])
def test_first_digit_must_be_1_or_2(first: str) -> None:
    with pytest.raises(InvalidInsError, match="starts with 1 or 2"):
        validate_matricule(with_key(first + "600588154002"))


def test_wrong_key_is_refused_with_a_remedy_and_no_matricule_in_message() -> None:
    with pytest.raises(InvalidInsError) as info:
        validate_matricule("260058815400234")
    message = str(info.value)
    assert "control key" in message and "check the typing" in message
    assert "2600588154002" not in message


@given(st.integers(min_value=0, max_value=10**12 - 1), st.sampled_from("12"))
def test_any_prefix_with_its_computed_key_validates(rest: int, sex: str) -> None:
    first13 = sex + f"{rest:012d}"
    assert is_valid_matricule(first13 + ins_key(first13))


@given(
    st.integers(min_value=0, max_value=10**12 - 1),
    st.sampled_from("12"),
    st.integers(min_value=1, max_value=14),
    st.integers(min_value=1, max_value=9),
)
def test_any_single_digit_change_is_rejected(rest: int, sex: str, pos: int, delta: int) -> None:
    valid = sex + f"{rest:012d}"
    valid += ins_key(valid)
    changed = valid[:pos] + str((int(valid[pos]) + delta) % 10) + valid[pos + 1 :]
    # Mod 97 detects every single-digit substitution (97 is prime and > 10).
    assert not is_valid_matricule(changed)


def test_oids_and_kinds() -> None:
    assert InsKind.from_system(NIR) is InsKind.NIR
    assert InsKind.from_system("1.2.250.1.213.1.4.9") is InsKind.NIA  # bare OID (HL7 v2 CX-4)
    assert InsKind.from_system(TEST) is InsKind.NIR_TEST
    assert InsKind.from_system(DEMO) is InsKind.NIR_DEMO
    assert InsKind.from_system("urn:oid:1.2.250.1.213.1.4.2") is None  # INS-C
    assert InsKind.NIA.use == "temp" and InsKind.NIR.use == "official"
    assert InsKind.NIR_TEST.type_code == "INS-NIR-TEST"


def test_production_refuses_test_and_demo_authorities() -> None:
    for system in (TEST, DEMO):
        with pytest.raises(InvalidInsError, match="refused in production") as info:
            parse_ins("260058815400233", system)
        assert info.value.field == "identifier.system"
        assert parse_ins("260058815400233", system, allow_test_ins=True).is_test


def test_unknown_and_ins_c_authorities_are_refused() -> None:
    with pytest.raises(InvalidInsError, match="not an INS authority"):
        parse_ins("260058815400233", "urn:oid:1.2.250.1.213.1.4.2")
    with pytest.raises(InvalidInsError, match="not an INS assigning authority"):
        parse_ins("260058815400233", "urn:oid:1.2.3")


def test_identifier_value_object() -> None:
    ins = parse_ins("260058815400233", NIA)
    assert ins == InsIdentifier("260058815400233", InsKind.NIA)
    assert ins.key == "33" and ins.oid == "1.2.250.1.213.1.4.9" and ins.system == NIA
    assert "260058815400233" not in repr(ins)
    assert ins.to_fhir()["type"]["coding"][0]["code"] == "INS-NIA"
    assert ins.to_fhir()["use"] == "temp"
    with pytest.raises(AttributeError):
        ins.matricule = "x"  # type: ignore[misc]


def test_extract_from_patient() -> None:
    ins = extract_ins(make_patient())
    assert ins == InsIdentifier("260058815400233", InsKind.NIR)
    assert extract_ins(make_patient(ins=None)) is None


def test_extract_ignores_deactivated_ins() -> None:
    assert extract_ins(make_patient(ins_use="old")) is None


def test_extract_prefers_nir_over_nia() -> None:
    patient = make_patient(
        ins=with_key("1600588154002"), ins_type="INS-NIA", ins_system=NIA, ins_use="temp"
    )
    patient["identifier"].append(make_patient()["identifier"][0])
    ins = extract_ins(patient)
    assert ins is not None and ins.kind is InsKind.NIR


def test_extract_reports_type_system_mismatch_with_location() -> None:
    patient = make_patient(ins_system=NIA)
    with pytest.raises(InvalidInsError, match="requires system") as info:
        extract_ins(patient)
    assert info.value.field == "Patient.identifier[0].system"


def test_extract_refuses_two_different_active_nir() -> None:
    patient = make_patient()
    other = dict(patient["identifier"][0], value=with_key("1600588154003"))
    patient["identifier"].append(other)
    with pytest.raises(InvalidInsError, match="several different active INS-NIR"):
        extract_ins(patient)


def test_untyped_nir_is_ambiguous_with_the_nss_unless_accepted() -> None:
    identifier: dict[str, Any] = {"system": NIR, "value": "260058815400233"}
    patient = {"resourceType": "Patient", "identifier": [identifier]}
    assert extract_ins(patient) is None
    assert extract_ins(patient, accept_untyped_nir=True) is not None
    nss = {
        "type": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NH"}]
        }
    }
    identifier.update(nss)
    assert extract_ins(patient, accept_untyped_nir=True) is None


# --- the external corpus -----------------------------------------------------------------

INVALID_KEY_EXAMPLES = [
    "fr-core/Patient-FRCorePatientINSExample.json",
    "cercle-de-soins/Patient-cds-patient-example.json",
    "cahier-de-liaison/Patient-0d920958-b596-4b91-af67-9bafc707820b.json",
    "telesurveillance/Patient-ExamplefrCorePatient001.json",
]


@pytest.mark.parametrize("path", INVALID_KEY_EXAMPLES)
def test_corpus_examples_with_ins_123456789012244_have_an_invalid_key(
    load_fhir: CorpusLoader, path: str
) -> None:
    # Deviation of the published examples: the key of 1234567890122 is 12, not 44.
    patient = load_fhir(path)
    assert patient["identifier"][0]["value"] == "123456789012244"
    assert ins_key("1234567890122") == "12"
    with pytest.raises(InvalidInsError, match="control key") as info:
        extract_ins(patient)
    assert info.value.field == "Patient.identifier[0].value"


def test_pdsm_example_ins_is_key_valid(load_fhir: CorpusLoader) -> None:
    patient = load_fhir("partage-documents-pdsm/Patient-fr-patient-123.json")
    assert extract_ins(patient) == InsIdentifier("180017505600103", InsKind.NIR)


def test_teleexpertise_example_ins_is_key_valid_but_untyped(load_fhir: CorpusLoader) -> None:
    patient = load_fhir("teleexpertise-confluence/Patient-frpatient-exemple.json")
    identifier = patient["identifier"][0]
    assert parse_ins(identifier["value"], identifier["system"]).key == "43"
    # No type: FR Core slices on type, so it is only an INS when the caller accepts that.
    assert extract_ins(patient) is None
    assert extract_ins(patient, accept_untyped_nir=True) is not None


def test_has_invalid_key_is_only_the_key_case() -> None:
    assert has_invalid_key("260058815400234") and has_invalid_key("123456789012244")
    assert has_invalid_key(" 285072a00412300 ")  # canonical form, wrong key
    for other in ("260058815400233", "26005881540023", "360058815400234", "2600588154002X4"):
        assert not has_invalid_key(other), other
