"""The identity rules on the store: FR Core checks on write, online matching, review queue.

Every write goes through ``build_platform``'s store, as the REST API, the HL7 listener and
the UI do, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from parcours.config import Settings
from parcours.errors import Conflict, InvalidResource
from parcours.identity import (
    CandidateStatus,
    IdentityCollision,
    decide,
    identity_block,
    ins_key,
    list_candidates,
)
from parcours.platform import Platform, build_platform
from parcours.store.schema_version import ensure_schema

from .conftest import make_patient

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


def test_key_invalid_ins_is_refused_naming_the_field(platform: Platform) -> None:
    with pytest.raises(InvalidResource) as caught:
        platform.store.create(make_patient(ins=BAD_INS))
    error = caught.value
    assert error.status == 422
    assert "Patient.identifier[0].value" in {i.location for i in error.issues}
    # Never echo the matricule (nor the name) in an error.
    assert BAD_INS not in str(error) and all(BAD_INS not in i.message for i in error.issues)
    assert "DARK" not in str(error)


def test_key_valid_ins_is_stored(platform: Platform) -> None:
    created = platform.store.create(make_patient(ins=GOOD_INS))
    assert platform.store.read("Patient", created["id"])["identifier"][0]["value"] == GOOD_INS


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
