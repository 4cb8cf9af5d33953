"""The shape of a coordination request in FHIR: codes, extensions and how to read them.

A request is two resources (FHIR workflow): the ``ServiceRequest`` says what is asked (for whom,
why, by whom, how urgently) and the ``Task`` tracks the structure's handling of it
(``Task.focus`` the ServiceRequest, ``Task.for`` the Patient, ``Task.owner`` the structure).
The six business statuses live in ``Task.businessStatus`` (CodeSystem ``statut-demande-
coordination``), each mapped onto a ``Task.status``; the dated status history, the SLA due
times, the overdue flags and the assigned coordinator are extensions on the Task.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from parcours.store.clock import parse_instant_ms

__all__ = [
    "ACTION_CODE",
    "EXT_COORDINATOR",
    "EXT_HISTORY",
    "EXT_OVERDUE",
    "EXT_SLA",
    "OUTPUT_PATHWAY",
    "OUTPUT_REDIRECTED_TO",
    "QUESTIONNAIRE_URL",
    "REQUEST_CODE",
    "SYSTEM_STATUS",
    "SYSTEM_TASK",
    "HistoryEntry",
    "Status",
    "business_status",
    "history",
    "history_extension",
    "is_action",
    "is_request",
    "parse_status",
    "reference_of",
    "task_code",
]

BASE: Final = "https://parcours.sante.fr/fhir"
SYSTEM_STATUS: Final = f"{BASE}/CodeSystem/statut-demande-coordination"
# Kinds of coordination Task and of Task.output.
SYSTEM_TASK: Final = f"{BASE}/CodeSystem/tache-coordination"
REQUEST_CODE: Final = "demande-coordination"
ACTION_CODE: Final = "action-coordination"
OUTPUT_PATHWAY: Final = "parcours"
OUTPUT_REDIRECTED_TO: Final = "redirection"
QUESTIONNAIRE_URL: Final = f"{BASE}/Questionnaire/demande-appui-coordination"

EXT_HISTORY: Final = f"{BASE}/StructureDefinition/coordination-status-history"
EXT_SLA: Final = f"{BASE}/StructureDefinition/coordination-sla"
EXT_OVERDUE: Final = f"{BASE}/StructureDefinition/coordination-overdue"
EXT_COORDINATOR: Final = f"{BASE}/StructureDefinition/coordination-coordinator"


class Status(StrEnum):
    """The business statuses of a coordination request (Task.businessStatus)."""

    RECEIVED = "received"
    UNDER_ANALYSIS = "under-analysis"
    ACCEPTED = "accepted"
    REDIRECTED = "redirected"
    REFUSED = "refused"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One dated step of a request's life: the status entered, when, by whom, why."""

    status: Status
    at_ms: int
    at: str
    author: str | None = None
    reason: str | None = None


def task_code(code: str) -> dict[str, Any]:
    display = "Demande d'appui à la coordination" if code == REQUEST_CODE else "Action planifiée"
    return {"coding": [{"system": SYSTEM_TASK, "code": code, "display": display}]}


def _has_code(resource: Mapping[str, Any] | None, code: str) -> bool:
    if resource is None or resource.get("resourceType") != "Task":
        return False
    concept = resource.get("code")
    codings = concept.get("coding") if isinstance(concept, Mapping) else None
    return any(
        isinstance(c, Mapping) and c.get("system") == SYSTEM_TASK and c.get("code") == code
        for c in codings or ()
    )


def is_request(resource: Mapping[str, Any] | None) -> bool:
    return _has_code(resource, REQUEST_CODE)


def is_action(resource: Mapping[str, Any] | None) -> bool:
    return _has_code(resource, ACTION_CODE)


def business_status(task: Mapping[str, Any]) -> Status | None:
    """The Task's business status, None when absent; ValueError for an unknown code."""
    concept = task.get("businessStatus")
    codings = concept.get("coding") if isinstance(concept, Mapping) else None
    for coding in codings or ():
        if isinstance(coding, Mapping) and coding.get("system") == SYSTEM_STATUS:
            return parse_status(coding.get("code"))
    return None


def parse_status(code: Any) -> Status:
    """A business status from its code; ValueError lists the valid ones."""
    try:
        return Status(str(code))
    except ValueError:
        valid = ", ".join(s.value for s in Status)
        raise ValueError(
            f"{str(code)[:40]!r} is not a coordination request status ({valid})"
        ) from None


def reference_of(value: Any) -> str | None:
    """The ``reference`` string of a Reference element, else None."""
    ref = value.get("reference") if isinstance(value, Mapping) else None
    return ref if isinstance(ref, str) and ref else None


def _sub(ext: Mapping[str, Any], url: str) -> Mapping[str, Any] | None:
    for sub in ext.get("extension") or ():
        if isinstance(sub, Mapping) and sub.get("url") == url:
            return sub
    return None


def history(task: Mapping[str, Any]) -> list[HistoryEntry]:
    """The status history, oldest first; ValueError names a malformed entry."""
    out: list[HistoryEntry] = []
    for n, ext in enumerate(e for e in task.get("extension") or () if _is_history(e)):
        status = _sub(ext, "status")
        at = _sub(ext, "at")
        if status is None or at is None or not isinstance(at.get("valueDateTime"), str):
            raise ValueError(f"status history entry {n + 1} needs a status and an instant (at)")
        author = _sub(ext, "author")
        reason = _sub(ext, "reason")
        try:
            at_ms = parse_instant_ms(at["valueDateTime"])
        except ValueError:
            raise ValueError(
                f"status history entry {n + 1}: {at['valueDateTime'][:40]!r} is not a dateTime"
            ) from None
        out.append(
            HistoryEntry(
                parse_status(status.get("valueCode")),
                at_ms,
                at["valueDateTime"],
                reference_of(author.get("valueReference")) if author else None,
                str(reason.get("valueString")) if reason else None,
            )
        )
    return out


def _is_history(ext: Any) -> bool:
    return isinstance(ext, Mapping) and ext.get("url") == EXT_HISTORY


def history_extension(entry: HistoryEntry) -> dict[str, Any]:
    subs: list[dict[str, Any]] = [
        {"url": "status", "valueCode": entry.status.value},
        {"url": "at", "valueDateTime": entry.at},
    ]
    if entry.author:
        subs.append({"url": "author", "valueReference": {"reference": entry.author}})
    if entry.reason:
        subs.append({"url": "reason", "valueString": entry.reason})
    return {"url": EXT_HISTORY, "extension": subs}
