"""Search over HTTP: searchset Bundles, links and paging, _summary, _elements, POST _search."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from fhir_server import AUTH, Server


@pytest.fixture(scope="module")
def family(http: httpx.Client) -> str:
    """Five patients sharing a unique family name, one with a managing organization."""
    name = f"Fam{uuid.uuid4().hex[:10]}"
    org = http.post("/Organization", json={"resourceType": "Organization", "name": "CPTS"}).json()
    for n in range(5):
        patient: dict[str, Any] = {
            "resourceType": "Patient",
            "name": [{"family": name, "given": [f"P{n}"]}],
            "gender": "female",
            "birthDate": f"195{n}-01-01",
            "text": {
                "status": "generated",
                "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>',
            },
        }
        if n == 0:
            patient["managingOrganization"] = {"reference": f"Organization/{org['id']}"}
        assert http.post("/Patient", json=patient).status_code == 201
    return name


def links(bundle: dict[str, Any]) -> dict[str, str]:
    return {link["relation"]: link["url"] for link in bundle.get("link", [])}


def test_searchset_with_paging(http: httpx.Client, server: Server, family: str) -> None:
    page = http.get(
        "/Patient", params={"family": family, "_count": "2", "_total": "accurate"}
    ).json()
    assert page["resourceType"] == "Bundle"
    assert page["type"] == "searchset"
    assert page["total"] == 5
    assert links(page)["self"].startswith(f"{server.base}/Patient?")
    ids: list[str] = []
    while True:
        for e in page["entry"]:
            assert e["search"]["mode"] == "match"
            assert e["fullUrl"] == f"{server.base}/Patient/{e['resource']['id']}"
            ids.append(e["resource"]["id"])
        nxt = links(page).get("next")
        if nxt is None:
            break
        assert nxt.startswith(server.base)
        page = httpx.get(nxt, headers=AUTH).json()
    assert len(ids) == len(set(ids)) == 5


def test_post_search_form(http: httpx.Client, family: str) -> None:
    response = http.post("/Patient/_search", data={"family": family, "birthdate": "ge1953"})
    assert response.status_code == 200, response.text
    assert len(response.json()["entry"]) == 2
    wrong = http.post("/Patient/_search", json={"family": family})
    assert wrong.status_code == 415


def test_summary_count_and_elements(http: httpx.Client, family: str) -> None:
    counted = http.get("/Patient", params={"family": family, "_summary": "count"}).json()
    assert counted["total"] == 5
    assert "entry" not in counted
    subset = http.get("/Patient", params={"family": family, "_elements": "birthDate"}).json()
    resource = subset["entry"][0]["resource"]
    assert set(resource) == {"resourceType", "id", "meta", "birthDate"}
    assert any(tag["code"] == "SUBSETTED" for tag in resource["meta"]["tag"])
    summary = http.get("/Patient", params={"family": family, "_summary": "true"}).json()
    resource = summary["entry"][0]["resource"]
    assert "text" not in resource
    assert {"name", "gender", "birthDate"} <= set(resource)
    data = http.get("/Patient", params={"family": family, "_summary": "data"}).json()
    assert "text" not in data["entry"][0]["resource"]
    text = http.get("/Patient", params={"family": family, "_summary": "text"}).json()
    assert set(text["entry"][0]["resource"]) == {"resourceType", "id", "meta", "text"}


def test_read_with_elements(http: httpx.Client, family: str) -> None:
    first = http.get("/Patient", params={"family": family, "_count": "1"}).json()["entry"][0]
    pid = first["resource"]["id"]
    read = http.get(f"/Patient/{pid}", params={"_elements": "gender"}).json()
    assert set(read) == {"resourceType", "id", "meta", "gender"}


def test_include(http: httpx.Client, family: str) -> None:
    bundle = http.get(
        "/Patient", params={"family": family, "_include": "Patient:organization"}
    ).json()
    modes = [e["search"]["mode"] for e in bundle["entry"]]
    assert modes.count("match") == 5
    assert modes.count("include") == 1


def test_empty_search(http: httpx.Client) -> None:
    bundle = http.get("/Patient", params={"family": f"nobody{uuid.uuid4().hex}"}).json()
    assert bundle["type"] == "searchset"
    assert bundle.get("entry", []) == []


def test_unknown_parameters_strict_or_lenient(http: httpx.Client, family: str) -> None:
    params = {"family": family, "no-such-param": "1"}
    assert http.get("/Patient", params=params).status_code == 400
    lenient = http.get("/Patient", params=params, headers={"Prefer": "handling=lenient"})
    assert lenient.status_code == 200
    assert lenient.json()["total"] == 5
    assert "no-such-param" not in links(lenient.json())["self"]
