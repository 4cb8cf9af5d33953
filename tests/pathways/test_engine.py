"""Engine rules: consent, inclusion, one enrolment at a time, re-entry, leaving, the sweep,
access control, and a new pathway added from a YAML file only."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from parcours.errors import Conflict, Forbidden, InvalidInput, InvalidResource
from parcours.pathways import (
    answer_form,
    complete_task,
    enrol,
    enrolments_of,
    leave,
    load_library,
    load_yaml_file,
    save_definition,
    sweep_overdue,
    tasks_of,
)
from parcours.pathways.catalogue import search_all
from parcours.pathways.tables import pathway_task
from parcours.platform import Platform
from parcours.security.policy import access_for
from parcours.security.principal import Principal
from parcours.store.clock import parse_instant_ms

from .conftest import DAY_MS, SimClock, new_patient
from .driver import drive

NEW_PATHWAY = """\
id: fall-prevention
version: 0.1.0
title: Prévention des chutes (pathway written for this test only)
inclusion:
  criteria:
    - id: over-65
      expression: Patient.birthDate <= %today - 65 years
roles:
  - id: nurse
    title: Infirmier·e
  - id: physio
    title: Kinésithérapeute
start: screening
steps:
  - id: screening
    title: Repérage
    tasks:
      - id: screen
        title: Test de repérage du risque de chute
        owner: nurse
        due: {after: P7D}
        form: screening
    transitions:
      - to: exercise
        when: "%answers.screening.timedUpAndGoS > 14"
  - id: exercise
    title: Programme d'exercices
    tasks:
      - id: session
        title: Séance de kinésithérapie
        owner: physio
        due: {after: P7D, from: step}
        repeat: {every: P7D, count: 3}
forms:
  - id: screening
    title: Repérage
    items:
      - link_id: timedUpAndGoS
        text: Timed Up and Go (secondes)
        type: decimal
        required: true
"""


def test_a_new_pathway_needs_only_a_yaml_file(
    platform: Platform, clock: SimClock, tmp_path: Path
) -> None:
    path = tmp_path / "fall-prevention.yaml"
    path.write_text(NEW_PATHWAY, encoding="utf-8")
    with platform.store.begin() as tx:
        assert save_definition(tx, load_yaml_file(path)) == "created"
    young, old = new_patient(platform, "1990-01-01"), new_patient(platform, "1940-01-01")
    with platform.store.begin() as tx, pytest.raises(InvalidResource, match="over-65"):
        enrol(tx, "fall-prevention", young, clock)
    with platform.store.begin() as tx:
        enrolment = enrol(tx, "fall-prevention", old, clock)
    final, done = drive(
        platform, enrolment.careplan_id, clock, {"screening": {"timedUpAndGoS": 19.5}}
    )
    assert final.history == ("screening", "exercise")
    assert (final.status, final.exit) == ("completed", "completed")
    assert done == ["screen", "session", "session", "session"]


def test_consent_inclusion_and_one_enrolment_at_a_time(platform: Platform, clock: SimClock) -> None:
    load_library(platform.store)
    adult = new_patient(platform, "1980-01-01")
    with platform.store.begin() as tx, pytest.raises(InvalidInput, match="consent"):
        enrol(tx, "vigilans", adult, clock)
    with platform.store.begin() as tx, pytest.raises(InvalidResource, match="under-18"):
        enrol(tx, "reppop", adult, clock, consent=True)
    with platform.store.begin() as tx:
        first = enrol(tx, "vigilans", adult, clock, consent=True)
        careplan = tx.read("CarePlan", first.careplan_id)
        consent = tx.read("Consent", careplan["supportingInfo"][0]["reference"].split("/")[1])
    assert consent["provision"]["type"] == "permit"
    assert consent["patient"]["reference"] == f"Patient/{adult}"
    with platform.store.begin() as tx, pytest.raises(Conflict, match="already enrolled"):
        enrol(tx, "vigilans", adult, clock, consent=True)


def test_exit_then_reentry_at_the_configured_step(platform: Platform, clock: SimClock) -> None:
    """Heart failure: a readmission ends the enrolment; the next one restarts at discharge."""
    load_library(platform.store)
    patient = new_patient(platform, "1950-05-05")
    with platform.store.begin() as tx:
        first = enrol(tx, "heart-failure", patient, clock, consent=True)
    final, _ = drive(
        platform, first.careplan_id, clock, {"nurseCall": {"alert": True, "readmitted": True}}
    )
    assert (final.status, final.exit) == ("revoked", "readmitted")
    clock.advance(days=12)
    with platform.store.begin() as tx:
        second = enrol(tx, "heart-failure", patient, clock, consent=True)
        careplan = tx.read("CarePlan", second.careplan_id)
        history = enrolments_of(tx, patient)
    assert careplan["replaces"] == [{"reference": f"CarePlan/{first.careplan_id}"}]
    assert second.history == ("discharge",)
    assert [e.status for e in history] == ["revoked", "active"]


def test_leave_cancels_open_tasks(platform: Platform, clock: SimClock) -> None:
    load_library(platform.store)
    patient = new_patient(platform)
    with platform.store.begin() as tx:
        enrolment = enrol(tx, "sport-sante", patient, clock, consent=True)
        left = leave(tx, enrolment.careplan_id, clock, reason="moved-away")
        tasks = tasks_of(tx, careplan_id=enrolment.careplan_id)
    assert (left.status, left.exit) == ("revoked", "moved-away")
    assert {t.status for t in tasks} == {"cancelled"}
    with platform.store.begin() as tx, pytest.raises(Conflict, match="already ended"):
        leave(tx, enrolment.careplan_id, clock)
    with platform.store.begin() as tx, pytest.raises(Conflict, match="cancelled"):
        complete_task(tx, tasks[0].task_id, clock)


def test_bad_answers_are_refused_with_every_problem(platform: Platform, clock: SimClock) -> None:
    load_library(platform.store)
    patient = new_patient(platform)
    with platform.store.begin() as tx:
        enrolment = enrol(tx, "carers-respite", patient, clock)
        task = next(
            t
            for t in tasks_of(tx, careplan_id=enrolment.careplan_id)
            if t.task == "needs-assessment"
        )
    with platform.store.begin() as tx, pytest.raises(InvalidInput) as caught:
        answer_form(tx, task.task_id, {"burden": "énorme", "colour": "blue"}, clock)
    text = str(caught.value)
    assert "'burden' must be one of" in text
    assert "'respiteNeeded' is required" in text
    assert "no item 'colour'" in text


def test_sweep_sends_reminders_then_escalations(platform: Platform, clock: SimClock) -> None:
    """VigilanS recontact call: reminders 3 days before and at the due date, an escalation to
    the psychiatrist 2 days after; each sent once, to whoever holds the role."""
    load_library(platform.store)
    patient = new_patient(platform)
    day0 = clock()
    with platform.store.begin() as tx:
        enrolment = enrol(
            tx,
            "vigilans",
            patient,
            clock,
            consent=True,
            assignments={
                "vigilans-team": "Organization/cellule-vigilans-21",
                "vigilans-psychiatrist": "Practitioner/psy-1",
            },
        )
        for task in tasks_of(tx, careplan_id=enrolment.careplan_id, open_only=True):
            complete_task(tx, task.task_id, clock)
        call = next(t for t in tasks_of(tx, careplan_id=enrolment.careplan_id, open_only=True))
    assert call.task == "recontact-call" and call.owner == "Organization/cellule-vigilans-21"
    assert sweep_overdue(platform.store, day0 + 17 * DAY_MS).tasks == 0
    report = sweep_overdue(platform.store, day0 + 18 * DAY_MS + 1)
    assert (report.reminders, report.escalations) == (1, 0)
    assert sweep_overdue(platform.store, day0 + 18 * DAY_MS + 2).tasks == 0  # sent once
    report = sweep_overdue(platform.store, day0 + 30 * DAY_MS)
    assert (report.reminders, report.escalations) == (1, 1)
    with platform.store.begin() as tx:
        escalations = search_all(tx, "Task", [("focus", f"Task/{call.task_id}")])
        reminders = search_all(tx, "Communication", [("subject", f"Patient/{patient}")])
        task = tx.read("Task", call.task_id)
        row = tx.conn.execute(
            select(pathway_task).where(pathway_task.c.task_id == call.task_id)
        ).one()
    assert len(escalations) == 1
    assert escalations[0]["owner"] == {"reference": "Practitioner/psy-1"}
    assert escalations[0]["priority"] == "urgent"
    assert len(reminders) == 2
    assert all(
        r["recipient"] == [{"reference": "Organization/cellule-vigilans-21"}] for r in reminders
    )
    assert task["businessStatus"]["coding"][0]["code"] == "escalated"
    assert row.next_alert_ms is None and row.status == "requested"
    assert parse_instant_ms(task["restriction"]["period"]["end"]) == day0 + 21 * DAY_MS


def test_closed_tasks_leave_the_sweep(platform: Platform, clock: SimClock) -> None:
    load_library(platform.store)
    patient = new_patient(platform)
    day0 = clock()
    with platform.store.begin() as tx:
        enrolment = enrol(tx, "dac-coordination", patient, clock)
        for task in tasks_of(tx, careplan_id=enrolment.careplan_id, open_only=True):
            if task.task == "acknowledge":
                complete_task(tx, task.task_id, clock)
    # "acknowledge" (escalation after 3 days) is done: only analyse-request's reminder is left.
    report = sweep_overdue(platform.store, day0 + 60 * DAY_MS)
    assert (report.tasks, report.reminders, report.escalations) == (1, 1, 0)


def test_access_policy_applies_to_the_engine(platform: Platform, clock: SimClock) -> None:
    load_library(platform.store)
    patient = new_patient(platform)
    outsider = Principal(
        subject="Practitioner/outsider",
        roles=frozenset({"professional"}),
        practitioner="Practitioner/outsider",
    )
    with platform.store.begin() as tx:
        tx.access = access_for(tx, outsider)
        with pytest.raises(Forbidden):
            enrol(tx, "carers-respite", patient, clock)
