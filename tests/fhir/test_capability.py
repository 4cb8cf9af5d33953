"""The CapabilityStatement tells the truth: every type and search parameter of the registry."""

from __future__ import annotations

import httpx

from fhir_server import Server


def test_metadata_lists_everything_without_authentication(server: Server) -> None:
    response = httpx.get(f"{server.base}/metadata")
    assert response.status_code == 200
    cs = response.json()
    assert cs["resourceType"] == "CapabilityStatement"
    assert (cs["fhirVersion"], cs["status"], cs["kind"]) == ("4.0.1", "active", "instance")
    assert "json" in cs["format"]
    rest = cs["rest"][0]
    assert {i["code"] for i in rest["interaction"]} == {"transaction", "batch", "history-system"}
    registry = server.platform.registry
    by_type = {r["type"]: r for r in rest["resource"]}
    assert set(by_type) == set(registry.resource_types())
    assert len(by_type) >= 145  # all of R4
    patient = by_type["Patient"]
    assert {i["code"] for i in patient["interaction"]} >= {
        "read",
        "vread",
        "update",
        "delete",
        "create",
        "search-type",
        "history-instance",
        "history-type",
    }
    assert patient["conditionalCreate"] is True
    assert patient["conditionalUpdate"] is True
    assert patient["conditionalDelete"] == "single"
    params = {p["name"]: p for p in patient["searchParam"]}
    for code, param in registry.for_type("Patient").items():
        assert params[code]["definition"] == param.url
        assert params[code]["type"] == param.type
    assert params["identifier"]["type"] == "token"


def test_metadata_is_valid_r4(server: Server) -> None:
    from parcours.fhir.validation import structure_issues

    assert structure_issues(httpx.get(f"{server.base}/metadata").json()) == []


def test_metadata_declares_the_operations_of_every_workflow(server: Server) -> None:
    rest = httpx.get(f"{server.base}/metadata").json()["rest"][0]
    declared = {
        r["type"]: {op["name"]: op["definition"] for op in r.get("operation", [])}
        for r in rest["resource"]
    }
    assert {"match", "merge", "unmerge", "everything", "break-glass", "access-report"} <= set(
        declared["Patient"]
    )
    assert {"ppcs-html", "ppcs-pdf", "ppcs-sign"} <= set(declared["CarePlan"])
    assert declared["PlanDefinition"]["apply"] == (
        "http://hl7.org/fhir/OperationDefinition/PlanDefinition-apply"
    )
    assert {"intake", "transition"} <= set(declared["Task"])
    assert "coordination-report" in declared["Organization"]
    # A type whose operations are not served declares none.
    assert "operation" not in next(r for r in rest["resource"] if r["type"] == "Observation")
