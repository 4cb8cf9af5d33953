"""Helpers of the NdE tests: a platform on a fresh database, PAM FR messages, a synchronous
outbox dispatcher, and look-ups of declarations and notification requests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from parcours.config import Settings
from parcours.hl7v2 import Hl7Settings
from parcours.hl7v2.receiver import Receiver
from parcours.notify.model import is_event_declaration, is_notification_request
from parcours.platform import Platform, build_platform
from parcours.store.outbox import Dispatcher
from parcours.store.schema import resource
from parcours.store.schema_version import ensure_schema

FAC = "CH-TEST&330000123&M"


def make_platform(database_url: str) -> Platform:
    platform = build_platform(Settings(database_url=database_url))
    ensure_schema(platform.store.engine)
    return platform


def drain(platform: Platform) -> int:
    return Dispatcher(platform.store, platform.handlers).drain()


def pam(
    trigger: str,
    control_id: str,
    *,
    patient_class: str = "I",
    visit: str = "V1",
    movement: str = "MV1",
    date: str = "20250301135500",
    pv1_36: str = "",
) -> bytes:
    structure = "ADT_A05" if trigger == "A28" else "ADT_A01"
    segments = [
        f"MSH|^~\\&|GAM|CH-TEST|PARCOURS|REGION|20250301140000||ADT^{trigger}^{structure}|"
        f"{control_id}|P|2.5^FRA^2.11|||||FRA|UNICODE UTF-8",
        "EVN||20250301140000",
        f"PID|1||700123^^^{FAC}^PI||MARTIN^LEA^LEA^^^^L||19850701|F|||"
        "12 RUE DES LILAS^^DIJON^^21000^FRA^H" + "|" * 21 + "PROV",
    ]
    if trigger == "A28":
        segments.append("PV1|1|N")
    else:
        pv1 = ["PV1", "1", patient_class, f"4010^^^{FAC}"] + [""] * 15
        pv1.append(f"{visit}^^^{FAC}^VN")
        if pv1_36:
            pv1 += [""] * 16 + [pv1_36]
        segments.append("|".join(pv1))
        uf = f"CARDIO^^^^^{FAC}^UF^^^4010"
        segments.append(f"ZBE|{movement}^CH-TEST^330000123^M|{date}||INSERT|N||{uf}|{uf}|HMS")
    return ("\r".join(segments) + "\r").encode()


def send(platform: Platform, message: bytes) -> str:
    receiver = Receiver(platform.store, Hl7Settings(allow_test_ins=True))
    responses = receiver.handle(message)
    ack = responses[0].decode()
    code = ack.split("MSA|", 1)[1].split("|", 1)[0]
    assert code in ("AA", "CA"), ack
    return code


def resources(platform: Platform, res_type: str) -> list[dict[str, Any]]:
    with platform.store.begin(readonly=True) as tx:
        rows = tx.conn.execute(
            select(resource.c.content).where(
                resource.c.type == res_type, resource.c.deleted.is_(False)
            )
        ).all()
    return [r.content for r in rows]


def declarations(platform: Platform) -> list[dict[str, Any]]:
    return [r for r in resources(platform, "CommunicationRequest") if is_event_declaration(r)]


def notifications(platform: Platform) -> list[dict[str, Any]]:
    return [r for r in resources(platform, "CommunicationRequest") if is_notification_request(r)]


def put(platform: Platform, *items: dict[str, Any]) -> None:
    with platform.store.begin() as tx:
        for item in items:
            tx.update(item)
