"""Concurrent conditional creates with the same criteria create one resource, not several."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from fhir_server import Server

CLIENTS = 8


def test_concurrent_if_none_exist_creates_exactly_one(server: Server) -> None:
    identifier = {"system": "urn:test:race", "value": "same-person"}
    body = {"resourceType": "Patient", "identifier": [identifier], "gender": "female"}
    headers = {"If-None-Exist": "identifier=urn:test:race|same-person"}

    def create(_: int) -> int:
        with server.client() as client:
            return client.post("/Patient", json=body, headers=headers).status_code

    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = sorted(pool.map(create, range(CLIENTS)))

    # One 201 Created; every other request found it and answered 200 OK.
    assert statuses == [200] * (CLIENTS - 1) + [201]
    with server.client() as client:
        found = client.get("/Patient", params={"identifier": "urn:test:race|same-person"})
    assert found.status_code == 200
    assert len(found.json().get("entry", [])) == 1
