"""CRUD, history, headers and error statuses over real HTTP (httpx), on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server import AUTH, Server, start_server

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "identifier": [{"system": "urn:oid:1.2.250.1.71.4.2.7", "value": "IPP-1"}],
    "name": [{"family": "Martin", "given": ["Jeanne"]}],
    "gender": "female",
    "birthDate": "1950-04-02",
}


def outcome_codes(response: httpx.Response) -> list[str]:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    return [issue["code"] for issue in body["issue"]]


def new_patient(http: httpx.Client, **extra: Any) -> dict[str, Any]:
    response = http.post("/Patient", json={**PATIENT, **extra})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_create_returns_location_etag_and_last_modified(http: httpx.Client, server: Server) -> None:
    response = http.post("/Patient", json=PATIENT)
    assert response.status_code == 201
    body = response.json()
    assert body["meta"]["versionId"] == "1"
    assert response.headers["ETag"] == 'W/"1"'
    assert response.headers["Location"] == f"{server.base}/Patient/{body['id']}/_history/1"
    assert response.headers["Last-Modified"].endswith("GMT")
    assert response.headers["Content-Type"].startswith("application/fhir+json")
    # The client's JSON is stored as sent (no model round-trip), plus id and meta.
    assert {k: v for k, v in body.items() if k not in ("id", "meta")} == PATIENT


def test_create_ignores_client_id_and_accepts_plain_json(http: httpx.Client) -> None:
    response = http.post(
        "/Patient",
        content=httpx.Request("POST", "http://x", json={**PATIENT, "id": "mine"}).content,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 201
    assert response.json()["id"] != "mine"


def test_read_vread_and_headers(http: httpx.Client) -> None:
    created = new_patient(http)
    response = http.get(f"/Patient/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created
    assert response.headers["ETag"] == 'W/"1"'
    assert "Last-Modified" in response.headers
    assert http.get(f"/Patient/{created['id']}/_history/1").json() == created
    assert http.get(f"/Patient/{created['id']}/_history/2").status_code == 404
    assert http.get(f"/Patient/{created['id']}/_history/abc").status_code == 404
    assert http.get(f"/Patient/{created['id']}", params={"_format": "json"}).status_code == 200
    not_modified = http.get(f"/Patient/{created['id']}", headers={"If-None-Match": 'W/"1"'})
    assert not_modified.status_code == 304


def test_update_with_if_match_and_update_as_create(http: httpx.Client, server: Server) -> None:
    created = new_patient(http)
    pid = created["id"]
    changed = {**created, "active": True}
    response = http.put(f"/Patient/{pid}", json=changed, headers={"If-Match": 'W/"1"'})
    assert response.status_code == 200
    assert response.headers["ETag"] == 'W/"2"'
    assert response.json()["active"] is True
    stale = http.put(
        f"/Patient/{pid}", json=changed | {"active": False}, headers={"If-Match": 'W/"1"'}
    )
    assert stale.status_code == 412
    assert outcome_codes(stale)[-1] == "conflict"
    assert (
        http.put(f"/Patient/{pid}", json=changed, headers={"If-Match": "nope"}).status_code == 400
    )

    client_id = f"client-{uuid.uuid4().hex[:8]}"
    created_by_put = http.put(f"/Patient/{client_id}", json={**PATIENT, "id": client_id})
    assert created_by_put.status_code == 201
    assert created_by_put.headers["Location"] == f"{server.base}/Patient/{client_id}/_history/1"


def test_update_body_must_match_url(http: httpx.Client) -> None:
    assert http.put("/Patient/a1", json={**PATIENT, "id": "a2"}).status_code == 400
    assert http.put("/Patient/a1", json=PATIENT).status_code == 400
    assert (
        http.put(
            "/Patient/a1", json={**PATIENT, "resourceType": "Practitioner", "id": "a1"}
        ).status_code
        == 400
    )
    assert http.post("/Patient", json={"resourceType": "Organization"}).status_code == 400
    assert http.post("/Patient", json=[PATIENT]).status_code == 400


def test_prefer_return(http: httpx.Client) -> None:
    minimal = http.post("/Patient", json=PATIENT, headers={"Prefer": "return=minimal"})
    assert minimal.status_code == 201
    assert minimal.content == b""
    assert "Location" in minimal.headers
    outcome = http.post("/Patient", json=PATIENT, headers={"Prefer": "return=OperationOutcome"})
    assert outcome.status_code == 201
    assert outcome.json()["resourceType"] == "OperationOutcome"
    full = http.post("/Patient", json=PATIENT, headers={"Prefer": "return=representation"})
    assert full.json()["resourceType"] == "Patient"


def test_delete_then_gone_and_history(http: httpx.Client) -> None:
    created = new_patient(http)
    pid = created["id"]
    deleted = http.delete(f"/Patient/{pid}")
    assert deleted.status_code == 204
    assert deleted.headers["ETag"] == 'W/"2"'
    gone = http.get(f"/Patient/{pid}")
    assert gone.status_code == 410
    assert outcome_codes(gone) == ["deleted"]
    # Deleting again (or deleting what never existed) is not an error: 200 + information.
    again = http.delete(f"/Patient/{pid}")
    assert again.status_code == 200
    assert again.json()["issue"][0]["severity"] == "information"
    assert http.delete("/Patient/never-there").status_code == 200
    history = http.get(f"/Patient/{pid}/_history").json()
    assert history["type"] == "history"
    assert history["total"] == 2
    methods = [e["request"]["method"] for e in history["entry"]]
    assert methods == ["DELETE", "POST"]
    assert history["entry"][0]["response"]["status"].startswith("204")
    # Update after delete brings it back.
    back = http.put(f"/Patient/{pid}", json=created)
    assert back.status_code == 201
    assert back.json()["meta"]["versionId"] == "3"


def test_delete_if_match(http: httpx.Client) -> None:
    pid = new_patient(http)["id"]
    assert http.delete(f"/Patient/{pid}", headers={"If-Match": 'W/"7"'}).status_code == 412
    assert http.delete(f"/Patient/{pid}", headers={"If-Match": 'W/"1"'}).status_code == 204


def test_history_type_system_since_and_paging(http: httpx.Client) -> None:
    system = f"urn:test:{uuid.uuid4().hex}"
    first = http.post(
        "/Practitioner",
        json={"resourceType": "Practitioner", "identifier": [{"system": system, "value": "1"}]},
    ).json()
    since = first["meta"]["lastUpdated"]
    for n in range(4):
        http.post(
            "/Practitioner",
            json={
                "resourceType": "Practitioner",
                "identifier": [{"system": system, "value": str(n)}],
            },
        )
    page = http.get("/Practitioner/_history", params={"_since": since, "_count": "2"}).json()
    assert page["total"] == 5
    assert len(page["entry"]) == 2
    links = {link["relation"]: link["url"] for link in page["link"]}
    assert links["next"].startswith("http://127.0.0.1:")
    seen = [e["fullUrl"] for e in page["entry"]]
    while "next" in links:
        page = httpx.get(links["next"], headers=AUTH).json()
        seen += [e["fullUrl"] for e in page["entry"]]
        links = {link["relation"]: link["url"] for link in page["link"]}
    assert len(set(seen)) == 5
    at = http.get("/Practitioner/_history", params={"_at": since}).json()
    assert all(e["response"]["lastModified"] <= since for e in at.get("entry", []))
    system_history = http.get("/_history", params={"_since": since, "_count": "1"}).json()
    assert system_history["total"] >= 5
    assert len(system_history["entry"]) == 1
    assert http.get("/_history", params={"_since": "not-a-date"}).status_code == 400
    assert http.get("/_history", params={"_count": "-1"}).status_code == 400
    assert http.get("/Patient/unknown-id/_history").status_code == 404


def test_conditional_create(http: httpx.Client) -> None:
    value = uuid.uuid4().hex
    ident = {"identifier": [{"system": "urn:test:cc", "value": value}]}
    condition = {"If-None-Exist": f"identifier=urn:test:cc|{value}"}
    first = http.post("/Patient", json={**PATIENT, **ident}, headers=condition)
    assert first.status_code == 201
    second = http.post("/Patient", json={**PATIENT, **ident}, headers=condition)
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    http.post("/Patient", json={**PATIENT, **ident})  # a duplicate on purpose
    third = http.post("/Patient", json={**PATIENT, **ident}, headers=condition)
    assert third.status_code == 412
    bad = http.post("/Patient", json=PATIENT, headers={"If-None-Exist": "nosuchparam=1"})
    assert bad.status_code == 400


def test_conditional_update_and_delete(http: httpx.Client) -> None:
    value = uuid.uuid4().hex
    ident = {"identifier": [{"system": "urn:test:cu", "value": value}]}
    criteria = {"identifier": f"urn:test:cu|{value}"}
    created = http.put("/Patient", params=criteria, json={**PATIENT, **ident})
    assert created.status_code == 201
    pid = created.json()["id"]
    updated = http.put("/Patient", params=criteria, json={**PATIENT, **ident, "active": True})
    assert updated.status_code == 200
    assert updated.json()["id"] == pid
    assert updated.json()["meta"]["versionId"] == "2"
    wrong_id = http.put("/Patient", params=criteria, json={**PATIENT, **ident, "id": "other"})
    assert wrong_id.status_code == 400
    assert http.put("/Patient", json=PATIENT).status_code == 400  # no criteria at all
    deleted = http.delete("/Patient", params=criteria)
    assert deleted.status_code == 204
    assert http.get(f"/Patient/{pid}").status_code == 410
    assert http.delete("/Patient", params=criteria).status_code == 200
    for _ in range(2):
        http.post("/Patient", json={**PATIENT, **ident})
    assert http.delete("/Patient", params=criteria).status_code == 412
    assert http.put("/Patient", params=criteria, json={**PATIENT, **ident}).status_code == 412


def test_invalid_resources_are_422_with_locations(http: httpx.Client) -> None:
    response = http.post(
        "/Patient",
        json={
            "resourceType": "Patient",
            "birthDate": "02/04/1950",
            "nickname": "x",
            "name": [{"family": 3}],
        },
    )
    assert response.status_code == 422
    issues = response.json()["issue"]
    where = {loc for issue in issues for loc in issue.get("expression", [])}
    assert {"Patient.birthDate", "Patient.nickname", "Patient.name[0].family"} <= where
    missing = http.post("/Observation", json={"resourceType": "Observation", "status": "final"})
    assert missing.status_code == 422
    assert "required" in outcome_codes(missing)


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("POST", "/Patient", {"content": b"{not json"}, 400),
        ("POST", "/Patient", {"content": b""}, 400),
        ("POST", "/Patient", {"content": b"\xff\xfe\x00"}, 400),
        ("POST", "/Patient", {"content": b'"just a string"'}, 400),
        ("POST", "/Patient", {"content": b"[" * 5000}, 400),
        ("POST", "/Patient", {"content": b'{"resourceType":"Patient","id":"a\\u0000"}'}, 400),
        (
            "POST",
            "/Patient",
            {"content": b"<Patient/>", "headers": {"Content-Type": "application/fhir+xml"}},
            415,
        ),
        ("POST", "/Patient", {"content": b"x=1", "headers": {"Content-Type": "text/plain"}}, 415),
        ("GET", "/Patient/x", {"headers": {"Accept": "application/fhir+xml"}}, 406),
        ("GET", "/Patient/x", {"params": {"_format": "xml"}}, 406),
        ("GET", "/NotAType/1", {}, 404),
        ("GET", "/Patient/1/foo/bar/baz", {}, 404),
        ("GET", "/Patient/" + "x" * 5000, {}, 404),
        ("PUT", "/Patient/" + "x" * 65, {"json": {"resourceType": "Patient", "id": "x" * 65}}, 400),
        ("PUT", "/Patient/bad%20id", {"json": {"resourceType": "Patient", "id": "bad id"}}, 400),
        ("PATCH", "/Patient/1", {"json": {"resourceType": "Patient"}}, 400),
        ("PATCH", "/Patient", {"json": []}, 405),
        ("DELETE", "/metadata", {}, 405),
        ("GET", "/Patient", {"params": {"no-such-param": "1"}}, 400),
        ("GET", "/Patient", {"params": {"_count": "many"}}, 400),
        ("GET", "/Patient", {"params": {"birthdate": "not-a-date"}}, 400),
        ("GET", "/Patient", {"params": {"name": "a\x00b"}}, 400),
        ("POST", "", {"json": {"resourceType": "Bundle", "type": "document"}}, 400),
        ("POST", "", {"json": {"resourceType": "Patient"}}, 400),
        ("POST", "", {"json": {"resourceType": "Bundle", "type": "batch", "entry": [{}]}}, 400),
        (
            "POST",
            "",
            {"json": {"resourceType": "Bundle", "type": "transaction", "entry": "x"}},
            400,
        ),
    ],
)
def test_bad_input_is_never_a_500(
    http: httpx.Client, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    response = http.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    if status == 405:
        assert response.headers["Allow"]


def test_garbage_resources_get_4xx(http: httpx.Client) -> None:
    garbage: list[Any] = [
        {},
        {"resourceType": 5},
        {"resourceType": "Patient", "name": "x"},
        {"resourceType": "Patient", "extension": [{"url": {"nested": True}}]},
        {"resourceType": "Patient", "contained": [{"resourceType": "Nope"}]},
        {"resourceType": "Patient", "meta": "x"},
        {"resourceType": "Patient", "text": {"status": "generated", "div": 7}},
        {"resourceType": "Patient", "birthDate": "1" * 10_000},
    ]
    for body in garbage:
        response = http.post("/Patient", json=body)
        assert 400 <= response.status_code < 500, (body, response.text)
        assert response.json()["resourceType"] == "OperationOutcome"


def test_authentication(server: Server) -> None:
    with httpx.Client(base_url=server.base) as anonymous:
        metadata = anonymous.get("/metadata")
        assert metadata.status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
            response = anonymous.get("/Patient/1", headers=headers)
            assert response.status_code == 401
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert outcome_codes(response) == ["login"]
        assert anonymous.post("", json={"resourceType": "Bundle"}).status_code == 401


def test_bare_base_url_takes_bundles(server: Server) -> None:
    response = httpx.post(
        server.base, json={"resourceType": "Bundle", "type": "batch"}, headers=AUTH
    )
    assert response.status_code == 200
    assert response.json()["type"] == "batch-response"


def test_patch_fhirpath_and_json_patch(http: httpx.Client) -> None:
    pid = new_patient(http)["id"]
    fhirpath = {
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "operation",
                "part": [
                    {"name": "type", "valueCode": "replace"},
                    {"name": "path", "valueString": "Patient.gender"},
                    {"name": "value", "valueCode": "male"},
                ],
            },
            {
                "name": "operation",
                "part": [
                    {"name": "type", "valueCode": "add"},
                    {"name": "path", "valueString": "Patient"},
                    {"name": "name", "valueString": "identifier"},
                    {
                        "name": "value",
                        "part": [
                            {"name": "system", "valueUri": "urn:test:x"},
                            {"name": "value", "valueString": "2"},
                        ],
                    },
                ],
            },
            {
                "name": "operation",
                "part": [
                    {"name": "type", "valueCode": "delete"},
                    {"name": "path", "valueString": "Patient.birthDate"},
                ],
            },
        ],
    }
    patched = http.patch(f"/Patient/{pid}", json=fhirpath, headers={"If-Match": 'W/"1"'})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["gender"] == "male"
    assert body["identifier"][-1] == {"system": "urn:test:x", "value": "2"}
    assert "birthDate" not in body
    assert body["meta"]["versionId"] == "2"
    json_patch = [
        {"op": "test", "path": "/gender", "value": "male"},
        {"op": "replace", "path": "/name/0/family", "value": "Durand"},
        {"op": "add", "path": "/active", "value": True},
    ]
    response = http.patch(
        f"/Patient/{pid}",
        content=httpx.Request("PATCH", "http://x", json=json_patch).content,
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"][0]["family"] == "Durand"
    assert response.json()["active"] is True
    failed_test = [{"op": "test", "path": "/gender", "value": "female"}]
    assert http.patch(f"/Patient/{pid}", json=failed_test).status_code == 412
    invalid = [{"op": "add", "path": "/nickname", "value": "x"}]
    assert http.patch(f"/Patient/{pid}", json=invalid).status_code == 422
    assert (
        http.patch(
            f"/Patient/{pid}", json=[{"op": "replace", "path": "/id", "value": "y"}]
        ).status_code
        == 422
    )
    assert (
        http.patch(f"/Patient/{pid}", json=[{"op": "remove", "path": "/nope"}]).status_code == 422
    )
    assert (
        http.patch(f"/Patient/{pid}", json=json_patch, headers={"If-Match": 'W/"1"'}).status_code
        == 412
    )
    assert http.patch("/Patient/unknown-patient", json=json_patch).status_code == 404


def test_head_and_pretty(http: httpx.Client) -> None:
    pid = new_patient(http)["id"]
    head = http.head(f"/Patient/{pid}")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["ETag"] == 'W/"1"'
    pretty = http.get(f"/Patient/{pid}", params={"_pretty": "true"})
    assert pretty.text.startswith('{\n  "')


def test_production_links_use_the_configured_base(tmp_path: Path) -> None:
    servers = start_server(
        f"sqlite:///{tmp_path / 'prod.db'}", production=True, base_url="https://parcours.example"
    )
    server = next(servers)
    try:
        with server.client() as client:
            created = client.post("/Patient", json=PATIENT)
            assert created.headers["Location"].startswith("https://parcours.example/fhir/Patient/")
    finally:
        servers.close()


def test_without_admin_token_nothing_but_metadata(tmp_path: Path) -> None:
    servers = start_server(f"sqlite:///{tmp_path / 'closed.db'}", admin_token=None)
    server = next(servers)
    try:
        with server.client() as client:
            assert client.get("/metadata").status_code == 200
            assert client.get("/Patient").status_code == 401
            assert client.post("/Patient", json=PATIENT).status_code == 401
    finally:
        servers.close()
