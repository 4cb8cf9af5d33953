"""The wave-1 slice through real processes: the platform as the quick start runs it.

`parcours demo` then `parcours serve --mllp-port`, as separate processes; a hospital sends an
ER admission (A01, PV1-2 = E) over a real MLLP socket for a demo patient identified by INS;
the coordinator's FHIR client then finds that patient in the ER. A resend is acknowledged and
applied once.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from processes import ack_code, free_port, serving

TOKEN = "e2e-token-" + "x" * 16


@dataclass
class Platform:
    fhir: httpx.Client
    mllp_port: int

    def send(self, message: str) -> str:
        """Send one message and return the MSA-1 code of its ACK."""
        return ack_code(self.mllp_port, message)


@pytest.fixture
def platform(database_url: str, tmp_path: object) -> Iterator[Platform]:
    env = {**os.environ, "PARCOURS_DATABASE_URL": database_url, "PARCOURS_ADMIN_TOKEN": TOKEN}
    demo = subprocess.run(
        [sys.executable, "-m", "parcours.cli", "demo", "--patients", "30"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert demo.returncode == 0, demo.stderr
    port, mllp_port = free_port(), free_port()
    with serving(env, port, mllp_port) as base:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=f"{base}/fhir", headers=headers, timeout=30) as fhir:
            yield Platform(fhir, mllp_port)


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
