"""The figures a structure reports about its coordination requests, for a period.

Definitions (a period is a set of whole days, both ends included, in UTC):

- ``received``: requests whose reception falls in the period;
- ``handled``: requests whose decision (acceptance, redirection, refusal, closure before
  acceptance) falls in the period — the "demandes traitées" of an activity report;
- ``patients_followed``: distinct patients with a request accepted before the period ended and
  not closed before it began — the "patients suivis";
- ``median_hours_to_first_contact`` / ``…_to_decision``: over the first contacts / decisions
  that fall in the period, from reception; ``late_*`` count those past their due time;
- ``open_at_end`` / ``overdue_at_end``: requests still awaiting a decision at the end of the
  period, and those of them past a due time then.

Computed from the Tasks the structure owns (their dated status histories), so the figures of a
past period do not move when requests change later, except for corrections of the history.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, select

from parcours.errors import InvalidInput
from parcours.store import Transaction
from parcours.store.clock import instant
from parcours.store.schema import idx_reference, resource
from parcours.store.search.values import date_range

from .model import Status, history, reference_of
from .sla import SlaPolicy, request_pks, sla_state

__all__ = ["CoordinationReport", "coordination_report", "period_ms"]

_HOUR = 3600 * 1000.0


@dataclass(frozen=True, slots=True)
class CoordinationReport:
    organization: str
    start_ms: int
    end_ms: int  # inclusive (last millisecond of the last day)
    received: int
    handled: int
    decisions: dict[str, int]
    closed: int
    patients_followed: int
    first_contacts: int
    median_hours_to_first_contact: float | None
    late_first_contacts: int
    decisions_count: int
    median_hours_to_decision: float | None
    late_decisions: int
    open_at_end: int
    overdue_at_end: int
    by_priority: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "organization": self.organization,
            "start": instant(self.start_ms),
            "end": instant(self.end_ms),
            "received": self.received,
            "handled": self.handled,
            "decisions": dict(self.decisions),
            "closed": self.closed,
            "patientsFollowed": self.patients_followed,
            "firstContacts": self.first_contacts,
            "medianHoursToFirstContact": self.median_hours_to_first_contact,
            "lateFirstContacts": self.late_first_contacts,
            "medianHoursToDecision": self.median_hours_to_decision,
            "lateDecisions": self.late_decisions,
            "openAtEnd": self.open_at_end,
            "overdueAtEnd": self.overdue_at_end,
            "receivedByPriority": dict(self.by_priority),
        }


def period_ms(start: str, end: str) -> tuple[int, int]:
    """[first ms of ``start``, last ms of ``end``] for two FHIR dates (InvalidInput if not)."""
    low = date_range(start)
    high = date_range(end)
    if low is None:
        raise InvalidInput(f"start {start[:40]!r} is not a date (YYYY, YYYY-MM or YYYY-MM-DD)")
    if high is None:
        raise InvalidInput(f"end {end[:40]!r} is not a date (YYYY, YYYY-MM or YYYY-MM-DD)")
    if high[1] < low[0]:
        raise InvalidInput(f"the period ends ({end[:40]}) before it starts ({start[:40]})")
    return low[0], high[1]


def _owned(tx: Transaction, organization: str) -> list[dict[str, Any]]:
    kind, _, org_id = organization.partition("/")
    owner = idx_reference.alias()
    rows = tx.conn.execute(
        select(resource.c.content)
        .join(owner, and_(owner.c.resource_pk == resource.c.pk, owner.c.param == "owner"))
        .where(
            resource.c.type == "Task",
            resource.c.deleted.is_(False),
            owner.c.res_type == "Task",
            owner.c.target_type == kind,
            owner.c.target_id == org_id,
            # A set computed once: as a join, SQLite would scan every request's code row for
            # each of the structure's Tasks.
            resource.c.pk.in_(request_pks()),
        )
    )
    return [dict(row.content) for row in rows]


def _median_hours(values: list[int]) -> float | None:
    return round(statistics.median(values) / _HOUR, 2) if values else None


def coordination_report(
    tx: Transaction,
    organization: str,
    start_ms: int,
    end_ms: int,
    *,
    policy: SlaPolicy | None = None,
) -> CoordinationReport:
    """The figures of ``organization`` ("Organization/id") over [start_ms, end_ms]."""
    tasks = _owned(tx, organization)

    def inside(at: int | None) -> bool:
        return at is not None and start_ms <= at <= end_ms

    received = handled = closed = late_first = late_decision = open_end = overdue_end = 0
    decisions = {s.value: 0 for s in (Status.ACCEPTED, Status.REDIRECTED, Status.REFUSED)}
    decisions["withdrawn"] = 0
    by_priority: dict[str, int] = {}
    followed: set[str] = set()
    to_first: list[int] = []
    to_decision: list[int] = []
    for task in tasks:
        try:
            entries = history(task)
        except ValueError:
            continue
        if not entries:
            continue
        state = sla_state(task, end_ms, policy)
        if inside(state.received_ms):
            received += 1
            priority = str(task.get("priority") or "routine")
            by_priority[priority] = by_priority.get(priority, 0) + 1
        if inside(state.first_contact_ms):
            assert state.first_contact_ms is not None
            to_first.append(state.first_contact_ms - state.received_ms)
            late_first += state.first_contact_late
        decision = next(
            (
                e
                for e in entries
                if e.status in (Status.ACCEPTED, Status.REDIRECTED, Status.REFUSED, Status.CLOSED)
            ),
            None,
        )
        if decision is not None and inside(decision.at_ms):
            handled += 1
            key = "withdrawn" if decision.status is Status.CLOSED else decision.status.value
            decisions[key] += 1
            to_decision.append(decision.at_ms - state.received_ms)
            late_decision += state.decision_late
        accepted = next((e.at_ms for e in entries if e.status is Status.ACCEPTED), None)
        ended = next(
            (e.at_ms for e in entries if e.status is Status.CLOSED and accepted is not None),
            None,
        )
        if ended is not None and inside(ended):
            closed += 1
        if accepted is not None and accepted <= end_ms and (ended is None or ended >= start_ms):
            patient = reference_of(task.get("for"))
            if patient:
                followed.add(patient)
        if state.received_ms <= end_ms and (decision is None or decision.at_ms > end_ms):
            open_end += 1
            overdue_end += bool(state.overdue)
    return CoordinationReport(
        organization=organization,
        start_ms=start_ms,
        end_ms=end_ms,
        received=received,
        handled=handled,
        decisions=decisions,
        closed=closed,
        patients_followed=len(followed),
        first_contacts=len(to_first),
        median_hours_to_first_contact=_median_hours(to_first),
        late_first_contacts=late_first,
        decisions_count=len(to_decision),
        median_hours_to_decision=_median_hours(to_decision),
        late_decisions=late_decision,
        open_at_end=open_end,
        overdue_at_end=overdue_end,
        by_priority=by_priority,
    )
