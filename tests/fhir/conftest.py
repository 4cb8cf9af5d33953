"""A real uvicorn server per test module and database, serving the FHIR app under /fhir.

The server runs in a background thread on a free localhost port (tests/fhir_server.py); tests
talk to it over real HTTP (httpx, fhirpy, fhirclient). One server per module keeps the suite
fast; each module gets a fresh database of each kind, built like ``database_url`` in
tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from fhir_server import AUTH, TOKEN, Server, start_server

__all__ = ["AUTH", "TOKEN", "Server", "start_server"]


@pytest.fixture(scope="module")
def server(module_database_url: str) -> Iterator[Server]:
    yield from start_server(module_database_url)


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client
