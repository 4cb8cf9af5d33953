"""Crash safety: SIGKILL the listener process in the middle of a stream, restart it, let the
sender resend what was not acknowledged; nothing acknowledged is lost, nothing is applied
twice (an applied inbox row has attempts == 1: the counter moves in the apply transaction)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from parcours.hl7v2.tables import hl7_inbox
from parcours.store import Store, make_engine
from parcours.store.schema_version import ensure_schema

from .conftest import MllpClient
from .db import resources
from .messages import Pam

SRC = Path(__file__).resolve().parents[2] / "src"

LISTENER = """
import asyncio, sys
from parcours.hl7v2 import Hl7Settings, MllpServer
from parcours.store import Store, make_engine

async def main() -> None:
    store = Store(make_engine(sys.argv[1]))
    server = MllpServer(store, "127.0.0.1", 0, settings=Hl7Settings(allow_test_ins=True))
    await server.start()
    with open(sys.argv[2], "w") as f:
        f.write(str(server.port))
    await server.serve_forever()

asyncio.run(main())
"""

N = 60


def _start(url: str, tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    port_file = tmp / f"port-{time.monotonic_ns()}"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen([sys.executable, "-c", LISTENER, url, str(port_file)], env=env)
    deadline = time.monotonic() + 30
    while not (port_file.exists() and port_file.read_text()):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail("listener did not start")
        time.sleep(0.05)
    return proc, int(port_file.read_text())


def _message(k: int) -> bytes:
    # Alternate identity updates and movements of 3 patients, each with distinct content.
    patient = k % 3
    if k % 2:
        pam = Pam("A31", f"K{k}", ipp=f"P{patient}", family=f"FAMILLE{k}")
    else:
        pam = Pam(
            "A02",
            f"K{k}",
            ipp=f"P{patient}",
            visit=f"V{patient}",
            movement=f"MV{k}",
            movement_date=f"202503{1 + k // 4:02d}10{k % 60:02d}00",
            uf=f"U{k}",
        )
    return pam.bytes()


@pytest.mark.slow
def test_sigkill_during_stream(database_url: str, tmp_path: Path) -> None:
    engine = make_engine(database_url)
    ensure_schema(engine)
    store = Store(engine)
    acked: list[int] = []
    next_index = 0

    def stream(port: int) -> None:
        nonlocal next_index
        try:
            with MllpClient(port, timeout=20) as c:
                while next_index < N:
                    ack = c.send(_message(next_index))
                    assert ack.code == "AA", ack.raw
                    acked.append(next_index)
                    next_index += 1
        except (ConnectionError, OSError):
            pass  # the listener died: resend from next_index after the restart

    proc, port = _start(database_url, tmp_path)
    sender = threading.Thread(target=stream, args=(port,))
    sender.start()
    while len(acked) < N // 3:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    sender.join(30)
    killed_at = next_index
    assert killed_at < N
    proc, port = _start(database_url, tmp_path)
    try:
        stream(port)  # resends the unacknowledged message, then the rest
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    assert acked == list(range(N))
    with store.begin(readonly=True) as tx:
        rows = tx.conn.execute(
            select(hl7_inbox.c.control_id, hl7_inbox.c.status, hl7_inbox.c.attempts)
        ).all()
    assert sorted(r.control_id for r in rows) == sorted(f"K{k}" for k in range(N))
    assert {(r.status, r.attempts) for r in rows} == {("applied", 1)}
    patients = resources(store, "Patient")
    assert len(patients) == 3
    last_names = {p["identifier"][0]["value"]: p["name"][0]["family"] for p in patients}
    for patient in range(3):
        last = max(k for k in range(N) if k % 3 == patient and k % 2)
        assert last_names[f"P{patient}"] == f"FAMILLE{last}"
    encounters = resources(store, "Encounter")
    moves = sum(
        1 for e in encounters for x in e["extension"] if x["url"].endswith("hl7v2-movement")
    )
    assert moves == N // 2
    engine.dispose()
