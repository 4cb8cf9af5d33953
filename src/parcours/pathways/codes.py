"""The URLs Parcours gives its pathway extensions, code systems and canonical resources."""

from __future__ import annotations

__all__ = [
    "ALERT_SYSTEM",
    "BASE",
    "EXT",
    "FHIRPATH",
    "OPEN_STATUSES",
    "PATHWAY_ID_SYSTEM",
    "ROLE_SYSTEM",
    "TASK_SYSTEM",
    "ext",
]

BASE = "https://parcours.sante.fr/fhir"
EXT = f"{BASE}/StructureDefinition/pathway-"
ROLE_SYSTEM = f"{BASE}/CodeSystem/pathway-role"
TASK_SYSTEM = f"{BASE}/CodeSystem/pathway-task"
# reminder | escalation | reminded | escalated (Communication.category, Task.businessStatus)
ALERT_SYSTEM = f"{BASE}/CodeSystem/pathway-alert"
PATHWAY_ID_SYSTEM = f"{BASE}/pathway"
FHIRPATH = "text/fhirpath"
# Task.status values of work still to do.
OPEN_STATUSES = frozenset(
    {"draft", "requested", "received", "accepted", "ready", "in-progress", "on-hold"}
)


def ext(name: str) -> str:
    return EXT + name
