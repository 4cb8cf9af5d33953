"""The ANS Cercle de soins (CDS) examples go in and are found with every Gestionnaire parameter.

The CDSGestionnaire CapabilityStatement lists the search parameters a care-circle server must
answer; each is checked here twice over real HTTP: the example is found by its own value and
not by another one. The examples are loaded as published; the server deviates twice:

- the Patient's INS-NIR 123456789012244 has an invalid key (44 instead of 12), which RNIV
  forbids to store as an INS: the server drops that identifier, stores the identity as PROV and
  queues the value for the identity-vigilance referent (D5), in the Patient and in the
  transaction Bundle alike. So an ``identifier`` search on that INS finds neither; the
  parameter is checked on a copy carrying the corrected, key-valid INS;
- the CareTeam and the Organization carry ``valueString: ""`` in translation extensions, which
  the server drops with a warning (D12): nothing to change on our side.

The CDS examples have no Practitioner nor PractitionerRole (their participants are a
RelatedPerson and an Organization): those parameters run on the Annuaire examples, whose
profiles the CDS IG uses for professionals. Parameters whose element the example lacks
(CareTeam.category, CareTeam.period.end, Organization.partOf, Patient.address) are checked with
``:missing`` and on a copy that has the element.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server import Server
from parcours.identity import INS_KEY_INVALID, CandidateStatus, list_candidates
from parcours.identity.ins import ins_key

CDS = "cercle-de-soins"
BAD_INS = "123456789012244"
INS = BAD_INS[:13] + ins_key(BAD_INS[:13])
NIR_OID = "urn:oid:1.2.250.1.213.1.4.8"
ROLE_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_R21-Fonction/FHIR/TRE-R21-Fonction"
RELATION_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_R260-HL7RoleClass/FHIR/TRE-R260-HL7RoleClass"


def _load(corpus: Path, folder: str, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (corpus / "fhir" / folder / name).read_text(encoding="utf-8-sig")
    )
    return data


def _fix_ins(patient: dict[str, Any]) -> dict[str, Any]:
    """A copy of the example with the key corrected (id cds-patient-ins-ok)."""
    fixed = copy.deepcopy(patient)
    assert fixed["identifier"][0]["value"] == BAD_INS
    fixed["identifier"][0]["value"] = INS
    fixed["id"] = "cds-patient-ins-ok"
    return fixed


@pytest.fixture(scope="module")
def cds_corpus(request: pytest.FixtureRequest) -> Path:
    # The root conftest's corpus_dir(), which skips (or fails under CI) without the corpus.
    root = request.config.pluginmanager.get_plugin(str(Path(__file__).parents[1] / "conftest.py"))
    assert root is not None
    path: Path = root.corpus_dir()
    return path


@pytest.fixture(scope="module")
def loaded(http: httpx.Client, cds_corpus: Path) -> dict[str, Any]:
    """Every example stored; returns the ids the transaction Bundle created."""
    corpus = cds_corpus
    for resource in (
        _load(corpus, CDS, "Organization-cds-organization-example.json"),
        _load(corpus, CDS, "Patient-cds-patient-example.json"),
        _fix_ins(_load(corpus, CDS, "Patient-cds-patient-example.json")),
        _load(corpus, CDS, "RelatedPerson-cds-relatedperson-example.json"),
        _load(corpus, CDS, "CareTeam-cds-careteam-example.json"),
        _load(corpus, "annuaire", "Practitioner-334081.json"),
        _load(corpus, "annuaire", "PractitionerRole-1578230.json"),
        _load(corpus, "annuaire", "Organization-158480.json"),
    ):
        response = http.put(f"/{resource['resourceType']}/{resource['id']}", json=resource)
        assert response.status_code in (200, 201), response.text
    # Copies carrying the elements the examples lack, to see those parameters match something.
    ended = _load(corpus, CDS, "CareTeam-cds-careteam-example.json")
    ended.pop("_name")
    ended.update(
        id="cds-careteam-ended",
        identifier=[{"system": "http://fake-identifier.fr", "value": "ended"}],
        status="inactive",
        period={"start": "2013-01-12", "end": "2020-06-30"},
        category=[{"coding": [{"system": "http://loinc.org", "code": "LA27976-2"}]}],
    )
    assert http.put("/CareTeam/cds-careteam-ended", json=ended).status_code in (200, 201)
    child = {
        "resourceType": "Organization",
        "id": "cds-organization-child",
        "name": "Antenne du cabinet",
        "partOf": {"reference": "Organization/cds-organization-example"},
    }
    assert http.put("/Organization/cds-organization-child", json=child).status_code in (200, 201)

    bundle = _load(corpus, CDS, "Bundle-cds-bundle-transaction-creation-example.json")
    response = http.post("", json=bundle)
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "transaction-response"
    created = {e["resource"]["resourceType"]: e["resource"]["id"] for e in response.json()["entry"]}
    assert set(created) == {"CareTeam", "Organization", "Patient", "RelatedPerson"}
    return created


def _ids(http: httpx.Client, res_type: str, params: dict[str, str]) -> set[str]:
    response = http.get(f"/{res_type}", params={**params, "_count": "100"})
    assert response.status_code == 200, (res_type, params, response.text)
    return {e["resource"]["id"] for e in response.json().get("entry", [])}


def test_examples_are_stored_without_their_empty_strings(
    http: httpx.Client, loaded: dict[str, Any], corpus: Path
) -> None:
    stored = http.get("/CareTeam/cds-careteam-example").json()
    extension = stored["_name"]["extension"][0]
    # The translation keeps its language; its empty content is gone.
    assert extension["extension"] == [{"url": "lang", "valueCode": "en"}]
    original = _load(corpus, CDS, "CareTeam-cds-careteam-example.json")
    for key in ("identifier", "status", "name", "subject", "period", "participant"):
        assert stored[key] == original[key]
    from_bundle = http.get(f"/CareTeam/{loaded['CareTeam']}").json()
    assert from_bundle["name"] == original["name"]
    assert "valueString" not in json.dumps(from_bundle["_name"])


# (type, parameter, value that finds the example, value that does not, the example's id)
CASES = [
    ("CareTeam", "identifier", "http://fake-identifier.fr|1", "http://fake-identifier.fr|2"),
    ("CareTeam", "status", "active", "proposed"),
    ("CareTeam", "category:missing", "true", "false"),
    ("CareTeam", "date", "ge2013-01-12", "lt2013-01-01"),
    ("CareTeam", "participant", "RelatedPerson/cds-relatedperson-example", "RelatedPerson/x"),
    ("CareTeam", "patient", "Patient/cds-patient-example", "Patient/other"),
    ("CareTeam", "subject", "Patient/cds-patient-example", "Patient/other"),
    ("CareTeam", "_lastUpdated", "gt2020-01-01", "lt2020-01-01"),
    ("CareTeam", "start", "2013-01-12", "2014-01-12"),
    ("CareTeam", "end:missing", "true", "false"),
    ("CareTeam", "participant-start", "2013-01-12", "2015-01-01"),
    ("CareTeam", "participant-end", "2032-12-18", "2031-01-01"),
    ("CareTeam", "managingOrganization", "Organization/cds-organization-example", "Organization/x"),
    # Its only identifier, the key-invalid INS, was dropped (D5): see test_dropped_ins_*.
    ("Patient", "identifier:missing", "true", "false"),
    ("Patient", "family", "Thobois", "Lamine"),
    ("Patient", "given", "Jacques", "Lamine"),
    ("Patient", "name", "Thobois", "Chibout"),
    ("Patient", "address:missing", "true", "false"),
    ("Patient", "birthdate", "1984-10-02", "1984-10-03"),
    ("Patient", "gender", "male", "female"),
    ("Patient", "birthplace", "Goulven", "Paris"),
    ("RelatedPerson", "_id", "cds-relatedperson-example", "other"),
    ("RelatedPerson", "name", "Lamine", "Thobois"),
    ("RelatedPerson", "relationship", f"{RELATION_SYSTEM}|ECON", f"{RELATION_SYSTEM}|NOK"),
    ("Organization", "_id", "cds-organization-example", "other"),
    ("Organization", "name", "Cabinet médical", "Hôpital"),
    ("Organization", "identifier:missing", "true", "false"),
]
EXAMPLE_IDS = {
    "CareTeam": "cds-careteam-example",
    "Patient": "cds-patient-example",
    "RelatedPerson": "cds-relatedperson-example",
    "Organization": "cds-organization-example",
}
# The elements the examples lack, on the copies (or on the Annuaire examples).
OTHER_CASES = [
    ("Patient", "identifier", f"{NIR_OID}|{INS}", f"{NIR_OID}|{BAD_INS}", "cds-patient-ins-ok"),
    ("CareTeam", "end", "2020-06-30", "2020-07-01", "cds-careteam-ended"),
    ("CareTeam", "category", "http://loinc.org|LA27976-2", "http://loinc.org|X",
     "cds-careteam-ended"),
    ("Organization", "partof", "Organization/cds-organization-example", "Organization/158480",
     "cds-organization-child"),
    ("Organization", "identifier", "urn:oid:1.2.250.1.71.4.2.2|1754567860",
     "urn:oid:1.2.250.1.71.4.2.2|1754567861", "158480"),
    ("Practitioner", "identifier", "urn:oid:1.2.250.1.71.4.2.1|810003461033",
     "urn:oid:1.2.250.1.71.4.2.1|810003461034", "334081"),
    ("Practitioner", "name", "Saucier", "Thobois", "334081"),
    ("PractitionerRole", "_id", "1578230", "1578231", "1578230"),
    ("PractitionerRole", "practitioner", "Practitioner/334081", "Practitioner/3719500", "1578230"),
    ("PractitionerRole", "role", f"{ROLE_SYSTEM}|FON-AU", f"{ROLE_SYSTEM}|FON-XX", "1578230"),
]  # fmt: skip


@pytest.mark.parametrize(("res_type", "param", "hit", "miss"), CASES)
def test_gestionnaire_search_parameter(
    http: httpx.Client, loaded: dict[str, Any], res_type: str, param: str, hit: str, miss: str
) -> None:
    example = EXAMPLE_IDS[res_type]
    assert example in _ids(http, res_type, {param: hit})
    assert example not in _ids(http, res_type, {param: miss})


@pytest.mark.parametrize(("res_type", "param", "hit", "miss", "example"), OTHER_CASES)
def test_search_parameter_on_other_examples(
    http: httpx.Client,
    loaded: dict[str, Any],
    res_type: str,
    param: str,
    hit: str,
    miss: str,
    example: str,
) -> None:
    assert example in _ids(http, res_type, {param: hit})
    assert example not in _ids(http, res_type, {param: miss})


def test_transaction_bundle_resources_are_found_like_the_examples(
    http: httpx.Client, loaded: dict[str, Any]
) -> None:
    # The Bundle POSTs copies (server ids): same identifier, so two care teams answer.
    found = _ids(http, "CareTeam", {"identifier": "http://fake-identifier.fr|1"})
    assert found == {"cds-careteam-example", loaded["CareTeam"]}
    found = _ids(
        http, "CareTeam", {"managingOrganization": "Organization/cds-organization-example"}
    )
    assert loaded["CareTeam"] in found
    assert loaded["RelatedPerson"] in _ids(http, "RelatedPerson", {"relationship": "ECON"})


def test_dropped_ins_finds_neither_the_example_nor_the_bundle_patient(
    http: httpx.Client, loaded: dict[str, Any]
) -> None:
    for value in (f"{NIR_OID}|{BAD_INS}", BAD_INS):
        assert _ids(http, "Patient", {"identifier": value}) == set()
    for patient_id in ("cds-patient-example", loaded["Patient"]):
        stored = http.get(f"/Patient/{patient_id}").json()
        assert "identifier" not in stored
        assert BAD_INS not in json.dumps(stored)
        # Still found by its traits.
        assert patient_id in _ids(http, "Patient", {"family": "Thobois", "birthdate": "1984-10-02"})


def test_transaction_bundle_as_published_links_its_care_team_to_its_patient(
    http: httpx.Client, loaded: dict[str, Any]
) -> None:
    # The Bundle's CareTeam and RelatedPerson reference Patient/cds-patient-example (not the
    # urn:uuid of its Patient entry): the example, stored without its key-invalid INS.
    found = _ids(http, "CareTeam", {"patient": "Patient/cds-patient-example"})
    assert found == {"cds-careteam-example", "cds-careteam-ended", loaded["CareTeam"]}
    assert _ids(http, "CareTeam", {"patient": f"Patient/{loaded['Patient']}"}) == set()
    related = _ids(http, "RelatedPerson", {"patient": "Patient/cds-patient-example"})
    assert loaded["RelatedPerson"] in related


def test_dropped_ins_waits_in_the_review_queue(server: Server, loaded: dict[str, Any]) -> None:
    with server.platform.store.begin(readonly=True) as tx:
        queued = list_candidates(tx, statuses=tuple(CandidateStatus))
    alerts = {a.patient_a: a for a in queued if a.kind == INS_KEY_INVALID}
    assert set(alerts) >= {"cds-patient-example", loaded["Patient"]}
    for patient_id in ("cds-patient-example", loaded["Patient"]):
        alert = alerts[patient_id]
        assert (alert.reason, alert.status) == ("ins-key-invalid", CandidateStatus.OPEN)
        [dropped] = alert.details["dropped"]
        assert (dropped["system"], dropped["value"]) == (NIR_OID, BAD_INS)


def test_patient_post_with_a_key_invalid_ins_is_created_without_it(
    http: httpx.Client, server: Server, cds_corpus: Path
) -> None:
    patient = _load(cds_corpus, CDS, "Patient-cds-patient-example.json")
    del patient["id"]
    response = http.post("/Patient", json=patient)
    assert response.status_code == 201, response.text
    created = response.json()
    assert "identifier" not in created and BAD_INS not in response.text
    stored = server.platform.store.read("Patient", created["id"])
    assert "identifier" not in stored
    status = stored["extension"][0]["extension"][0]["valueCoding"]["code"]
    assert status == "PROV"  # VALI (FR Core 2.1.0: qualified) cannot stand without the INS
    with server.platform.store.begin(readonly=True) as tx:
        queued = list_candidates(tx, statuses=(CandidateStatus.OPEN,), patient_id=created["id"])
    [alert] = [a for a in queued if a.kind == INS_KEY_INVALID]
    assert alert.details["dropped"][0]["value"] == BAD_INS
    # A key-valid INS is still stored as sent.
    valid = _fix_ins(patient)
    del valid["id"]
    response = http.post("/Patient", json=valid)
    assert response.status_code == 201, response.text
    assert response.json()["identifier"] == valid["identifier"]
