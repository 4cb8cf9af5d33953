"""Pathways over real HTTP: PUT a PlanDefinition, enrol with $apply, answer and complete
through plain FHIR writes, and let the outbox reactor move the patient on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fhir_server import start_server
from parcours.pathways import PathwayReactor, load_yaml, to_fhir
from parcours.platform import Platform
from parcours.store.outbox import Dispatcher

from .test_engine import NEW_PATHWAY

TOKEN = "pathways-api-token-0123456789"


@pytest.fixture(scope="module")
def served(module_database_url: str) -> Iterator[tuple[str, Platform]]:
    # The shared FHIR test server: its requests are checked against the audit trail.
    for running in start_server(module_database_url, admin_token=TOKEN):
        yield running.base, running.platform


@pytest.fixture(scope="module")
def http(served: tuple[str, Platform]) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=served[0], headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    ) as client:
        yield client


def _plan() -> dict[str, Any]:
    return to_fhir(load_yaml(NEW_PATHWAY))


def _patient(http: httpx.Client, birth: str = "1941-02-03") -> str:
    created = http.post(
        "/Patient", json={"resourceType": "Patient", "gender": "male", "birthDate": birth}
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def _apply(http: httpx.Client, plan_id: str, subject: str) -> httpx.Response:
    return http.post(
        f"/PlanDefinition/{plan_id}/$apply",
        json={
            "resourceType": "Parameters",
            "parameter": [{"name": "subject", "valueString": subject}],
        },
    )


def _drain(platform: Platform) -> None:
    Dispatcher(platform.store, [PathwayReactor()]).drain()


def test_put_plandefinition_then_apply(http: httpx.Client, served: tuple[str, Platform]) -> None:
    plan = _plan()
    put = http.put(f"/PlanDefinition/{plan['id']}", json=plan)
    assert put.status_code in (200, 201), put.text
    patient = _patient(http)
    applied = http.post(
        f"/PlanDefinition/{plan['id']}/$apply",
        json={
            "resourceType": "Parameters",
            "parameter": [
                {"name": "subject", "valueReference": {"reference": f"Patient/{patient}"}}
            ],
        },
    )
    assert applied.status_code == 201, applied.text
    careplan = applied.json()
    assert careplan["resourceType"] == "CarePlan" and careplan["status"] == "active"
    assert careplan["subject"] == {"reference": f"Patient/{patient}"}
    assert applied.headers["Location"].startswith(f"{served[0]}/CarePlan/{careplan['id']}")
    tasks = http.get("/Task", params={"based-on": f"CarePlan/{careplan['id']}"}).json()
    assert [e["resource"]["code"]["coding"][0]["code"] for e in tasks["entry"]] == ["screen"]
    # Enrolling twice is refused with a clear conflict.
    again = _apply(http, plan["id"], f"Patient/{patient}")
    assert again.status_code == 409, again.text
    assert "already enrolled" in again.json()["issue"][0]["diagnostics"]


def test_apply_refusals(http: httpx.Client) -> None:
    plan = _plan()
    assert http.put(f"/PlanDefinition/{plan['id']}", json=plan).status_code in (200, 201)
    no_subject = http.post(
        f"/PlanDefinition/{plan['id']}/$apply", json={"resourceType": "Parameters"}
    )
    assert no_subject.status_code == 400
    assert "subject" in no_subject.json()["issue"][0]["diagnostics"]
    unknown = _apply(http, plan["id"], "Patient/nobody-here")
    assert unknown.status_code == 404
    young = _patient(http, "2001-01-01")
    refused = _apply(http, plan["id"], f"Patient/{young}")
    assert refused.status_code == 422
    assert "over-65" in refused.json()["issue"][0]["diagnostics"]


def test_broken_pathway_plandefinition_is_refused(http: httpx.Client) -> None:
    plan = _plan()
    plan["id"] = "fall-prevention-broken"
    plan["action"][0]["extension"][0]["extension"][0]["valueCode"] = "nowhere"
    response = http.put(f"/PlanDefinition/{plan['id']}", json=plan)
    assert response.status_code == 422
    issues = response.json()["issue"]
    assert any(
        "steps[0].transitions[0].to" in (i.get("expression") or [""])[0]
        or "steps[0].transitions[0].to" in i.get("diagnostics", "")
        for i in issues
    ), issues
    assert http.get(f"/PlanDefinition/{plan['id']}").status_code == 404


def test_rest_answers_move_the_patient_on(http: httpx.Client, served: tuple[str, Platform]) -> None:
    plan = _plan()
    assert http.put(f"/PlanDefinition/{plan['id']}", json=plan).status_code in (200, 201)
    patient = _patient(http, "1939-09-09")
    careplan = _apply(http, plan["id"], f"Patient/{patient}").json()
    task = http.get("/Task", params={"based-on": f"CarePlan/{careplan['id']}"}).json()["entry"][0]
    questionnaire = task["resource"]["input"][0]["valueCanonical"]
    posted = http.post(
        "/QuestionnaireResponse",
        json={
            "resourceType": "QuestionnaireResponse",
            "questionnaire": questionnaire,
            "status": "completed",
            "subject": {"reference": f"Patient/{patient}"},
            "basedOn": [{"reference": f"CarePlan/{careplan['id']}"}],
            "item": [{"linkId": "timedUpAndGoS", "answer": [{"valueDecimal": 21.0}]}],
        },
    )
    assert posted.status_code == 201, posted.text
    _drain(served[1])
    screened = http.get(f"/Task/{task['resource']['id']}").json()
    assert screened["status"] == "completed"
    assert (
        screened["output"][0]["valueReference"]["reference"]
        == f"QuestionnaireResponse/{posted.json()['id']}"
    )
    current = http.get(f"/CarePlan/{careplan['id']}").json()
    steps = [
        p["valueCode"]
        for e in current["extension"]
        if e["url"].endswith("pathway-step-entry")
        for p in e["extension"]
        if p["url"] == "step"
    ]
    assert steps == ["screening", "exercise"]
    # A physiotherapist closes each session with a plain PUT; the reactor follows.
    for _ in range(3):
        bundle = http.get(
            "/Task", params={"based-on": f"CarePlan/{careplan['id']}", "status": "requested"}
        ).json()
        (session,) = [e["resource"] for e in bundle["entry"]]
        session["status"] = "completed"
        assert http.put(f"/Task/{session['id']}", json=session).status_code == 200
        _drain(served[1])
    assert http.get(f"/CarePlan/{careplan['id']}").json()["status"] == "completed"
