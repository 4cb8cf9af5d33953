"""Intake over real HTTP: the form, the resources written together, who may send and see."""

from __future__ import annotations

from .support import World, business, diagnostics, form, parameters, task_of, transition


def test_intake_writes_request_task_and_form_together(world: World) -> None:
    with world.gp_client() as gp:
        response = world.intake(gp, urgency="urgent")
        assert response.status_code == 201, response.text
        result = {p["name"]: p["resource"] for p in response.json()["parameter"]}
        task, sr, qr = result["task"], result["serviceRequest"], result["questionnaireResponse"]
        assert response.headers["Location"].split("/fhir/")[1].startswith(f"Task/{task['id']}/")
        assert (business(task), task["status"], task["priority"]) == (
            "received",
            "requested",
            "urgent",
        )
        assert task["focus"]["reference"] == f"ServiceRequest/{sr['id']}"
        assert task["for"]["reference"] == f"Patient/{world.patient}"
        assert task["owner"]["reference"] == f"Organization/{world.dac}"
        assert task["requester"]["reference"] == f"Practitioner/{world.gp}"
        assert sr["subject"]["reference"] == f"Patient/{world.patient}"
        assert sr["priority"] == "urgent"
        assert sr["supportingInfo"] == [{"reference": f"QuestionnaireResponse/{qr['id']}"}]
        assert qr["subject"]["reference"] == f"Patient/{world.patient}"
        # The DAC was not in the patient's circle: intake opened one it manages.
        team = result["careTeam"]
        assert team["managingOrganization"] == [{"reference": f"Organization/{world.dac}"}]
        # Everything is stored, readable by the requester.
        for res in (task, sr, qr, team):
            got = gp.get(f"/{res['resourceType']}/{res['id']}")
            assert got.status_code == 200, got.text
    with world.coordinator_client() as coordinator:
        assert coordinator.get(f"/Task/{task['id']}").status_code == 200
        board = coordinator.get(
            "/Task",
            params={"owner": f"Organization/{world.dac}", "business-status": "received"},
        )
        assert [e["resource"]["id"] for e in board.json()["entry"]] == [task["id"]]
    # A second request to the same structure reuses its circle.
    with world.gp_client() as gp:
        again = world.intake(gp)
        assert "careTeam" not in {p["name"] for p in again.json()["parameter"]}


def test_a_badly_filled_form_is_refused_with_every_problem(world: World) -> None:
    with world.gp_client() as gp:
        response = world.intake(gp, drop=("motif", "situation"), reasons=("inconnu",))
        assert response.status_code == 422
        text = diagnostics(response)
        assert "question motif" in text and "question situation" in text
        uninformed = world.intake(gp, informed=False)
        assert uninformed.status_code == 422
        assert "must be informed" in diagnostics(uninformed)
        wrong = gp.post(
            "/Task/$intake",
            json={
                "resourceType": "Parameters",
                "parameter": [{"name": "patient"}, {"name": "response", "resource": form()}],
            },
        )
        assert wrong.status_code == 400
        assert "patient needs valueReference" in diagnostics(wrong)
        # Nothing was written by the refused intakes.
        tasks = gp.get("/Task", params={"patient": f"Patient/{world.patient}"}).json()
        assert tasks.get("total", 0) == 0


def test_intake_is_for_the_patients_one_sees_or_by_the_receiving_structure(world: World) -> None:
    with world.outsider_client() as outsider:
        refused = world.intake(outsider)
        assert refused.status_code == 403, refused.text
    # A DAC coordinator takes a phone call for a patient the DAC does not follow yet.
    with world.coordinator_client() as coordinator:
        body = world.intake(coordinator).json()
        assert body["resourceType"] == "Parameters", body
        task = task_of(body)
        assert task["owner"]["reference"] == f"Organization/{world.dac}"
    # …but a coordinator cannot address a request to a structure that is not theirs for a
    # patient they do not see.
    with world.other_client() as other:
        assert world.intake(other).status_code == 403


def test_other_structures_neither_see_nor_move_a_request(world: World) -> None:
    task_id = world.new_request()
    with world.other_client() as other:
        assert other.get(f"/Task/{task_id}").status_code == 403
        response = transition(other, task_id, "under-analysis")
        assert response.status_code == 403, response.text
    with world.outsider_client() as outsider:
        assert outsider.get(f"/Task/{task_id}").status_code == 403
    # The GP sees the request he sent but only the structure's coordinators move it.
    with world.gp_client() as gp:
        assert gp.get(f"/Task/{task_id}").status_code == 200
        response = transition(gp, task_id, "under-analysis")
        assert response.status_code == 403
        assert f"coordinator of Organization/{world.dac}" in diagnostics(response)
    with world.coordinator_client() as coordinator:
        assert transition(coordinator, task_id, "under-analysis").status_code == 200


def test_a_carer_or_the_patient_as_requester(world: World) -> None:
    with world.server.admin() as admin:
        carer = admin.post(
            "/RelatedPerson",
            json={
                "resourceType": "RelatedPerson",
                "patient": {"reference": f"Patient/{world.patient}"},
            },
        ).json()["id"]
        stranger = admin.post(
            "/Patient", json={"resourceType": "Patient", "name": [{"family": "Voisin"}]}
        ).json()["id"]
    with world.coordinator_client() as coordinator:
        body = parameters(
            patient=f"Patient/{world.patient}",
            organization=f"Organization/{world.dac}",
            requester=f"RelatedPerson/{carer}",
            response=form(),
        )
        response = coordinator.post("/Task/$intake", json=body)
        assert response.status_code == 201, response.text
        result = {p["name"]: p["resource"] for p in response.json()["parameter"]}
        assert result["serviceRequest"]["requester"] == {"reference": f"RelatedPerson/{carer}"}
        assert result["questionnaireResponse"]["source"] == {"reference": f"RelatedPerson/{carer}"}
        # The history says who recorded it: the coordinator who took the call.
        (entry,) = [e for e in result["task"]["extension"] if e["url"].endswith("history")]
        author = [s for s in entry["extension"] if s["url"] == "author"]
        assert author[0]["valueReference"] == {"reference": f"Practitioner/{world.coordinator}"}
        body = parameters(
            patient=f"Patient/{world.patient}",
            organization=f"Organization/{world.dac}",
            requester=f"Patient/{stranger}",
            response=form(),
        )
        response = coordinator.post("/Task/$intake", json=body)
        assert response.status_code == 400
        assert "neither the patient nor one of their relatives" in diagnostics(response)
