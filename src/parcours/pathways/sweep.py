"""The overdue sweep: send the reminders and escalations whose time has come.

Reads ``pathway_task`` (indexed on ``next_alert_ms``), so its cost follows the number of alerts
due, not the number of open tasks. For each due alert of an open Task:

- reminder: a ``Communication`` (category ``pathway-alert#reminder``) about the Task, to its
  owner when one is assigned; the notify module and the UI show it;
- escalation: a new ``Task`` (code ``pathway-alert#escalation``, priority ``urgent``) for the
  escalation role (its holder when assigned), whose ``focus`` is the overdue Task;

then marks the alert sent and the Task's ``businessStatus`` (``reminded`` / ``escalated``), in
the same transaction: a crash re-sends nothing and loses nothing. Batches of ``batch_size``
tasks per transaction; on PostgreSQL ``SKIP LOCKED`` lets several sweepers share the work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from parcours.pathways.codes import ALERT_SYSTEM, OPEN_STATUSES, ROLE_SYSTEM
from parcours.pathways.resources import Alert, alerts_of, assignments_of, due_ms, set_alerts
from parcours.pathways.tables import pathway_task
from parcours.store import Store, Transaction
from parcours.store.clock import instant

__all__ = ["SweepReport", "sweep_overdue"]

Resource = dict[str, Any]


@dataclass
class SweepReport:
    tasks: int = 0
    reminders: int = 0
    escalations: int = 0

    def summary(self) -> str:
        return (
            f"{self.tasks} overdue tasks: {self.reminders} reminders, "
            f"{self.escalations} escalations"
        )


def _alert_code(code: str) -> Resource:
    return {"coding": [{"system": ALERT_SYSTEM, "code": code}]}


def _reminder(task: Resource, now: int) -> Resource:
    due = due_ms(task)
    when = f"avant le {instant(due)[:10]}" if due is not None and due > now else "en retard"
    message: Resource = {
        "resourceType": "Communication",
        "status": "completed",
        "category": [_alert_code("reminder")],
        "subject": task["for"],
        "about": [{"reference": f"Task/{task['id']}"}],
        "sent": instant(now),
        "payload": [{"contentString": f"Rappel : « {task.get('description')} » — {when}"}],
    }
    if "owner" in task:
        message["recipient"] = [task["owner"]]
    return message


def _escalation(tx: Transaction, task: Resource, alert: Alert, now: int) -> Resource:
    careplan = next(
        (
            r
            for r in task.get("basedOn") or []
            if str(r.get("reference", "")).startswith("CarePlan/")
        ),
        None,
    )
    escalation: Resource = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "priority": "urgent",
        "code": {**_alert_code("escalation"), "text": "Escalade : tâche de parcours en retard"},
        "description": f"En retard : « {task.get('description')} »",
        "focus": {"reference": f"Task/{task['id']}"},
        "for": task["for"],
        "authoredOn": instant(now),
        "performerType": [{"coding": [{"system": ROLE_SYSTEM, "code": str(alert.to)}]}],
    }
    if careplan is not None:
        escalation["basedOn"] = [careplan]
        holder = assignments_of(
            tx.read("CarePlan", str(careplan["reference"]).removeprefix("CarePlan/"))
        ).get(str(alert.to))
        if holder is not None:
            escalation["owner"] = holder
    return escalation


def _process(tx: Transaction, task_id: str, now: int, report: SweepReport) -> None:
    task = tx.read("Task", task_id)
    if task["status"] not in OPEN_STATUSES:
        return
    alerts = alerts_of(task)
    sent: list[Alert] = []
    for alert in alerts:
        if alert.sent or alert.at_ms > now:
            sent.append(alert)
            continue
        if alert.kind == "escalation" and alert.to is not None:
            tx.create(_escalation(tx, task, alert, now))
            report.escalations += 1
        else:
            tx.create(_reminder(task, now))
            report.reminders += 1
        sent.append(Alert(alert.kind, alert.at_ms, True, alert.to))
    updated = dict(task)
    set_alerts(updated, sent)
    escalated = any(a.sent and a.kind == "escalation" for a in sent)
    updated["businessStatus"] = {
        **_alert_code("escalated" if escalated else "reminded"),
        "text": "escaladée" if escalated else "relancée",
    }
    updated["lastModified"] = instant(now)
    tx.update(updated)
    report.tasks += 1


def sweep_overdue(store: Store, now: int, *, batch_size: int = 200) -> SweepReport:
    """Send every reminder and escalation due at ``now`` (ms); returns what was sent."""
    report = SweepReport()
    while True:
        with store.begin() as tx:
            query = (
                select(pathway_task.c.task_id)
                .where(pathway_task.c.next_alert_ms <= now)
                .order_by(pathway_task.c.next_alert_ms)
                .limit(batch_size)
            )
            if store.dialect.is_postgres:
                query = query.with_for_update(skip_locked=True)
            ids = list(tx.conn.execute(query).scalars())
            for task_id in ids:
                _process(tx, task_id, now, report)
        if len(ids) < batch_size:
            return report
