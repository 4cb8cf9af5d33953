"""NdE over FHIR (issue 6): external declarations and Subscriptions from the NdE corpus,
criteria matching, owners' access, and ``$notification-preferences``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server import Server
from parcours.auth import issue_token
from parcours.notify.model import channel_of, endpoint_of, is_notification_request
from parcours.security.principal import Principal
from parcours.store.outbox import Dispatcher

_NDE = "fhir/notification-evenements"


def _drain(server: Server) -> None:
    Dispatcher(server.platform.store, server.platform.handlers).drain()


def _as(server: Server, practitioner: str) -> httpx.Client:
    principal = Principal(
        practitioner, frozenset({"professional"}), practitioner=practitioner, display=practitioner
    )
    token = issue_token(server.platform.store, principal, 600, settings=server.platform.settings)
    return httpx.Client(
        base_url=server.base, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def _create(http: httpx.Client, resource: dict[str, Any]) -> str:
    response = http.post(f"/{resource['resourceType']}", json=resource)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
def nde_dir() -> Any:
    path = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / _NDE
    if not path.is_dir():
        pytest.skip(f"NdE corpus not found at {path}")
    return path


def test_corpus_declaration_is_accepted_and_kept(
    server: Server, http: httpx.Client, nde_dir: Any
) -> None:
    body = json.loads((nde_dir / "CommunicationRequest-com2.json").read_text("utf-8"))
    body.pop("id")
    response = http.post("/CommunicationRequest", json=body)
    assert response.status_code == 201, response.text
    _drain(server)
    # Its contained Patient has no INS: kept, nobody notified.
    found = http.get("/CommunicationRequest", params={"event-type": "SOR"}).json()
    assert not any(is_notification_request(e["resource"]) for e in found.get("entry") or [])


def test_corpus_subscription_becomes_active(
    server: Server, http: httpx.Client, nde_dir: Any
) -> None:
    body = json.loads((nde_dir / "Subscription-sub1.json").read_text("utf-8"))
    body.pop("id")
    sub_id = _create(http, body)
    _drain(server)
    assert http.get(f"/Subscription/{sub_id}").json()["status"] == "active"


def test_subscription_criteria_and_owner_access(server: Server, http: httpx.Client) -> None:
    patient = _create(
        http,
        {"resourceType": "Patient", "name": [{"family": "ABONNE"}], "gender": "female"},
    )
    inside = _create(http, {"resourceType": "Practitioner", "name": [{"family": "Dedans"}]})
    outside = _create(http, {"resourceType": "Practitioner", "name": [{"family": "Dehors"}]})
    _create(
        http,
        {
            "resourceType": "CareTeam",
            "status": "active",
            "subject": {"reference": f"Patient/{patient}"},
            "participant": [{"member": {"reference": f"Practitioner/{inside}"}}],
        },
    )
    subs = {}
    for who, criteria in (
        (inside, "CommunicationRequest?event-type=SOR"),
        (inside, "CommunicationRequest?event-type=DOC"),
        (outside, "CommunicationRequest?event-type=SOR"),
    ):
        with _as(server, f"Practitioner/{who}") as client:
            subs[(who, criteria)] = _create(
                client,
                {
                    "resourceType": "Subscription",
                    "status": "requested",
                    "reason": "test",
                    "criteria": criteria,
                    "channel": {"type": "rest-hook", "endpoint": "https://hook.example/nde"},
                },
            )
    with _as(server, f"Practitioner/{outside}") as client:
        sub = subs[(inside, "CommunicationRequest?event-type=SOR")]
        response = client.delete(f"/Subscription/{sub}")
        assert response.status_code == 403, response.text
    _drain(server)
    declaration = json.loads(
        json.dumps(
            {
                "resourceType": "CommunicationRequest",
                "meta": {
                    "profile": [
                        "https://interop.esante.gouv.fr/ig/fhir/nde/StructureDefinition/nde-eventdeclaration"
                    ]
                },
                "extension": [
                    {
                        "url": "https://interop.esante.gouv.fr/ig/fhir/nde/StructureDefinition/event-type",
                        "valueCodeableConcept": {
                            "coding": [
                                {
                                    "system": "https://mos.esante.gouv.fr/NOS/TRE_R254-TypeEvenement/FHIR/TRE-R254-TypeEvenement",
                                    "code": "SOR",
                                }
                            ]
                        },
                    },
                    {
                        "url": "https://interop.esante.gouv.fr/ig/fhir/nde/StructureDefinition/event-time",
                        "valueDateTime": "2025-03-01T10:00:00Z",
                    },
                ],
                "status": "active",
                "subject": {"reference": f"Patient/{patient}"},
                "payload": [{"contentString": "Sortie"}],
            }
        )
    )
    decl = _create(http, declaration)
    _drain(server)
    found = http.get("/CommunicationRequest", params={"patient": patient, "_count": "100"}).json()
    hooks = [
        e["resource"]
        for e in found.get("entry") or []
        if is_notification_request(e["resource"]) and channel_of(e["resource"]) == "rest-hook"
    ]
    assert [h["basedOn"][0]["reference"] for h in hooks] == [
        f"Subscription/{subs[(inside, 'CommunicationRequest?event-type=SOR')]}"
    ]
    assert endpoint_of(hooks[0]) == "https://hook.example/nde"
    assert hooks[0]["about"] == [{"reference": f"CommunicationRequest/{decl}"}]


def test_notification_preferences(server: Server, http: httpx.Client) -> None:
    me = _create(
        http,
        {
            "resourceType": "Practitioner",
            "name": [{"family": "Prefs"}],
            "telecom": [{"system": "email", "value": "prefs@medecin.mssante.fr"}],
        },
    )
    other = _create(http, {"resourceType": "Practitioner", "name": [{"family": "Autre"}]})
    path = f"/Practitioner/{me}/$notification-preferences"
    with _as(server, f"Practitioner/{me}") as client:
        got = client.get(path).json()
        assert {p["name"]: p.get("valueCode") for p in got["parameter"] if p["name"] == "channel"}
        channels = [p["valueCode"] for p in got["parameter"] if p["name"] == "channel"]
        assert channels == ["inapp", "email"]
        body = {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "channel", "valueCode": "email"},
                {"name": "opt-out", "valueCode": "SOR"},
            ],
        }
        response = client.put(path, json=body)
        assert response.status_code == 200, response.text
        out = response.json()["parameter"]
        assert [p["valueCode"] for p in out if p["name"] == "channel"] == ["email"]
        assert [p["valueCode"] for p in out if p["name"] == "opt-out"] == ["SOR"]
        bad = {"resourceType": "Parameters", "parameter": [{"name": "channel", "valueCode": "fax"}]}
        assert client.put(path, json=bad).status_code == 400
    with _as(server, f"Practitioner/{other}") as client:
        assert client.get(path).status_code == 403
