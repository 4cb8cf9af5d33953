"""FR Core Patient identity checks: every problem, with its FHIRPath-like location."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from parcours.errors import Issue
from parcours.identity import (
    drop_key_invalid_ins,
    fr_core_patient_check,
    ins_key,
    operation_outcome,
    validate_patient,
)
from parcours.identity.frcore import (
    CS_V2_0203_FR,
    CS_V2_0445,
    IDENTITY_RELIABILITY_URL,
    PATIENT_INS_PROFILE,
)

from .conftest import CorpusLoader, make_patient


def errors(patient: dict[str, Any], **kwargs: bool) -> dict[str, str]:
    return {
        i.location or "": i.message
        for i in validate_patient(patient, **kwargs)
        if i.severity == "error"
    }


def test_the_rniv_example_is_clean() -> None:
    assert validate_patient(make_patient()) == []


def test_invalid_key_names_the_value() -> None:
    found = errors(make_patient(ins="260058815400234"))
    assert list(found) == ["Patient.identifier[0].value"]
    assert "control key" in found["Patient.identifier[0].value"]
    assert "260058815400234" not in found["Patient.identifier[0].value"]


def test_test_authority_refused_unless_allowed() -> None:
    patient = make_patient(ins_type="INS-NIR-TEST", ins_system="urn:oid:1.2.250.1.213.1.4.10")
    assert list(errors(patient)) == ["Patient.identifier[0].system"]
    assert errors(patient, allow_test_ins=True) == {}


def test_slice_use_and_system_patterns() -> None:
    assert list(errors(make_patient(ins_use="temp"))) == ["Patient.identifier[0].use"]
    nia = make_patient(ins_type="INS-NIA", ins_system="urn:oid:1.2.250.1.213.1.4.9")
    assert list(errors(nia)) == ["Patient.identifier[0].use"]
    mismatch = make_patient(ins_system="urn:oid:1.2.250.1.213.1.4.9")
    assert list(errors(mismatch)) == ["Patient.identifier[0].system"]


def test_fr_core_1_qualified_identity_needs_its_ins() -> None:
    for status, system in (("VALI", CS_V2_0445), ("QUAL", None)):
        patient = make_patient(status=status, ins=None)
        if system:
            patient["extension"][0]["extension"][0]["valueCoding"]["system"] = system
        found = errors(patient)
        assert "Patient.extension[0]" in found
        assert found["Patient.extension[0]"].startswith("fr-core-1")


def test_fr_core_2_only_one_active_official_ins() -> None:
    patient = make_patient()
    patient["identifier"].append(dict(patient["identifier"][0]))
    assert errors(patient)["Patient.identifier"].startswith("fr-core-2")
    patient["identifier"][1]["use"] = "old"
    assert errors(patient) == {}


def test_birthplace_cog_format() -> None:
    found = errors(make_patient(birthplace="8815"))
    loc = "Patient.extension[1].valueAddress.extension[0].valueCoding.code"
    assert list(found) == [loc] and "INSEE COG" in found[loc]
    assert errors(make_patient(birthplace="2A004")) == {}
    assert errors(make_patient(birthplace="99999")) == {}


def test_ins_requires_the_strict_traits() -> None:
    patient = make_patient(birthplace=None, gender=None, birth_date=None, given_list=None)
    found = errors(patient)
    assert {
        "Patient.extension",
        "Patient.gender",
        "Patient.birthDate",
        "Patient.name[0].extension",
    } <= set(found)


def test_first_given_name_must_start_the_list() -> None:
    found = errors(make_patient(given="Marie"))
    assert "Patient.name[0].given[0]" in found and "EXI SI 29" in found["Patient.name[0].given[0]"]
    assert errors(make_patient(given="Jeanne-Marie")) == {}


def test_only_one_given_with_ins() -> None:
    patient = make_patient()
    patient["name"][0]["given"] = ["Jeanne", "Marie"]
    assert list(errors(patient)) == ["Patient.name[0].given"]


def test_ins_on_a_provisional_identity_is_a_warning() -> None:
    issues = validate_patient(make_patient(status="PROV"))
    assert [(i.severity, i.location) for i in issues] == [("warning", "Patient.identifier")]


def test_corrected_birth_date_forbids_qual() -> None:
    patient = make_patient()
    patient["extension"].append(
        {
            "url": "https://hl7.fr/ig/fhir/core/StructureDefinition/"
            "fr-core-patient-birthdate-update-indicator",
            "valueBoolean": True,
        }
    )
    assert "Patient.extension[2]" in errors(patient)


def test_attributes_against_status_are_reported() -> None:
    patient = make_patient()
    patient["extension"][0]["extension"].append({"url": "comment", "valueCoding": {"code": "DOUT"}})
    assert "EXI SI 09" in errors(patient)["identityReliability"]


def test_not_a_patient() -> None:
    assert errors({"resourceType": "Observation"}) == {
        "resourceType": "expected a Patient resource"
    }


def test_profile_claim_without_ins_still_requires_ins_traits() -> None:
    patient = make_patient(ins=None, status="PROV", birthplace=None)
    patient["meta"] = {"profile": [PATIENT_INS_PROFILE]}
    assert "Patient.extension" in errors(patient)


def test_operation_outcome_names_the_field() -> None:
    outcome = operation_outcome([Issue("bad key", "Patient.identifier[0].value", "value")])
    assert outcome == {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "value",
                "diagnostics": "bad key",
                "expression": ["Patient.identifier[0].value"],
            }
        ],
    }


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("fr-core/Patient-FRCorePatientINSExample.json", ["Patient.identifier[0].value"]),
        ("telesurveillance/Patient-ExamplefrCorePatient001.json", ["Patient.identifier[0].value"]),
        ("cercle-de-soins/Patient-cds-patient-example.json", ["Patient.identifier[0].value"]),
        (
            "cahier-de-liaison/Patient-0d920958-b596-4b91-af67-9bafc707820b.json",
            ["Patient.identifier[0].value"],
        ),
        ("partage-documents-pdsm/Patient-fr-patient-123.json", []),
        ("teleexpertise-confluence/Patient-frpatient-exemple.json", []),
    ],
)
def test_corpus_patients(load_fhir: CorpusLoader, path: str, expected: list[str]) -> None:
    # The only errors in the published examples are the invalid INS keys (documented deviation).
    assert list(errors(load_fhir(path))) == expected


# ---- key-invalid INS: dropped before storage (D5) ---------------------------------------------

BAD_INS = "260058815400234"
NIA = "urn:oid:1.2.250.1.213.1.4.9"
TEST_NIR = "urn:oid:1.2.250.1.213.1.4.10"


def _status(patient: dict[str, Any]) -> list[str]:
    return [
        sub["valueCoding"]["code"]
        for ext in patient.get("extension", [])
        if ext.get("url") == IDENTITY_RELIABILITY_URL
        for sub in ext["extension"]
    ]


@pytest.mark.parametrize("status", ["QUAL", "VALI", "RECUP", "PROV"])
def test_key_invalid_ins_is_dropped_and_the_status_capped_at_prov(status: str) -> None:
    patient = make_patient(ins=BAD_INS, status=status)
    before = copy.deepcopy(patient)
    cleaned, dropped, was = drop_key_invalid_ins(patient)
    assert patient == before  # never modified
    assert "identifier" not in cleaned and _status(cleaned) == ["PROV"]
    assert [(d.location, d.value, d.type_code) for d in dropped] == [
        ("Patient.identifier[0]", BAD_INS, "INS-NIR")
    ]
    assert was == (None if status == "PROV" else status)
    assert errors(cleaned) == {}
    # Everything else is the same objects, untouched.
    assert cleaned["name"] is patient["name"]


def test_fr_core_2_1_vali_is_capped_in_its_own_code_system() -> None:
    patient = make_patient(ins=BAD_INS, status="VALI", status_system=CS_V2_0445)
    cleaned, _, was = drop_key_invalid_ins(patient)
    assert was == "VALI"
    [ext] = [e for e in cleaned["extension"] if e["url"] == IDENTITY_RELIABILITY_URL]
    assert ext["extension"][0]["valueCoding"] == {"system": CS_V2_0445, "code": "PROV"}


def test_attributes_stay_and_another_valid_ins_keeps_the_status() -> None:
    patient = make_patient(ins=BAD_INS)
    valid_nia = "1600588154002" + ins_key("1600588154002")
    nia = {
        "use": "temp",
        "type": {"coding": [{"system": CS_V2_0203_FR, "code": "INS-NIA"}]},
        "system": NIA,
        "value": valid_nia,
    }
    patient["identifier"].append(nia)
    cleaned, dropped, was = drop_key_invalid_ins(patient)
    assert len(dropped) == 1 and was is None
    assert cleaned["identifier"] == [nia] and _status(cleaned) == ["QUAL"]


@pytest.mark.parametrize(
    "changes",
    [
        {"ins": BAD_INS[:14]},  # length
        {"ins": "360058815400233"},  # first digit
        {"ins": BAD_INS, "ins_system": NIA},  # type INS-NIR, system NIA
        {"ins": BAD_INS, "ins_type": "INS-NIR-TEST", "ins_system": TEST_NIR},  # D11 first
    ],
)
def test_other_ins_faults_are_not_dropped(changes: dict[str, Any]) -> None:
    patient = make_patient(**changes)
    cleaned, dropped, _ = drop_key_invalid_ins(patient)
    assert cleaned is patient and dropped == []
    assert any(loc.startswith("Patient.identifier[0]") for loc in errors(patient))


def test_the_profile_check_drops_in_place_warns_and_reports() -> None:
    calls: list[tuple[dict[str, Any], Any, Any]] = []
    check = fr_core_patient_check(
        production=True, on_drop=lambda res, dropped, was: calls.append((res, dropped, was))
    )
    sent = make_patient(ins=BAD_INS)
    original_identifiers = sent["identifier"]
    resource = dict(sent)  # the store's own top-level copy
    issues = list(check(resource))
    assert [(i.severity, i.location) for i in issues] == [
        ("warning", "Patient.identifier[0].value")
    ]
    assert BAD_INS not in issues[0].message
    assert "identifier" not in resource and sent["identifier"] is original_identifiers
    [(res, dropped, was)] = calls
    assert res is resource and dropped[0].value == BAD_INS and was == "QUAL"
    # A write refused for another reason reports nothing to queue.
    calls.clear()
    assert any(i.severity == "error" for i in check(make_patient(ins=BAD_INS, birthplace="7A056")))
    assert calls == []


@pytest.mark.parametrize(
    "path",
    [
        "fr-core/Patient-FRCorePatientINSExample.json",
        "telesurveillance/Patient-ExamplefrCorePatient001.json",
        "cercle-de-soins/Patient-cds-patient-example.json",
        "cahier-de-liaison/Patient-0d920958-b596-4b91-af67-9bafc707820b.json",
    ],
)
def test_corpus_patients_with_a_key_invalid_ins_pass_the_check(
    load_fhir: CorpusLoader, path: str
) -> None:
    patient = load_fhir(path)
    issues = list(fr_core_patient_check(production=True)(patient))
    assert [(i.severity, i.location) for i in issues] == [
        ("warning", "Patient.identifier[0].value")
    ]
    assert "identifier" not in patient and _status(patient) == ["PROV"]
