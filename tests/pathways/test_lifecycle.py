"""Each shipped pathway, from enrolment to exit, in simulated time (SQLite and PostgreSQL)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from parcours.pathways import enrol, load_library, tasks_of
from parcours.platform import Platform

from .conftest import SimClock, new_patient
from .driver import drive

NO = {"reached": False, "crisis": False}

# pathway, birth date, answers per form, steps expected, final status, exit reason
SCENARIOS: list[tuple[str, str, dict[str, Any], list[str], str, str]] = [
    (
        "vigilans",
        "1990-02-01",
        {"recontactCall": NO, "sixMonthReview": {"reattempt": False}},
        ["discharge", "recontact", "postcards", "review"],
        "completed",
        "completed",
    ),
    (
        "vigilans",
        "1990-02-01",
        {"recontactCall": {"reached": True, "crisis": True}},
        ["discharge", "recontact"],
        "revoked",
        "crisis",
    ),
    (
        "dac-coordination",
        "1938-06-12",
        {
            "requestAnalysis": {"complex": True, "needs": "isolement, chutes"},
            "review": [{"stillComplex": True}, {"stillComplex": True}, {"stillComplex": False}],
        },
        ["intake", "assessment", "ppcs", "follow-up", "follow-up", "closure"],
        "completed",
        "completed",
    ),
    (
        "dac-coordination",
        "1938-06-12",
        {"requestAnalysis": {"complex": False}},
        ["intake", "orientation"],
        "completed",
        "completed",
    ),
    (
        "reppop",
        "2015-09-20",
        {
            "initialAssessment": {"bmiZScore": 3.1, "comorbidity": False},
            "followUp": {"bmiZScore": 2.7, "continue": True},
        },
        ["initial-assessment", "follow-up", "final-review"],
        "completed",
        "completed",
    ),
    (
        "heart-failure",
        "1947-03-08",
        {"nurseCall": {"alert": False, "readmitted": False, "weightGainKg": 0.5}},
        ["discharge", "titration", "handover"],
        "completed",
        "completed",
    ),
    (
        "rp-diabetes",
        "1961-11-30",
        {"stratification": {"stratum": 3, "hba1c": 8.4}},
        ["stratification", "intensive", "annual-review"],
        "completed",
        "completed",
    ),
    (
        "rp-diabetes",
        "1961-11-30",
        {"stratification": {"stratum": 1}},
        ["stratification", "standard", "annual-review"],
        "completed",
        "completed",
    ),
    (
        "sport-sante",
        "1972-05-14",
        {
            "fitnessTests": {"sixMinuteWalkM": 410},
            "monthlyReview": [{"attending": True, "sessions": 8}],
        },
        ["welcome", "programme", "final-assessment", "autonomy"],
        "completed",
        "completed",
    ),
    (
        "sport-sante",
        "1972-05-14",
        {"fitnessTests": {"sixMinuteWalkM": 380}, "monthlyReview": {"attending": False}},
        ["welcome", "programme"],
        "revoked",
        "dropout",
    ),
    (
        "carers-respite",
        "1958-01-25",
        {
            "carerAssessment": {"burden": "élevé", "respiteNeeded": True},
            "checkIn": {"caregivingEnded": False, "respiteDays": 2},
        },
        ["first-contact", "respite-plan", "review"],
        "completed",
        "completed",
    ),
    (
        "carers-respite",
        "1958-01-25",
        {"carerAssessment": {"burden": "faible", "respiteNeeded": False}},
        ["first-contact", "information"],
        "completed",
        "completed",
    ),
]


@pytest.mark.parametrize(
    ("pathway", "birth", "answers", "steps", "status", "reason"),
    SCENARIOS,
    ids=[f"{s[0]}-{s[5]}-{i}" for i, s in enumerate(SCENARIOS)],
)
def test_shipped_pathway_lifecycle(
    platform: Platform,
    clock: SimClock,
    pathway: str,
    birth: str,
    answers: dict[str, Any],
    steps: list[str],
    status: str,
    reason: str,
) -> None:
    load_library(platform.store)
    patient = new_patient(platform, birth_date=birth)
    started = clock()
    with platform.store.begin() as tx:
        enrolment = enrol(tx, pathway, patient, clock, consent=True)
    final, done = drive(platform, enrolment.careplan_id, clock, answers)
    assert list(final.history) == steps
    assert (final.status, final.exit) == (status, reason)
    assert final.ended is not None and clock() > started
    with platform.store.begin() as tx:
        tasks = tasks_of(tx, careplan_id=enrolment.careplan_id)
    # Nothing stays open after the exit; every task done was one of the enrolment's.
    assert not [t for t in tasks if t.status not in ("completed", "cancelled")]
    assert sorted(done) == sorted(t.task for t in tasks if t.status == "completed")


def test_vigilans_timing_and_postcards(platform: Platform, clock: SimClock) -> None:
    """The recontact call's window is day 10 to day 21 after discharge; four postcards."""
    load_library(platform.store)
    patient = new_patient(platform)
    day0 = clock()
    with platform.store.begin() as tx:
        enrolment = enrol(tx, "vigilans", patient, clock, consent=True)
    final, done = drive(
        platform,
        enrolment.careplan_id,
        clock,
        {"recontactCall": NO, "sixMonthReview": {"reattempt": False}},
    )
    with platform.store.begin() as tx:
        tasks = {t.task + str(t.occurrence): t for t in tasks_of(tx, careplan_id=final.careplan_id)}
    call = tasks["recontact-call1"]
    from parcours.store.clock import parse_instant_ms

    assert call.not_before is not None and call.due is not None
    assert (parse_instant_ms(call.not_before) - day0) // 86_400_000 == 10
    assert (parse_instant_ms(call.due) - day0) // 86_400_000 == 21
    assert done.count("postcard") == 4
    dues = sorted(parse_instant_ms(t.due or "") for t in tasks.values() if t.task == "postcard")
    assert {b - a for a, b in itertools.pairwise(dues)} == {30 * 86_400_000}
