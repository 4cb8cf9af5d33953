"""The access policy's read check, for the PPCS's own reads (the document and what it names).

The same rule as ``parcours.fhir.guard.check_read``, asked of the caller's ``tx.access``
directly: the PPCS core is also used by the web workspace and must not import the FHIR API.
"""

from __future__ import annotations

from parcours.security.policy import Access
from parcours.store import Transaction

__all__ = ["caller", "check_read"]


def caller(tx: Transaction) -> Access | None:
    access: Access | None = tx.access
    return access


def check_read(tx: Transaction, res_type: str, res_id: str) -> None:
    """Refuse (403) a resource the caller may not read; the platform's own work passes."""
    access = caller(tx)
    if access is None:
        return
    rule = access.require(res_type)
    if rule == "own":
        access.check(tx, res_type, None, res_id=res_id)
    elif rule == "circle":
        access.check(tx, res_type, tx.compartment(res_type, res_id))
