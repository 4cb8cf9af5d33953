"""Batch and transaction Bundles over HTTP: atomicity, order, urn:uuid and conditional refs."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from fhir_server import Server


def entry(
    resource: dict[str, Any], method: str, url: str, full_url: str | None = None, **request: str
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resource": resource,
        "request": {"method": method, "url": url, **request},
    }
    if full_url:
        out["fullUrl"] = full_url
    return out


def transaction(*entries: dict[str, Any], kind: str = "transaction") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def ident(system: str, value: str) -> list[dict[str, str]]:
    return [{"system": system, "value": value}]


def count(http: httpx.Client, res_type: str, **params: str) -> int:
    body = http.get(f"/{res_type}", params={**params, "_summary": "count"}).json()
    total: int = body["total"]
    return total


def test_transaction_rewrites_urn_uuid_everywhere(http: httpx.Client, server: Server) -> None:
    patient_urn = f"urn:uuid:{uuid.uuid4()}"
    org_urn = f"urn:uuid:{uuid.uuid4()}"
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "poids"},
        "subject": {"reference": patient_urn},
        "performer": [{"reference": org_urn}],
        "text": {
            "status": "generated",
            "div": f'<div xmlns="http://www.w3.org/1999/xhtml">voir {patient_urn}</div>',
        },
        "extension": [
            {
                "url": "http://example.org/ext",
                "extension": [{"url": "who", "valueReference": {"reference": patient_urn}}],
            }
        ],
    }
    bundle = transaction(
        entry(observation, "POST", "Observation"),
        entry(
            {"resourceType": "Patient", "managingOrganization": {"reference": org_urn}},
            "POST",
            "Patient",
            patient_urn,
        ),
        entry({"resourceType": "Organization", "name": "DAC 21"}, "POST", "Organization", org_urn),
    )
    response = http.post("", json=bundle)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in result["entry"]]
    assert statuses == ["201 Created"] * 3
    for e in result["entry"]:
        assert e["response"]["location"].startswith(server.base)
        assert e["response"]["etag"] == 'W/"1"'
        assert e["response"]["lastModified"]
    obs_id, patient_id, org_id = (e["resource"]["id"] for e in result["entry"])
    stored = http.get(f"/Observation/{obs_id}").json()
    assert stored["subject"]["reference"] == f"Patient/{patient_id}"
    assert stored["performer"][0]["reference"] == f"Organization/{org_id}"
    assert (
        stored["extension"][0]["extension"][0]["valueReference"]["reference"]
        == f"Patient/{patient_id}"
    )
    assert f"Patient/{patient_id}" in stored["text"]["div"]
    assert (
        http.get(f"/Patient/{patient_id}").json()["managingOrganization"]["reference"]
        == f"Organization/{org_id}"
    )


def test_transaction_is_atomic(http: httpx.Client) -> None:
    system = f"urn:test:{uuid.uuid4().hex}"
    existing = http.post(
        "/Patient", json={"resourceType": "Patient", "identifier": ident(system, "keep")}
    ).json()
    bundle = transaction(
        entry({"resourceType": "Patient", "identifier": ident(system, "a")}, "POST", "Patient"),
        entry({**existing, "active": True}, "PUT", f"Patient/{existing['id']}"),
        {"request": {"method": "DELETE", "url": f"Patient/{existing['id']}"}},
        entry(
            {"resourceType": "Observation", "status": "final", "identifier": ident(system, "o")},
            "POST",
            "Observation",
        ),
    )
    response = http.post("", json=bundle)
    assert response.status_code == 422
    first = response.json()["issue"][0]["diagnostics"]
    assert "Bundle.entry[3]" in first
    locations = [loc for i in response.json()["issue"] for loc in i.get("expression", [])]
    assert "Bundle.entry[3].resource.code" in locations
    assert count(http, "Patient", identifier=f"{system}|a") == 0
    assert count(http, "Observation", identifier=f"{system}|o") == 0
    assert http.get(f"/Patient/{existing['id']}").json() == existing


def test_transaction_processing_order(http: httpx.Client) -> None:
    system = f"urn:test:{uuid.uuid4().hex}"
    old = http.post(
        "/Patient", json={"resourceType": "Patient", "identifier": ident(system, "1")}
    ).json()
    # GET is listed first but runs last; DELETE runs before the POST.
    bundle = transaction(
        {"request": {"method": "GET", "url": f"Patient?identifier={system}|1"}},
        entry({"resourceType": "Patient", "identifier": ident(system, "1")}, "POST", "Patient"),
        {"request": {"method": "DELETE", "url": f"Patient/{old['id']}"}},
    )
    result = http.post("", json=bundle).json()
    search, created, deleted = result["entry"]
    assert deleted["response"]["status"] == "204 No Content"
    assert created["response"]["status"] == "201 Created"
    assert search["response"]["status"] == "200 OK"
    found = [e["resource"]["id"] for e in search["resource"].get("entry", [])]
    assert found == [created["resource"]["id"]]


def test_conditional_references_and_if_none_exist(http: httpx.Client) -> None:
    system = f"urn:test:{uuid.uuid4().hex}"
    patient = http.post(
        "/Patient", json={"resourceType": "Patient", "identifier": ident(system, "p")}
    ).json()
    conditional = f"Patient?identifier={system}|p"
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "subject": {"reference": conditional},
    }
    result = http.post(
        "",
        json=transaction(
            entry(obs, "POST", "Observation"),
            entry(
                {"resourceType": "Patient", "identifier": ident(system, "p")},
                "POST",
                "Patient",
                ifNoneExist=f"identifier={system}|p",
            ),
        ),
    )
    assert result.status_code == 200, result.text
    obs_entry, pat_entry = result.json()["entry"]
    assert pat_entry["response"]["status"] == "200 OK"
    assert pat_entry["resource"]["id"] == patient["id"]
    stored = http.get(f"/Observation/{obs_entry['resource']['id']}").json()
    assert stored["subject"]["reference"] == f"Patient/{patient['id']}"

    none = dict(obs, subject={"reference": f"Patient?identifier={system}|nobody"})
    assert http.post("", json=transaction(entry(none, "POST", "Observation"))).status_code == 404
    http.post("/Patient", json={"resourceType": "Patient", "identifier": ident(system, "p")})
    many = http.post("", json=transaction(entry(obs, "POST", "Observation")))
    assert many.status_code == 412
    assert "Bundle.entry[0]" in many.json()["issue"][0]["diagnostics"]


def test_conditional_update_in_transaction_is_referenced(http: httpx.Client) -> None:
    system = f"urn:test:{uuid.uuid4().hex}"
    urn = f"urn:uuid:{uuid.uuid4()}"
    bundle = transaction(
        entry(
            {"resourceType": "Patient", "identifier": ident(system, "x")},
            "PUT",
            f"Patient?identifier={system}|x",
            urn,
        ),
        entry(
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "x"},
                "subject": {"reference": urn},
            },
            "POST",
            "Observation",
        ),
    )
    first = http.post("", json=bundle).json()
    pid = first["entry"][0]["resource"]["id"]
    assert first["entry"][0]["response"]["status"] == "201 Created"
    assert first["entry"][1]["resource"]["subject"]["reference"] == f"Patient/{pid}"
    second = http.post("", json=bundle).json()
    assert second["entry"][0]["resource"]["id"] == pid
    assert second["entry"][0]["response"]["status"] == "200 OK"


def test_transaction_failures_roll_back_earlier_entries(http: httpx.Client) -> None:
    system = f"urn:test:{uuid.uuid4().hex}"
    stale = http.post(
        "/Patient", json={"resourceType": "Patient", "identifier": ident(system, "s")}
    ).json()
    bundle = transaction(
        entry({"resourceType": "Patient", "identifier": ident(system, "new")}, "POST", "Patient"),
        entry({**stale, "active": True}, "PUT", f"Patient/{stale['id']}", ifMatch='W/"9"'),
    )
    response = http.post("", json=bundle)
    assert response.status_code == 412
    assert count(http, "Patient", identifier=f"{system}|new") == 0
    patch = transaction(
        entry({"resourceType": "Patient", "identifier": ident(system, "new")}, "POST", "Patient"),
        entry(
            {
                "resourceType": "Parameters",
                "parameter": [
                    {
                        "name": "operation",
                        "part": [
                            {"name": "type", "valueCode": "move"},
                            {"name": "path", "valueString": "Patient.identifier"},
                        ],
                    }
                ],
            },
            "PATCH",
            f"Patient/{stale['id']}",
        ),
    )
    assert http.post("", json=patch).status_code == 422
    assert count(http, "Patient", identifier=f"{system}|new") == 0


def test_batch_entries_are_independent(http: httpx.Client) -> None:
    system = f"urn:test:{uuid.uuid4().hex}"
    bundle = transaction(
        entry({"resourceType": "Patient", "identifier": ident(system, "ok")}, "POST", "Patient"),
        entry({"resourceType": "Observation", "status": "final"}, "POST", "Observation"),
        {"request": {"method": "GET", "url": "Patient/does-not-exist"}},
        {"request": {"method": "GET", "url": f"Patient?identifier={system}|ok"}},
        entry({"resourceType": "Patient"}, "PATCH", "Patient/x"),
        kind="batch",
    )
    response = http.post("", json=bundle)
    assert response.status_code == 200
    result = response.json()
    assert result["type"] == "batch-response"
    statuses = [e["response"]["status"] for e in result["entry"]]
    assert statuses[0] == "201 Created"
    assert statuses[1].startswith("422")
    assert statuses[2].startswith("404")
    assert statuses[3] == "200 OK"
    assert statuses[4].startswith("400")
    outcome = result["entry"][1]["response"]["outcome"]
    assert outcome["resourceType"] == "OperationOutcome"
    assert "Bundle.entry[1]" in outcome["issue"][0]["diagnostics"]
    assert count(http, "Patient", identifier=f"{system}|ok") == 1
