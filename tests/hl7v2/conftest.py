"""Fixtures for the HL7 v2 listener: a migrated store on each database, a live MLLP server
on a free port (its own event loop in a thread), and a blocking MLLP client."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from parcours.hl7v2 import Hl7Settings, MllpServer
from parcours.hl7v2.framing import FrameDecoder, frame
from parcours.store import Store
from parcours.store.schema_version import ensure_schema

from .messages import Ack, parse_ack


def _platform_validator() -> Any:
    try:
        from parcours.config import Settings
        from parcours.fhir.validation import make_validator
    except ImportError:  # the FHIR layer is optional for these tests
        return None
    return make_validator(Settings())


_PLATFORM_VALIDATOR = _platform_validator()


def fhir_validator(resource: dict[str, Any]) -> None:
    """The platform's validator (when present) and the fhir.resources R4B model."""
    if _PLATFORM_VALIDATOR is not None:
        _PLATFORM_VALIDATOR(resource)
    # R4B models: the elements we write (Patient, Encounter) are the same as in R4.
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """The store as the platform wires it (search index, identity hook, validation): the
    listener is tested against what production runs, plus the R4B model check."""
    from parcours.config import Settings
    from parcours.platform import build_platform

    platform = build_platform(Settings(database_url=database_url))
    ensure_schema(platform.store.engine)
    wired = platform.store.validator

    def validate(resource: dict[str, Any]) -> None:
        wired(resource)
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)

    platform.store.validator = validate
    yield platform.store
    platform.close()


TEST_SETTINGS = Hl7Settings(allow_test_ins=True, max_message_bytes=1024 * 1024)


class ServerThread:
    """An MllpServer running on its own loop in a daemon thread."""

    def __init__(self, store: Store, settings: Hl7Settings = TEST_SETTINGS, **kwargs: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = MllpServer(store, "127.0.0.1", 0, settings=settings, **kwargs)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        self.port = self.server.port

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def server(store: Store) -> Iterator[ServerThread]:
    srv = ServerThread(store)
    yield srv
    srv.stop()


class MllpClient:
    def __init__(self, port: int, *, timeout: float = 30.0, sock: socket.socket | None = None):
        self.sock = sock or socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.decoder = FrameDecoder(50 * 1024 * 1024)
        self.pending: list[bytes] = []

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_acks(self, n: int = 1) -> list[Ack]:
        while len(self.pending) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.pending.extend(f.data for f in self.decoder.feed(chunk))
        out, self.pending = self.pending[:n], self.pending[n:]
        return [parse_ack(d) for d in out]

    def send(self, message: str | bytes, *, encoding: str = "utf-8") -> Ack:
        data = message.encode(encoding) if isinstance(message, str) else message
        self.send_raw(frame(data))
        return self.read_acks(1)[0]

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> MllpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Live:
    store: Store
    server: ServerThread

    def client(self) -> MllpClient:
        return MllpClient(self.server.port)

    def send(self, message: str | bytes) -> Ack:
        with self.client() as c:
            return c.send(message)


@pytest.fixture
def live(store: Store, server: ServerThread) -> Live:
    return Live(store, server)
