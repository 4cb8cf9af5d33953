"""The audit entry of writes no entry point described: the platform's own work.

HL7 intake, identity merges run by the platform, directory imports and the demo loader write
through the store without an interaction of the FHIR API around them; their transaction still
leaves one AuditEvent naming every version written, with the platform as the agent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from parcours.audit.entry import AuditEntry, action_for
from parcours.security.principal import Principal
from parcours.store.clock import now_ms

if TYPE_CHECKING:
    from parcours.auth import LoginEvent
    from parcours.store import Transaction

__all__ = ["PLATFORM", "login_entry", "platform_writes"]

PLATFORM = Principal("platform", frozenset({"system"}), display="Parcours (traitement interne)")
# An import may write thousands of versions in one transaction: the event names the first ones
# and every patient; the versions themselves stay in the resource history.
MAX_ENTITIES = 500


def platform_writes(tx: Transaction) -> list[AuditEntry]:
    methods = {method for _t, _i, _v, method, _p in tx.written}
    interaction = methods.pop() if len(methods) == 1 else "update"
    patients: dict[str, None] = {}
    for *_rest, patient in tx.written:
        if patient:
            patients.setdefault(patient)
    actor = getattr(tx, "actor", None)
    return [
        AuditEntry(
            recorded_ms=now_ms(),
            action=action_for(interaction),
            interaction=interaction,
            outcome=0,
            agent=actor if isinstance(actor, Principal) else PLATFORM,
            patients=tuple(patients),
            entities=tuple(f"{t}/{i}/_history/{v}" for t, i, v, _m, _p in tx.written)[
                :MAX_ENTITIES
            ],
        )
    ]


def login_entry(event: LoginEvent) -> AuditEntry:
    """A login attempt (success or refusal) as the audit trail records it."""
    agent = event.principal or Principal(
        f"unknown/{event.username[:100]}", display=event.username[:100], method=event.method
    )
    interaction = "logout" if event.method == "logout" else "login"
    return AuditEntry(
        recorded_ms=int(event.at * 1000),
        action="E",
        interaction=interaction,
        outcome=0 if event.outcome == "success" else 4,
        outcome_text=event.reason or None,
        agent=agent,
        source_address=event.source,
    )
