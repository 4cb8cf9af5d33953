"""The identity seam: which stored Patient a message is about, and how a merge is done.

``IdentityService`` is the one place the listener asks identity questions. The first
implementation, :class:`LocalIdentity`, is deliberately plain (rule sheet §4.2 tiers 1-2):

1. same sender IPP (system + value) -> that Patient;
2. else the same kept INS (QUAL) -> that Patient;
3. else a new Patient.

and merges through the platform's merge service (``parcours.identity.merge``: every reference
re-pointed in one transaction, journalled, undoable), then points the sender's IPP
cross-references at the survivor. Probabilistic matching, collisions and the review queue
apply to every Patient the listener writes, through the store's identity write hook.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from sqlalchemy import delete, insert, select, update

from parcours.errors import Conflict
from parcours.hl7v2.errors import APPLICATION_ERROR, Hl7Error
from parcours.hl7v2.identifiers import Sender
from parcours.hl7v2.mapping_patient import INS_OIDS
from parcours.hl7v2.tables import hl7_xref
from parcours.identity.merge import merge_patients
from parcours.store.repository import Transaction
from parcours.store.search import parse_search

__all__ = ["IdentityService", "LocalIdentity", "Xref"]


class Xref:
    """The identifier cross-reference (``hl7_xref``), inside the caller's transaction."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    def find(self, kind: str, system: str, value: str) -> tuple[str, str | None] | None:
        row = self.tx.conn.execute(
            select(hl7_xref.c.res_id, hl7_xref.c.patient_id)
            .where(hl7_xref.c.kind == kind, hl7_xref.c.system == system, hl7_xref.c.value == value)
            .order_by(hl7_xref.c.pk)
            .limit(1)
        ).first()
        return (str(row.res_id), row.patient_id) if row else None

    def set_patient_identifiers(
        self, patient_id: str, identifiers: Iterable[dict[str, Any]]
    ) -> None:
        """Record the IPPs (added, never removed here) and the INS (replaced) of a Patient.

        IPP rows are only removed by an explicit identifier change (A47) or re-pointed by a
        merge (A40), so an obsolete IPP keeps leading to the surviving Patient.
        """
        conn = self.tx.conn
        conn.execute(
            delete(hl7_xref).where(
                hl7_xref.c.res_type == "Patient",
                hl7_xref.c.res_id == patient_id,
                hl7_xref.c.kind == "ins",
            )
        )
        for ident in identifiers:
            system, value = ident.get("system"), ident.get("value")
            if not system or not value:
                continue
            codes = {c.get("code") for c in (ident.get("type") or {}).get("coding", [])}
            if "PI" in codes:
                self.add("ipp", system, value, "Patient", patient_id, patient_id)
            elif system in INS_OIDS and "NH" not in codes:
                self.add("ins", system, value, "Patient", patient_id, patient_id, unique=False)

    def remove(self, kind: str, system: str, value: str) -> None:
        self.tx.conn.execute(
            delete(hl7_xref).where(
                hl7_xref.c.kind == kind, hl7_xref.c.system == system, hl7_xref.c.value == value
            )
        )

    def add(
        self,
        kind: str,
        system: str,
        value: str,
        res_type: str,
        res_id: str,
        patient_id: str | None,
        *,
        unique: bool = True,
    ) -> None:
        """Add a row; with ``unique`` an existing row for the same identifier is kept."""
        existing = self.tx.conn.execute(
            select(hl7_xref.c.res_id).where(
                hl7_xref.c.kind == kind,
                hl7_xref.c.system == system[:255],
                hl7_xref.c.value == value[:255],
                *([] if unique else [hl7_xref.c.res_id == res_id]),
            )
        ).first()
        if existing is None:
            self.tx.conn.execute(
                insert(hl7_xref).values(
                    kind=kind,
                    system=system[:255],
                    value=value[:255],
                    res_type=res_type,
                    res_id=res_id,
                    patient_id=patient_id,
                )
            )

    def encounters_of(self, patient_id: str) -> list[str]:
        rows = self.tx.conn.execute(
            select(hl7_xref.c.res_id)
            .where(hl7_xref.c.res_type == "Encounter", hl7_xref.c.patient_id == patient_id)
            .distinct()
        )
        return sorted(str(r.res_id) for r in rows)

    def repoint(self, old_patient: str, new_patient: str) -> None:
        """After a merge: IPPs and visits of the obsolete Patient now lead to the survivor."""
        conn = self.tx.conn
        conn.execute(
            update(hl7_xref)
            .where(hl7_xref.c.patient_id == old_patient, hl7_xref.c.res_type == "Encounter")
            .values(patient_id=new_patient)
        )
        conn.execute(
            update(hl7_xref)
            .where(
                hl7_xref.c.res_type == "Patient",
                hl7_xref.c.res_id == old_patient,
                hl7_xref.c.kind == "ipp",
            )
            .values(res_id=new_patient, patient_id=new_patient)
        )
        conn.execute(
            delete(hl7_xref).where(
                hl7_xref.c.res_type == "Patient",
                hl7_xref.c.res_id == old_patient,
                hl7_xref.c.kind == "ins",
            )
        )


class IdentityService(Protocol):
    def resolve(self, tx: Transaction, patient: dict[str, Any], sender: Sender) -> str | None:
        """Id of the stored Patient the incoming one is, or None to create it.

        Raises a ``ParcoursError`` / ``Hl7Error`` when the message must not be applied
        (e.g. a collision the service wants a human to look at).
        """
        ...

    def merge(self, tx: Transaction, survivor_id: str, obsolete_id: str) -> list[str]:
        """Merge ``obsolete_id`` into ``survivor_id``; returns the references written."""
        ...


def _active_patient_with(tx: Transaction, system: str, value: str) -> str | None:
    """The one active Patient carrying this identifier, if exactly one does."""
    registry = tx.store.registry
    if registry is None:
        return None
    request = parse_search(
        "Patient", [("identifier", f"{system}|{value}"), ("_count", "2")], registry
    )
    matches = [m for m in tx.search(request).matches if m.get("active", True) is not False]
    return str(matches[0]["id"]) if len(matches) == 1 else None


class LocalIdentity:
    """Same sender IPP, else same INS, else new."""

    def resolve(self, tx: Transaction, patient: dict[str, Any], sender: Sender) -> str | None:
        xref = Xref(tx)
        identifiers = patient.get("identifier") or []
        for kind in ("ipp", "ins"):
            for ident in identifiers:
                codes = {c.get("code") for c in (ident.get("type") or {}).get("coding", [])}
                is_kind = (
                    "PI" in codes
                    if kind == "ipp"
                    else (ident.get("system") in INS_OIDS and "NH" not in codes)
                )
                if not is_kind:
                    continue
                hit = xref.find(kind, ident["system"], ident["value"])
                if hit and tx.exists("Patient", hit[0]):
                    return hit[0]
                if kind == "ins":
                    # An identity known to the platform from elsewhere (FHIR, another
                    # hospital): the INS is national, the IPP cross-reference is not.
                    stored = _active_patient_with(tx, ident["system"], ident["value"])
                    if stored is not None:
                        return stored
        return None

    def merge(self, tx: Transaction, survivor_id: str, obsolete_id: str) -> list[str]:
        """The platform's merge (journalled, every reference re-pointed, undoable), then the
        sender's cross-references follow the survivor."""
        if survivor_id == obsolete_id:
            return []
        try:
            result = merge_patients(
                tx, obsolete_id, survivor_id, actor="hl7v2", reason="ADT^A40 (PAM FR merge)"
            )
        except Conflict as exc:
            # Two INS, or an identity already merged away: a human decides, resending won't.
            raise Hl7Error.content(APPLICATION_ERROR, exc.message[:300], "MRG^1^1") from exc
        Xref(tx).repoint(obsolete_id, survivor_id)
        return list(result.written)
