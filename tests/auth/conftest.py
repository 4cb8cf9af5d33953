"""Fixtures of the authentication tests: a platform per database, a settable clock, a real
uvicorn server serving the /auth routes, and a real OpenID provider (tests/auth/oidc_provider)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from parcours.auth import Authenticator, auth_routes
from parcours.config import Settings
from parcours.platform import Platform, build_platform
from parcours.store.schema_version import ensure_schema

ADMIN_TOKEN = "admin-token-0123456789abcdef"


class Clock:
    """A clock the test moves by hand (seconds since the epoch)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_platform(database_url: str) -> Iterator[Callable[..., Platform]]:
    """Build platforms on the test database (several: "another process", "after restart")."""
    built: list[Platform] = []

    def make(**settings: object) -> Platform:
        settings.setdefault("admin_token", ADMIN_TOKEN)
        platform = build_platform(Settings(database_url=database_url, **settings))  # type: ignore[arg-type]
        ensure_schema(platform.store.engine)
        built.append(platform)
        return platform

    yield make
    for platform in built:
        platform.close()


@pytest.fixture
def platform(make_platform: Callable[..., Platform]) -> Platform:
    return make_platform()


@pytest.fixture
def auth(platform: Platform, clock: Clock) -> Authenticator:
    return Authenticator(platform.store, platform.settings, clock=clock)


@dataclass
class Server:
    base: str
    auth: Authenticator
    # Whatever a test set-up wants to hand to the test (ids of created resources...).
    data: dict[str, str] = field(default_factory=dict)

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=30, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def start_server() -> Iterator[Callable[[Authenticator, int], Server]]:
    """Serve an Authenticator's routes with uvicorn on the given port (from free_port)."""
    running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(auth: Authenticator, port: int) -> Server:
        app = Starlette(routes=auth_routes(auth))
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        running.append((server, thread))
        return Server(f"http://127.0.0.1:{port}", auth)

    yield start
    for server, thread in running:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def server(
    make_platform: Callable[..., Platform],
    clock: Clock,
    start_server: Callable[[Authenticator, int], Server],
) -> Server:
    port = free_port()
    platform = make_platform(base_url=f"http://127.0.0.1:{port}")
    return start_server(Authenticator(platform.store, platform.settings, clock=clock), port)
