"""Fixtures of the coordination tests: a real server per module and database, a small world."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.applications import Starlette

from parcours.config import Settings
from parcours.coordination import install_conformance
from parcours.fhir import create_fhir_app, fhir_routes
from parcours.platform import build_platform
from parcours.store.schema_version import ensure_schema

from .support import TOKEN, Server, World, create, free_port, ref


@pytest.fixture(scope="module")
def server(module_database_url: str) -> Iterator[Server]:
    platform = build_platform(Settings(database_url=module_database_url, admin_token=TOKEN))
    ensure_schema(platform.store.engine)
    install_conformance(platform.store)
    app = Starlette(routes=fhir_routes(create_fhir_app(platform, platform.authenticator)))
    port = free_port()
    uv = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield Server(f"http://127.0.0.1:{port}/fhir", platform)
    finally:
        uv.should_exit = True
        thread.join(10)
        platform.close()


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
