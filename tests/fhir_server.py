"""A real uvicorn server serving the FHIR app under /fhir, recorded for the audit check.

Shared by every test package that talks FHIR over HTTP (tests/fhir, tests/coordination,
tests/ppcs…): the autouse fixture of tests/conftest.py checks, after each test, that every
request made to a server started here left exactly the expected AuditEvents (issue 5).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette

from audit_oracle import Recorder, expected_events, last_seq, recorded_events
from parcours.auth import issue_token
from parcours.config import Settings
from parcours.fhir import create_fhir_app, fhir_routes
from parcours.platform import Platform, build_platform
from parcours.security.principal import Principal
from parcours.store.schema_version import ensure_schema

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """A running FHIR server: its base URL, the platform behind it, what it was asked."""

    base: str
    platform: Platform
    recorder: Recorder

    def check_audit(self, from_request: int = 0, after_seq: int = 0) -> None:
        """Every request since ``from_request`` left exactly the AuditEvents it should."""
        seen = self.recorder.seen[from_request:]
        types = self.platform.registry.resource_types()
        want = expected_events(seen, types)
        got = recorded_events(self.platform.store.engine, after_seq)
        assert got == want, (
            f"audit trail mismatch: missing {dict(want - got)}, unexpected {dict(got - want)}"
        )

    def audit_mark(self) -> tuple[int, int]:
        return len(self.recorder.seen), last_seq(self.platform.store.engine)

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers=AUTH, timeout=30, **kwargs)  # type: ignore[arg-type]

    def admin(self) -> httpx.Client:
        return self.client()

    def as_(
        self, practitioner_id: str, role: str = "professional", display: str | None = None
    ) -> httpx.Client:
        """A client with a token of this server's keys for ``Practitioner/practitioner_id``."""
        principal = Principal(
            f"Practitioner/{practitioner_id}",
            frozenset({role}),
            practitioner=f"Practitioner/{practitioner_id}",
            display=display or f"{role} {practitioner_id}",
        )
        token = issue_token(self.platform.store, principal, 600, settings=self.platform.settings)
        return httpx.Client(
            base_url=self.base, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )


def start_server(database_url: str, **settings: Any) -> Generator[Server, None, None]:
    settings.setdefault("admin_token", TOKEN)
    platform = build_platform(Settings(database_url=database_url, **settings))
    ensure_schema(platform.store.engine)
    recorder = Recorder(
        Starlette(routes=fhir_routes(create_fhir_app(platform, platform.authenticator)))
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(recorder, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    running = Server(f"http://127.0.0.1:{port}/fhir", platform, recorder)
    LIVE.append(running)
    try:
        yield running
        # Over the server's whole life (requests of module fixtures included).
        running.check_audit()
    finally:
        LIVE.remove(running)
        server.should_exit = True
        thread.join(10)
        platform.close()


# Servers running now: the per-test audit check looks at each.
LIVE: list[Server] = []
