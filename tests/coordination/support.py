"""Helpers of the coordination tests: a server handle, clients as a given professional, the
intake form filled in, and a small world (a DAC, another structure, their coordinators, a GP
in the patient's circle, an outsider)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from fhir_server import Server
from parcours.coordination import QUESTIONNAIRE_URL


def create(client: httpx.Client, resource: dict[str, Any]) -> str:
    response = client.post(f"/{resource['resourceType']}", json=resource)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def ref(kind: str, res_id: str) -> dict[str, str]:
    return {"reference": f"{kind}/{res_id}"}


def _choice(link: str, *codes: str) -> dict[str, Any]:
    return {"linkId": link, "answer": [{"valueCoding": {"code": code}} for code in codes]}


def form(
    *,
    urgency: str | None = "routine",
    informed: bool = True,
    reasons: tuple[str, ...] = ("situation-complexe",),
    situation: str = "Chutes répétées, aidante épuisée, retour à domicile à organiser",
    drop: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The intake form as a professional fills it in."""
    items = [
        _choice("demandeur-type", "professionnel"),
        _choice("motif", *reasons),
        {"linkId": "situation", "answer": [{"valueString": situation}]},
        _choice("difficultes", "autonomie", "aidant-epuise"),
        {"linkId": "patient-informe", "answer": [{"valueBoolean": informed}]},
        {"linkId": "telephone-rappel", "answer": [{"valueString": "03 80 00 00 00"}]},
    ]
    if urgency is not None:
        items.append(_choice("urgence", urgency))
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": QUESTIONNAIRE_URL,
        "status": "completed",
        "item": [i for i in items if i["linkId"] not in drop],
    }


def parameters(**values: Any) -> dict[str, Any]:
    """A Parameters body: str values of "Type/id" shape become references, others by type."""
    out: list[dict[str, Any]] = []
    for name, value in values.items():
        if value is None:
            continue
        key = name.replace("_", "-")
        if isinstance(value, dict):
            out.append({"name": key, "resource": value})
        elif isinstance(value, tuple):
            kind, payload = value
            out.append({"name": key, kind: payload})
        elif "/" in str(value) and not str(value).startswith("http"):
            out.append({"name": key, "valueReference": {"reference": value}})
        else:
            out.append({"name": key, "valueString": value})
    return {"resourceType": "Parameters", "parameter": out}


@dataclass
class World:
    server: Server
    dac: str
    other: str
    coordinator: str
    coordinator_role: str
    other_coordinator: str
    other_role: str
    gp: str
    outsider: str
    patient: str

    def coordinator_client(self) -> httpx.Client:
        return self.server.as_(self.coordinator, "coordinator")

    def other_client(self) -> httpx.Client:
        return self.server.as_(self.other_coordinator, "coordinator")

    def gp_client(self) -> httpx.Client:
        return self.server.as_(self.gp)

    def outsider_client(self) -> httpx.Client:
        return self.server.as_(self.outsider)

    def intake(
        self, client: httpx.Client, *, received: str | None = None, **changes: Any
    ) -> httpx.Response:
        body = parameters(
            patient=f"Patient/{self.patient}",
            organization=f"Organization/{self.dac}",
            response=form(**changes),
            received=("valueDateTime", received) if received else None,
        )
        return client.post("/Task/$intake", json=body)

    def new_request(self, *, received: str | None = None) -> str:
        with self.gp_client() as gp:
            response = self.intake(gp, received=received)
        assert response.status_code == 201, response.text
        return str(task_of(response.json())["id"])


def task_of(result: dict[str, Any]) -> dict[str, Any]:
    (task,) = [p["resource"] for p in result["parameter"] if p["name"] == "task"]
    return dict(task)


def business(task: dict[str, Any]) -> str:
    return str(task["businessStatus"]["coding"][0]["code"])


def transition(
    client: httpx.Client,
    task_id: str,
    status: str,
    *,
    reason: str | None = None,
    occurred: str | None = None,
    redirect_to: str | None = None,
) -> httpx.Response:
    body = parameters(
        status=("valueCode", status),
        reason=reason,
        occurred=("valueDateTime", occurred) if occurred else None,
        redirect_to=redirect_to,
    )
    return client.post(f"/Task/{task_id}/$transition", json=body)


def diagnostics(response: httpx.Response) -> str:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    return " | ".join(str(i.get("diagnostics")) for i in body["issue"])
