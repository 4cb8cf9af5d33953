"""From HL7 movements to NdE declarations and notification requests, on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from nde_support import (
    declarations,
    drain,
    make_platform,
    notifications,
    pam,
    put,
    resources,
    send,
)

from parcours.notify.model import (
    CHANNEL_EMAIL,
    CHANNEL_INAPP,
    DEFAULT_SUBSCRIPTION_DISPLAY,
    INBOX_ENDPOINT,
    channel_of,
    declaration_of,
    endpoint_of,
    event_codes_of,
    recipient_of,
    subscription_of,
)
from parcours.platform import Platform


def _practitioner(pid: str, email: str | None = None) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "Practitioner",
        "id": pid,
        "name": [{"family": pid.upper(), "given": ["Test"]}],
    }
    if email:
        res["telecom"] = [{"system": "email", "value": email}]
    return res


@pytest.fixture
def world(database_url: str) -> Iterator[tuple[Platform, str]]:
    platform = make_platform(database_url)
    send(platform, pam("A28", "ID1"))
    (patient,) = resources(platform, "Patient")
    pid = str(patient["id"])
    put(
        platform,
        _practitioner("gp", "gp@medecin.mssante.fr"),
        _practitioner("nurse"),
        _practitioner("former"),
        _practitioner("opposed"),
        _practitioner("sleeper"),
        {"resourceType": "Organization", "id": "dac", "name": "DAC 21"},
        {
            "resourceType": "PractitionerRole",
            "id": "nurse-role",
            "active": True,
            "practitioner": {"reference": "Practitioner/nurse"},
            "telecom": [{"system": "email", "value": "nurse@infirmier.mssante.fr"}],
        },
        {
            "resourceType": "PractitionerRole",
            "id": "sleeper-role",
            "active": False,
            "practitioner": {"reference": "Practitioner/sleeper"},
        },
        {
            "resourceType": "CareTeam",
            "id": "circle",
            "status": "active",
            "subject": {"reference": f"Patient/{pid}"},
            "managingOrganization": [{"reference": "Organization/dac"}],
            "participant": [
                {"member": {"reference": "Practitioner/gp"}},
                {"member": {"reference": "PractitionerRole/nurse-role"}},
                {"member": {"reference": "PractitionerRole/sleeper-role"}},
                {
                    "member": {"reference": "Practitioner/former"},
                    "period": {"start": "2020-01-01", "end": "2021-01-01"},
                },
                {"member": {"reference": "Practitioner/opposed"}},
            ],
        },
        {
            "resourceType": "Consent",
            "id": "no-opposed",
            "status": "active",
            "scope": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                        "code": "patient-privacy",
                    }
                ]
            },
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": f"Patient/{pid}"},
            "provision": {"type": "deny", "actor": [_actor("Practitioner/opposed")]},
        },
    )
    drain(platform)
    yield platform, pid
    platform.close()


def _actor(ref: str) -> dict[str, Any]:
    return {
        "role": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                    "code": "PRCP",
                }
            ]
        },
        "reference": {"reference": ref},
    }


def _by_recipient(platform: Platform) -> dict[tuple[str | None, str | None], dict[str, Any]]:
    return {(recipient_of(n), channel_of(n)): n for n in notifications(platform)}


def test_admission_notifies_exactly_the_active_circle(world: tuple[Platform, str]) -> None:
    platform, pid = world
    send(platform, pam("A01", "M1"))
    drain(platform)
    (declaration,) = declarations(platform)
    assert [c for _, c in event_codes_of(declaration)] == ["ADM"]
    assert declaration["subject"] == {"reference": f"Patient/{pid}"}
    assert declaration["about"][0]["reference"].startswith("Encounter/")
    got = _by_recipient(platform)
    assert set(got) == {
        ("Practitioner/gp", CHANNEL_INAPP),
        ("Practitioner/gp", CHANNEL_EMAIL),
        ("Practitioner/nurse", CHANNEL_INAPP),
        ("Practitioner/nurse", CHANNEL_EMAIL),
        ("Organization/dac", CHANNEL_INAPP),
    }
    gp_mail = got[("Practitioner/gp", CHANNEL_EMAIL)]
    assert endpoint_of(gp_mail) == "mailto:gp@medecin.mssante.fr"
    assert endpoint_of(got[("Practitioner/nurse", CHANNEL_INAPP)]) == INBOX_ENDPOINT
    # No SMTP relay in this test platform: the e-mail is parked, not retried in a loop.
    assert gp_mail["status"] == "on-hold"
    assert gp_mail["subject"] == {"reference": f"Patient/{pid}"}
    assert declaration_of(gp_mail) == f"CommunicationRequest/{declaration['id']}"
    assert subscription_of(gp_mail) is None
    assert gp_mail["basedOn"] == [{"display": DEFAULT_SUBSCRIPTION_DISPLAY}]
    assert gp_mail["payload"][0]["contentString"].startswith("Admission le 01/03/2025")

    # The same message again, and the outbox replayed: nothing new.
    before = {r["id"]: r["meta"]["versionId"] for r in notifications(platform)}
    send(platform, pam("A01", "M1-bis"))
    drain(platform)
    assert len(declarations(platform)) == 1
    assert {r["id"]: r["meta"]["versionId"] for r in notifications(platform)} == before


def test_er_visit_discharge_and_death(world: tuple[Platform, str]) -> None:
    platform, _pid = world
    send(platform, pam("A04", "E1", patient_class="E", visit="V9", movement="ER1"))
    drain(platform)
    (er,) = declarations(platform)
    assert [c for _, c in event_codes_of(er)] == ["ADM", "URG"]
    assert "urgences" in notifications(platform)[0]["payload"][0]["contentString"]
    send(platform, pam("A03", "E2", visit="V9", movement="ER2", date="20250301180000"))
    drain(platform)
    codes = sorted(tuple(c for _, c in event_codes_of(d)) for d in declarations(platform))
    assert codes == [("ADM", "URG"), ("SOR",)]

    send(platform, pam("A01", "D1", visit="V10", movement="D1", date="20250302100000"))
    send(platform, pam("A03", "D2", visit="V10", movement="D2", date="20250303100000", pv1_36="9"))
    drain(platform)
    codes = sorted(tuple(c for _, c in event_codes_of(d)) for d in declarations(platform))
    assert codes == [("ADM",), ("ADM", "URG"), ("SOR",), ("SOR", "DCD")]


def test_preferences_opt_out_and_email_only(world: tuple[Platform, str]) -> None:
    from parcours.notify.preferences import save_preference

    platform, _pid = world
    with platform.store.begin() as tx:
        save_preference(tx, "Practitioner/gp", [CHANNEL_EMAIL], [])
        save_preference(tx, "Practitioner/nurse", None, ["SOR"])
    send(platform, pam("A01", "P1"))
    send(platform, pam("A03", "P2", movement="MV2", date="20250302100000"))
    drain(platform)
    adm, sor = sorted(declarations(platform), key=lambda d: event_codes_of(d)[0][1])
    by_decl: dict[str, set[tuple[str | None, str | None]]] = {}
    for n in notifications(platform):
        by_decl.setdefault(str(declaration_of(n)), set()).add((recipient_of(n), channel_of(n)))
    assert by_decl[f"CommunicationRequest/{adm['id']}"] == {
        ("Practitioner/gp", CHANNEL_EMAIL),
        ("Practitioner/nurse", CHANNEL_INAPP),
        ("Practitioner/nurse", CHANNEL_EMAIL),
        ("Organization/dac", CHANNEL_INAPP),
    }
    assert by_decl[f"CommunicationRequest/{sor['id']}"] == {
        ("Practitioner/gp", CHANNEL_EMAIL),
        ("Organization/dac", CHANNEL_INAPP),
    }
