"""Issue 6 end to end: a hospital's admission over a real MLLP socket reaches the care circle.

``parcours serve --mllp-port`` runs as its own process (outbox dispatcher inside, as the quick
start runs it). The outside world is real too: a rest-hook receiver (an HTTP server in this
test) subscribed by a hospital system through FHIR with a system token, and an SMTP relay
(aiosmtpd) standing for the MSSanté mail of the circle's members. Checked: the right recipients
only (not a former member, not an opposed one), nothing twice on a resend or a replay of the HL7
inbox, and a receiver down for a minute gets everything afterwards, in order per patient.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from processes import ack_code, free_port, serving
from sqlalchemy import text

from parcours.auth import issue_token
from parcours.config import Settings
from parcours.notify.model import event_codes_of
from parcours.platform import build_platform
from parcours.security.principal import Principal
from parcours.store.schema_version import ensure_schema

TOKEN = "e2e-notify-token-" + "x" * 16
FAC = "CH-E2E&330000999&M"


# ---- the outside world ---------------------------------------------------------------------


@dataclass
class Receiver:
    """A hospital system's rest-hook endpoint; ``down_until`` makes it answer 503."""

    received: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0
    down_until: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _receiver_server(receiver: Receiver) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with receiver.lock:
                if time.monotonic() < receiver.down_until:
                    receiver.refused += 1
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.received.append(
                    {
                        "key": self.headers.get("x-parcours-notification-id"),
                        "bundle": json.loads(body),
                    }
                )
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Any]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"


@dataclass
class World:
    fhir: httpx.Client
    mllp_port: int
    database_url: str
    env: dict[str, str]
    receiver: Receiver
    mailbox: Mailbox
    patients: dict[str, str]

    def send(self, message: str) -> str:
        return ack_code(self.mllp_port, message)


def pam(
    trigger: str,
    control: str,
    ipp: str,
    family: str,
    visit: str,
    movement: str,
    when: str = "20251123100000",
) -> str:
    structure = {"A28": "ADT_A05", "A03": "ADT_A03"}.get(trigger, "ADT_A01")
    segments = [
        f"MSH|^~\\&|GAM|CH-E2E|PARCOURS|REGION|{when}||ADT^{trigger}^{structure}|{control}|P|"
        "2.5^FRA^2.11|||||FRA|UNICODE UTF-8",
        f"EVN||{when}",
        f"PID|1||{ipp}^^^{FAC}^PI||{family}^LEA^^^^^L||19850701|F" + "|" * 24 + "PROV",
    ]
    if trigger == "A28":
        segments.append("PV1|1|N")
    else:
        pv1 = ["PV1", "1", "I", f"4010^^^{FAC}"] + [""] * 15 + [f"{visit}^^^{FAC}^VN"]
        if trigger == "A03":
            pv1 += [""] * 25 + [when]
        segments.append("|".join(pv1))
        uf = f"CARDIO^^^^^{FAC}^UF^^^4010"
        segments.append(f"ZBE|{movement}^CH-E2E^330000999^M|{when}||INSERT|N||{uf}|{uf}|HMS")
    return "\r".join(segments) + "\r"


def _practitioner(pid: str, email: str) -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "id": pid,
        "name": [{"family": pid.upper()}],
        "telecom": [{"system": "email", "value": email}],
    }


def _circle(world_ids: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = [
        _practitioner("gp", "gp@medecin.mssante.fr"),
        _practitioner("nurse", "nurse@infirmier.mssante.fr"),
        _practitioner("former", "former@medecin.mssante.fr"),
        _practitioner("opposed", "opposed@medecin.mssante.fr"),
    ]
    for key, pid in world_ids.items():
        items.append(
            {
                "resourceType": "CareTeam",
                "id": f"circle-{key}",
                "status": "active",
                "subject": {"reference": f"Patient/{pid}"},
                "participant": [
                    {"member": {"reference": "Practitioner/gp"}},
                    {"member": {"reference": "Practitioner/nurse"}},
                    {
                        "member": {"reference": "Practitioner/former"},
                        "period": {"start": "2020-01-01", "end": "2021-01-01"},
                    },
                    {"member": {"reference": "Practitioner/opposed"}},
                ],
            }
        )
        items.append(
            {
                "resourceType": "Consent",
                "id": f"opposition-{key}",
                "status": "active",
                "scope": {"text": "partage"},
                "category": [{"text": "opposition"}],
                "patient": {"reference": f"Patient/{pid}"},
                "provision": {
                    "type": "deny",
                    "actor": [
                        {
                            "role": {"text": "opposé"},
                            "reference": {"reference": "Practitioner/opposed"},
                        }
                    ],
                },
            }
        )
    return items


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    receiver = Receiver()
    http_server = _receiver_server(receiver)
    threading.Thread(target=http_server.serve_forever, daemon=True).start()
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    port, mllp_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PARCOURS_DATABASE_URL": database_url,
        "PARCOURS_ADMIN_TOKEN": TOKEN,
        "PARCOURS_BASE_URL": base,
        "PARCOURS_SMTP_HOST": "127.0.0.1",
        "PARCOURS_SMTP_PORT": str(smtp.port),
        "PARCOURS_SMTP_FROM": "parcours@region.mssante.fr",
        "PARCOURS_LOG_LEVEL": "WARNING",
    }
    settings = Settings(database_url=database_url, admin_token=TOKEN, base_url=base)
    platform = build_platform(settings)
    ensure_schema(platform.store.engine)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(http_server.shutdown)
        cleanup.callback(smtp.stop)
        cleanup.callback(platform.close)
        # Entered last, so the server stops before its outside world does.
        cleanup.enter_context(serving(env, port, mllp_port))
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=f"{base}/fhir", headers=headers, timeout=30) as fhir:
            world = World(fhir, mllp_port, database_url, env, receiver, mailbox, {})
            # The hospital registers the patients (A28), the region builds their circles.
            for key, ipp in (("p", "IPP-P"), ("q", "IPP-Q")):
                assert (
                    world.send(pam("A28", f"REG-{key}", ipp, f"NOTIF{key.upper()}", "", "")) == "AA"
                )
                found = fhir.get("/Patient", params={"family": f"NOTIF{key.upper()}"}).json()
                world.patients[key] = found["entry"][0]["resource"]["id"]
            with platform.store.begin() as tx:
                for item in _circle(world.patients):
                    tx.update(item)
            # A hospital system subscribes to admissions and discharges with its own token.
            system = Principal(
                "client/sih-chu",
                frozenset({"system"}),
                scopes=frozenset({"system/*.read", "system/Subscription.write"}),
                display="SIH du CHU",
            )
            token = issue_token(platform.store, system, 3600, settings=settings)
            subscription = {
                "resourceType": "Subscription",
                "status": "requested",
                "reason": "admissions et sorties",
                "criteria": "CommunicationRequest?event-type=ADM,SOR",
                "channel": {
                    "type": "rest-hook",
                    "endpoint": f"http://127.0.0.1:{http_server.server_address[1]}/hook",
                    "payload": "application/fhir+json",
                },
            }
            created = httpx.post(
                f"{base}/fhir/Subscription",
                json=subscription,
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            assert created.status_code == 201, created.text
            yield world


def _wait(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _events(world: World) -> list[tuple[str, str]]:
    """(patient id, event code) of each rest-hook delivery, in arrival order."""
    out = []
    for item in world.receiver.received:
        bundle = item["bundle"]
        declaration = next(
            e["resource"]
            for e in bundle["entry"]
            if e.get("resource", {}).get("resourceType") == "CommunicationRequest"
        )
        codes = [code for _system, code in event_codes_of(declaration)]
        patient = declaration["subject"]["reference"].split("/", 1)[1]
        out.append((patient, "SOR" if "SOR" in codes else "ADM"))
    return out


def _mail_to(world: World) -> list[str]:
    return sorted(rcpt for rcpts, _msg in world.mailbox.messages for rcpt in rcpts)


def test_admission_reaches_the_circle_by_rest_hook_and_mail(world: World) -> None:
    p = world.patients["p"]
    assert world.send(pam("A01", "ADM-1", "IPP-P", "NOTIFP", "V1", "MV1")) == "AA"
    _wait(lambda: len(world.receiver.received) >= 1, 30, "the rest-hook POST")
    _wait(lambda: len(world.mailbox.messages) >= 2, 30, "the e-mails")
    time.sleep(2)  # anything extra would have arrived by now
    assert _events(world) == [(p, "ADM")]
    assert world.receiver.received[0]["key"].startswith("ntf-")
    # The GP and the nurse; not the former member, not the professional the patient opposed.
    assert _mail_to(world) == ["gp@medecin.mssante.fr", "nurse@infirmier.mssante.fr"]
    for _rcpts, message in world.mailbox.messages:
        assert "NOTIFP" not in str(message)  # minimum of health data: no name

    # A resend (same message, same control id) is acknowledged and notifies nobody again.
    assert world.send(pam("A01", "ADM-1", "IPP-P", "NOTIFP", "V1", "MV1")) == "AA"
    # An operator replays the inbox after an incident: applied again, nothing sent again.
    engine = build_platform(Settings(database_url=world.database_url)).store.engine
    with engine.begin() as conn:
        conn.execute(text("UPDATE hl7_inbox SET status = 'failed' WHERE control_id = 'ADM-1'"))
    replay = subprocess.run(
        [sys.executable, "-m", "parcours.cli", "hl7", "replay", "--status", "failed"],
        env=world.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    engine.dispose()
    assert replay.returncode == 0, replay.stderr
    time.sleep(4)
    assert len(world.receiver.received) == 1
    assert len(world.mailbox.messages) == 2


def test_a_receiver_down_for_a_minute_gets_everything_in_order(world: World) -> None:
    p, q = world.patients["p"], world.patients["q"]
    world.receiver.down_until = time.monotonic() + 60
    sent = [
        ("ADM", p, pam("A01", "D-1", "IPP-P", "NOTIFP", "V1", "MV1")),
        ("ADM", q, pam("A01", "D-2", "IPP-Q", "NOTIFQ", "V9", "MV9")),
        ("SOR", p, pam("A03", "D-3", "IPP-P", "NOTIFP", "V1", "MV2", "20251123150000")),
        ("ADM", p, pam("A01", "D-4", "IPP-P", "NOTIFP", "V2", "MV3", "20251123170000")),
    ]
    for _code, _patient, message in sent:
        assert world.send(message) == "AA"
    _wait(lambda: world.receiver.refused >= 1, 30, "a first refused attempt")
    _wait(lambda: len(world.receiver.received) >= 4, 240, "every notification after recovery")
    time.sleep(2)
    events = _events(world)
    assert sorted(events) == sorted((patient, code) for code, patient, _m in sent)
    for patient in (p, q):
        assert [c for who, c in events if who == patient] == [
            c for c, who, _m in sent if who == patient
        ], "\n".join(map(str, [*events, *_retried(world)]))


def _retried(world: World) -> list[Any]:
    """The outbox events that needed more than one attempt (to explain an order failure)."""
    engine = build_platform(Settings(database_url=world.database_url)).store.engine
    try:
        with engine.connect() as conn:
            return list(
                conn.execute(
                    text(
                        "SELECT seq, res_type, res_id, action, attempts, last_error FROM outbox"
                        " WHERE attempts > 0 ORDER BY seq"
                    )
                ).all()
            )
    finally:
        engine.dispose()
