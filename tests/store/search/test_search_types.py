"""Search by parameter type and modifier, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from parcours.store import Store

from .helpers import create, ids, search

INS = "urn:oid:1.2.250.1.213.1.4.8"


@pytest.fixture
def patients(store: Store) -> dict[str, dict[str, Any]]:
    def patient(key: str, **fields: Any) -> tuple[str, dict[str, Any]]:
        return key, create(store, resourceType="Patient", **fields)

    return dict(
        [
            patient(
                "elodie",
                name=[
                    {"family": "Dupont-Lefèvre", "given": ["Élodie", "Marie"], "prefix": ["Mme"]}
                ],
                birthDate="1952-03-04",
                gender="female",
                active=True,
                identifier=[
                    {
                        "system": INS,
                        "value": "252037512345678",
                        "type": {
                            "coding": [
                                {
                                    "system": "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203",
                                    "code": "INS-NIR",
                                }
                            ]
                        },
                    },
                    {"system": "urn:oid:1.2.250.1.71.4.2.7", "value": "IPP-1"},
                ],
                address=[{"line": ["3 rue des Forges"], "city": "Dijon", "postalCode": "21000"}],
                telecom=[{"system": "phone", "value": "0601020304"}],
                meta={
                    "tag": [{"system": "urn:parcours:tag", "code": "dac"}],
                    "profile": ["https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient"],
                },
            ),
            patient(
                "jean",
                name=[{"family": "Martin", "given": ["Jean"]}],
                birthDate="1952",
                gender="male",
                active=False,
                identifier=[{"system": INS, "value": "152037512345999"}],
                address=[{"city": "Besançon", "postalCode": "25000"}],
            ),
            patient(
                "noname",
                birthDate="2001-07",
                gender="unknown",
                identifier=[{"value": "no-system"}],
            ),
        ]
    )


def test_string_prefix_is_case_and_accent_insensitive(
    store: Store, patients: dict[str, Any]
) -> None:
    elodie, jean = patients["elodie"]["id"], patients["jean"]["id"]
    assert ids(search(store, "Patient", "family=dupont")) == {elodie}
    assert ids(search(store, "Patient", "family=DUPONT-LEFE")) == {elodie}
    assert ids(search(store, "Patient", "given=elo")) == {elodie}
    assert ids(search(store, "Patient", "name=mme")) == {elodie}  # prefix is a name part
    assert ids(search(store, "Patient", "name=lef")) == set()  # not a prefix
    assert ids(search(store, "Patient", "name=mar")) == {elodie, jean}  # Marie, Martin
    assert ids(search(store, "Patient", "address=besancon")) == {jean}
    assert ids(search(store, "Patient", "address-city=dij,bes")) == {elodie, jean}
    assert ids(search(store, "Patient", "address-postalcode=21")) == {elodie}


def test_string_exact_and_contains(store: Store, patients: dict[str, Any]) -> None:
    elodie = patients["elodie"]["id"]
    assert ids(search(store, "Patient", "family:exact=Dupont-Lefèvre")) == {elodie}
    assert ids(search(store, "Patient", "family:exact=dupont-lefèvre")) == set()
    assert ids(search(store, "Patient", "family:exact=Dupont")) == set()
    assert ids(search(store, "Patient", "family:contains=lefev")) == {elodie}
    assert ids(search(store, "Patient", "family:contains=%")) == set()  # LIKE wildcards escaped
    assert ids(search(store, "Patient", "family:contains=_")) == set()


def test_token_forms(store: Store, patients: dict[str, Any]) -> None:
    elodie, jean, noname = (patients[k]["id"] for k in ("elodie", "jean", "noname"))
    assert ids(search(store, "Patient", f"identifier={INS}|252037512345678")) == {elodie}
    assert ids(search(store, "Patient", "identifier=252037512345678")) == {elodie}
    assert ids(search(store, "Patient", f"identifier={INS}|")) == {elodie, jean}
    assert ids(search(store, "Patient", "identifier=|no-system")) == {noname}
    assert ids(search(store, "Patient", "identifier=|252037512345678")) == set()
    assert ids(search(store, "Patient", "gender=female,male")) == {elodie, jean}
    assert ids(search(store, "Patient", "active=true")) == {elodie}
    assert ids(search(store, "Patient", "active=false")) == {jean}
    assert ids(search(store, "Patient", "phone=0601020304")) == {elodie}
    assert ids(search(store, "Patient", "telecom=phone|0601020304")) == {elodie}
    assert ids(search(store, "Patient", "_tag=urn:parcours:tag|dac")) == {elodie}
    assert ids(search(store, "Patient", "_id=" + jean + "," + noname)) == {jean, noname}


def test_token_not_missing_and_of_type(store: Store, patients: dict[str, Any]) -> None:
    elodie, jean, noname = (patients[k]["id"] for k in ("elodie", "jean", "noname"))
    # :not also returns resources without any value for the parameter.
    assert ids(search(store, "Patient", "gender:not=female")) == {jean, noname}
    assert ids(search(store, "Patient", "active:missing=true")) == {noname}
    assert ids(search(store, "Patient", "active:missing=false")) == {elodie, jean}
    assert ids(search(store, "Patient", "family:missing=true")) == {noname}
    sys = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"
    assert ids(search(store, "Patient", f"identifier:of-type={sys}|INS-NIR|252037512345678")) == {
        elodie
    }
    assert ids(search(store, "Patient", "_id:not=" + jean)) == {elodie, noname}


def test_date_ranges_and_prefixes(store: Store, patients: dict[str, Any]) -> None:
    elodie, jean, noname = (patients[k]["id"] for k in ("elodie", "jean", "noname"))
    # Jean's birthDate "1952" is the whole year: inside 1952, not inside 1952-03.
    assert ids(search(store, "Patient", "birthdate=1952")) == {elodie, jean}
    assert ids(search(store, "Patient", "birthdate=1952-03")) == {elodie}
    assert ids(search(store, "Patient", "birthdate=eq1952-03-04")) == {elodie}
    assert ids(search(store, "Patient", "birthdate=ne1952")) == {noname}
    assert ids(search(store, "Patient", "birthdate=gt1952-06-01")) == {jean, noname}
    assert ids(search(store, "Patient", "birthdate=lt1952-02-01")) == {jean}
    assert ids(search(store, "Patient", "birthdate=ge1952-03-04")) == {elodie, jean, noname}
    assert ids(search(store, "Patient", "birthdate=le1952-03-03")) == {jean}
    assert ids(search(store, "Patient", "birthdate=sa1952-12-30")) == {noname}
    assert ids(search(store, "Patient", "birthdate=eb1953")) == {elodie, jean}
    assert ids(search(store, "Patient", "birthdate=ap2001-07-15")) == {noname}
    # AND of two bounds, and OR of two values.
    assert ids(search(store, "Patient", "birthdate=ge1952-01-01&birthdate=lt1953")) == {
        elodie,
        jean,
    }
    assert ids(search(store, "Patient", "birthdate=1952-03,2001")) == {elodie, noname}


def test_date_period_and_last_updated(store: Store) -> None:
    open_ended = create(
        store,
        resourceType="Encounter",
        status="in-progress",
        period={"start": "2024-05-01T08:00:00Z"},
    )
    closed = create(
        store,
        resourceType="Encounter",
        status="finished",
        period={"start": "2024-04-01T08:00:00+02:00", "end": "2024-04-03"},
    )
    assert ids(search(store, "Encounter", "date=ge2024-05-02")) == {open_ended["id"]}
    assert ids(search(store, "Encounter", "date=2024-04")) == {closed["id"]}
    assert ids(search(store, "Encounter", "date=sa2024-04-03")) == {open_ended["id"]}
    stamp = closed["meta"]["lastUpdated"]
    assert closed["id"] in ids(search(store, "Encounter", f"_lastUpdated=le{stamp}"))
    assert ids(search(store, "Encounter", "_lastUpdated=lt2000")) == set()
    assert len(ids(search(store, "Encounter", "_lastUpdated=gt2000"))) == 2


def test_number_and_quantity(store: Store) -> None:
    p = create(store, resourceType="Patient")

    def obs(value: float, unit: str, code: str) -> str:
        return str(
            create(
                store,
                resourceType="Observation",
                status="final",
                code={"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
                subject={"reference": f"Patient/{p['id']}"},
                valueQuantity={
                    "value": value,
                    "unit": unit,
                    "system": "http://unitsofmeasure.org",
                    "code": code,
                },
            )["id"]
        )

    low, mid, high = (
        obs(4.2, "mmol/L", "mmol/L"),
        obs(5.4, "mmol/L", "mmol/L"),
        obs(100, "mg/dL", "mg/dL"),
    )
    assert ids(search(store, "Observation", "value-quantity=5.4")) == {mid}
    # Implicit precision: "5" is [4.5, 5.5), "5.40" is [5.395, 5.405).
    assert ids(search(store, "Observation", "value-quantity=5")) == {mid}
    assert ids(search(store, "Observation", "value-quantity=5.0")) == set()
    assert ids(search(store, "Observation", "value-quantity=5.40")) == {mid}
    assert ids(search(store, "Observation", "value-quantity=gt5")) == {mid, high}
    assert ids(search(store, "Observation", "value-quantity=le5.4")) == {low, mid}
    assert ids(search(store, "Observation", "value-quantity=ne5.4")) == {low, high}
    assert ids(search(store, "Observation", "value-quantity=ap4")) == {low}
    assert ids(
        search(store, "Observation", "value-quantity=gt1|http://unitsofmeasure.org|mg/dL")
    ) == {high}
    assert ids(search(store, "Observation", "value-quantity=gt1||mmol/L")) == {low, mid}
    r = create(
        store,
        resourceType="RiskAssessment",
        status="final",
        subject={"reference": f"Patient/{p['id']}"},
        prediction=[{"probabilityDecimal": 0.25}],
    )
    assert ids(search(store, "RiskAssessment", "probability=gt0.2")) == {r["id"]}
    assert ids(search(store, "RiskAssessment", "probability=0.25")) == {r["id"]}
    assert ids(search(store, "RiskAssessment", "probability=lt0.25")) == set()


def test_number_precision_range(store: Store) -> None:
    p = create(store, resourceType="Patient")
    r = create(
        store,
        resourceType="RiskAssessment",
        status="final",
        subject={"reference": f"Patient/{p['id']}"},
        prediction=[{"probabilityDecimal": 100}],
    )
    # "100" stands for [99.5, 100.5); "1e2" is not a FHIR search number but Decimal reads it.
    assert ids(search(store, "RiskAssessment", "probability=100")) == {r["id"]}
    assert ids(search(store, "RiskAssessment", "probability=100.0")) == {r["id"]}
    assert ids(search(store, "RiskAssessment", "probability=99.4")) == set()


def test_uri_and_canonical(store: Store) -> None:
    q = create(
        store,
        resourceType="Questionnaire",
        status="active",
        url="https://parcours.example/Questionnaire/ppcs",
        version="2",
    )
    qr = create(
        store,
        resourceType="QuestionnaireResponse",
        status="completed",
        questionnaire="https://parcours.example/Questionnaire/ppcs|2",
    )
    assert ids(
        search(store, "Questionnaire", "url=https://parcours.example/Questionnaire/ppcs")
    ) == {q["id"]}
    assert (
        ids(search(store, "Questionnaire", "url=https://parcours.example/Questionnaire")) == set()
    )
    assert ids(search(store, "Questionnaire", "url:below=https://parcours.example/")) == {q["id"]}
    assert ids(
        search(store, "Questionnaire", "url:above=https://parcours.example/Questionnaire/ppcs/x")
    ) == {q["id"]}
    assert ids(
        search(
            store,
            "QuestionnaireResponse",
            "questionnaire=https://parcours.example/Questionnaire/ppcs",
        )
    ) == {qr["id"]}
    assert ids(
        search(
            store,
            "QuestionnaireResponse",
            "questionnaire=https://parcours.example/Questionnaire/ppcs|2",
        )
    ) == {qr["id"]}
    assert (
        ids(
            search(
                store,
                "QuestionnaireResponse",
                "questionnaire=https://parcours.example/Questionnaire/ppcs|3",
            )
        )
        == set()
    )
    assert ids(search(store, "Patient", "_profile=https://hl7.fr/x")) == set()
    # URIs are case-sensitive, :below and :above included.
    assert ids(search(store, "Questionnaire", "url:below=HTTPS://parcours.example/")) == set()
    assert (
        ids(search(store, "Questionnaire", "url=https://parcours.example/questionnaire/ppcs"))
        == set()
    )


def test_reference_forms(store: Store) -> None:
    p = create(store, resourceType="Patient")
    g = create(store, resourceType="Group", type="person", actual=True)
    local = create(
        store,
        resourceType="Observation",
        status="final",
        code={"text": "x"},
        subject={"reference": f"Patient/{p['id']}"},
    )
    absolute = create(
        store,
        resourceType="Observation",
        status="final",
        code={"text": "x"},
        subject={"reference": f"https://parcours.example/fhir/Patient/{p['id']}/_history/1"},
    )
    foreign = create(
        store,
        resourceType="Observation",
        status="final",
        code={"text": "x"},
        subject={"reference": f"https://elsewhere.example/fhir/Patient/{p['id']}"},
    )
    group = create(
        store,
        resourceType="Observation",
        status="final",
        code={"text": "x"},
        subject={"reference": f"Group/{g['id']}"},
    )
    by_identifier = create(
        store,
        resourceType="Observation",
        status="final",
        code={"text": "x"},
        subject={"identifier": {"system": INS, "value": "1"}},
    )
    pid = p["id"]
    assert ids(search(store, "Observation", f"subject=Patient/{pid}")) == {
        local["id"],
        absolute["id"],
    }
    assert ids(search(store, "Observation", f"subject:Patient={pid}")) == {
        local["id"],
        absolute["id"],
    }
    # patient has one target type: a bare id is Patient/id.
    assert ids(search(store, "Observation", f"patient={pid}")) == {local["id"], absolute["id"]}
    assert ids(search(store, "Observation", f"subject={pid}")) == {local["id"], absolute["id"]}
    assert ids(
        search(store, "Observation", f"subject=https://parcours.example/fhir/Patient/{pid}")
    ) == {local["id"], absolute["id"]}
    assert ids(
        search(store, "Observation", f"subject=https://elsewhere.example/fhir/Patient/{pid}")
    ) == {foreign["id"]}
    assert ids(search(store, "Observation", f"subject=Group/{g['id']}")) == {group["id"]}
    assert ids(search(store, "Observation", f"subject:identifier={INS}|1")) == {by_identifier["id"]}
    assert ids(search(store, "Observation", "subject:missing=true")) == {by_identifier["id"]}


def test_text_modifier_on_codeable_concept(store: Store) -> None:
    c = create(
        store,
        resourceType="Condition",
        subject={"reference": "Patient/x"},
        code={
            "coding": [
                {
                    "system": "http://snomed.info/sct",
                    "code": "44054006",
                    "display": "Diabète de type 2",
                }
            ]
        },
    )
    t = create(
        store,
        resourceType="Condition",
        subject={"reference": "Patient/x"},
        code={"text": "Insuffisance cardiaque"},
    )
    assert ids(search(store, "Condition", "code:text=diabete")) == {c["id"]}
    assert ids(search(store, "Condition", "code:text=type 2")) == {c["id"]}
    assert ids(search(store, "Condition", "code:text=cardiaque")) == {t["id"]}
    assert ids(search(store, "Condition", "code=http://snomed.info/sct|44054006")) == {c["id"]}


def test_deleted_resources_never_match(store: Store) -> None:
    p = create(store, resourceType="Patient", name=[{"family": "Gone"}])
    with store.begin() as tx:
        tx.delete("Patient", p["id"])
    result = search(store, "Patient", "family=gone")
    assert result.matches == [] and result.total == 0
    assert search(store, "Patient", "").total == 0


def test_update_replaces_index_rows(store: Store) -> None:
    p = create(store, resourceType="Patient", name=[{"family": "Avant"}])
    create(store, resourceType="Patient", id=p["id"], name=[{"family": "Après"}])
    assert ids(search(store, "Patient", "family=avant")) == set()
    assert ids(search(store, "Patient", "family=apres")) == {p["id"]}


def test_french_guide_parameters(store: Store) -> None:
    team = create(
        store,
        resourceType="CareTeam",
        status="active",
        period={"start": "2024-01-01", "end": "2024-06-30"},
        managingOrganization=[{"reference": "Organization/dac-21"}],
    )
    assert ids(search(store, "CareTeam", "start=2024-01-01")) == {team["id"]}
    assert ids(search(store, "CareTeam", "end=lt2024-07")) == {team["id"]}
    assert ids(search(store, "CareTeam", "managingOrganization=Organization/dac-21")) == {
        team["id"]
    }
    ext = "https://interop.esante.gouv.fr/ig/fhir/nde/StructureDefinition/event-type"
    cr = create(
        store,
        resourceType="CommunicationRequest",
        status="active",
        extension=[{"url": ext, "valueCoding": {"system": "urn:x", "code": "ADMISSION"}}],
    )
    assert ids(search(store, "CommunicationRequest", "event-type=urn:x|ADMISSION")) == {cr["id"]}


def test_meta_parameters(store: Store) -> None:
    profile = "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient"
    restricted = {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}
    p = create(store, resourceType="Patient", meta={"profile": [profile], "security": [restricted]})
    create(store, resourceType="Patient")
    assert ids(search(store, "Patient", f"_profile={profile}")) == {p["id"]}
    assert ids(search(store, "Patient", f"_security={restricted['system']}|R")) == {p["id"]}
    assert ids(search(store, "Patient", "_security:missing=true")) != {p["id"]}
