"""What the FHIR API tells the audit trail: one entry per interaction.

A top-level request, and each entry of a batch or transaction Bundle, is one interaction and
one AuditEvent (TdE): who (the principal), which patients (those of the resources written or
returned), what (the interaction, the resources written, the search query), when, from where
(the client address), and the outcome. A refused or failed interaction is recorded too, in a
transaction of its own since its own was rolled back.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from parcours.audit import AuditEntry, action_for, outcome_for_status
from parcours.fhir.request import FhirRequest
from parcours.security.policy import Access
from parcours.store import Transaction
from parcours.store.clock import now_ms

__all__ = ["entry_for", "failure_entry", "patients_in"]

_OWNER_FIELDS = ("patient", "subject", "beneficiary", "for")
# Interactions that name the resources they act on (searches give their query instead).
_NAMES_RESOURCE = frozenset({"read", "vread", "history-instance", "operation"})


def _resources(body: Any) -> Iterator[dict[str, Any]]:
    if not isinstance(body, dict):
        return
    if body.get("resourceType") == "Bundle":
        for entry in body.get("entry") or []:
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                yield entry["resource"]
    elif body.get("resourceType") == "Parameters":
        for parameter in body.get("parameter") or []:
            if isinstance(parameter, dict) and isinstance(parameter.get("resource"), dict):
                yield parameter["resource"]
    elif "resourceType" in body:
        yield body


def _owner(resource: dict[str, Any]) -> str | None:
    if resource.get("resourceType") == "Patient":
        return str(resource.get("id")) if resource.get("id") else None
    for name in _OWNER_FIELDS:
        value = resource.get(name)
        ref = value.get("reference") if isinstance(value, dict) else None
        if isinstance(ref, str) and "Patient/" in ref:
            return ref.rsplit("Patient/", 1)[1].split("/", 1)[0] or None
    return None


def patients_in(resources: Iterable[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for resource in resources:
        owner = _owner(resource)
        if owner:
            seen.setdefault(owner)
    return list(seen)


def _reason(req: FhirRequest) -> str | None:
    body = req.body
    if isinstance(body, dict):
        for parameter in body.get("parameter") or []:
            if isinstance(parameter, dict) and parameter.get("name") == "reason":
                value = parameter.get("valueString")
                return str(value)[:2000] if value is not None else None
    return None


def _agent_fields(req: FhirRequest) -> dict[str, Any]:
    return {
        "source_address": req.client,
        "request_id": req.header("x-request-id"),
    }


def entry_for(
    req: FhirRequest,
    interaction: str,
    status: int,
    body: Any,
    tx: Transaction,
    written: list[tuple[str, str, int, str, str | None]],
    resource_type: str | None,
    res_id: str | None = None,
) -> AuditEntry:
    """The audit entry of an interaction that ran in ``tx``, wrote ``written`` and answered
    ``status`` / ``body``."""
    assert req.principal is not None
    entities = [f"{t}/{i}/_history/{v}" for t, i, v, _m, _p in written]
    patients: list[str] = []
    for *_rest, patient in written:
        if patient and patient not in patients:
            patients.append(patient)
    if not written:
        resources = list(_resources(body))
        patients = patients_in(resources)
        if interaction in _NAMES_RESOURCE:
            entities = [
                f"{r['resourceType']}/{r['id']}"
                + (
                    f"/_history/{r['meta']['versionId']}"
                    if r.get("meta", {}).get("versionId")
                    else ""
                )
                for r in resources
                if r.get("id") and r.get("resourceType") not in ("OperationOutcome", "Parameters")
            ][:50]
    if not patients and resource_type == "Patient" and res_id:
        patients = [res_id]  # an operation on a Patient that returns no resource
    access: Access | None = tx.access
    query = "&".join(f"{k}={v}" for k, v in req.query) if interaction.startswith("search") else None
    return AuditEntry(
        recorded_ms=now_ms(),
        action=action_for(interaction),
        interaction=interaction,
        outcome=outcome_for_status(status),
        agent=req.principal,
        patients=tuple(patients),
        entities=tuple(entities),
        query=query,
        purpose=access.purpose(patients) if access is not None else None,
        reason=_reason(req) if interaction == "break-glass" else None,
        resource_type=resource_type,
        **_agent_fields(req),
    )


def failure_entry(
    req: FhirRequest,
    interaction: str,
    status: int,
    message: str,
    resource_type: str | None,
    res_id: str | None,
) -> AuditEntry:
    assert req.principal is not None
    patients = (res_id,) if resource_type == "Patient" and res_id else ()
    entities = (f"{resource_type}/{res_id}",) if resource_type and res_id else ()
    return AuditEntry(
        recorded_ms=now_ms(),
        action=action_for(interaction),
        interaction=interaction,
        outcome=outcome_for_status(status),
        outcome_text=message[:500],
        agent=req.principal,
        patients=patients,
        entities=entities,
        query="&".join(f"{k}={v}" for k, v in req.query) or None,
        resource_type=resource_type,
        **_agent_fields(req),
    )
