"""The wave-1 slice through real processes: the platform as the quick start runs it.

`parcours demo` then `parcours serve --mllp-port`, as separate processes; a hospital sends an
ER admission (A01, PV1-2 = E) over a real MLLP socket for a demo patient identified by INS;
the coordinator's FHIR client then finds that patient in the ER. A resend is acknowledged and
applied once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

TOKEN = "e2e-token-" + "x" * 16
VT, FS, CR = b"\x0b", b"\x1c", b"\x0d"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Platform:
    fhir: httpx.Client
    mllp_port: int

    def send(self, message: str) -> str:
        """Send one framed message and return the MSA-1 code of its ACK."""
        with socket.create_connection(("127.0.0.1", self.mllp_port), timeout=30) as sock:
            sock.sendall(VT + message.encode("utf-8") + FS + CR)
            data = b""
            while not data.endswith(FS + CR):
                chunk = sock.recv(65536)
                assert chunk, "the listener closed the connection without an ACK"
                data += chunk
        segments = data.strip(VT + FS + CR).decode("utf-8").split("\r")
        msa = next(s for s in segments if s.startswith("MSA|"))
        return msa.split("|")[1]


@pytest.fixture
def platform(database_url: str, tmp_path: object) -> Iterator[Platform]:
    env = {**os.environ, "PARCOURS_DATABASE_URL": database_url, "PARCOURS_ADMIN_TOKEN": TOKEN}
    run = [sys.executable, "-m", "parcours.cli"]
    demo = subprocess.run(
        [*run, "demo", "--patients", "30"], env=env, capture_output=True, text=True, timeout=300
    )
    assert demo.returncode == 0, demo.stderr
    port, mllp_port = _free_port(), _free_port()
    server = subprocess.Popen(
        [*run, "serve", "--port", str(port), "--mllp-port", str(mllp_port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
            assert time.monotonic() < deadline, "the platform did not become ready"
            time.sleep(0.2)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=f"{base}/fhir", headers=headers, timeout=30) as fhir:
            yield Platform(fhir, mllp_port)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _ins_of(patient: dict[str, object]) -> str:
    for identifier in patient.get("identifier", []):  # type: ignore[union-attr]
        if identifier.get("system") == "urn:oid:1.2.250.1.213.1.4.10":
            return str(identifier["value"])
    raise AssertionError("demo patient without a test INS")


def _er_admission(control_id: str, patient: dict[str, object]) -> str:
    name = patient["name"][0]  # type: ignore[index]
    birth = str(patient["birthDate"]).replace("-", "")
    sex = "F" if patient["gender"] == "female" else "M"
    fac = "CH-E2E&330000999&M"
    return (
        "\r".join(
            [
                "MSH|^~\\&|GAM|CH-E2E|PARCOURS|REGION|20251123100500||ADT^A01^ADT_A01|"
                f"{control_id}|P|2.5^FRA^2.11|||||FRA|UNICODE UTF-8",
                "EVN||20251123100500",
                f"PID|1||IPP-E2E-1^^^{fac}^PI~{_ins_of(patient)}^^^ASIP-SANTE-INS-NIR&"
                f"1.2.250.1.213.1.4.10&ISO^INS||{name['family']}^{name['given'][0]}^^^^^L||{birth}|{sex}"
                + "|" * 24
                + "VALI",
                f"PV1|1|E|URG^^^{fac}||||||||||||||||VISIT-E2E-1^^^{fac}^VN",
                f"ZBE|MV-E2E-1^CH-E2E^330000999^M|20251123100500||INSERT|N||"
                f"URGENCES^^^^^{fac}^UF^^^4001|URGENCES^^^^^{fac}^UF^^^4001|HMS",
            ]
        )
        + "\r"
    )


def test_er_admission_reaches_the_coordinator(platform: Platform) -> None:
    found = platform.fhir.get("/Patient", params={"_count": "50"})
    assert found.status_code == 200
    patients = [e["resource"] for e in found.json()["entry"]]
    patient = next(
        p
        for p in patients
        if any(i.get("system") == "urn:oid:1.2.250.1.213.1.4.10" for i in p.get("identifier", []))
    )

    message = _er_admission("E2E-0001", patient)
    assert platform.send(message) == "AA"
    assert platform.send(message) == "AA"  # a resend: acknowledged again, applied once

    in_er = platform.fhir.get(
        "/Encounter",
        params={"subject": f"Patient/{patient['id']}", "class": "EMER", "status": "in-progress"},
    )
    assert in_er.status_code == 200, in_er.text
    entries = in_er.json().get("entry", [])
    assert len(entries) == 1, "the ER visit is linked to the demo patient found by INS, once"
    encounter = entries[0]["resource"]
    assert encounter["period"]["start"].startswith("2025-11-23")
