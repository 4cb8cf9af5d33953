"""Service-level timers of a coordination request: time to first contact, time to decision.

The due times are set at intake from the triaged priority (:class:`SlaPolicy`) and kept on the
Task (``coordination-sla`` extension, and ``restriction.period.end`` for the decision), so a
change of policy does not rewrite the past. *First contact* is the first step out of
``received`` (the coordinator has called the requester or the patient back: analysis, or a
decision taken at once); the *decision* is acceptance, redirection, refusal or a closure before
acceptance. A timer is *overdue* while its step has not happened and its due time has passed;
:func:`sweep` writes that flag (``coordination-overdue``) on the open requests so a board or a
search sees it without computing it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import Select, select

from parcours.store import Store, Transaction
from parcours.store.clock import instant, now_ms, parse_instant_ms
from parcours.store.schema import idx_token, resource

from .model import (
    EXT_OVERDUE,
    EXT_SLA,
    REQUEST_CODE,
    SYSTEM_STATUS,
    SYSTEM_TASK,
    Status,
    business_status,
    history,
)
from .states import OPEN

__all__ = [
    "DECISION",
    "FIRST_CONTACT",
    "SlaPolicy",
    "SlaState",
    "SweepResult",
    "request_pks",
    "sla_extension",
    "sla_state",
    "sweep",
    "with_overdue",
]

FIRST_CONTACT: Final = "first-contact"
DECISION: Final = "decision"
_HOUR: Final = 3600 * 1000
_DECISIONS: Final = frozenset({Status.ACCEPTED, Status.REDIRECTED, Status.REFUSED, Status.CLOSED})


def _default_hours() -> dict[str, tuple[int, int]]:
    # (first contact, decision) in hours, by Task.priority. Our defaults, not a national rule:
    # a DAC calls back within two working days and decides within a week for routine requests.
    return {"routine": (48, 168), "urgent": (24, 72), "asap": (8, 24), "stat": (2, 8)}


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    hours: dict[str, tuple[int, int]] = field(default_factory=_default_hours)

    def due(self, received_ms: int, priority: str | None) -> tuple[int, int]:
        first, decision = self.hours.get(priority or "routine", self.hours["routine"])
        return received_ms + first * _HOUR, received_ms + decision * _HOUR


@dataclass(frozen=True, slots=True)
class SlaState:
    received_ms: int
    first_contact_due_ms: int
    decision_due_ms: int
    first_contact_ms: int | None
    decision_ms: int | None
    # Timers whose step has not happened and whose due time has passed, at the instant asked.
    overdue: tuple[str, ...]

    @property
    def first_contact_late(self) -> bool:
        return (
            self.first_contact_ms is not None and self.first_contact_ms > self.first_contact_due_ms
        )

    @property
    def decision_late(self) -> bool:
        return self.decision_ms is not None and self.decision_ms > self.decision_due_ms


def sla_extension(first_contact_due_ms: int, decision_due_ms: int) -> dict[str, Any]:
    return {
        "url": EXT_SLA,
        "extension": [
            {"url": FIRST_CONTACT, "valueDateTime": instant(first_contact_due_ms)},
            {"url": DECISION, "valueDateTime": instant(decision_due_ms)},
        ],
    }


def _stored_due(task: Mapping[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for ext in task.get("extension") or ():
        if isinstance(ext, Mapping) and ext.get("url") == EXT_SLA:
            for sub in ext.get("extension") or ():
                value = sub.get("valueDateTime") if isinstance(sub, Mapping) else None
                if isinstance(value, str):
                    try:
                        out[str(sub.get("url"))] = parse_instant_ms(value)
                    except ValueError:
                        continue
    return out


def sla_state(task: Mapping[str, Any], at_ms: int, policy: SlaPolicy | None = None) -> SlaState:
    """The request's timers at ``at_ms`` (due times from the Task, else from ``policy``)."""
    # The state at ``at_ms``: steps dated later have not happened yet.
    entries = [e for e in history(task) if e.at_ms <= at_ms] or history(task)[:1]
    received = entries[0].at_ms
    first_contact = next((e.at_ms for e in entries[1:] if e.status is not Status.RECEIVED), None)
    decision = next((e.at_ms for e in entries if e.status in _DECISIONS), None)
    stored = _stored_due(task)
    priority = task.get("priority")
    default_first, default_decision = (policy or SlaPolicy()).due(
        received, priority if isinstance(priority, str) else None
    )
    first_due = stored.get(FIRST_CONTACT, default_first)
    decision_due = stored.get(DECISION, default_decision)
    overdue = []
    if first_contact is None and at_ms > first_due:
        overdue.append(FIRST_CONTACT)
    if decision is None and at_ms > decision_due:
        overdue.append(DECISION)
    return SlaState(received, first_due, decision_due, first_contact, decision, tuple(overdue))


def overdue_flags(task: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(
        str(ext.get("valueCode"))
        for ext in task.get("extension") or ()
        if isinstance(ext, Mapping) and ext.get("url") == EXT_OVERDUE
    )


def with_overdue(task: Mapping[str, Any], flags: tuple[str, ...]) -> dict[str, Any]:
    """A copy of ``task`` carrying exactly ``flags`` as overdue flags."""
    kept = [
        ext
        for ext in task.get("extension") or ()
        if not (isinstance(ext, Mapping) and ext.get("url") == EXT_OVERDUE)
    ]
    out = dict(task)
    out["extension"] = kept + [{"url": EXT_OVERDUE, "valueCode": flag} for flag in flags]
    return out


@dataclass(frozen=True, slots=True)
class SweepResult:
    examined: int
    # "Task/id" -> the overdue flags it now carries (only the Tasks whose flags changed).
    changed: dict[str, tuple[str, ...]]


def request_pks(*statuses: Status) -> Select[Any]:
    """Store keys of the coordination requests (of ``statuses`` if given), as a subquery."""
    code = idx_token.alias()
    query = select(code.c.resource_pk).where(
        code.c.res_type == "Task",
        code.c.param == "code",
        code.c.system == SYSTEM_TASK,
        code.c.code == REQUEST_CODE,
    )
    if statuses:
        status = idx_token.alias()
        query = query.where(
            code.c.resource_pk.in_(
                select(status.c.resource_pk).where(
                    status.c.res_type == "Task",
                    status.c.param == "business-status",
                    status.c.system == SYSTEM_STATUS,
                    status.c.code.in_(sorted(s.value for s in statuses)),
                )
            )
        )
    return query


def _open_requests(tx: Transaction) -> list[dict[str, Any]]:
    rows = tx.conn.execute(
        select(resource.c.content).where(
            resource.c.type == "Task",
            resource.c.deleted.is_(False),
            resource.c.pk.in_(request_pks(*OPEN)),
        )
    )
    return [dict(row.content) for row in rows]


def sweep(
    store: Store,
    *,
    clock: Callable[[], int] = now_ms,
    policy: SlaPolicy | None = None,
    batch: int = 100,
) -> SweepResult:
    """Flag the open requests whose timers have run out (and unflag the others).

    Platform work (no caller). The open requests are read once; only those whose flags change
    are written, ``batch`` per transaction, each re-read first (a coordinator may have moved it
    meanwhile), so a large first sweep never holds the writer lock for long. Run by
    ``parcours coordination sweep``.
    """
    at = clock()
    with store.begin(readonly=True) as tx:
        tasks = _open_requests(tx)
    stale = [
        str(task["id"]) for task in tasks if _flags_at(task, at, policy) != overdue_flags(task)
    ]
    changed: dict[str, tuple[str, ...]] = {}
    for start in range(0, len(stale), batch):
        with store.begin() as tx:
            for task_id in stale[start : start + batch]:
                task = tx.read("Task", task_id)
                if business_status(task) not in OPEN:
                    continue
                flags = _flags_at(task, at, policy)
                if flags is not None and flags != overdue_flags(task):
                    tx.update(with_overdue(task, flags))
                    changed[f"Task/{task_id}"] = flags
    return SweepResult(len(tasks), changed)


def _flags_at(task: Mapping[str, Any], at: int, policy: SlaPolicy | None) -> tuple[str, ...] | None:
    try:
        return sla_state(task, at, policy).overdue
    except ValueError:
        return None  # a malformed history was refused at write; nothing to flag
