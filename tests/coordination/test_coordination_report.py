"""The figures a structure reports, computed from dated requests, over HTTP and the CLI."""

from __future__ import annotations

import json
from typing import Any

import pytest

from parcours.cli import main

from .support import World, create, ref, transition

# (received, [(status, at, reason)]), March 2024 is the period reported.
STORIES: dict[str, tuple[str, list[tuple[str, str, str | None]]]] = {
    "A": (
        "2024-03-01T08:00:00Z",
        [
            ("under-analysis", "2024-03-01T12:00:00Z", None),
            ("accepted", "2024-03-02T08:00:00Z", None),
        ],
    ),
    "B": (
        "2024-03-05T08:00:00Z",
        [
            ("under-analysis", "2024-03-07T09:00:00Z", None),  # 49 h: one hour late
            ("refused", "2024-03-07T10:00:00Z", "hors du territoire"),
        ],
    ),
    "C": ("2024-03-10T08:00:00Z", []),  # never answered: overdue at the end of March
    "D": (
        "2024-02-20T08:00:00Z",
        [
            ("under-analysis", "2024-02-21T08:00:00Z", None),
            ("accepted", "2024-02-22T08:00:00Z", None),
            ("closed", "2024-03-15T08:00:00Z", None),
        ],
    ),
    "E": ("2024-03-30T08:00:00Z", [("under-analysis", "2024-04-02T08:00:00Z", None)]),
}
EXPECTED = {
    "received": 4,  # A B C E
    "handled": 2,  # A accepted, B refused (D was decided in February)
    "decisions": {"accepted": 1, "redirected": 0, "refused": 1, "withdrawn": 0},
    "closed": 1,  # D
    "patientsFollowed": 2,  # A's patient and D's (another one)
    "firstContacts": 2,  # A (4 h) and B (49 h); E's is in April
    "medianHoursToFirstContact": 26.5,
    "lateFirstContacts": 1,
    "medianHoursToDecision": 37.0,  # A 24 h, B 50 h
    "lateDecisions": 0,
    "openAtEnd": 2,  # C and E
    "overdueAtEnd": 1,  # C (E's first contact is due on 1 April)
    "receivedByPriority": {"routine": 4},
}


@pytest.fixture
def reported(world: World) -> World:
    with world.server.admin() as admin:
        second = create(admin, {"resourceType": "Patient", "name": [{"family": "Deuxieme"}]})
        create(
            admin,
            {
                "resourceType": "CareTeam",
                "status": "active",
                "subject": ref("Patient", second),
                "participant": [{"member": ref("Practitioner", world.gp)}],
            },
        )
    first = world.patient
    with world.coordinator_client() as coordinator:
        for name, (received, steps) in STORIES.items():
            world.patient = second if name == "D" else first
            task_id = world.new_request(received=received)
            for status, at, reason in steps:
                response = transition(coordinator, task_id, status, occurred=at, reason=reason)
                assert response.status_code == 200, response.text
    world.patient = first
    return world


def _figures(parameters: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in parameters["parameter"]:
        if "part" in p:
            out[p["name"]] = {q["name"]: q["valueInteger"] for q in p["part"]}
        else:
            value = next(v for k, v in p.items() if k.startswith("value"))
            out[p["name"]] = value
    return out


def test_report_over_fhir(reported: World) -> None:
    url = f"/Organization/{reported.dac}/$coordination-report"
    with reported.coordinator_client() as coordinator:
        response = coordinator.get(url, params={"start": "2024-03-01", "end": "2024-03-31"})
        assert response.status_code == 200, response.text
        figures = _figures(response.json())
        assert {k: figures[k] for k in EXPECTED} == EXPECTED
        assert figures["organization"] == {"reference": f"Organization/{reported.dac}"}
        # February alone: D received, contacted and accepted.
        feb = _figures(coordinator.get(url, params={"start": "2024-02", "end": "2024-02"}).json())
        assert (feb["received"], feb["handled"], feb["patientsFollowed"]) == (1, 1, 1)
        assert feb["medianHoursToFirstContact"] == 24.0
        bad = coordinator.get(url, params={"start": "2024-03-31", "end": "2024-03-01"})
        assert bad.status_code == 400
        missing = coordinator.get(url, params={"start": "2024-03-01"})
        assert missing.status_code == 400
    # Another structure's coordinator and a GP may not read the DAC's figures.
    with reported.other_client() as other:
        assert other.get(url, params={"start": "2024", "end": "2024"}).status_code == 403
    with reported.gp_client() as gp:
        assert gp.get(url, params={"start": "2024", "end": "2024"}).status_code == 403
    with reported.server.admin() as admin:
        assert admin.get(url, params={"start": "2024", "end": "2024"}).status_code == 200
    # Analysts read figures (no patient in them).
    with reported.server.as_(reported.outsider, "analyst") as analyst:
        response = analyst.get(url, params={"start": "2024-03-01", "end": "2024-03-31"})
        assert response.status_code == 200, response.text
        assert _figures(response.json())["handled"] == EXPECTED["handled"]


def test_report_on_the_command_line(
    reported: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PARCOURS_DATABASE_URL", reported.server.platform.settings.database_url)
    monkeypatch.setenv("PARCOURS_LOG_JSON", "false")
    args = ["coordination", "report", "--organization", reported.dac]
    code = main([*args, "--from", "2024-03-01", "--to", "2024-03-31", "--format", "json"])
    assert code == 0
    figures = json.loads(capsys.readouterr().out)
    assert {k: figures[k] for k in EXPECTED} == EXPECTED
    assert main([*args, "--from", "2024-03-01", "--to", "someday"]) == 1
    assert "not a date" in capsys.readouterr().err
    assert (
        main(["coordination", "report", "--organization", "nope", "--from", "2024", "--to", "2024"])
        == 1
    )


def test_sweep_and_install_on_the_command_line(
    reported: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PARCOURS_DATABASE_URL", reported.server.platform.settings.database_url)
    monkeypatch.setenv("PARCOURS_LOG_JSON", "false")
    assert main(["coordination", "sweep"]) == 0
    first = capsys.readouterr().out
    # C and E (2024) are long overdue today, whatever other tests left open.
    assert "first-contact, decision" in first
    assert main(["coordination", "sweep"]) == 0
    assert "flags changed on 0" in capsys.readouterr().out
    with reported.coordinator_client() as coordinator:
        board = coordinator.get(
            "/Task",
            params={
                "owner": f"Organization/{reported.dac}",
                "business-status": "received,under-analysis",
            },
        ).json()
    flags = {
        e["resource"]["id"]: [
            x["valueCode"] for x in e["resource"]["extension"] if x["url"].endswith("overdue")
        ]
        for e in board["entry"]
    }
    assert sorted(flags.values()) == [["decision"], ["first-contact", "decision"]]
    assert main(["coordination", "install"]) == 0
    assert "installed Questionnaire/demande-appui-coordination" in capsys.readouterr().out
