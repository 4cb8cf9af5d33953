"""Plain REST writes of a request's Task obey the same machine as ``$transition``."""

from __future__ import annotations

import json
from typing import Any

from .support import World, business, diagnostics, transition

HISTORY = "https://parcours.sante.fr/fhir/StructureDefinition/coordination-status-history"
STATUS = "https://parcours.sante.fr/fhir/CodeSystem/statut-demande-coordination"


def _moved(task: dict[str, Any], goal: str, status: str, *, entry: bool = True) -> dict[str, Any]:
    out = {k: v for k, v in task.items() if k != "meta"}
    out["businessStatus"] = {"coding": [{"system": STATUS, "code": goal}]}
    out["status"] = status
    if entry:
        out["extension"] = [
            *task["extension"],
            {
                "url": HISTORY,
                "extension": [
                    {"url": "status", "valueCode": goal},
                    {"url": "at", "valueDateTime": "2025-01-02T10:00:00Z"},
                ],
            },
        ]
    return out


def test_put_follows_the_machine(world: World) -> None:
    task_id = world.new_request(received="2025-01-02T08:00:00Z")
    with world.coordinator_client() as coordinator:
        task = coordinator.get(f"/Task/{task_id}").json()
        # Skipping the analysis: refused, whatever else the body says.
        skip = coordinator.put(f"/Task/{task_id}", json=_moved(task, "accepted", "accepted"))
        assert skip.status_code == 409, skip.text
        assert "from 'received' to 'accepted'" in diagnostics(skip)
        # An allowed move without its history entry: refused, with the remedy.
        bare = coordinator.put(
            f"/Task/{task_id}", json=_moved(task, "under-analysis", "received", entry=False)
        )
        assert bare.status_code == 422
        assert "coordination-status-history" in diagnostics(bare)
        # An allowed move with the wrong Task.status.
        wrong = coordinator.put(
            f"/Task/{task_id}", json=_moved(task, "under-analysis", "in-progress")
        )
        assert wrong.status_code == 422
        assert "Task.status must be 'received'" in diagnostics(wrong)
        # Rewriting the history without a move.
        tampered = {k: v for k, v in task.items() if k != "meta"}
        tampered["extension"] = [
            {
                "url": HISTORY,
                "extension": [
                    {"url": "status", "valueCode": "received"},
                    {"url": "at", "valueDateTime": "2025-01-01T08:00:00Z"},
                ],
            },
            *task["extension"][1:],
        ]
        rewritten = coordinator.put(f"/Task/{task_id}", json=tampered)
        assert rewritten.status_code == 422
        assert "append-only" in diagnostics(rewritten)
        assert coordinator.get(f"/Task/{task_id}").json() == task
        # The complete move, by someone who does not coordinate the structure: 403.
        with world.gp_client() as gp:
            foreign = gp.put(f"/Task/{task_id}", json=_moved(task, "under-analysis", "received"))
            assert foreign.status_code == 403, foreign.text
            assert f"coordinator of Organization/{world.dac}" in diagnostics(foreign)
        # The complete move is accepted.
        good = coordinator.put(f"/Task/{task_id}", json=_moved(task, "under-analysis", "received"))
        assert good.status_code == 200, good.text
        assert business(good.json()) == "under-analysis"
        # A refusal by PUT needs its reason in Task.statusReason.
        current = good.json()
        no_reason = coordinator.put(f"/Task/{task_id}", json=_moved(current, "refused", "rejected"))
        assert no_reason.status_code == 422
        assert "Task.statusReason" in diagnostics(no_reason)
        with_reason = {
            **_moved(current, "refused", "rejected"),
            "statusReason": {"text": "hors champ"},
        }
        assert coordinator.put(f"/Task/{task_id}", json=with_reason).status_code == 200


def test_patch_and_creation_follow_the_machine(world: World) -> None:
    task_id = world.new_request()
    with world.coordinator_client() as coordinator:
        patch = [
            {
                "op": "replace",
                "path": "/businessStatus",
                "value": {"coding": [{"system": STATUS, "code": "closed"}]},
            },
            {"op": "replace", "path": "/status", "value": "completed"},
        ]
        response = coordinator.patch(
            f"/Task/{task_id}",
            content=json.dumps(patch),
            headers={"Content-Type": "application/json-patch+json"},
        )
        assert response.status_code == 422, response.text
        task = coordinator.get(f"/Task/{task_id}").json()
        assert business(task) == "received"
        # Accepted → received by PATCH: 409 naming both states.
        _accept(coordinator, task_id)
        back = [
            {
                "op": "replace",
                "path": "/businessStatus",
                "value": {"coding": [{"system": STATUS, "code": "received"}]},
            }
        ]
        response = coordinator.patch(
            f"/Task/{task_id}",
            content=json.dumps(back),
            headers={"Content-Type": "application/json-patch+json"},
        )
        assert response.status_code == 409
        assert "from 'accepted' to 'received'" in diagnostics(response)
        # A request cannot be created in a later status.
        born_accepted = {
            k: v
            for k, v in coordinator.get(f"/Task/{task_id}").json().items()
            if k not in ("id", "meta")
        }
        created = coordinator.post("/Task", json=born_accepted)
        assert created.status_code == 422
        assert "starts 'received'" in diagnostics(created)


def _accept(client: Any, task_id: str) -> None:
    for step in ("under-analysis", "accepted"):
        assert transition(client, task_id, step).status_code == 200


def test_a_request_is_never_deleted_and_never_changes_patient(world: World) -> None:
    task_id = world.new_request()
    with world.coordinator_client() as coordinator:
        deleted = coordinator.delete(f"/Task/{task_id}")
        assert deleted.status_code == 409
        assert "never deleted" in diagnostics(deleted)
        task = coordinator.get(f"/Task/{task_id}").json()
        moved = {**{k: v for k, v in task.items() if k != "meta"}}
        moved["focus"] = {"reference": "ServiceRequest/autre"}
        response = coordinator.put(f"/Task/{task_id}", json=moved)
        assert response.status_code == 422
        assert "Task.focus" in diagnostics(response)
        plain = {**{k: v for k, v in task.items() if k != "meta"}, "code": {"text": "autre"}}
        response = coordinator.put(f"/Task/{task_id}", json=plain)
        assert response.status_code == 422
        assert "Task.code cannot change" in diagnostics(response)
    # Administrators may delete (erroneous test data, a patient's right to erasure).
    with world.server.admin() as admin:
        assert admin.delete(f"/Task/{task_id}").status_code == 204


def test_only_a_patient_merge_repoints_a_request(world: World) -> None:
    task_id = world.new_request()
    with world.server.admin() as admin:
        survivor = admin.post(
            "/Patient",
            json={
                "resourceType": "Patient",
                "name": [{"family": "Survivant", "given": ["Jeanne"]}],
                "birthDate": "1940-01-01",
                "gender": "female",
            },
        ).json()["id"]
    with world.coordinator_client() as coordinator:
        task = coordinator.get(f"/Task/{task_id}").json()
        moved = {k: v for k, v in task.items() if k != "meta"}
        moved["for"] = {"reference": f"Patient/{survivor}"}
        response = coordinator.put(f"/Task/{task_id}", json=moved)
        assert response.status_code == 422
        assert "Task.for" in diagnostics(response)
    with world.server.admin() as admin:
        merge = {
            "resourceType": "Parameters",
            "parameter": [
                {
                    "name": "source-patient",
                    "valueReference": {"reference": f"Patient/{world.patient}"},
                },
                {"name": "target-patient", "valueReference": {"reference": f"Patient/{survivor}"}},
                {"name": "reason", "valueString": "doublon"},
            ],
        }
        response = admin.post("/Patient/$merge", json=merge)
        assert response.status_code == 200, response.text
        assert admin.get(f"/Task/{task_id}").json()["for"] == {"reference": f"Patient/{survivor}"}


def test_a_transaction_bundle_with_a_bad_request_writes_nothing(world: World) -> None:
    request = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": f"Patient/{world.patient}"},
    }
    task = {
        "resourceType": "Task",
        "status": "accepted",
        "intent": "order",
        "code": {
            "coding": [
                {
                    "system": "https://parcours.sante.fr/fhir/CodeSystem/tache-coordination",
                    "code": "demande-coordination",
                }
            ]
        },
        "businessStatus": {"coding": [{"system": STATUS, "code": "accepted"}]},
        "focus": {"reference": "urn:uuid:0f6c2f4e-2b1a-4f57-9a55-2d7f3c8b1a01"},
        "for": {"reference": f"Patient/{world.patient}"},
        "owner": {"reference": f"Organization/{world.dac}"},
        "extension": [
            {
                "url": HISTORY,
                "extension": [
                    {"url": "status", "valueCode": "accepted"},
                    {"url": "at", "valueDateTime": "2025-01-02T10:00:00Z"},
                ],
            }
        ],
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:0f6c2f4e-2b1a-4f57-9a55-2d7f3c8b1a01",
                "resource": request,
                "request": {"method": "POST", "url": "ServiceRequest"},
            },
            {"resource": task, "request": {"method": "POST", "url": "Task"}},
        ],
    }
    with world.gp_client() as gp:
        response = gp.post("/", json=bundle)
        assert response.status_code == 422, response.text
        assert "starts 'received'" in diagnostics(response)
        found = gp.get("/ServiceRequest", params={"patient": f"Patient/{world.patient}"}).json()
        assert found.get("total", 0) == 0
        # The same Bundle with a request born 'received' goes through.
        task["status"] = "requested"
        task["businessStatus"] = {"coding": [{"system": STATUS, "code": "received"}]}
        task["extension"][0]["extension"][0]["valueCode"] = "received"
        response = gp.post("/", json=bundle)
        assert response.status_code == 200, response.text
        stored = gp.get("/Task", params={"patient": f"Patient/{world.patient}"}).json()
        (entry,) = stored["entry"]
        assert entry["resource"]["focus"]["reference"].startswith("ServiceRequest/")


def test_intake_for_an_unknown_structure_writes_nothing(world: World) -> None:
    with world.gp_client() as gp:
        body = world.intake(gp).request.content  # a valid body, then retargeted
        payload = json.loads(body)
        for p in payload["parameter"]:
            if p["name"] == "organization":
                p["valueReference"] = {"reference": "Organization/inconnue"}
        response = gp.post("/Task/$intake", json=payload)
        assert response.status_code == 400
        assert "organization Organization/inconnue is not known" in diagnostics(response)
        tasks = gp.get("/Task", params={"patient": f"Patient/{world.patient}"}).json()
        assert tasks.get("total") == 1  # only the valid intake above
