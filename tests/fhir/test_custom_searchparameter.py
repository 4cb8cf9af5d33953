"""A SearchParameter POSTed by a client becomes searchable at once, over HTTP, and the
CapabilityStatement says so."""

from __future__ import annotations

import httpx

from fhir_server import Server

PARAM = {
    "resourceType": "SearchParameter",
    "url": "https://parcours.example/fhir/SearchParameter/patient-nickname",
    "name": "nickname",
    "status": "active",
    "description": "Usual given names (the name a coordinator calls the patient by)",
    "code": "nickname",
    "base": ["Patient"],
    "type": "string",
    "expression": "Patient.name.where(use='nickname').given",
}


def _ids(response: httpx.Response) -> set[str]:
    assert response.status_code == 200, response.text
    return {e["resource"]["id"] for e in response.json().get("entry", [])}


def test_posted_searchparameter_is_searchable_and_declared(server: Server) -> None:
    with server.client() as client:
        before = client.post(
            "/Patient",
            json={
                "resourceType": "Patient",
                "name": [{"use": "nickname", "given": ["Mimi"]}, {"family": "DURAND"}],
            },
        ).json()["id"]
        refused = client.get("/Patient", params={"nickname": "mimi"})
        assert refused.status_code == 400  # unknown parameter until it is defined

        assert client.post("/SearchParameter", json=PARAM).status_code == 201
        after = client.post(
            "/Patient",
            json={
                "resourceType": "Patient",
                "name": [{"use": "nickname", "given": ["Mimosa"]}],
            },
        ).json()["id"]

        # Resources stored before the definition are found as well as those written after.
        assert _ids(client.get("/Patient", params={"nickname": "mim"})) == {before, after}
        assert _ids(client.get("/Patient", params={"nickname:exact": "Mimi"})) == {before}

        statement = client.get("/metadata").json()
        patient = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")
        declared = {p["name"]: p for p in patient["searchParam"]}
        assert declared["nickname"]["definition"] == PARAM["url"]
        assert declared["nickname"]["type"] == "string"
