"""Reading and writing the pathway parts of CarePlans and Tasks (their ``pathway-*`` extensions).

A CarePlan is one enrolment: ``pathway-step-entry`` extensions record each step entered (step,
instant, entry number), ``pathway-assignment`` who holds a role, ``pathway-exit`` why it ended.
A Task is one occurrence of one task of one step entry (``pathway-task``: step, entry,
occurrence) with its reminders and escalations (``pathway-alert``: kind, at, to, sent).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from parcours.pathways.codes import TASK_SYSTEM, ext
from parcours.store.clock import parse_instant_ms

__all__ = [
    "Alert",
    "StepEntry",
    "TaskKey",
    "alerts_of",
    "assignments_of",
    "due_ms",
    "set_alerts",
    "step_entries",
    "task_key",
]

Resource = dict[str, Any]


def _parts(extension: Resource) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in extension.get("extension") or []:
        for key, value in part.items():
            if key.startswith("value"):
                out[str(part.get("url"))] = value
    return out


def _all(resource: Resource, name: str) -> list[dict[str, Any]]:
    url = ext(name)
    return [_parts(e) for e in resource.get("extension") or [] if e.get("url") == url]


@dataclass(frozen=True, slots=True)
class StepEntry:
    step: str
    entered_ms: int
    entry: int


def step_entries(careplan: Resource) -> list[StepEntry]:
    return [
        StepEntry(str(p["step"]), parse_instant_ms(str(p["entered"])), int(p["entry"]))
        for p in _all(careplan, "step-entry")
    ]


def assignments_of(careplan: Resource) -> dict[str, dict[str, Any]]:
    """Role id -> the Reference of who holds it in this enrolment."""
    return {str(p["role"]): p["who"] for p in _all(careplan, "assignment") if "who" in p}


@dataclass(frozen=True, slots=True)
class TaskKey:
    """Which task of the definition a Task is, in which step entry, which occurrence."""

    task: str
    step: str
    entry: int
    occurrence: int


def task_key(task: Resource) -> TaskKey | None:
    """None for a Task that is not a pathway step's task (escalations, other modules')."""
    found = _all(task, "task")
    if not found:
        return None
    code = next(
        (
            c.get("code")
            for c in (task.get("code") or {}).get("coding") or []
            if c.get("system") == TASK_SYSTEM
        ),
        None,
    )
    parts = found[0]
    if code is None or "step" not in parts:
        return None
    return TaskKey(str(code), str(parts["step"]), int(parts["entry"]), int(parts["occurrence"]))


def due_ms(task: Resource) -> int | None:
    end = ((task.get("restriction") or {}).get("period") or {}).get("end")
    return parse_instant_ms(end) if isinstance(end, str) else None


@dataclass(frozen=True, slots=True)
class Alert:
    kind: str  # "reminder" | "escalation"
    at_ms: int
    sent: bool
    to: str | None = None


def alerts_of(task: Resource) -> list[Alert]:
    return [
        Alert(
            str(p["kind"]),
            parse_instant_ms(str(p["at"])),
            bool(p.get("sent", False)),
            p.get("to"),
        )
        for p in _all(task, "alert")
    ]


def set_alerts(task: Resource, alerts: list[Alert]) -> None:
    """Replace the task's alert extensions (other extensions are kept, in order)."""
    from parcours.store.clock import instant

    url = ext("alert")
    kept = [e for e in task.get("extension") or [] if e.get("url") != url]
    for alert in alerts:
        parts: list[Resource] = [
            {"url": "kind", "valueCode": alert.kind},
            {"url": "at", "valueDateTime": instant(alert.at_ms)},
            {"url": "sent", "valueBoolean": alert.sent},
        ]
        if alert.to is not None:
            parts.append({"url": "to", "valueCode": alert.to})
        kept.append({"url": url, "extension": parts})
    task["extension"] = kept
