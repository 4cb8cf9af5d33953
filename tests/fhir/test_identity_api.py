"""Identity over real HTTP: FR Core 422s, Patient/$match, $merge and $unmerge, collisions."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from fhir_server import Server
from parcours.identity.frcore import (
    BIRTH_LIST_GIVEN_NAME_URL,
    BIRTH_PLACE_URL,
    CS_IDENTITY_STATUS_2_2,
    CS_V2_0203_FR,
    IDENTITY_RELIABILITY_URL,
    INSEE_CODE_URL,
    INSEE_COMMUNE_SYSTEM,
)

GRADE = "http://hl7.org/fhir/StructureDefinition/match-grade"
BAD_INS = "260058815400234"


def _patient(
    pid: str,
    *,
    family: str = "DARK",
    given: str = "JEANNE",
    birth_date: str = "1960-05-30",
    birthplace: str = "88154",
    ins: str | None = None,
    gender: str = "female",
) -> dict[str, Any]:
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": pid,
        "extension": [
            {
                "url": IDENTITY_RELIABILITY_URL,
                "extension": [
                    {
                        "url": "identityStatus",
                        "valueCoding": {
                            "system": CS_IDENTITY_STATUS_2_2,
                            "code": "QUAL" if ins else "PROV",
                        },
                    }
                ],
            },
            {
                "url": BIRTH_PLACE_URL,
                "valueAddress": {
                    "extension": [
                        {
                            "url": INSEE_CODE_URL,
                            "valueCoding": {
                                "system": INSEE_COMMUNE_SYSTEM,
                                "code": birthplace,
                            },
                        }
                    ]
                },
            },
        ],
        "name": [
            {
                "use": "official",
                "family": family,
                "given": [given],
                "extension": [
                    {
                        "url": BIRTH_LIST_GIVEN_NAME_URL,
                        "valueString": given,
                    }
                ],
            }
        ],
        "gender": gender,
        "birthDate": birth_date,
    }
    if ins:
        patient["identifier"] = [
            {
                "use": "official",
                "type": {"coding": [{"system": CS_V2_0203_FR, "code": "INS-NIR"}]},
                "system": "urn:oid:1.2.250.1.213.1.4.8",
                "value": ins,
            }
        ]
    return patient


def _run() -> str:
    return uuid.uuid4().hex[:8]


def _match(http: httpx.Client, patient: dict[str, Any], **extra: Any) -> httpx.Response:
    parameters: list[dict[str, Any]] = [{"name": "resource", "resource": patient}]
    if "count" in extra:
        parameters.append({"name": "count", "valueInteger": extra["count"]})
    if "only_certain" in extra:
        parameters.append({"name": "onlyCertainMatches", "valueBoolean": extra["only_certain"]})
    return http.post(
        "/Patient/$match", json={"resourceType": "Parameters", "parameter": parameters}
    )


def test_bad_ins_key_is_dropped_and_the_identity_kept(http: httpx.Client) -> None:
    # D5: a key-invalid INS is never stored as an INS, but the identity is not lost.
    response = http.post("/Patient", json=_patient("ignored", ins=BAD_INS))
    assert response.status_code == 201, response.text
    stored = http.get(f"/Patient/{response.json()['id']}").json()
    assert BAD_INS not in str(stored)
    assert stored["name"][0]["family"] == response.json()["name"][0]["family"]


def test_match_returns_grades_and_scores_best_first(http: httpx.Client) -> None:
    run = _run()
    family = "FONTAINE"
    # The stored twin-like records: an exact copy, one born elsewhere, one with another sex.
    for suffix, changes in (
        ("same", {}),
        ("place", {"birthplace": "75056"}),
        ("sex", {"gender": "male"}),
    ):
        stored = _patient(f"{run}-{suffix}", family=family, birth_date="1972-03-14", **changes)
        assert http.put(f"/Patient/{run}-{suffix}", json=stored).status_code == 201
    query = _patient("query", family=family, birth_date="1972-03-14")
    query.pop("id")
    response = _match(http, query)
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["resourceType"], result["type"]) == ("Bundle", "searchset")
    entries = result["entry"]
    assert [e["resource"]["id"] for e in entries] == [f"{run}-same", f"{run}-place", f"{run}-sex"]
    scores = [e["search"]["score"] for e in entries]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    grades = [
        next(x["valueCode"] for x in e["search"]["extension"] if x["url"] == GRADE) for e in entries
    ]
    # Exact copy; another birthplace (not a strict trait); another sex (strict: capped).
    assert grades[0] == "certain" and grades[1] in ("probable", "possible")
    assert grades[2] == "possible"
    assert all(e["search"]["mode"] == "match" for e in entries)
    assert result["total"] == 3

    certain = _match(http, query, only_certain=True).json()
    assert [e["resource"]["id"] for e in certain["entry"]] == [f"{run}-same"]
    assert len(_match(http, query, count=2).json()["entry"]) == 2


def test_match_rejects_bad_parameters(http: httpx.Client) -> None:
    assert http.post("/Patient/$match", json={"resourceType": "Patient"}).status_code == 400
    empty = {"resourceType": "Parameters", "parameter": []}
    assert http.post("/Patient/$match", json=empty).status_code == 400
    assert _match(http, _patient("q"), count=0).status_code == 400
    assert _match(http, _patient("q") | {"birthDate": "1960-13-45"}).status_code == 400


def test_same_ins_with_conflicting_traits_is_a_409(http: httpx.Client) -> None:
    run = _run()
    ins = "260058815400233"
    assert http.put(f"/Patient/{run}-a", json=_patient(f"{run}-a", ins=ins)).status_code == 201
    clash = _patient(f"{run}-b", ins=ins, family="DUPONT")
    response = http.put(f"/Patient/{run}-b", json=clash)
    assert response.status_code == 409
    assert "collision" in response.text and ins not in response.text
    assert http.get(f"/Patient/{run}-b").status_code == 404


def test_merge_and_unmerge_over_http(http: httpx.Client) -> None:
    run = _run()
    source, target = f"{run}-s", f"{run}-t"
    family = "ROUSSEAU"
    http.put(f"/Patient/{source}", json=_patient(source, family=family, birth_date="1944-02-02"))
    http.put(f"/Patient/{target}", json=_patient(target, family=family, birth_date="1944-02-02"))
    encounter = {
        "resourceType": "Encounter",
        "id": f"{run}-e",
        "status": "finished",
        "class": {"code": "AMB"},
        "subject": {"reference": f"Patient/{source}"},
    }
    assert http.put(f"/Encounter/{run}-e", json=encounter).status_code == 201
    merge = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "source-patient", "valueReference": {"reference": f"Patient/{source}"}},
            {"name": "target-patient", "valueReference": {"reference": f"Patient/{target}"}},
            {"name": "reason", "valueString": "doublon vérifié"},
        ],
    }
    response = http.post("/Patient/$merge", json=merge)
    assert response.status_code == 200, response.text
    out = {p["name"]: p for p in response.json()["parameter"]}
    assert out["result"]["resource"]["link"] == [
        {"other": {"reference": f"Patient/{source}"}, "type": "replaces"}
    ]
    merge_id = out["merge-id"]["valueString"]
    assert http.get(f"/Encounter/{run}-e").json()["subject"]["reference"] == f"Patient/{target}"
    obsolete = http.get(f"/Patient/{source}").json()
    assert obsolete["active"] is False
    # The search index follows: the encounter is now found through the survivor.
    found = http.get("/Encounter", params={"subject": f"Patient/{target}"}).json()
    assert [e["resource"]["id"] for e in found.get("entry", [])] == [f"{run}-e"]
    # A merged-away patient is no longer a $match answer.
    query = _patient("q", family=family, birth_date="1944-02-02")
    ids = [e["resource"]["id"] for e in _match(http, query).json().get("entry", [])]
    assert target in ids and source not in ids
    assert http.post("/Patient/$merge", json=merge).status_code == 409

    undo = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "merge-id", "valueString": merge_id},
            {"name": "reason", "valueString": "erreur"},
        ],
    }
    response = http.post("/Patient/$unmerge", json=undo)
    assert response.status_code == 200, response.text
    assert http.get(f"/Encounter/{run}-e").json()["subject"]["reference"] == f"Patient/{source}"
    restored = http.get(f"/Patient/{source}").json()
    assert "active" not in restored and "link" not in restored
    assert "link" not in http.get(f"/Patient/{target}").json()
    assert http.post("/Patient/$unmerge", json=undo).status_code == 409


def test_merge_rejects_bad_parameters(http: httpx.Client) -> None:
    bad = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "source-patient", "valueReference": {"reference": "Encounter/x"}},
            {"name": "target-patient", "valueReference": {"reference": "Patient/y"}},
        ],
    }
    assert http.post("/Patient/$merge", json=bad).status_code == 400
    missing = {"resourceType": "Parameters", "parameter": []}
    assert http.post("/Patient/$merge", json=missing).status_code == 400
    unknown = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "source-patient", "valueReference": {"reference": "Patient/nope-1"}},
            {"name": "target-patient", "valueReference": {"reference": "Patient/nope-2"}},
        ],
    }
    assert http.post("/Patient/$merge", json=unknown).status_code == 404
    assert http.get("/Patient/$match").status_code == 404


def test_capability_statement_declares_the_operations(server: Server) -> None:
    cs = httpx.get(f"{server.base}/metadata").json()
    patient = next(r for r in cs["rest"][0]["resource"] if r["type"] == "Patient")
    names = {op["name"]: op["definition"] for op in patient["operation"]}
    assert names["match"] == "http://hl7.org/fhir/OperationDefinition/Patient-match"
    assert {"merge", "unmerge"} <= set(names)
