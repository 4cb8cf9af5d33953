"""The access policy at each moment of a request, for every entry point (FHIR API, services
below it such as coordination and the PPCS, the web workspace).

Each reads the caller's ``Access`` from the transaction (``tx.access``, set by the engine);
a transaction without one is the platform's own work and passes.
"""

from __future__ import annotations

from typing import Any

from parcours.errors import Forbidden
from parcours.security.policy import Access
from parcours.store import Transaction

__all__ = [
    "before_write",
    "check_read",
    "check_visible",
    "check_written",
    "require_every",
    "scope",
]


def scope(tx: Transaction) -> Access | None:
    access: Access | None = tx.access
    return access


def check_read(tx: Transaction, res_type: str, res_id: str) -> None:
    access = scope(tx)
    if access is None:
        return
    rule = access.require(res_type)
    if rule == "own":
        access.check(tx, res_type, None, res_id=res_id)
    elif rule == "circle":
        access.check(tx, res_type, tx.compartment(res_type, res_id))


def check_visible(tx: Transaction, resource: dict[str, Any]) -> None:
    """A conditional interaction's match must be one the caller may see."""
    check_read(tx, str(resource["resourceType"]), str(resource["id"]))


def before_write(tx: Transaction, res_type: str, res_id: str | None) -> str | None:
    """Refuse a write the caller may not make to what exists; return its current patient."""
    access = scope(tx)
    if access is None:
        return None
    exists = res_id is not None and tx.exists(res_type, res_id)
    if not exists and res_type == "Patient" and access.may_create_patient():
        return None
    rule = access.require(res_type, write=True)
    if not exists or rule == "all":
        return None
    assert res_id is not None
    patient = tx.compartment(res_type, res_id)
    access.check(tx, res_type, patient, write=True, res_id=res_id)
    return patient


def check_written(
    tx: Transaction, resource: dict[str, Any], before: str | None, created: bool
) -> None:
    """After a write: the resource must still be within the caller's reach, unless it stayed
    with the same patient (leaving a care circle is allowed)."""
    access = scope(tx)
    if access is None:
        return
    res_type, res_id = str(resource["resourceType"]), str(resource["id"])
    if created and res_type == "Patient" and access.may_create_patient():
        return
    if access.rule(res_type, write=True) == "all":
        return
    patient = tx.compartment(res_type, res_id)
    if not created and patient == before:
        return
    try:
        access.check(tx, res_type, patient, write=True, res_id=res_id)
    except Forbidden as exc:
        raise Forbidden(f"you may not write this {res_type} for that patient: {exc}") from None


def require_every(tx: Transaction, res_type: str, write: bool = False) -> None:
    """For operations over all resources of a type (identity matching, merges)."""
    access = scope(tx)
    if access is not None and access.require(res_type, write) != "all":
        verb = "write" if write else "read"
        raise Forbidden(f"this operation needs the right to {verb} every {res_type}")
