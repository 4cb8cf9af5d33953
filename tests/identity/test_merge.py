"""Merge and unmerge through the repository, on SQLite and PostgreSQL.

The property: for any set of resources of several types that reference some patients in
various fields (subject, performer, participant member, versioned references, notes...),
merging one patient into another re-points every reference to it, and unmerging restores
every resource's content exactly (meta apart).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parcours.config import Settings
from parcours.errors import Conflict, NotFound
from parcours.identity import (
    CandidateStatus,
    identity_merge,
    ins_key,
    list_candidates,
    merge_patients,
    unmerge,
)
from parcours.platform import Platform, build_platform
from parcours.store.schema_version import ensure_schema

from .conftest import make_patient


@pytest.fixture
def platform(database_url: str) -> Iterator[Platform]:
    platform = build_platform(Settings(database_url=database_url))
    ensure_schema(platform.store.engine)
    try:
        yield platform
    finally:
        platform.close()


def _ref(pid: str, versioned: bool = False) -> dict[str, str]:
    return {"reference": f"Patient/{pid}/_history/1" if versioned else f"Patient/{pid}"}


# Each builder: (id, main patient, extra patients, versioned?) -> a valid R4 resource whose
# main reference is indexed by a search parameter and whose extras sit in other fields.
Builder = Callable[[str, str, list[str], bool], dict[str, Any]]


def _encounter(rid: str, p: str, extra: list[str], v: bool) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": rid,
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": _ref(p, v),
    }


def _observation(rid: str, p: str, extra: list[str], v: bool) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {"text": "poids"},
        "subject": _ref(p),
    }
    if extra:
        res["performer"] = [_ref(x, v) for x in extra]
        res["note"] = [{"authorReference": _ref(extra[0]), "text": "vu"}]
    return res


def _careteam(rid: str, p: str, extra: list[str], v: bool) -> dict[str, Any]:
    return {
        "resourceType": "CareTeam",
        "id": rid,
        "subject": _ref(p),
        "participant": [{"member": _ref(x, v)} for x in extra],
    }


def _task(rid: str, p: str, extra: list[str], v: bool) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "Task",
        "id": rid,
        "status": "requested",
        "intent": "order",
        "for": _ref(p, v),
    }
    if extra:
        res["owner"] = _ref(extra[0])
        res["requester"] = _ref(extra[-1])
    return res


def _document(rid: str, p: str, extra: list[str], v: bool) -> dict[str, Any]:
    return {
        "resourceType": "DocumentReference",
        "id": rid,
        "status": "current",
        "subject": _ref(p),
        "author": [_ref(x, v) for x in extra],
        "content": [{"attachment": {"contentType": "text/plain", "title": "CR"}}],
    }


def _appointment(rid: str, p: str, extra: list[str], v: bool) -> dict[str, Any]:
    return {
        "resourceType": "Appointment",
        "id": rid,
        "status": "booked",
        "participant": [{"actor": _ref(x), "status": "accepted"} for x in [p, *extra]],
    }


BUILDERS: tuple[Builder, ...] = (
    _encounter,
    _observation,
    _careteam,
    _task,
    _document,
    _appointment,
)
NAMES = ("MARTIN", "BERNARD", "ROUSSEAU", "FONTAINE", "LEGRAND")


def _strip(res: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in res.items() if k != "meta"}


def _snapshot(platform: Platform, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    with platform.store.begin(readonly=True) as tx:
        return {key: _strip(tx.read(*key)) for key in keys}


def _references(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [
            ref
            for k, v in value.items()
            for ref in ([v] if k == "reference" and isinstance(v, str) else _references(v))
        ]
    if isinstance(value, list):
        return [ref for item in value for ref in _references(item)]
    return []


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_merge_then_unmerge_restores_every_reference(platform: Platform, data: Any) -> None:
    run = uuid.uuid4().hex[:8]
    n_patients = data.draw(st.integers(2, 4), label="patients")
    patients = [f"{run}-p{i}" for i in range(n_patients)]
    specs = data.draw(
        st.lists(
            st.tuples(
                st.sampled_from(range(len(BUILDERS))),
                st.sampled_from(range(n_patients)),
                st.lists(st.sampled_from(range(n_patients)), max_size=3),
                st.booleans(),
            ),
            min_size=1,
            max_size=12,
        ),
        label="resources",
    )
    source_i, target_i = data.draw(
        st.lists(st.sampled_from(range(n_patients)), min_size=2, max_size=2, unique=True),
        label="source, target",
    )
    source, target = patients[source_i], patients[target_i]
    keys: list[tuple[str, str]] = [("Patient", p) for p in patients]
    with platform.store.begin() as tx:
        for i, pid in enumerate(patients):
            tx.update(
                make_patient(
                    patient_id=pid, ins=None, status="PROV", family=NAMES[i], given="ANNE",
                    given_list=None, birth_date=f"19{50 + i}-0{i + 1}-1{i}",
                )
            )  # fmt: skip
        for n, (kind, main, extras, versioned) in enumerate(specs):
            res = BUILDERS[kind](
                f"{run}-r{n}", patients[main], [patients[x] for x in extras], versioned
            )
            tx.update(res)
            keys.append((res["resourceType"], res["id"]))
    before = _snapshot(platform, keys)

    with platform.store.begin() as tx:
        result = merge_patients(tx, source, target, actor="referent", reason="same person")
    merged = _snapshot(platform, keys)
    for key, content in merged.items():
        if key[0] == "Patient":
            continue
        refs = _references(content)
        assert not any(r.split("/_history/")[0] == f"Patient/{source}" for r in refs), key
        if _references(before[key]) != refs:
            assert f"{key[0]}/{key[1]}" in result.written
    assert merged[("Patient", source)]["active"] is False
    assert {"other": {"reference": f"Patient/{target}"}, "type": "replaced-by"} in merged[
        ("Patient", source)
    ]["link"]
    assert {"other": {"reference": f"Patient/{source}"}, "type": "replaces"} in merged[
        ("Patient", target)
    ]["link"]

    with platform.store.begin() as tx:
        unmerge(tx, result.merge_id, actor="referent", reason="two people after all")
    assert _snapshot(platform, keys) == before


def _two(platform: Platform, **b: Any) -> None:
    platform.store.update(make_patient(patient_id="s", ins=None, status="PROV"))
    platform.store.update(make_patient(patient_id="t", ins=None, status="PROV", **b))


def test_merge_is_journalled_and_marks_the_pair(platform: Platform) -> None:
    _two(platform, birthplace="75056")
    platform.store.update(
        {"resourceType": "Encounter", "id": "e", "status": "finished", "subject": _ref("s"),
         "class": {"code": "AMB"}}
    )  # fmt: skip
    with platform.store.begin() as tx:
        result = merge_patients(tx, "s", "t", actor="referent-1", reason="RNIV check")
    assert result.written == ("Patient/s", "Patient/t", "Encounter/e")
    with platform.store.begin(readonly=True) as tx:
        row = tx.conn.execute(identity_merge.select()).one()
        [pair] = list_candidates(tx, statuses=tuple(CandidateStatus))
        assert tx.read("Encounter", "e")["subject"] == _ref("t")
        # History keeps the pre-merge version: the merge wrote a new one.
        assert tx.read("Encounter", "e")["meta"]["versionId"] == "2"
    assert (row.actor, row.reason, row.source_id, row.target_id) == (
        "referent-1", "RNIV check", "s", "t",
    )  # fmt: skip
    assert row.changes["resources"][0]["before"] == 1
    assert row.changes["resources"][0]["after"] == 2
    assert (pair.status, pair.decided_by) == (CandidateStatus.MERGED, "referent-1")


def test_unmerge_keeps_later_edits_of_other_elements(platform: Platform) -> None:
    _two(platform)
    platform.store.update(
        {"resourceType": "Encounter", "id": "e", "status": "in-progress", "subject": _ref("s"),
         "class": {"code": "AMB"}}
    )  # fmt: skip
    with platform.store.begin() as tx:
        merge_id = merge_patients(tx, "s", "t", actor="r", reason="x").merge_id
    edited = copy.deepcopy(platform.store.read("Encounter", "e"))
    edited["status"] = "finished"
    platform.store.update(edited)
    with platform.store.begin() as tx:
        unmerge(tx, merge_id, actor="r", reason="y")
    encounter = platform.store.read("Encounter", "e")
    assert (encounter["status"], encounter["subject"]) == ("finished", _ref("s"))


def test_merge_refusals(platform: Platform) -> None:
    _two(platform)
    ins_a = make_patient(patient_id="ia", ins="260058815400233")
    lea = "1850721231007" + ins_key("1850721231007")
    ins_b = make_patient(
        patient_id="ib", ins=lea, family="MARTIN", given="LEA", given_list="LEA",
        birth_date="1985-07-01", birthplace="21231",
    )  # fmt: skip
    platform.store.update(ins_a)
    platform.store.update(ins_b)
    with platform.store.begin() as tx, pytest.raises(Conflict, match="different INS"):
        merge_patients(tx, "ia", "ib", actor="r", reason="x")
    with platform.store.begin() as tx, pytest.raises(Conflict):
        merge_patients(tx, "s", "s", actor="r", reason="x")
    with platform.store.begin() as tx, pytest.raises(NotFound):
        merge_patients(tx, "s", "nobody", actor="r", reason="x")
    with platform.store.begin() as tx:
        merge_id = merge_patients(tx, "s", "t", actor="r", reason="x").merge_id
    with platform.store.begin() as tx, pytest.raises(Conflict, match="already merged"):
        merge_patients(tx, "s", "t", actor="r", reason="x")
    with platform.store.begin() as tx:
        unmerge(tx, merge_id, actor="r", reason="y")
    with platform.store.begin() as tx, pytest.raises(Conflict, match="already undone"):
        unmerge(tx, merge_id, actor="r", reason="y")
    with platform.store.begin() as tx, pytest.raises(NotFound):
        unmerge(tx, 999_999, actor="r", reason="y")


def test_merged_away_patient_is_not_a_candidate(platform: Platform) -> None:
    _two(platform, birthplace="75056")
    with platform.store.begin() as tx:
        merge_patients(tx, "s", "t", actor="r", reason="x")
    platform.store.update(make_patient(patient_id="n", ins=None, status="PROV"))
    with platform.store.begin(readonly=True) as tx:
        pairs = list_candidates(tx, statuses=tuple(CandidateStatus))
    # "n" has the traits of both, but only the survivor is matched against it.
    assert {(p.patient_a, p.patient_b) for p in pairs} == {("s", "t"), ("n", "t")}
