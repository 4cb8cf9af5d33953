"""Every ANS example of the corpus over a real MLLP socket, on both databases.

PAM FR (ADT) examples must be accepted (AA) and applied; the document flows (ORU, MDM) and
the other non-ADT files (ZAM business acks, ACK examples) must get the "unsupported
message type" reject (AR, ERR 200) without disturbing the connection.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from parcours.hl7v2.er7 import header_fields
from parcours.identity.frcore import BIRTH_PLACE_URL, IDENTITY_RELIABILITY_URL
from parcours.store import Store

from .conftest import Live
from .db import one, resources, rows


def _corpus_files(corpus: Path) -> list[Path]:
    return sorted(p for p in (corpus / "hl7v2").rglob("*") if p.is_file())


def _msg_type(path: Path) -> str:
    fields = header_fields(path.read_bytes())
    return fields[9].split("^")[0] if len(fields) > 9 else ""


def _pam(corpus: Path) -> list[Path]:
    return [p for p in _corpus_files(corpus) if _msg_type(p) == "ADT"]


def test_corpus_is_where_expected(corpus: Path) -> None:
    files = _corpus_files(corpus)
    assert len(_pam(corpus)) == 7
    assert len(files) > 40


def test_every_pam_example_is_accepted_and_applied(live: Live, corpus: Path) -> None:
    for path in _pam(corpus):
        # SGL/admission.er7 and Consentement_..._NonOpposition... share MSH-10 3975 with a
        # different content (corpus deviation): the second gets AE 205, checked below.
        ack = live.send(path.read_bytes())
        if path.name.startswith("ConsentementConsultation_"):
            assert ack.code == "AE" and ack.error_codes() == ["205"], path
            continue
        assert ack.code == "AA", (path, ack.raw)
    patient = one(live.store, "Patient")
    values = {i["value"] for i in patient["identifier"]}
    assert {"000003", "279035121518989"} <= values  # IPP and INS (test OID allowed in tests)
    official = next(n for n in patient["name"] if n["use"] == "official")
    assert official["family"] == "PAT-TROIS" and official["given"] == ["DOMINIQUE"]
    assert patient["birthDate"] == "1979-03-28" and patient["gender"] == "female"
    status = next(e for e in patient["extension"] if e["url"] == IDENTITY_RELIABILITY_URL)
    assert status["extension"][0]["valueCoding"]["code"] == "QUAL"
    birthplace = next(e for e in patient["extension"] if e["url"] == BIRTH_PLACE_URL)
    assert birthplace["valueAddress"]["extension"][0]["valueCoding"]["code"] == "63220"
    encounters = {e["identifier"][0]["value"]: e for e in resources(live.store, "Encounter")}
    # admission (A01) then sortie (A03) on visit 000897406; four consent A01s on other visits.
    assert set(encounters) == {"000897406", "000197406", "000297406", "000597406", "000997406"}
    visit = encounters["000897406"]
    assert visit["status"] == "finished" and visit["class"]["code"] == "IMP"
    assert visit["period"]["start"] == "2024-03-06T10:00:00Z"
    assert visit["subject"]["reference"] == f"Patient/{patient['id']}"
    assert encounters["000197406"]["status"] == "in-progress"
    statuses = [r.status for r in rows(live.store)]
    assert statuses.count("applied") == 6 and statuses.count("rejected") == 1


@pytest.mark.parametrize("kind", ["ORU", "MDM", "ZAM", "ACK"])
def test_non_pam_examples_get_unsupported_type(live: Live, corpus: Path, kind: str) -> None:
    files = [p for p in _corpus_files(corpus) if _msg_type(p) == kind]
    assert files
    with live.client() as client:
        for path in files:
            ack = client.send(path.read_bytes())
            assert ack.code == "AR", path
            assert ack.error_codes() == ["200"], path
            assert ack.error_locations() == ["MSH^1^9^1^1"]
    assert resources(live.store, "Patient") == []
    assert {r.status for r in rows(live.store)} == {"rejected"}


def test_corpus_admission_alone(store: Store, live: Live, corpus: Path) -> None:
    ack = live.send((corpus / "hl7v2/ansforge-hl7V2-exemples/SGL/admission.er7").read_bytes())
    assert ack.code == "AA" and ack.acked_id == "3975"
    # ACK header: addressed back to the sender, same version and charset as the message.
    assert ack.msh[2:6] == ["DPI", "CHU-X", "GAM", "CHU-X"]
    assert ack.msh[8] == "ACK^A01^ACK" and ack.msh[11] == "2.5^FRA^2.11"
    assert ack.msh[17] == "UNICODE UTF-8"
    enc = one(store, "Encounter")
    assert enc["status"] == "in-progress"
    assert enc["location"][0]["location"]["identifier"]["value"] == "6268"
    assert enc["serviceProvider"]["identifier"]["value"] == "000897406"
