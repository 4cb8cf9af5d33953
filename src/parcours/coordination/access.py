"""The access policy at the moments of a coordination write (``tx.access``; None passes).

The same checks the FHIR interactions make (``parcours.fhir.guard``), taken from the policy
itself: this service sits below the FHIR adapter and must not import it.
"""

from __future__ import annotations

from typing import Any

from parcours.errors import Forbidden
from parcours.store import Transaction

__all__ = ["before_write", "check_read", "check_written"]


def check_read(tx: Transaction, res_type: str, res_id: str) -> None:
    access = tx.access
    if access is not None and access.require(res_type) != "all":
        access.check(tx, res_type, tx.compartment(res_type, res_id), res_id=res_id)


def before_write(tx: Transaction, res_type: str, res_id: str | None) -> str | None:
    """Refuse a write the caller may not make to what exists; return its current patient."""
    access = tx.access
    if access is None:
        return None
    rule = access.require(res_type, write=True)
    if res_id is None or rule == "all" or not tx.exists(res_type, res_id):
        return None
    patient: str | None = tx.compartment(res_type, res_id)
    access.check(tx, res_type, patient, write=True, res_id=res_id)
    return patient


def check_written(
    tx: Transaction, resource: dict[str, Any], before: str | None, created: bool
) -> None:
    """After a write: the resource must be within the caller's reach, unless it stayed with
    the same patient."""
    access = tx.access
    if access is None:
        return
    res_type, res_id = str(resource["resourceType"]), str(resource["id"])
    if access.rule(res_type, write=True) == "all":
        return
    patient = tx.compartment(res_type, res_id)
    if not created and patient == before:
        return
    try:
        access.check(tx, res_type, patient, write=True, res_id=res_id)
    except Forbidden as exc:
        raise Forbidden(f"you may not write this {res_type} for that patient: {exc}") from None
