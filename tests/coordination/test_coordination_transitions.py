"""Every status transition of a coordination request, allowed and refused, over real HTTP.

The expected machine is written here from the issue, independently of the code's table.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from parcours.coordination import TRANSITIONS

from .support import World, business, diagnostics, transition

STATUSES = ("received", "under-analysis", "accepted", "redirected", "refused", "closed")
# (from, to) -> the FHIR Task.status a generic client sees after the move.
ALLOWED = {
    ("received", "under-analysis"): "received",
    ("received", "redirected"): "rejected",
    ("received", "refused"): "rejected",
    ("received", "closed"): "cancelled",
    ("under-analysis", "accepted"): "accepted",
    ("under-analysis", "redirected"): "rejected",
    ("under-analysis", "refused"): "rejected",
    ("under-analysis", "closed"): "cancelled",
    ("accepted", "closed"): "completed",
}
# How to bring a fresh request to each status.
PATH = {
    "received": (),
    "under-analysis": ("under-analysis",),
    "accepted": ("under-analysis", "accepted"),
    "redirected": ("redirected",),
    "refused": ("refused",),
    "closed": ("under-analysis", "accepted", "closed"),
}
NEEDS_REASON = {
    ("received", "redirected"),
    ("received", "refused"),
    ("received", "closed"),
    ("under-analysis", "redirected"),
    ("under-analysis", "refused"),
    ("under-analysis", "closed"),
}


def test_the_code_implements_the_machine_of_the_issue() -> None:
    table = {(a.value, b.value) for a, targets in TRANSITIONS.items() for b in targets}
    assert table == set(ALLOWED)


def _bring(client: httpx.Client, task_id: str, status: str) -> dict[str, Any]:
    task: dict[str, Any] = client.get(f"/Task/{task_id}").json()
    for step in PATH[status]:
        response = transition(client, task_id, step, reason=f"motif {step}")
        assert response.status_code == 200, response.text
        task = response.json()
    assert business(task) == status
    return task


@pytest.mark.parametrize(("start", "goal"), sorted(ALLOWED))
def test_allowed_transition(world: World, start: str, goal: str) -> None:
    task_id = world.new_request()
    with world.coordinator_client() as coordinator:
        before = _bring(coordinator, task_id, start)
        reason = "patient décédé" if goal == "closed" and start != "accepted" else None
        if (start, goal) in NEEDS_REASON:
            reason = reason or f"pour passer à {goal}"
            # Without a reason the move is refused and nothing changes.
            missing = transition(coordinator, task_id, goal)
            assert missing.status_code == 400, missing.text
            assert "needs a reason" in diagnostics(missing)
        response = transition(coordinator, task_id, goal, reason=reason)
        assert response.status_code == 200, response.text
        task = response.json()
        assert business(task) == goal
        assert task["status"] == ALLOWED[(start, goal)]
        assert int(task["meta"]["versionId"]) == int(before["meta"]["versionId"]) + 1
        steps = [
            {s["url"]: s for s in ext["extension"]}
            for ext in task["extension"]
            if ext["url"].endswith("coordination-status-history")
        ]
        assert [s["status"]["valueCode"] for s in steps] == ["received", *PATH[start], goal]
        assert steps[-1]["author"]["valueReference"] == {
            "reference": f"Practitioner/{world.coordinator}"
        }
        if reason:
            assert task["statusReason"] == {"text": reason}
            assert steps[-1]["reason"]["valueString"] == reason
        stored = coordinator.get(f"/Task/{task_id}").json()
        assert stored == task
        request = coordinator.get(f"/{task['focus']['reference']}").json()
        expected_request = {
            "refused": "revoked",
            "redirected": "revoked",
            "closed": "completed" if start == "accepted" else "revoked",
        }.get(goal, "active")
        assert request["status"] == expected_request


@pytest.mark.parametrize("start", STATUSES)
def test_invalid_transitions_are_refused_naming_both_states(world: World, start: str) -> None:
    task_id = world.new_request()
    with world.coordinator_client() as coordinator:
        before = _bring(coordinator, task_id, start)
        refused = [goal for goal in STATUSES if (start, goal) not in ALLOWED]
        assert refused  # every status has at least itself as an invalid target
        for goal in refused:
            response = transition(coordinator, task_id, goal, reason="essai")
            assert response.status_code == 409, (goal, response.text)
            outcome = response.json()
            assert outcome["issue"][0]["code"] == "business-rule"
            assert f"from '{start}' to '{goal}'" in diagnostics(response)
        after = coordinator.get(f"/Task/{task_id}").json()
        assert after == before


def test_an_unknown_status_is_bad_input(world: World) -> None:
    task_id = world.new_request()
    with world.coordinator_client() as coordinator:
        response = transition(coordinator, task_id, "archived")
        assert response.status_code == 400
        assert "'archived' is not a coordination request status" in diagnostics(response)
        assert transition(coordinator, task_id, "under-analysis").status_code == 200


def test_a_transition_cannot_be_dated_before_the_previous_step(world: World) -> None:
    task_id = world.new_request(received="2024-03-01T08:00:00Z")
    with world.coordinator_client() as coordinator:
        early = transition(coordinator, task_id, "under-analysis", occurred="2024-02-28T08:00:00Z")
        assert early.status_code == 422, early.text
        assert "before its previous step" in diagnostics(early)
        future = transition(coordinator, task_id, "under-analysis", occurred="2999-01-01T00:00:00Z")
        assert future.status_code == 422
        assert "in the future" in diagnostics(future)
        ok = transition(coordinator, task_id, "under-analysis", occurred="2024-03-01T10:00:00Z")
        assert ok.status_code == 200
        assert ok.json()["executionPeriod"] == {"start": "2024-03-01T10:00:00.000Z"}
