"""Fixtures of the coordination tests: a real server per module and database, a small world."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from fhir_server import start_server
from parcours.coordination import install_conformance

from .support import Server, World, create, ref


@pytest.fixture(scope="module")
def server(module_database_url: str) -> Iterator[Server]:
    # The shared FHIR test server: its requests are checked against the audit trail.
    for running in start_server(module_database_url):
        install_conformance(running.platform.store)
        yield running


@pytest.fixture
def world(server: Server) -> Iterator[World]:
    """A DAC and another structure with one coordinator each; a patient whose circle has a GP
    (but neither structure); an outsider professional."""
    tag = uuid.uuid4().hex[:6]
    with server.admin() as admin:
        dac = create(admin, {"resourceType": "Organization", "name": f"DAC {tag}"})
        other = create(admin, {"resourceType": "Organization", "name": f"CPTS {tag}"})
        people = [
            create(admin, {"resourceType": "Practitioner", "name": [{"family": f"{n}{tag}"}]})
            for n in ("Coordo", "Autre", "Generaliste", "Dehors")
        ]
        coordinator, other_coordinator, gp, outsider = people
        roles = [
            create(
                admin,
                {
                    "resourceType": "PractitionerRole",
                    "active": True,
                    "practitioner": ref("Practitioner", who),
                    "organization": ref("Organization", org),
                    "code": [{"text": "Coordinatrice de parcours"}],
                },
            )
            for who, org in ((coordinator, dac), (other_coordinator, other))
        ]
        patient = create(admin, {"resourceType": "Patient", "name": [{"family": f"Suivi{tag}"}]})
        create(
            admin,
            {
                "resourceType": "CareTeam",
                "status": "active",
                "subject": ref("Patient", patient),
                "participant": [
                    {"member": ref("Practitioner", gp), "period": {"start": "2024-01-01"}}
                ],
            },
        )
    yield World(
        server,
        dac,
        other,
        coordinator,
        roles[0],
        other_coordinator,
        roles[1],
        gp,
        outsider,
        patient,
    )
