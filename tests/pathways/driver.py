"""Runs a patient through a pathway in simulated time, as its actors would."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from parcours.pathways import Enrolment, answer_form, complete_task, enrolments_of, tasks_of
from parcours.platform import Platform
from parcours.store.clock import parse_instant_ms

from .conftest import SimClock

Answers = Mapping[str, Mapping[str, Any] | Sequence[Mapping[str, Any]]]


def drive(
    platform: Platform,
    careplan_id: str,
    clock: SimClock,
    answers: Answers,
    *,
    max_tasks: int = 200,
) -> tuple[Enrolment, list[str]]:
    """Do the open task due first, at the start of its window, until the enrolment ends.

    Returns the final enrolment and the tasks done, in order. Answers: per form, one answer
    set, or a list used in turn (the last one repeats).
    """
    used: dict[str, int] = {}
    done: list[str] = []
    for _ in range(max_tasks):
        with platform.store.begin() as tx:
            enrolment = next(
                e
                for e in enrolments_of(tx, _patient(tx, careplan_id))
                if e.careplan_id == careplan_id
            )
            if enrolment.status != "active":
                return enrolment, done
            open_tasks = tasks_of(tx, careplan_id=careplan_id, open_only=True)
            assert open_tasks, f"enrolment stuck in step {enrolment.step!r} with no open task"
            task = open_tasks[0]
            assert task.due is not None
            start = parse_instant_ms(task.not_before) if task.not_before else None
            # Act one hour into the window (or just before the due date), never going back.
            target = (
                start + 3_600_000 if start is not None else parse_instant_ms(task.due) - 3_600_000
            )
            clock.ms = max(clock.ms, target)
            if task.form is not None:
                form = task.form.partition("|")[0].rsplit("-", 1)[-1]
                given = answers[form]
                if isinstance(given, Sequence):
                    index = used.get(form, 0)
                    used[form] = index + 1
                    given = given[min(index, len(given) - 1)]
                answer_form(tx, task.task_id, given, clock)
            else:
                complete_task(tx, task.task_id, clock)
            done.append(task.task)
    raise AssertionError(f"enrolment still active after {max_tasks} tasks: {done[-10:]}")


def _patient(tx: Any, careplan_id: str) -> str:
    careplan = tx.read("CarePlan", careplan_id)
    return str(careplan["subject"]["reference"]).removeprefix("Patient/")
