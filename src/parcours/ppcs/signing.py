"""Sign-off of a PPCS version (decision D29).

``prepare`` (in a read transaction) checks that the current version is a draft filling every
HAS section and renders the signed PDF; ``commit`` (in a short write transaction) writes, all
or nothing, provided the plan has not changed since (else 412):

1. the next CarePlan version, ``active``, with the ``ppcs-signature`` extension (who, when,
   and the DocumentReference below): from then on the write hook keeps it read-only;
2. a Provenance of that exact version (``CarePlan/{id}/_history/{n}``) carrying the
   verification Signature (who, when), the FHIR record of the act;
3. a DocumentReference holding the signed PDF, in the patient's compartment: the care circle
   reads it, and its creation is the NdE ``DOC`` event (``parcours.notify.emitter``) that
   notifies the circle's subscribers. It replaces (``relatesTo``) the previous signed
   version's document, which becomes ``superseded``.

``sign`` does both in one transaction (scripts, tests); the FHIR operation uses the two steps
so that WeasyPrint's second of work never holds the (SQLite-wide) write lock.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from parcours.errors import Conflict, Gone, InvalidResource, NotFound, VersionConflict
from parcours.ppcs.model import (
    CATEGORY,
    DOCUMENT_TYPE,
    EXT_SIGNATURE,
    SIGNATURE_TYPE,
    signature,
    signature_extension,
)
from parcours.ppcs.render import html_document, pdf_document, read_ppcs
from parcours.ppcs.rules import completeness_issues, is_signed, signing
from parcours.store import Transaction
from parcours.store.clock import instant, now_ms

__all__ = ["PreparedSignOff", "SignOff", "commit", "document_id", "prepare", "sign"]


@dataclass(frozen=True)
class SignOff:
    careplan: dict[str, Any]
    provenance_id: str
    document_id: str


def document_id(careplan_id: str, version: int) -> str:
    """The id of the DocumentReference of one signed version (at most 64 characters)."""
    digest = hashlib.sha256(careplan_id.encode()).hexdigest()[:24]
    return f"ppcs-{digest}-v{version}"


def _previous_document(tx: Transaction, careplan_id: str) -> dict[str, Any] | None:
    entries, _total = tx.history("CarePlan", careplan_id, count=1000)
    for entry in entries:  # newest first
        if entry.resource is not None and is_signed(entry.resource):
            ref = (signature(entry.resource) or {}).get("document") or {}
            raw = str(ref.get("reference") or "")
            if raw.startswith("DocumentReference/"):
                try:
                    found: dict[str, Any] = tx.read("DocumentReference", raw.split("/", 1)[1])
                except (NotFound, Gone):
                    return None
                return found
            return None
    return None


@dataclass(frozen=True)
class PreparedSignOff:
    """A sign-off checked and rendered in a read transaction, to commit in a short write one."""

    careplan_id: str
    # The draft's version: the commit fails (412) if the plan changed since.
    version: int
    signed: dict[str, Any]
    signer: dict[str, Any]
    when: str
    document_id: str
    previous_document: str | None
    pdf: bytes


def prepare(
    tx: Transaction,
    careplan_id: str,
    signer: dict[str, Any],
    *,
    if_match: int | None = None,
) -> PreparedSignOff:
    """Check that the current version is a complete draft and render its signed PDF.

    The PDF (about a second of WeasyPrint) is made here, so that ``commit`` holds the write
    transaction only for its few writes.
    """
    current = read_ppcs(tx, careplan_id)
    ref = f"CarePlan/{careplan_id}"
    version = int((current.get("meta") or {}).get("versionId") or 1)
    if if_match is not None and if_match != version:
        raise VersionConflict(
            f"{ref} is at version {version}, not {if_match}: read the plan again before signing it"
        )
    if current.get("status") != "draft":
        state = "already signed" if is_signed(current) else f"{current.get('status')}"
        raise Conflict(
            f"{ref} version {version} is {state}: only a draft is signed; PUT a new version "
            "with status 'draft' first"
        )
    missing = completeness_issues(current)
    if missing:
        raise InvalidResource(
            f"{ref} cannot be signed yet: {len(missing)} PPCS section(s) missing "
            f"({'; '.join(i.message.removeprefix('missing: ') for i in missing)})",
            missing,
        )
    previous = _previous_document(tx, careplan_id)
    when = instant(now_ms())
    doc_id = document_id(careplan_id, version + 1)
    extensions = [e for e in current.get("extension") or [] if e.get("url") != EXT_SIGNATURE]
    extensions.append(
        signature_extension(signer, when, {"reference": f"DocumentReference/{doc_id}"})
    )
    signed = {**current, "status": "active", "extension": extensions}
    # Rendered as it will be stored: the next version, dated by its signature.
    as_stored = {**signed, "meta": {"versionId": str(version + 1), "lastUpdated": when}}
    pdf = pdf_document(html_document(tx, as_stored))
    return PreparedSignOff(
        careplan_id,
        version,
        signed,
        signer,
        when,
        doc_id,
        str(previous["id"])
        if previous is not None and previous.get("status") == "current"
        else None,
        pdf,
    )


def commit(tx: Transaction, prepared: PreparedSignOff) -> SignOff:
    """Write the signed version, its Provenance and its DocumentReference (all or nothing)."""
    ref = f"CarePlan/{prepared.careplan_id}"
    with signing(prepared.careplan_id):
        try:
            written = tx.update(prepared.signed, if_match=prepared.version).resource
        except VersionConflict:
            raise VersionConflict(
                f"{ref} changed while it was being signed (it was at version "
                f"{prepared.version}): read it again and sign the new version"
            ) from None
    target = f"{ref}/_history/{written['meta']['versionId']}"
    signer, when, pdf = prepared.signer, prepared.when, prepared.pdf
    provenance = tx.create(
        {
            "resourceType": "Provenance",
            "target": [{"reference": target}],
            "recorded": when,
            "activity": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                        "code": "UPDATE",
                        "display": "revise",
                    }
                ],
                "text": "Validation du PPCS",
            },
            "agent": [
                {
                    "type": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/"
                                "provenance-participant-type",
                                "code": "verifier",
                                "display": "Verifier",
                            }
                        ]
                    },
                    "who": signer,
                }
            ],
            "signature": [{"type": [SIGNATURE_TYPE], "when": when, "who": signer}],
        }
    )
    document: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "status": "current",
        "docStatus": "final",
        "type": DOCUMENT_TYPE,
        "category": [CATEGORY],
        "subject": written["subject"],
        "date": when,
        "author": [signer],
        "authenticator": signer,
        "description": f"PPCS validé (version {written['meta']['versionId']})",
        "content": [
            {
                "attachment": {
                    "contentType": "application/pdf",
                    "language": "fr",
                    "data": base64.b64encode(pdf).decode("ascii"),
                    "size": len(pdf),
                    "hash": base64.b64encode(hashlib.sha1(pdf).digest()).decode("ascii"),
                    "title": "Plan personnalisé de coordination en santé",
                    "creation": when,
                }
            }
        ],
        "context": {"related": [{"reference": target}]},
    }
    previous = prepared.previous_document
    if previous is not None:
        document["relatesTo"] = [
            {"code": "replaces", "target": {"reference": f"DocumentReference/{previous}"}}
        ]
        try:
            old = tx.read("DocumentReference", previous)
        except (NotFound, Gone):
            old = None
        if old is not None and old.get("status") == "current":
            tx.update({**old, "status": "superseded"})
    tx.create(document, res_id=prepared.document_id)
    return SignOff(written, str(provenance["id"]), prepared.document_id)


def sign(
    tx: Transaction,
    careplan_id: str,
    signer: dict[str, Any],
    *,
    if_match: int | None = None,
) -> SignOff:
    """Sign the current (draft) version of a PPCS as ``signer`` (a Reference), in one
    transaction; a server prefers ``prepare`` in a read transaction, then ``commit``."""
    return commit(tx, prepare(tx, careplan_id, signer, if_match=if_match))
