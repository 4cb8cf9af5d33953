"""SIGKILL of `parcours serve` in the middle of a stream of FHIR transactions.

Every transaction the server acknowledged (200) is there after a restart, none is there in
part, and the restarted server's outbox dispatcher takes up every event committed before the
kill. Real processes, real HTTP, real databases.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import Any

import httpx
from processes import free_port
from sqlalchemy import create_engine, func, select

from parcours.store.engine import normalise_url
from parcours.store.schema import outbox, resource_version

TOKEN = "crash-token-" + "y" * 16
TAG = "urn:test:crash-batch"


def _start(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [sys.executable, "-m", "parcours.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        assert server.poll() is None, "the server exited while starting"
        assert time.monotonic() < deadline, "the server did not become ready"
        time.sleep(0.1)


def _batch(n: int) -> dict[str, Any]:
    tag = {"system": TAG, "code": f"b{n}"}
    patient_url = f"urn:uuid:00000000-0000-4000-8000-{n:012d}"
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": patient_url,
            "resource": {"resourceType": "Patient", "meta": {"tag": [tag]}, "gender": "other"},
            "request": {"method": "POST", "url": "Patient"},
        }
    ]
    for k in range(3):
        entries.append(
            {
                "resource": {
                    "resourceType": "Observation",
                    "meta": {"tag": [tag]},
                    "status": "final",
                    "code": {"text": f"mesure {k}"},
                    "subject": {"reference": patient_url},
                },
                "request": {"method": "POST", "url": "Observation"},
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _tags(client: httpx.Client, res_type: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    url: str | None = f"/{res_type}?_tag={TAG}|&_count=500"
    while url:
        page = client.get(url)
        assert page.status_code == 200, page.text
        body = page.json()
        for entry in body.get("entry", []):
            for tag in entry["resource"]["meta"]["tag"]:
                if tag["system"] == TAG:
                    counts[tag["code"]] += 1
        url = next((ln["url"] for ln in body.get("link", []) if ln["relation"] == "next"), None)
    return counts


def test_sigkill_mid_stream_loses_nothing_committed_and_leaves_nothing_partial(
    database_url: str,
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PARCOURS_DATABASE_URL": database_url,
        "PARCOURS_ADMIN_TOKEN": TOKEN,
        "PARCOURS_LOG_LEVEL": "WARNING",
    }
    headers = {"Authorization": f"Bearer {TOKEN}"}
    base = f"http://127.0.0.1:{port}/fhir"
    server = _start(env, port)
    acknowledged: list[int] = []
    stop = threading.Event()

    numbers = itertools.count()

    def stream() -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            while not stop.is_set():
                n = next(numbers)
                try:
                    response = client.post("", json=_batch(n))
                except httpx.HTTPError:
                    return  # the server is gone
                if response.status_code == 200:
                    acknowledged.append(n)

    writers = [threading.Thread(target=stream) for _ in range(3)]
    for writer in writers:
        writer.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.send_signal(signal.SIGKILL)
    server.wait()
    stop.set()
    for writer in writers:
        writer.join(30)
    assert len(acknowledged) >= 20, "the stream did not get going before the kill"

    server = _start(env, port)
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            patients, observations = _tags(client, "Patient"), _tags(client, "Observation")
            for n in acknowledged:
                assert patients[f"b{n}"] == 1 and observations[f"b{n}"] == 3, f"batch {n} lost"
            for code in set(patients) | set(observations):
                assert (patients[code], observations[code]) == (1, 3), f"{code} is partial"

            # Every committed version has its event, and the restarted dispatcher takes them all.
            engine = create_engine(normalise_url(database_url))
            try:
                deadline = time.monotonic() + 60
                while True:
                    with engine.connect() as conn:
                        versions = conn.execute(
                            select(func.count()).select_from(resource_version)
                        ).scalar_one()
                        events = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
                        pending = conn.execute(
                            select(func.count())
                            .select_from(outbox)
                            .where(outbox.c.processed_at.is_(None))
                        ).scalar_one()
                    assert events == versions
                    if pending == 0:
                        break
                    assert time.monotonic() < deadline, f"{pending} events still pending"
                    time.sleep(0.2)
            finally:
                engine.dispose()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
