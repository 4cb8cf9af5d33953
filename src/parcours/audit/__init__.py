"""The audit trail (ANS TdE "Gestionnaire"): a hash-chained, append-only store of
``tde-auditevent`` AuditEvents for every login, read, search, write, export, merge and
break-glass, with verification, FHIR search and the per-patient access report."""

from .entry import (
    PROFILE,
    AuditEntry,
    action_for,
    build_audit_event,
    outcome_for_status,
)
from .trail import AuditTrail, VerifyResult, parse_date_range

__all__ = [
    "PROFILE",
    "AuditEntry",
    "AuditTrail",
    "VerifyResult",
    "action_for",
    "build_audit_event",
    "outcome_for_status",
    "parse_date_range",
]
