"""Access follows the care circle as it changes: members leave, circles close, patients oppose,
professionals break the glass, and the trail tells who saw what.

Over real HTTP, with tokens signed by the server's own keys.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from fhir_server import Server
from parcours.config import Settings
from parcours.platform import build_platform
from parcours.security import policy
from parcours.store.clock import instant, now_ms


def _ref(kind: str, res_id: str) -> dict[str, str]:
    return {"reference": f"{kind}/{res_id}"}


@pytest.fixture(autouse=True, params=["patient-list", "membership-subquery"])
def row_filter(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both forms of the policy's row filter: the list of visible patients read once per
    request, and the membership subqueries used beyond ``VISIBLE_LIST_MAX`` patients."""
    if request.param == "membership-subquery":
        monkeypatch.setattr(policy, "VISIBLE_LIST_MAX", 0)
    return str(request.param)


@dataclass
class Circle:
    server: Server
    admin: httpx.Client
    patient: str
    team: dict[str, Any]
    gp: str
    nurse: str
    nurse_role: str
    observation: str

    def as_(self, practitioner: str, role: str = "professional") -> httpx.Client:
        return self.server.as_(practitioner, role, display=f"Dr {practitioner}")

    def put_team(self, **changes: Any) -> None:
        self.team = {**self.team, **changes}
        response = self.admin.put(f"/CareTeam/{self.team['id']}", json=self.team)
        assert response.status_code == 200, response.text


def _create(http: httpx.Client, resource: dict[str, Any]) -> str:
    response = http.post(f"/{resource['resourceType']}", json=resource)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
def circle(server: Server, http: httpx.Client) -> Iterator[Circle]:
    gp = _create(http, {"resourceType": "Practitioner", "name": [{"family": "Generaliste"}]})
    nurse = _create(http, {"resourceType": "Practitioner", "name": [{"family": "Infirmiere"}]})
    org = _create(http, {"resourceType": "Organization", "name": f"Cabinet {uuid.uuid4()}"})
    nurse_role = _create(
        http,
        {
            "resourceType": "PractitionerRole",
            "active": True,
            "practitioner": _ref("Practitioner", nurse),
            "organization": _ref("Organization", org),
        },
    )
    patient = _create(http, {"resourceType": "Patient", "name": [{"family": "Suivi"}]})
    team: dict[str, Any] = {
        "resourceType": "CareTeam",
        "id": f"ct-{uuid.uuid4().hex[:12]}",
        "status": "active",
        "subject": _ref("Patient", patient),
        "participant": [
            {"member": _ref("Practitioner", gp), "period": {"start": "2024-01-01"}},
            {"member": _ref("PractitionerRole", nurse_role), "period": {"start": "2024-01-01"}},
        ],
    }
    assert http.put(f"/CareTeam/{team['id']}", json=team).status_code == 201
    observation = _create(
        http,
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "poids"},
            "subject": _ref("Patient", patient),
        },
    )
    yield Circle(server, http, patient, team, gp, nurse, nurse_role, observation)


def _reads(client: httpx.Client, circle: Circle) -> int:
    return client.get(f"/Observation/{circle.observation}").status_code


def test_a_member_who_leaves_loses_access_at_once(circle: Circle) -> None:
    with circle.as_(circle.gp) as gp, circle.as_(circle.nurse) as nurse:
        assert (_reads(gp, circle), _reads(nurse, circle)) == (200, 200)
        participants = circle.team["participant"]
        ended = {**participants[0], "period": {"start": "2024-01-01", "end": "2024-06-30"}}
        circle.put_team(participant=[ended, participants[1]])
        assert (_reads(gp, circle), _reads(nurse, circle)) == (403, 200)
        circle.put_team(participant=[participants[1]])
        assert _reads(gp, circle) == 403


def test_a_circle_changed_by_another_process_is_seen_at_once(circle: Circle) -> None:
    """Each process keeps a caller's visible patients across requests; a change committed by
    any process (here a second platform on the same database, with its own caches) ends that
    at once."""
    with circle.as_(circle.gp) as gp:
        assert _reads(gp, circle) == 200
        assert _observations(gp, circle) == 1
        other = build_platform(Settings(database_url=circle.server.platform.settings.database_url))
        try:
            with other.store.begin() as tx:
                tx.update({**circle.team, "participant": circle.team["participant"][1:]})
        finally:
            other.close()
        assert _reads(gp, circle) == 403
        assert _observations(gp, circle) == 0


def test_participations_start_and_end_at_their_instant_without_a_write(
    circle: Circle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A participation's end (or start) takes effect the millisecond it passes, although the
    visible patients are kept across requests and nothing is written in between."""
    soon = now_ms() + 3_600_000
    participants = circle.team["participant"]
    ending = {**participants[0], "period": {"start": "2024-01-01", "end": instant(soon)}}
    starting = {**participants[1], "period": {"start": instant(soon)}}
    circle.put_team(participant=[ending, starting])
    with circle.as_(circle.gp) as gp, circle.as_(circle.nurse) as nurse:
        assert (_reads(gp, circle), _reads(nurse, circle)) == (200, 403)
        assert (_observations(gp, circle), _observations(nurse, circle)) == (1, 0)
        monkeypatch.setattr(policy, "now_ms", lambda: soon + 1000)
        assert (_reads(gp, circle), _reads(nurse, circle)) == (403, 200)
        assert (_observations(gp, circle), _observations(nurse, circle)) == (0, 1)


def _observations(client: httpx.Client, circle: Circle) -> int:
    search = client.get("/Observation", params={"subject": f"Patient/{circle.patient}"})
    assert search.status_code == 200, search.text
    return int(search.json()["total"])


def test_a_closed_circle_opens_nothing(circle: Circle) -> None:
    with circle.as_(circle.gp) as gp:
        circle.put_team(status="inactive")
        assert _reads(gp, circle) == 403
        search = gp.get("/Observation", params={"subject": f"Patient/{circle.patient}"}).json()
        assert search["total"] == 0
        circle.put_team(status="active")
        assert _reads(gp, circle) == 200


def test_an_inactive_role_opens_nothing(circle: Circle) -> None:
    with circle.as_(circle.nurse) as nurse:
        role = circle.admin.get(f"/PractitionerRole/{circle.nurse_role}").json()
        assert (
            circle.admin.put(
                f"/PractitionerRole/{circle.nurse_role}", json={**role, "active": False}
            ).status_code
            == 200
        )
        assert _reads(nurse, circle) == 403


def _consent(circle: Circle, actors: list[str], status: str = "active") -> dict[str, Any]:
    provision: dict[str, Any] = {"type": "deny"}
    if actors:
        provision["actor"] = [
            {"role": {"text": "opposé"}, "reference": _ref("Practitioner", a)} for a in actors
        ]
    return {
        "resourceType": "Consent",
        "status": status,
        "scope": {"text": "partage"},
        "category": [{"text": "opposition"}],
        "patient": _ref("Patient", circle.patient),
        "provision": provision,
    }


def test_an_opposition_to_everyone_closes_the_record_and_wins_over_break_glass(
    circle: Circle,
) -> None:
    with circle.as_(circle.gp) as gp, circle.as_(circle.nurse) as nurse:
        consent_id = _create(circle.admin, _consent(circle, []))
        assert (_reads(gp, circle), _reads(nurse, circle)) == (403, 403)
        assert gp.get("/Patient", params={"_id": circle.patient}).json()["total"] == 0
        glass = gp.post(
            f"/Patient/{circle.patient}/$break-glass",
            json={
                "resourceType": "Parameters",
                "parameter": [{"name": "reason", "valueString": "urgence vitale aux urgences"}],
            },
        )
        assert glass.status_code == 403 and "opposed" in glass.text
        # The patient withdraws the opposition: access comes back.
        withdrawn = {**_consent(circle, [], status="inactive"), "id": consent_id}
        assert circle.admin.put(f"/Consent/{consent_id}", json=withdrawn).status_code == 200
        assert (_reads(gp, circle), _reads(nurse, circle)) == (200, 200)


def test_an_opposition_to_one_professional_spares_the_others(circle: Circle) -> None:
    with circle.as_(circle.gp) as gp, circle.as_(circle.nurse) as nurse:
        _create(circle.admin, _consent(circle, [circle.gp]))
        assert (_reads(gp, circle), _reads(nurse, circle)) == (403, 200)


def test_break_the_glass_is_limited_in_time_flagged_and_reported(
    circle: Circle, monkeypatch: pytest.MonkeyPatch
) -> None:
    stranger = _create(
        circle.admin, {"resourceType": "Practitioner", "name": [{"family": "Urgentiste"}]}
    )
    with circle.as_(stranger) as er:
        assert _reads(er, circle) == 403
        short = er.post(
            f"/Patient/{circle.patient}/$break-glass",
            json={
                "resourceType": "Parameters",
                "parameter": [{"name": "reason", "valueString": "vu"}],
            },
        )
        assert short.status_code == 400
        reason = "patient inconscient, recherche de traitements en cours"
        glass = er.post(
            f"/Patient/{circle.patient}/$break-glass",
            json={
                "resourceType": "Parameters",
                "parameter": [{"name": "reason", "valueString": reason}],
            },
        )
        assert glass.status_code == 200, glass.text
        assert _reads(er, circle) == 200
        # Reported: the act itself and every access it opened carry the BTG purpose.
        flagged = circle.admin.get(
            "/AuditEvent", params={"purpose": "BTG", "patient": circle.patient}
        ).json()
        subtypes = [e["resource"]["subtype"][0]["code"] for e in flagged["entry"]]
        assert "110127" in subtypes and "read" in subtypes, subtypes
        act = next(
            e["resource"]
            for e in flagged["entry"]
            if e["resource"]["subtype"][0]["code"] == "110127"
        )
        assert reason in str(act)
        # Time-limited: once the grant has expired, the door is shut again, with no write
        # in between (the policy's clock moves past the expiry; nothing else changes).
        seconds = circle.server.platform.settings.break_glass_seconds
        monkeypatch.setattr(policy, "now_ms", lambda: now_ms() + seconds * 1000 + 1)
        assert _reads(er, circle) == 403


def test_who_accessed_my_record(circle: Circle) -> None:
    with circle.as_(circle.gp) as gp:
        assert _reads(gp, circle) == 200
        assert gp.get(f"/Patient/{circle.patient}").status_code == 200
        # Professionals do not read the trail; the identity-vigilance referent does.
        assert gp.get(f"/Patient/{circle.patient}/$access-report").status_code == 403
    referent = _create(
        circle.admin, {"resourceType": "Practitioner", "name": [{"family": "Referent"}]}
    )
    with circle.as_(referent, "identity-referent") as iv:
        report = iv.get(f"/Patient/{circle.patient}/$access-report")
        assert report.status_code == 200, report.text
        agents = {
            next(p["valueString"] for p in a["part"] if p["name"] == "agent"): {
                p["name"]: p for p in a["part"]
            }
            for a in report.json()["parameter"]
        }
        line = agents[f"Practitioner/{circle.gp}"]
        assert line["count"]["valueInteger"] >= 2
        assert line["break-glass"]["valueBoolean"] is False
        events = iv.get("/AuditEvent", params={"agent": f"Practitioner/{circle.gp}"}).json()
        assert {e["resource"]["subtype"][0]["code"] for e in events["entry"]} >= {"read"}


def test_tampering_with_the_trail_is_detected_by_the_cli(server: Server, circle: Circle) -> None:
    with circle.as_(circle.gp) as gp:
        assert _reads(gp, circle) == 200
    env = {**os.environ, "PARCOURS_DATABASE_URL": str(server.platform.settings.database_url)}
    command = [sys.executable, "-m", "parcours.cli", "audit", "verify"]
    intact = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert intact.returncode == 0, intact.stderr
    engine = server.platform.store.engine
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_event DISABLE TRIGGER USER"))
        seq = conn.execute(
            text("SELECT MIN(seq) FROM audit_event WHERE interaction = 'read'")
        ).scalar_one()
        agent = conn.execute(
            text("SELECT agent FROM audit_event WHERE seq = :s"), {"s": seq}
        ).scalar_one()
        conn.execute(
            text("UPDATE audit_event SET agent = 'someone-else' WHERE seq = :s"), {"s": seq}
        )
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_event ENABLE TRIGGER USER"))
    broken = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert broken.returncode != 0
    assert f"seq={seq}" in broken.stdout + broken.stderr
    # Put it back so that the module's later checks see an intact trail.
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_event DISABLE TRIGGER USER"))
        conn.execute(
            text("UPDATE audit_event SET agent = :a WHERE seq = :s"),
            {"a": agent, "s": seq},
        )
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_event ENABLE TRIGGER USER"))
