"""The identity rules on the store: FR Core checks on write, online matching, review queue.

Every write goes through ``build_platform``'s store, as the REST API, the HL7 listener and
the UI do, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from parcours.config import Settings
from parcours.errors import Conflict, InvalidResource
from parcours.identity import (
    INS_KEY_INVALID,
    CandidateStatus,
    IdentityCollision,
    Status,
    decide,
    identity_block,
    ins_key,
    list_candidates,
    read_reliability,
)
from parcours.platform import Platform, build_platform
from parcours.store.schema_version import ensure_schema

from .conftest import make_patient

NIR = "urn:oid:1.2.250.1.213.1.4.8"
TEST_NIR = "urn:oid:1.2.250.1.213.1.4.10"
# RNIV 1 §2.2 example, key-valid; the same with the last digit changed is key-invalid.
GOOD_INS = "260058815400233"
BAD_INS = "260058815400234"
IPP = "urn:oid:1.2.250.1.999.1"
INS_PROFILE = "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient-ins"


def _platform(database_url: str, **settings: Any) -> Iterator[Platform]:
    platform = build_platform(Settings(database_url=database_url, **settings))
    ensure_schema(platform.store.engine)
    try:
        yield platform
    finally:
        platform.close()


@pytest.fixture
def platform(database_url: str) -> Iterator[Platform]:
    yield from _platform(database_url)


def _queue(platform: Platform, *statuses: CandidateStatus) -> list[Any]:
    with platform.store.begin(readonly=True) as tx:
        return list_candidates(tx, statuses=statuses or tuple(CandidateStatus))


def _adult(patient_id: str, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("ins", None)
    kwargs.setdefault("status", "PROV")
    return make_patient(patient_id=patient_id, **kwargs)


# ---- FR Core on write -------------------------------------------------------------------------


def test_key_invalid_ins_is_dropped_and_queued_for_the_referent(
    platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    # D5: the identity is stored without the key-invalid INS (never stored as an INS), its
    # status capped at PROV, and the referent finds the dropped value in the review queue.
    sent = make_patient(ins=BAD_INS, ipp=(IPP, "42"))
    before = copy.deepcopy(sent)
    with caplog.at_level(logging.WARNING):
        created = platform.store.create(sent)
    assert sent == before  # the caller's request is left as it was
    stored = platform.store.read("Patient", created["id"])
    assert stored == created
    assert BAD_INS not in json.dumps(stored)
    assert stored["identifier"] == [i for i in sent["identifier"] if i["value"] != BAD_INS]
    assert read_reliability(stored).status is Status.PROV
    assert stored["name"] == sent["name"] and stored["birthDate"] == sent["birthDate"]
    # The warning names the element, never the matricule nor the name.
    assert "Patient.identifier[1].value" in caplog.text and "key-invalid INS" in caplog.text
    assert BAD_INS not in caplog.text and "DARK" not in caplog.text
    [alert] = _queue(platform)
    assert (alert.kind, alert.reason, alert.status) == (
        INS_KEY_INVALID,
        "ins-key-invalid",
        CandidateStatus.OPEN,
    )
    assert alert.patient_a == alert.patient_b == created["id"]
    [dropped] = alert.details["dropped"]
    assert dropped["value"] == BAD_INS and dropped["system"] == NIR
    assert dropped["location"] == "Patient.identifier[1]" and dropped["version"] == "1"
    assert alert.details["status_before"] == "QUAL"
    assert alert.as_json()["patients"] == [f"Patient/{created['id']}"]


def test_ins_alert_is_refreshed_not_duplicated_and_reopened_for_a_new_value(
    platform: Platform,
) -> None:
    platform.store.update(make_patient(patient_id="k1", ins=BAD_INS))
    platform.store.update(make_patient(patient_id="k1", ins=BAD_INS, used_name="DURAND"))
    [alert] = _queue(platform)
    assert [d["value"] for d in alert.details["dropped"]] == [BAD_INS]
    with platform.store.begin() as tx:
        with pytest.raises(Conflict):
            decide(tx, alert.pk, CandidateStatus.NOT_DUPLICATE, actor="referent", reason="x")
        decide(tx, alert.pk, CandidateStatus.RESOLVED, actor="referent", reason="typo fixed")
    # The same value again: the referent already dealt with it.
    platform.store.update(make_patient(patient_id="k1", ins=BAD_INS, used_name="MARTIN"))
    [same] = _queue(platform)
    assert same.status is CandidateStatus.RESOLVED
    other = "260058815400235"
    platform.store.update(make_patient(patient_id="k1", ins=other))
    [reopened] = _queue(platform)
    assert reopened.status is CandidateStatus.OPEN and reopened.decided_by is None
    assert [d["value"] for d in reopened.details["dropped"]] == [BAD_INS, other]


def test_key_invalid_ins_dropped_in_a_transaction_is_queued(platform: Platform) -> None:
    with platform.store.begin() as tx:
        tx.update(make_patient(patient_id="t1", ins=BAD_INS))
        other = make_patient(
            patient_id="t2", ins=GOOD_INS, family="MARTIN", given="PAUL", given_list="PAUL"
        )
        tx.update(other)
    [alert] = _queue(platform)
    assert alert.patient_a == "t1"
    assert "identifier" not in platform.store.read("Patient", "t1")
    assert platform.store.read("Patient", "t2")["identifier"][0]["value"] == GOOD_INS


def test_other_ins_faults_are_still_refused_naming_the_field(platform: Platform) -> None:
    # Not the key-invalid case: malformed length, and a test INS (even key-invalid) in
    # production, keep their 422 and queue nothing.
    with pytest.raises(InvalidResource) as caught:
        platform.store.create(make_patient(ins=GOOD_INS[:14]))
    error = caught.value
    assert error.status == 422
    assert "Patient.identifier[0].value" in {i.location for i in error.issues}
    # Never echo the matricule (nor the name) in an error.
    assert GOOD_INS[:14] not in str(error) and "DARK" not in str(error)
    assert _queue(platform) == []


def test_a_failed_write_queues_no_alert(platform: Platform) -> None:
    # Key-invalid INS dropped, but the Patient is refused for another reason: nothing queued.
    with pytest.raises(InvalidResource):
        platform.store.create(make_patient(ins=BAD_INS, birthplace="7A056"))
    assert _queue(platform) == []


def test_key_valid_ins_is_stored(platform: Platform) -> None:
    created = platform.store.create(make_patient(ins=GOOD_INS))
    assert platform.store.read("Patient", created["id"])["identifier"][0]["value"] == GOOD_INS


def test_key_valid_ins_queues_no_alert(platform: Platform) -> None:
    platform.store.create(make_patient(ins=GOOD_INS))
    assert _queue(platform) == []


def test_fr_core_invariants_are_checked_on_write(platform: Platform) -> None:
    # fr-core-1: a qualified identity without any INS, claiming the FR Core INS profile.
    claims = {"meta": {"profile": [INS_PROFILE]}}
    with pytest.raises(InvalidResource) as caught:
        platform.store.create({**make_patient(ins=None, status="QUAL"), **claims})
    assert any(i.severity == "error" for i in caught.value.issues)
    # Birthplace COG shape is checked too.
    with pytest.raises(InvalidResource) as caught:
        platform.store.create(make_patient(birthplace="7A056"))
    assert any("extension" in (i.location or "") for i in caught.value.issues)


def test_plain_r4_patient_without_ins_gets_only_the_structure_check(platform: Platform) -> None:
    created = platform.store.create({"resourceType": "Patient", "name": [{"family": "x"}]})
    assert created["id"]


@pytest.mark.parametrize("production", [False, True])
def test_test_ins_only_outside_production(database_url: str, production: bool) -> None:
    patient = make_patient(ins=GOOD_INS, ins_type="INS-NIR-TEST", ins_system=TEST_NIR)
    for platform in _platform(database_url, production=production):
        if production:
            with pytest.raises(InvalidResource) as caught:
                platform.store.create(patient)
            assert any("identifier[0]" in (i.location or "") for i in caught.value.issues)
            # D11 wins over D5: a key-invalid test INS in production is refused, not dropped.
            bad = make_patient(ins=BAD_INS, ins_type="INS-NIR-TEST", ins_system=TEST_NIR)
            with pytest.raises(InvalidResource) as caught:
                platform.store.create(bad)
            assert any("identifier[0]" in (i.location or "") for i in caught.value.issues)
            assert _queue(platform) == []
        else:
            assert platform.store.create(patient)["id"]


# ---- online matching --------------------------------------------------------------------------


def test_certain_duplicate_is_stored_and_linked_never_merged(platform: Platform) -> None:
    platform.store.update(_adult("a1"))
    second = platform.store.update(_adult("a2")).resource
    # The create is stored as sent: no Patient.link, no merge.
    assert "link" not in second and platform.store.read("Patient", "a2")["id"] == "a2"
    [pair] = _queue(platform)
    assert (pair.patient_a, pair.patient_b) == ("a1", "a2")
    assert (pair.status, pair.outcome, pair.grade) == (
        CandidateStatus.LINKED,
        "auto-link",
        "certain",
    )


def test_middle_band_goes_to_the_review_queue(platform: Platform) -> None:
    platform.store.update(_adult("m1"))
    platform.store.update(_adult("m2", birthplace="75056"))
    [pair] = _queue(platform)
    assert (pair.status, pair.outcome, pair.grade) == (CandidateStatus.OPEN, "review", "probable")
    # The queue stores level names, never trait values.
    assert pair.details["levels"]["birthplace"] != "75056"
    assert "75056" not in str(pair.details) and "DARK" not in str(pair.details)


def test_minors_always_go_to_review(platform: Platform) -> None:
    platform.store.update(_adult("k1", birth_date="2019-02-03", given_list="LOUISE"))
    platform.store.update(_adult("k2", birth_date="2019-02-03", given_list="LOUISE"))
    [pair] = _queue(platform)
    assert pair.status is CandidateStatus.OPEN
    assert any("minor" in r for r in pair.details["reasons"])


def test_minors_with_the_same_ins_still_go_to_review(platform: Platform) -> None:
    ins = "1190221231001" + ins_key("1190221231001")
    for pid in ("n1", "n2"):
        platform.store.update(
            make_patient(
                patient_id=pid, ins=ins, birth_date="2019-02-03", given_list="PAUL", gender="male",
                given="PAUL", family="MARTIN", birthplace="21231",
            )
        )  # fmt: skip
    [pair] = _queue(platform)
    assert (pair.status, pair.tier) == (CandidateStatus.OPEN, "ins")


def test_same_ins_with_conflicting_strict_traits_is_a_collision(
    platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    platform.store.update(make_patient(patient_id="c1", ins=GOOD_INS))
    with pytest.raises(IdentityCollision) as caught:
        platform.store.update(make_patient(patient_id="c2", ins=GOOD_INS, family="DUPONT"))
    assert isinstance(caught.value, Conflict) and caught.value.status == 409
    assert "birth_name" in str(caught.value)
    assert GOOD_INS not in str(caught.value) and "DUPONT" not in str(caught.value)
    # The vigilance trace names the records, never the INS or a name.
    assert "Patient/c2" in caplog.text and "Patient/c1" in caplog.text
    assert GOOD_INS not in caplog.text and "DUPONT" not in caplog.text
    # Nothing of the refused write was kept.
    with platform.store.begin(readonly=True) as tx:
        assert not tx.exists("Patient", "c2")
        keys = tx.conn.execute(
            select(identity_block.c.key).where(identity_block.c.patient_id == "c2")
        ).all()
    assert keys == []


def test_same_sender_ipp_links_whatever_the_traits(platform: Platform) -> None:
    platform.store.update(_adult("i1", ipp=(IPP, "123")))
    platform.store.update(_adult("i2", ipp=(IPP, "123"), family="DUPONT", given="LUC"))
    [pair] = _queue(platform)
    assert (pair.status, pair.tier) == (CandidateStatus.LINKED, "local-id")


def test_strangers_queue_nothing(platform: Platform) -> None:
    platform.store.update(_adult("s1"))
    platform.store.update(
        _adult("s2", family="MARTIN", given="PAUL", given_list=None, gender="male",
               birth_date="1971-12-01", birthplace="21231")
    )  # fmt: skip
    assert _queue(platform) == []


def test_a_decision_is_never_reopened_by_matching(platform: Platform) -> None:
    platform.store.update(_adult("d1"))
    platform.store.update(_adult("d2", birthplace="75056"))
    [pair] = _queue(platform)
    with platform.store.begin() as tx:
        decided = decide(
            tx, pair.pk, CandidateStatus.NOT_DUPLICATE, actor="referent", reason="twins"
        )
    assert decided.decided_by == "referent" and decided.decided_at is not None
    platform.store.update(_adult("d2", birthplace="75056", used_name="DURAND"))
    [again] = _queue(platform)
    assert again.status is CandidateStatus.NOT_DUPLICATE


def test_deleted_patient_is_no_longer_a_candidate(platform: Platform) -> None:
    platform.store.update(_adult("x1"))
    platform.store.delete("Patient", "x1")
    platform.store.update(_adult("x2"))
    assert _queue(platform) == []


def test_unchanged_identity_is_not_rescored(platform: Platform) -> None:
    platform.store.update(_adult("u1"))
    platform.store.update(_adult("u2", birthplace="75056"))
    [pair] = _queue(platform)
    # An update that changes no trait (here: telecom) leaves the queue row untouched.
    platform.store.update({**_adult("u2", birthplace="75056"), "telecom": [
        {"system": "phone", "value": "0380000000"}]})  # fmt: skip
    [same] = _queue(platform)
    assert same == pair


def test_reindex_rebuilds_keys_and_audit_rows(
    platform: Platform,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from sqlalchemy import delete, func

    from parcours.cli import main
    from parcours.identity import identity_record

    platform.store.update(_adult("r1"))
    platform.store.update(_adult("r2", family="MARTIN"))
    platform.store.update({"resourceType": "Patient", "id": "r3", "birthDate": "1999"})

    def counts() -> tuple[int, int]:
        with platform.store.begin(readonly=True) as tx:
            keys = tx.conn.execute(select(func.count()).select_from(identity_block)).scalar()
            rows = tx.conn.execute(select(func.count()).select_from(identity_record)).scalar()
        return int(keys or 0), int(rows or 0)

    before = counts()
    assert before[1] == 3
    with platform.store.begin() as tx:
        tx.conn.execute(delete(identity_block))
        tx.conn.execute(delete(identity_record))
    assert counts() == (0, 0)
    monkeypatch.setenv("PARCOURS_DATABASE_URL", database_url)
    assert main(["identity", "reindex"]) == 0
    assert "3 patients, 3 matchable" in capsys.readouterr().out
    assert counts() == before
