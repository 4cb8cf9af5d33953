"""Pathway engine costs (issue 7): enrolment + task generation for N patients in one pathway,
and the overdue-task sweep over M open Tasks.

Everything goes through the store as in production (validated, indexed, evented, derived
rows): patients are created, each is enrolled in VigilanS (CarePlan, Consent, first-step
Tasks), then more open pathway Tasks are written until M are open, a tenth of them with a
reminder due. The sweep is timed twice: with nothing due (the cost of looking), then with
the due tenth (reminders written and Tasks updated).

    .venv/bin/python -m bench.pathways_bench --patients 10000 --open-tasks 100000
"""

from __future__ import annotations

import argparse
import json
import platform as host
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench._server import scratch_database
from parcours.config import Settings
from parcours.pathways import enrol, index_tasks, load_library, sweep_overdue
from parcours.pathways.resources import Alert, set_alerts
from parcours.pathways.tables import pathway_task
from parcours.platform import Platform, build_platform
from parcours.store import Store
from parcours.store.clock import instant
from parcours.store.schema_version import ensure_schema

DAY = 86_400_000
START = 1_767_603_600_000  # 2026-01-05T09:00:00Z


class Clock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def _patients(platform: Platform, count: int, batch: int = 500) -> list[str]:
    """Setup, not measured: written without the identity hook, whose online matching of
    nameless look-alike patients would dominate the run."""
    bulk = Store(platform.store.engine, registry=platform.registry)
    ids: list[str] = []
    for start in range(0, count, batch):
        with bulk.begin() as tx:
            for i in range(start, min(count, start + batch)):
                created = tx.create(
                    {
                        "resourceType": "Patient",
                        "gender": "female" if i % 2 else "male",
                        "birthDate": f"{1940 + i % 60}-0{1 + i % 9}-1{i % 9}",
                    }
                )
                ids.append(str(created["id"]))
    return ids


def _enrol_all(platform: Platform, patients: list[str], batch: int) -> tuple[float, list[str]]:
    clock = Clock(START)
    careplans: list[str] = []
    began = time.perf_counter()
    for start in range(0, len(patients), batch):
        with platform.store.begin() as tx:
            for patient in patients[start : start + batch]:
                careplans.append(enrol(tx, "vigilans", patient, clock, consent=True).careplan_id)
    return time.perf_counter() - began, careplans


def _open_task(template: dict[str, Any], careplan: str, patient: str, due: int) -> dict[str, Any]:
    task = {k: v for k, v in template.items() if k not in ("id", "meta")}
    task["basedOn"] = [{"reference": f"CarePlan/{careplan}"}]
    task["for"] = {"reference": f"Patient/{patient}"}
    task["restriction"] = {"period": {"end": instant(due)}}
    set_alerts(task, [Alert("reminder", due, False)])
    return task


def _fill_open_tasks(
    platform: Platform, careplans: list[str], patients: list[str], target: int, batch: int = 1000
) -> int:
    with platform.store.begin(readonly=True) as tx:
        open_now = tx.conn.execute(
            select(func.count())
            .select_from(pathway_task)
            .where(pathway_task.c.status == "requested")
        ).scalar_one()
        template_id = tx.conn.execute(select(pathway_task.c.task_id).limit(1)).scalar_one()
        template = tx.read("Task", template_id)
    # Existing tasks are due in days 1-3; the added ones: every tenth is due on day 30 (what
    # the second sweep sends), the others on day 400 (open, not due).
    missing = max(0, target - int(open_now))
    # The copies of a validated Task skip the structure check (the slowest part of a write);
    # they are still indexed, evented and derived (pathway_task) by the same repository.
    bulk = Store(platform.store.engine, registry=platform.registry)
    bulk.derived_hooks.append(index_tasks)
    for start in range(0, missing, batch):
        with bulk.begin() as tx:
            for i in range(start, min(missing, start + batch)):
                k = i % len(careplans)
                due = START + (30 if i % 10 == 0 else 400) * DAY
                tx.create(_open_task(template, careplans[k], patients[k], due))
    return missing


def run(kind: str, patients: int, open_tasks: int, batch: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="pathways-bench-"))
    url, cleanup = scratch_database(kind, workdir, "pathways")
    platform = build_platform(Settings(database_url=url, admin_token="bench-token-0123456789"))
    try:
        ensure_schema(platform.store.engine)
        load_library(platform.store)
        ids = _patients(platform, patients)
        seconds, careplans = _enrol_all(platform, ids, batch)
        with platform.store.begin(readonly=True) as tx:
            generated = tx.conn.execute(select(func.count()).select_from(pathway_task)).scalar_one()
        # Clear the first-step alerts (due in days 1-3) so the sweeps below measure the
        # added tasks only; this sweep is timed too (its own figure).
        began = time.perf_counter()
        first = sweep_overdue(platform.store, START + 10 * DAY)
        first_seconds = time.perf_counter() - began
        added_began = time.perf_counter()
        added = _fill_open_tasks(platform, careplans, ids, open_tasks)
        added_seconds = time.perf_counter() - added_began
        with platform.store.begin(readonly=True) as tx:
            open_count = tx.conn.execute(
                select(func.count())
                .select_from(pathway_task)
                .where(pathway_task.c.status == "requested")
            ).scalar_one()
        began = time.perf_counter()
        idle = sweep_overdue(platform.store, START + 20 * DAY)
        idle_seconds = time.perf_counter() - began
        began = time.perf_counter()
        due = sweep_overdue(platform.store, START + 31 * DAY)
        due_seconds = time.perf_counter() - began
    finally:
        platform.close()
        cleanup()
    return {
        "enrolment": {
            "patients": patients,
            "pathway": "vigilans",
            "tasks_generated": int(generated),
            "transactions_of": batch,
            "seconds": round(seconds, 2),
            "enrolments_per_second": round(patients / seconds, 1),
            "ms_per_enrolment": round(1000 * seconds / patients, 2),
        },
        "sweep": {
            "open_tasks": int(open_count),
            "bulk_created_tasks": added,
            "bulk_create_seconds": round(added_seconds, 2),
            "nothing_due": {"seconds": round(idle_seconds, 3), "sent": idle.tasks},
            "tenth_due": {
                "seconds": round(due_seconds, 2),
                "tasks": due.tasks,
                "reminders": due.reminders,
                "escalations": due.escalations,
                "ms_per_task": round(1000 * due_seconds / max(due.tasks, 1), 2),
            },
            "first_step_alerts": {
                "seconds": round(first_seconds, 2),
                "tasks": first.tasks,
                "reminders": first.reminders,
            },
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--open-tasks", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=100, help="enrolments per transaction")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), action="append")
    parser.add_argument("--out", default="bench/results/pathways.json")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "benchmark": "pathways",
        "when": instant(int(time.time() * 1000))[:19] + "Z",
        "machine": {"cpus": 2, "python": host.python_version()},
        "command": "python -m bench.pathways_bench "
        f"--patients {args.patients} --open-tasks {args.open_tasks} --batch {args.batch}",
        "databases": {},
    }
    for kind in args.db or ["sqlite"]:
        figures = run(kind, args.patients, args.open_tasks, args.batch)
        results["databases"][kind] = figures
        print(kind, json.dumps(figures, indent=1))
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
