"""Coordination requests (what Stella does for a DAC): intake, triage, assignment, statuses,
SLA timers, planned actions, pathway link, and the figures a structure reports.

The web workspace and other packages use this API; the FHIR operations are in
``parcours.coordination.operations`` and the rules every Task write obeys in
``parcours.coordination.rules`` (a store write hook wired by ``parcours.platform``).
"""

from .conformance import install_conformance
from .model import (
    EXT_COORDINATOR,
    EXT_HISTORY,
    EXT_OVERDUE,
    EXT_SLA,
    QUESTIONNAIRE_URL,
    SYSTEM_STATUS,
    SYSTEM_TASK,
    HistoryEntry,
    Status,
    business_status,
    history,
    is_action,
    is_request,
)
from .questionnaire import check_response, questionnaire
from .report import CoordinationReport, coordination_report, period_ms
from .rules import CoordinationRules
from .service import PRIORITIES, STATUS_DISPLAY, Coordination, Intake
from .sla import SlaPolicy, SlaState, SweepResult, sla_state, sweep
from .states import TRANSITIONS, InvalidTransition, check_transition, task_status

__all__ = [
    "EXT_COORDINATOR",
    "EXT_HISTORY",
    "EXT_OVERDUE",
    "EXT_SLA",
    "PRIORITIES",
    "QUESTIONNAIRE_URL",
    "STATUS_DISPLAY",
    "SYSTEM_STATUS",
    "SYSTEM_TASK",
    "TRANSITIONS",
    "Coordination",
    "CoordinationReport",
    "CoordinationRules",
    "HistoryEntry",
    "Intake",
    "InvalidTransition",
    "SlaPolicy",
    "SlaState",
    "Status",
    "SweepResult",
    "business_status",
    "check_response",
    "check_transition",
    "coordination_report",
    "history",
    "install_conformance",
    "is_action",
    "is_request",
    "period_ms",
    "questionnaire",
    "sla_state",
    "sweep",
    "task_status",
]
