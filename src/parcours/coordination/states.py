"""The state machine of a coordination request, in one place.

::

    received ──▶ under-analysis ──▶ accepted ──▶ closed
       │  │            │  │  │
       │  │            │  │  └──▶ closed     (withdrawn before a decision: reason required)
       │  │            │  └──▶ refused       (reason required)
       │  │            └──▶ redirected       (reason required; another structure is named)
       │  └──▶ refused / redirected / closed  (same, without analysis)

``redirected``, ``refused`` and ``closed`` are final. Each business status maps onto the FHIR
``Task.status`` a generic client understands; ``closed`` is ``completed`` after an acceptance
and ``cancelled`` otherwise (the request was withdrawn, the patient died…).
"""

from __future__ import annotations

from typing import Final

from parcours.errors import Conflict, Issue

from .model import Status

__all__ = [
    "FINAL",
    "NEEDS_REASON",
    "OPEN",
    "TRANSITIONS",
    "InvalidTransition",
    "after_decision",
    "check_transition",
    "needs_reason",
    "task_status",
]

TRANSITIONS: Final[dict[Status, frozenset[Status]]] = {
    Status.RECEIVED: frozenset(
        {Status.UNDER_ANALYSIS, Status.REDIRECTED, Status.REFUSED, Status.CLOSED}
    ),
    Status.UNDER_ANALYSIS: frozenset(
        {Status.ACCEPTED, Status.REDIRECTED, Status.REFUSED, Status.CLOSED}
    ),
    Status.ACCEPTED: frozenset({Status.CLOSED}),
    Status.REDIRECTED: frozenset(),
    Status.REFUSED: frozenset(),
    Status.CLOSED: frozenset(),
}
# Before a decision: the SLA clocks run, the structure and coordinator may still change.
OPEN: Final = frozenset({Status.RECEIVED, Status.UNDER_ANALYSIS})
FINAL: Final = frozenset(s for s, targets in TRANSITIONS.items() if not targets)
NEEDS_REASON: Final = frozenset({Status.REFUSED, Status.REDIRECTED})

_TASK_STATUS: Final[dict[Status, str]] = {
    Status.RECEIVED: "requested",
    Status.UNDER_ANALYSIS: "received",
    Status.ACCEPTED: "accepted",
    Status.REDIRECTED: "rejected",
    Status.REFUSED: "rejected",
}


class InvalidTransition(Conflict):
    """A status change the state machine does not allow (409, names both states)."""

    issue_code = "business-rule"


def _names(statuses: frozenset[Status]) -> str:
    return ", ".join(sorted(s.value for s in statuses)) or "none (final status)"


def check_transition(task_ref: str, current: Status, target: Status) -> None:
    if target not in TRANSITIONS[current]:
        message = (
            f"invalid transition of {task_ref} from '{current.value}' to '{target.value}': "
            f"allowed from '{current.value}': {_names(TRANSITIONS[current])}"
        )
        raise InvalidTransition(
            message, [Issue(message, "Task.businessStatus", code="business-rule")]
        )


def needs_reason(previous: Status | None, target: Status) -> bool:
    """Refusals, redirections and a closure without acceptance must say why."""
    if target in NEEDS_REASON:
        return True
    return target is Status.CLOSED and previous in OPEN


def task_status(target: Status, previous: Status | None) -> str:
    """The FHIR Task.status of a request entering ``target`` from ``previous``."""
    if target is Status.CLOSED:
        return "completed" if previous is Status.ACCEPTED else "cancelled"
    return _TASK_STATUS[target]


def after_decision(
    ref: str, status: Status | None, what: str, when: str = "before a decision"
) -> InvalidTransition:
    """The refusal of a change allowed only while a request is open (409)."""
    state = status.value if status else "?"
    message = f"{ref} is '{state}': a request is {what} only {when}"
    return InvalidTransition(message, [Issue(message, "Task.businessStatus", code="business-rule")])
