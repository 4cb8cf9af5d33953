"""ITI-30 identity events (A28, A31, A40, A47) and the PAM FR INS rules, over MLLP."""

from __future__ import annotations

from parcours.identity.frcore import IDENTITY_RELIABILITY_URL

from .conftest import Live
from .db import one, resources, rows
from .messages import FAC, Pam, identifier_values, make_ins

INS_SYS = "urn:oid:1.2.250.1.213.1.4.10"
GOOD_INS = make_ins("2850721231231")


def _status(patient: dict) -> str:  # type: ignore[type-arg]
    ext = next(e for e in patient["extension"] if e["url"] == IDENTITY_RELIABILITY_URL)
    return str(ext["extension"][0]["valueCoding"]["code"])


def test_a28_then_a31_qualifies_with_ins(live: Live) -> None:
    assert live.send(Pam("A28", "M1").render()).code == "AA"
    p = one(live.store, "Patient")
    assert _status(p) == "PROV" and identifier_values(p, INS_SYS) == []
    a31 = Pam(
        "A31",
        "M2",
        ins=GOOD_INS,
        reliability="VALI",
        names="^LOU^^^^^D~MARTIN^LEA^LEA MARIE^^Mme^^L",
        zfd="ZFD|||N|N|INSI|20250112101200|CN|20300101",
    )
    ack = live.send(a31.render())
    assert ack.code == "AA" and ack.errors == []
    p = one(live.store, "Patient")
    assert identifier_values(p, INS_SYS) == [GOOD_INS]
    assert _status(p) == "QUAL"
    usual = next(n for n in p["name"] if n["use"] == "usual")
    assert usual == {"use": "usual", "given": ["LOU"]}
    official = next(n for n in p["name"] if n["use"] == "official")
    assert official["prefix"] == ["Mme"]
    assert official["extension"][0]["valueString"] == "LEA MARIE"
    subs = {s["url"] for s in p["extension"][0]["extension"]}
    assert {"methodCollection", "dateCollection", "validationMode"} <= subs


def test_invalid_ins_key_is_dropped_and_the_rest_integrated(live: Live) -> None:
    bad = GOOD_INS[:13] + ("00" if GOOD_INS[13:] != "00" else "01")
    ack = live.send(Pam("A28", "M1", ins=bad, reliability="VALI").render())
    assert ack.code == "AA"
    assert ack.error_codes() == ["102"] and ack.errors[0][4] == "W"
    assert ack.error_locations() == ["PID^1^3^2^1"]
    p = one(live.store, "Patient")
    assert identifier_values(p, INS_SYS) == []
    assert _status(p) == "PROV"
    assert "INS dropped" in (rows(live.store)[0].error or "")


def test_ins_with_prov_is_dropped(live: Live) -> None:
    ack = live.send(Pam("A28", "M1", ins=GOOD_INS, reliability="PROV").render())
    assert ack.code == "AA" and ack.error_codes() == ["102"]
    assert identifier_values(one(live.store, "Patient"), INS_SYS) == []


def test_douteuse_identity_never_keeps_ins(live: Live) -> None:
    ack = live.send(Pam("A28", "M1", ins=GOOD_INS, reliability="VALI~DOUT").render())
    assert ack.code == "AA"
    p = one(live.store, "Patient")
    assert identifier_values(p, INS_SYS) == [] and _status(p) == "PROV"
    codes = [
        e["extension"][0]["valueCoding"]["code"]
        for e in p["extension"]
        if e["url"] == IDENTITY_RELIABILITY_URL
    ]
    assert codes == ["PROV", "DOUT"]


def test_missing_name_is_refused(live: Live) -> None:
    ack = live.send(Pam("A28", "M1", names="").render())
    assert ack.code == "AE" and ack.error_codes() == ["101"]
    assert ack.error_locations() == ["PID^1^5"]
    assert resources(live.store, "Patient") == []
    assert rows(live.store)[0].status == "failed"


def test_impossible_birth_date_is_refused(live: Live) -> None:
    for cid, birth in (("M1", "19850231"), ("M2", "29990101")):
        ack = live.send(Pam("A28", cid, birth=birth).render())
        assert ack.code == "AE" and ack.error_codes() == ["102"]
        assert ack.error_locations() == ["PID^1^7"]
    assert resources(live.store, "Patient") == []


def test_a47_ins_deletion(live: Live) -> None:
    live.send(Pam("A31", "M1", ins=GOOD_INS, reliability="VALI").render())
    assert identifier_values(one(live.store, "Patient"), INS_SYS) == [GOOD_INS]
    a47 = Pam(
        "A47",
        "M2",
        reliability="PROV",
        extra_pid={3: f'700123^^^{FAC}^PI~""^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS'},
        mrg=f"{GOOD_INS}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS",
    )
    assert live.send(a47.render()).code == "AA"
    p = one(live.store, "Patient")
    assert identifier_values(p, INS_SYS) == []
    assert _status(p) == "PROV"


def test_a47_ipp_change(live: Live) -> None:
    live.send(Pam("A28", "M1", ipp="111").render())
    ack = live.send(Pam("A47", "M2", ipp="222", mrg=f"111^^^{FAC}^PI").render())
    assert ack.code == "AA"
    p = one(live.store, "Patient")
    assert "222" in identifier_values(p) and "111" not in identifier_values(p)
    # The new IPP now finds the same record.
    assert live.send(Pam("A31", "M3", ipp="222", family="MARTIN-DURAND").render()).code == "AA"
    assert one(live.store, "Patient")["name"][0]["family"] == "MARTIN-DURAND"


def test_a47_unknown_prior_identifier_fails_and_can_be_replayed(live: Live) -> None:
    from parcours.hl7v2.receiver import Receiver

    ack = live.send(Pam("A47", "M1", ipp="222", mrg=f"111^^^{FAC}^PI").render())
    assert ack.code == "AE" and ack.error_codes() == ["204"]
    failed = rows(live.store)[0]
    assert failed.status == "failed"
    live.send(Pam("A28", "M2", ipp="111").render())
    receiver = Receiver(live.store, live.server.server.settings)
    [result] = receiver.replay([failed.id])
    assert result.status == "applied" and result.ack_code == "AA"
    assert identifier_values(one(live.store, "Patient"), "https") == ["222"]


def test_a40_merge_marks_obsolete_and_repoints_encounters(live: Live) -> None:
    live.send(Pam("A01", "M1", ipp="111", family="DUPONT", visit="V1").render())
    live.send(Pam("A28", "M2", ipp="222", family="DUPONT").render())
    ack = live.send(Pam("A40", "M3", ipp="222", family="DUPONT", mrg=f"111^^^{FAC}^PI").render())
    assert ack.code == "AA"
    patients = {identifier_values(p)[0]: p for p in resources(live.store, "Patient")}
    old, new = patients["111"], patients["222"]
    assert old["active"] is False
    assert old["link"] == [{"other": {"reference": f"Patient/{new['id']}"}, "type": "replaced-by"}]
    assert new["link"][0]["type"] == "replaces"
    enc = one(live.store, "Encounter")
    assert enc["subject"]["reference"] == f"Patient/{new['id']}"
    # A late movement under the obsolete IPP lands on the survivor.
    live.send(
        Pam(
            "A03",
            "M4",
            ipp="111",
            family="DUPONT",
            visit="V1",
            movement="MV9",
            movement_date="20250302100000",
        ).render()
    )
    enc = one(live.store, "Encounter")
    assert enc["status"] == "finished"
    assert enc["subject"]["reference"] == f"Patient/{new['id']}"
    assert len(resources(live.store, "Patient")) == 2


def test_same_ins_from_another_sender_is_the_same_patient(live: Live) -> None:
    live.send(Pam("A31", "M1", ins=GOOD_INS, reliability="VALI").render())
    other = Pam(
        "A31",
        "M1",
        app="GAM2",
        facility="CH-AUTRE",
        ipp="999",
        ins=GOOD_INS,
        reliability="VALI",
        extra_pid={},
    )
    other.extra_pid = {
        3: f"999^^^CH-AUTRE&330000999&M^PI~{GOOD_INS}"
        "^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS"
    }
    assert live.send(other.render()).code == "AA"
    p = one(live.store, "Patient")
    assert {"700123", "999", GOOD_INS} <= set(identifier_values(p))


def test_nia_and_nir_together_keep_the_nir(live: Live) -> None:
    nia = make_ins("1850799123456")
    ids = (
        f"700123^^^{FAC}^PI~{nia}^^^ASIP-SANTE-INS-NIA&1.2.250.1.213.1.4.9&ISO^INS"
        f"~{GOOD_INS}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS"
    )
    ack = live.send(Pam("A31", "M1", reliability="VALI", extra_pid={3: ids}).render())
    assert ack.code == "AA" and ack.errors == []
    p = one(live.store, "Patient")
    assert identifier_values(p, "urn:oid:1.2.250.1.213.1.4.") == [GOOD_INS]


def test_corrected_birth_date_and_test_oid_policy(live: Live, store: object) -> None:
    zfd = "ZFD|||N|Y|INSI|20250112||"
    ack = live.send(Pam("A31", "M1", ins=GOOD_INS, reliability="VALI", zfd=zfd).render())
    assert ack.code == "AA" and ack.error_codes() == ["102"]
    p = one(live.store, "Patient")
    assert identifier_values(p, INS_SYS) == [] and _status(p) == "PROV"
    assert any(e["url"].endswith("birthdate-update-indicator") for e in p["extension"])


def test_production_refuses_test_ins(store: object) -> None:
    from parcours.hl7v2 import Hl7Settings

    from .conftest import MllpClient, ServerThread

    srv = ServerThread(store, Hl7Settings())  # type: ignore[arg-type]
    try:
        with MllpClient(srv.port) as c:
            ack = c.send(Pam("A31", "M1", ins=GOOD_INS, reliability="VALI").render())
    finally:
        srv.stop()
    assert ack.code == "AA" and ack.error_locations() == ["PID^1^3^2^4"]
    p = one(store, "Patient")  # type: ignore[arg-type]
    assert identifier_values(p, INS_SYS) == [] and _status(p) == "PROV"
