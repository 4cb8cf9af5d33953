"""ITI-31 movements: every trigger, cancellations (also of historic movements), Z99 updates,
out-of-order arrival, and the Encounter that results."""

from __future__ import annotations

from typing import Any

import pytest

from parcours.hl7v2.mapping_encounter import MOVEMENT_URL

from .conftest import Live
from .db import one, resources
from .messages import Pam


def send_all(live: Live, *msgs: Pam) -> None:
    with live.client() as c:
        for m in msgs:
            ack = c.send(m.render())
            assert ack.code == "AA", (m.trigger, ack.raw)


def enc(live: Live) -> dict[str, Any]:
    return one(live.store, "Encounter")


def units(e: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (loc["location"]["identifier"]["value"], loc["status"]) for loc in e.get("location", [])
    ]


def test_preadmission_then_cancel(live: Live) -> None:
    send_all(live, Pam("A05", "C1", movement="P1", movement_date="20250310080000"))
    e = enc(live)
    assert (e["status"], e["class"]["code"]) == ("planned", "IMP")
    assert e["period"]["start"] == "2025-03-10T07:00:00Z"
    send_all(live, Pam("A38", "C2", movement="P1", action="CANCEL", original="A05"))
    assert enc(live)["status"] == "cancelled"


def test_er_arrival_is_searchable_state(live: Live) -> None:
    send_all(
        live,
        Pam(
            "A04",
            "C1",
            patient_class="E",
            movement="E1",
            movement_date="20250301100500",
            uf="URG",
            uf_label="URGENCES",
        ),
    )
    e = enc(live)
    assert (e["status"], e["class"]["code"]) == ("in-progress", "EMER")
    assert e["period"] == {"start": "2025-03-01T09:05:00Z"}
    assert e["location"][0]["location"]["display"] == "URGENCES"
    patient = one(live.store, "Patient")
    assert e["subject"]["reference"] == f"Patient/{patient['id']}"
    # ER -> inpatient (A06), then the A06 is cancelled by an A07 with ZBE-4 CANCEL.
    send_all(
        live,
        Pam(
            "A06", "C2", patient_class="I", movement="E2", movement_date="20250301120000", uf="4010"
        ),
    )
    assert (enc(live)["status"], enc(live)["class"]["code"]) == ("in-progress", "IMP")
    assert [c["class"]["code"] for c in enc(live)["classHistory"]] == ["EMER", "IMP"]
    send_all(
        live, Pam("A07", "C3", patient_class="E", movement="E2", action="CANCEL", original="A06")
    )
    e = enc(live)
    assert (e["status"], e["class"]["code"]) == ("in-progress", "EMER")
    assert units(e) == [("URG", "active")]


def test_admission_transfer_cancel_discharge_cancel(live: Live) -> None:
    send_all(
        live,
        Pam("A01", "C1", movement="MV1", movement_date="20250301135500", uf="4010"),
        Pam("A02", "C2", movement="MV2", movement_date="20250302091000", uf="4020"),
    )
    assert units(enc(live)) == [("4010", "completed"), ("4020", "active")]
    send_all(
        live,
        Pam(
            "A12",
            "C3",
            movement="MV2",
            movement_date="20250302091000",
            action="CANCEL",
            original="A02",
            uf="4020",
        ),
    )
    assert units(enc(live)) == [("4010", "active")]
    send_all(
        live,
        Pam(
            "A03",
            "C4",
            movement="MV3",
            movement_date="20250305100000",
            extra_segments=["ZFM|8|9||"],
        ),
    )
    e = enc(live)
    assert e["status"] == "finished" and e["period"]["end"] == "2025-03-05T09:00:00Z"
    assert e["hospitalization"]["dischargeDisposition"]["coding"][0]["code"] == "9"
    send_all(live, Pam("A13", "C5", movement="MV3", action="CANCEL", original="A03"))
    e = enc(live)
    assert e["status"] == "in-progress" and "end" not in e["period"]
    assert "hospitalization" not in e
    assert [m["extension"][1]["valueCode"] for m in e["extension"] if m["url"] == MOVEMENT_URL] == [
        "A01",
        "A02",
        "A03",
    ]


def test_cancel_admission(live: Live) -> None:
    send_all(live, Pam("A01", "C1", movement="MV1"))
    send_all(live, Pam("A11", "C2", movement="MV1", action="CANCEL", original="A01"))
    assert enc(live)["status"] == "cancelled"


def test_leave_of_absence_and_return(live: Live) -> None:
    send_all(
        live,
        Pam("A01", "C1", movement="MV1", movement_date="20250301100000"),
        Pam("A21", "C2", movement="MV2", movement_date="20250302100000"),
    )
    assert enc(live)["status"] == "onleave"
    send_all(live, Pam("A52", "C3", movement="MV2", action="CANCEL", original="A21"))
    assert enc(live)["status"] == "in-progress"
    send_all(
        live,
        Pam("A21", "C4", movement="MV3", movement_date="20250303100000"),
        Pam("A22", "C5", movement="MV4", movement_date="20250303180000"),
    )
    assert enc(live)["status"] == "in-progress"
    send_all(live, Pam("A53", "C6", movement="MV4", action="CANCEL", original="A22"))
    assert enc(live)["status"] == "onleave"
    assert [h["status"] for h in enc(live)["statusHistory"]] == ["in-progress", "onleave"]


def test_attending_doctor_change_and_cancel(live: Live) -> None:
    doc1 = "10001^MEDECIN^UN^^^^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^D^^^RPPS"
    doc2 = "10002^MEDECIN^DEUX^^^^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^D^^^RPPS"
    send_all(
        live,
        Pam("A01", "C1", movement="MV1", movement_date="20250301100000", pv1_extra={7: doc1}),
        Pam("A54", "C2", movement="MV2", movement_date="20250302100000", pv1_extra={7: doc2}),
    )
    ref = enc(live)["participant"][0]["individual"]["identifier"]
    assert ref == {"system": "urn:oid:1.2.250.1.71.4.2.1", "value": "10002"}
    send_all(
        live, Pam("A55", "C3", movement="MV2", action="CANCEL", original="A54", pv1_extra={7: doc2})
    )
    assert enc(live)["participant"][0]["individual"]["identifier"]["value"] == "10001"


def test_z99_updates_a_movement(live: Live) -> None:
    send_all(live, Pam("A01", "C1", movement="MV1", movement_date="20250301100000", uf="4010"))
    send_all(
        live,
        Pam(
            "Z99",
            "C2",
            movement="MV1",
            movement_date="20250301093000",
            action="UPDATE",
            original="A01",
            uf="4030",
        ),
    )
    e = enc(live)
    assert e["period"]["start"] == "2025-03-01T08:30:00Z"
    assert units(e) == [("4030", "active")]
    assert e["status"] == "in-progress"


def test_z99_without_update_is_refused(live: Live) -> None:
    ack = live.send(Pam("Z99", "C1", movement="MV1", action="INSERT", original="A01").render())
    assert ack.code == "AE" and ack.error_codes() == ["103"]


def test_historic_movements(live: Live) -> None:
    send_all(
        live,
        Pam("A01", "C1", movement="MV1", movement_date="20250301100000", uf="A"),
        Pam("A02", "C2", movement="MV2", movement_date="20250303100000", uf="C"),
        Pam("A03", "C3", movement="MV3", movement_date="20250305100000", uf="C"),
        # A transfer forgotten at the time, inserted afterwards (ZBE-5 = Y).
        Pam("A02", "C4", movement="MV4", movement_date="20250302100000", uf="B", historic="Y"),
    )
    e = enc(live)
    assert e["status"] == "finished"
    assert units(e) == [("A", "completed"), ("B", "completed"), ("C", "completed")]
    # Cancel the non-last transfer MV2 (historic cancellation).
    send_all(
        live,
        Pam("A12", "C5", movement="MV2", action="CANCEL", original="A02", historic="Y", uf="C"),
    )
    e = enc(live)
    assert e["status"] == "finished"
    assert [u for u, _ in units(e)] == ["A", "B", "C"]  # MV3 (A03) is still in C
    assert e["period"] == {"start": "2025-03-01T09:00:00Z", "end": "2025-03-05T09:00:00Z"}


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_out_of_order_discharge_before_admission(live: Live, order: tuple[int, int]) -> None:
    msgs = [
        Pam("A01", "C1", movement="MV1", movement_date="20250301100000"),
        Pam("A03", "C2", movement="MV2", movement_date="20250304100000"),
    ]
    send_all(live, *(msgs[i] for i in order))
    e = enc(live)
    assert e["status"] == "finished"
    assert e["period"] == {"start": "2025-03-01T09:00:00Z", "end": "2025-03-04T09:00:00Z"}


def test_cancel_before_insert_leaves_a_tombstone(live: Live) -> None:
    send_all(
        live,
        Pam("A01", "C1", movement="MV1", movement_date="20250301100000", uf="A"),
        Pam(
            "A12",
            "C2",
            movement="MV2",
            action="CANCEL",
            original="A02",
            uf="B",
            movement_date="20250302100000",
        ),
        Pam("A02", "C3", movement="MV2", movement_date="20250302100000", uf="B"),
    )
    assert units(enc(live)) == [("A", "active")]


def test_one_encounter_per_visit_and_pending_triggers_ignored(live: Live) -> None:
    send_all(
        live,
        Pam("A01", "C1", visit="V1", movement="MV1"),
        Pam("A04", "C2", visit="V2", movement="MV2", patient_class="O"),
        Pam("A15", "C3", visit="V1", movement="MV3"),
        Pam("A08", "C4", visit="V1", movement="MV4"),
    )
    encounters = resources(live.store, "Encounter")
    assert sorted(e["class"]["code"] for e in encounters) == ["AMB", "IMP"]
    assert len(resources(live.store, "Patient")) == 1


def test_movement_errors(live: Live) -> None:
    no_visit = Pam("A01", "C1", pv1_extra={19: ""})
    ack = live.send(no_visit.render())
    assert ack.code == "AE" and ack.error_codes() == ["101"]
    bad_class = Pam("A01", "C2", patient_class="X")
    ack = live.send(bad_class.render())
    assert ack.code == "AE" and ack.error_locations() == ["PV1^1^2"]
    no_zbe = Pam("A01", "C3").render().replace("\rZBE|", "\rZZZ|")
    ack = live.send(no_zbe)
    assert ack.code == "AE" and ack.error_codes() == ["100"]
    assert resources(live.store, "Encounter") == []
    assert resources(live.store, "Patient") == []  # never a partial write


def test_unit_from_pv1_3_when_zbe_has_none(live: Live) -> None:
    msg = Pam("A01", "C1", uf="4099").render()
    zbe = next(line for line in msg.split("\r") if line.startswith("ZBE"))
    fields = zbe.split("|")
    fields[7] = fields[8] = ""
    msg = msg.replace(zbe, "|".join(fields))
    send_all(live, Pam("A28", "C0"))
    assert live.send(msg).code == "AA"
    assert units(enc(live)) == [("4099", "active")]
