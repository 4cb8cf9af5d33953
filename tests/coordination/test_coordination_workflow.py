"""Triage, assignment, planned actions, redirection and the pathway link, over real HTTP."""

from __future__ import annotations

from typing import Any

from .support import World, business, create, diagnostics, parameters, ref, transition

EXT_COORDINATOR = "https://parcours.sante.fr/fhir/StructureDefinition/coordination-coordinator"
EXT_SLA = "https://parcours.sante.fr/fhir/StructureDefinition/coordination-sla"


def _sla(task: dict[str, Any]) -> dict[str, str]:
    (ext,) = [e for e in task["extension"] if e["url"] == EXT_SLA]
    return {s["url"]: s["valueDateTime"] for s in ext["extension"]}


def test_triage_sets_priority_and_due_times(world: World) -> None:
    task_id = world.new_request(received="2025-02-03T09:00:00Z")
    with world.coordinator_client() as coordinator:
        task = coordinator.get(f"/Task/{task_id}").json()
        assert task["priority"] == "routine"
        assert _sla(task) == {
            "first-contact": "2025-02-05T09:00:00.000Z",
            "decision": "2025-02-10T09:00:00.000Z",
        }
        body = parameters(priority=("valueCode", "asap"))
        triaged = coordinator.post(f"/Task/{task_id}/$triage", json=body)
        assert triaged.status_code == 200, triaged.text
        task = triaged.json()
        assert task["priority"] == "asap"
        assert _sla(task) == {
            "first-contact": "2025-02-03T17:00:00.000Z",
            "decision": "2025-02-04T09:00:00.000Z",
        }
        assert task["restriction"]["period"]["end"] == "2025-02-04T09:00:00.000Z"
        bad = coordinator.post(
            f"/Task/{task_id}/$triage", json=parameters(priority=("valueCode", "soon"))
        )
        assert bad.status_code == 400
        assert "priority must be one of" in diagnostics(bad)
    with world.gp_client() as gp:
        assert gp.post(f"/Task/{task_id}/$triage", json=body).status_code == 403


def test_assignment_to_a_coordinator_and_to_another_structure(world: World) -> None:
    task_id = world.new_request()
    with world.coordinator_client() as coordinator:
        wrong = coordinator.post(
            f"/Task/{task_id}/$assign",
            json=parameters(coordinator=f"PractitionerRole/{world.other_role}"),
        )
        assert wrong.status_code == 400
        assert f"not an active role of Organization/{world.dac}" in diagnostics(wrong)
        mine = coordinator.post(
            f"/Task/{task_id}/$assign",
            json=parameters(coordinator=f"PractitionerRole/{world.coordinator_role}"),
        )
        assert mine.status_code == 200, mine.text
        coordinator_ext = [e for e in mine.json()["extension"] if e["url"] == EXT_COORDINATOR]
        assert coordinator_ext == [
            {
                "url": EXT_COORDINATOR,
                "valueReference": {"reference": f"PractitionerRole/{world.coordinator_role}"},
            }
        ]
        # Handing the request over to the other structure, with its coordinator.
        handed = coordinator.post(
            f"/Task/{task_id}/$assign",
            json=parameters(
                organization=f"Organization/{world.other}",
                coordinator=f"PractitionerRole/{world.other_role}",
            ),
        )
        assert handed.status_code == 200, handed.text
        assert handed.json()["owner"] == {"reference": f"Organization/{world.other}"}
        # Now it is theirs: the first structure no longer moves it.
        assert transition(coordinator, task_id, "under-analysis").status_code == 403
    with world.other_client() as other:
        assert other.get(f"/Task/{task_id}").status_code == 200
        assert transition(other, task_id, "under-analysis").status_code == 200
        assert transition(other, task_id, "accepted").status_code == 200
        late = other.post(
            f"/Task/{task_id}/$assign",
            json=parameters(organization=f"Organization/{world.dac}"),
        )
        assert late.status_code == 409
        assert "only before a decision" in diagnostics(late)


def test_redirection_opens_a_request_at_the_other_structure(world: World) -> None:
    task_id = world.new_request()
    with world.coordinator_client() as coordinator:
        response = transition(
            coordinator,
            task_id,
            "redirected",
            reason="relève de la CPTS du secteur",
            redirect_to=f"Organization/{world.other}",
        )
        assert response.status_code == 200, response.text
        task = response.json()
        outputs = [o["valueReference"]["reference"] for o in task["output"]]
        assert outputs[0] == f"Organization/{world.other}"
        new_id = outputs[1].split("/", 1)[1]
        request = coordinator.get(f"/{task['focus']['reference']}").json()
        assert request["status"] == "active"  # still being handled, elsewhere
    with world.other_client() as other:
        fresh = other.get(f"/Task/{new_id}").json()
        assert business(fresh) == "received"
        assert fresh["owner"] == {"reference": f"Organization/{world.other}"}
        assert fresh["focus"] == task["focus"]
        assert transition(other, new_id, "under-analysis").status_code == 200


def test_planned_actions_and_pathway_link(world: World) -> None:
    task_id = world.new_request()
    with world.coordinator_client() as coordinator:
        for step in ("under-analysis", "accepted"):
            assert transition(coordinator, task_id, step).status_code == 200
        planned = coordinator.post(
            f"/Task/{task_id}/$plan-action",
            json=parameters(
                description="Visite à domicile d'évaluation",
                owner=f"PractitionerRole/{world.coordinator_role}",
                due=("valueDate", "2025-03-01"),
            ),
        )
        assert planned.status_code == 201, planned.text
        action = planned.json()
        assert action["partOf"] == [{"reference": f"Task/{task_id}"}]
        assert action["for"] == {"reference": f"Patient/{world.patient}"}
        listed = coordinator.get("/Task", params={"part-of": f"Task/{task_id}"}).json()
        assert [e["resource"]["id"] for e in listed["entry"]] == [action["id"]]
        # A child Task written by hand for another patient is refused.
        with world.server.admin() as admin:
            stranger = create(admin, {"resourceType": "Patient", "name": [{"family": "Autre"}]})
        foreign = {k: v for k, v in action.items() if k not in ("id", "meta")}
        foreign["for"] = ref("Patient", stranger)
        with world.server.admin() as admin:
            response = admin.post("/Task", json=foreign)
            assert response.status_code == 422
            assert "for the patient of its request" in diagnostics(response)
        plan = create(
            coordinator,
            {
                "resourceType": "CarePlan",
                "status": "active",
                "intent": "plan",
                "subject": ref("Patient", world.patient),
            },
        )
        linked = coordinator.post(
            f"/Task/{task_id}/$link-pathway", json=parameters(careplan=f"CarePlan/{plan}")
        )
        assert linked.status_code == 200, linked.text
        assert linked.json()["output"][-1]["valueReference"] == {"reference": f"CarePlan/{plan}"}
        # Closed: no more actions.
        assert transition(coordinator, task_id, "closed").status_code == 200
        closed = coordinator.post(
            f"/Task/{task_id}/$plan-action", json=parameters(description="Encore une")
        )
        assert closed.status_code == 409
        assert "'closed'" in diagnostics(closed)
