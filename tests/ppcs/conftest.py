"""Fixtures of the PPCS tests: a real server per module and database, a care circle."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from fhir_server import start_server

from .support import Circle, Server, create, ref


@pytest.fixture(scope="module")
def server(module_database_url: str) -> Iterator[Server]:
    # The shared FHIR test server: its requests are checked against the audit trail.
    yield from start_server(module_database_url)


@pytest.fixture
def circle(server: Server) -> Iterator[Circle]:
    tag = uuid.uuid4().hex[:6].upper()
    with server.admin() as admin:
        coordinator = create(
            admin,
            {
                "resourceType": "Practitioner",
                "name": [{"family": f"Coordo{tag}", "given": ["Claire"], "prefix": ["Dr"]}],
            },
        )
        nurse = create(
            admin,
            {"resourceType": "Practitioner", "name": [{"family": f"Soin{tag}", "given": ["Inès"]}]},
        )
        outsider = create(
            admin, {"resourceType": "Practitioner", "name": [{"family": f"Dehors{tag}"}]}
        )
        org = create(admin, {"resourceType": "Organization", "name": f"Cabinet infirmier {tag}"})
        nurse_role = create(
            admin,
            {
                "resourceType": "PractitionerRole",
                "active": True,
                "practitioner": ref("Practitioner", nurse),
                "organization": ref("Organization", org),
                "code": [{"text": "Infirmière libérale"}],
            },
        )
        patient = create(
            admin,
            {
                "resourceType": "Patient",
                "name": [{"family": f"Durand{tag}", "given": ["Jeanne"]}],
                "birthDate": "1938-04-12",
                "gender": "female",
            },
        )
        team = create(
            admin,
            {
                "resourceType": "CareTeam",
                "status": "active",
                "name": f"Cercle de soins {tag}",
                "subject": ref("Patient", patient),
                "participant": [
                    {"member": ref("Practitioner", coordinator), "period": {"start": "2024-01-01"}},
                    {
                        "member": ref("PractitionerRole", nurse_role),
                        "period": {"start": "2024-01-01"},
                    },
                ],
            },
        )
        condition = create(
            admin,
            {
                "resourceType": "Condition",
                "subject": ref("Patient", patient),
                "code": {"text": f"Chutes répétées à domicile {tag}"},
            },
        )
        goal = create(
            admin,
            {
                "resourceType": "Goal",
                "lifecycleStatus": "active",
                "subject": ref("Patient", patient),
                "description": {"text": f"Rester vivre à domicile en sécurité {tag}"},
                "target": [{"dueDate": "2026-12-31"}],
            },
        )
    yield Circle(
        server, tag, patient, team, coordinator, nurse, nurse_role, outsider, condition, goal
    )
