"""The identity-vigilance queue: candidate pairs side by side, merge, not-a-duplicate, unmerge.

The queue rows (``parcours.identity.queue``) and the merge journal are read in a transaction
carrying the referent's rights, after ``require_every(Patient)``: only a role that may read
every identity reaches them. The two identities are read through the FHIR engine (audited
reads); a merge and an unmerge are the API's ``Patient/$merge`` and ``$unmerge``; a
"not a duplicate" decision goes through ``queue.decide`` and is recorded in the audit trail as
an operation on both patients, like the API's identity operations.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from starlette.responses import RedirectResponse, Response

from parcours.errors import ParcoursError
from parcours.fhir.request import FhirRequest, FhirResponse
from parcours.identity.queue import (
    INS_KEY_INVALID,
    Candidate,
    CandidateStatus,
    decide,
    list_candidates,
)
from parcours.identity.queue import _candidate as candidate_of_row
from parcours.identity.tables import identity_candidate, identity_merge
from parcours.security import guard
from parcours.store import Transaction
from parcours.web.gateway import UiError
from parcours.web.patient_search import STATUS_LABELS
from parcours.web.patients import Identity, _identity, error_page
from parcours.web.rendering import french_date, render
from parcours.web.session import View

__all__ = [
    "identity_merge_action",
    "identity_not_duplicate",
    "identity_pair",
    "identity_queue",
    "identity_unmerge",
    "open_count",
]

OUTCOMES = {
    "certain": "Certain",
    "probable": "Probable",
    "possible": "Possible",
    "certainly-not": "Exclu",
}


# Open pairs, and pairs matching linked with certainty but still two records until merged.
UNDECIDED = (CandidateStatus.OPEN, CandidateStatus.LINKED)
STATUSES = {"open": "À examiner", "linked": "Rapprochement certain, à fusionner"}


class _Refused(UiError):
    pass


@contextmanager
def _referent_tx(view: View, write: bool = False) -> Iterator[Transaction]:
    """A store transaction with the user's rights, for a role that handles every identity."""
    request = FhirRequest(
        "POST" if write else "GET", ("Patient",), principal=view.user, client=view.fhir.client
    )
    with view.web.engine.begin(request, readonly=not write) as tx:
        try:
            guard.require_every(tx, "Patient", write=write)
        except Exception as exc:  # Forbidden: the page says so rather than failing
            raise _Refused(403, str(exc)) from None
        yield tx


@dataclass(frozen=True, slots=True)
class Row:
    candidate: Candidate
    a: Identity | None
    b: Identity | None


def open_count(view: View, _refs: object) -> dict[str, Any]:
    """Home page block for referents: how many entries wait."""
    if not view.user.roles & {"identity-referent", "admin"}:
        return {}
    try:
        with _referent_tx(view) as tx:
            return {"identity_open": len(list_candidates(tx, statuses=UNDECIDED, limit=1000))}
    except _Refused:
        return {}


def _identities(view: View, ids: set[str]) -> dict[str, Identity]:
    if not ids:
        return {}
    patients = view.fhir.search(
        "Patient", [("_id", ",".join(sorted(ids))), ("_count", str(len(ids)))]
    )
    return {str(p["id"]): _identity(p) for p in patients}


def _merges(tx: Transaction) -> list[dict[str, Any]]:
    rows = tx.conn.execute(
        select(identity_merge).order_by(identity_merge.c.pk.desc()).limit(20)
    ).all()
    return [
        {
            "id": r.pk,
            "source": r.source_id,
            "target": r.target_id,
            "actor": r.actor,
            "reason": r.reason,
            "at": r.merged_at,
            "undone": r.undone_at is not None,
        }
        for r in rows
    ]


def identity_queue(view: View) -> Response:
    try:
        with _referent_tx(view) as tx:
            candidates = list_candidates(tx, statuses=UNDECIDED, limit=50)
            merges = _merges(tx)
        ids = {c.patient_a for c in candidates} | {c.patient_b for c in candidates}
        people = _identities(view, ids)
    except UiError as error:
        return error_page(view, error)
    rows = [Row(c, people.get(c.patient_a), people.get(c.patient_b)) for c in candidates]
    return render(
        view.request,
        "identity_queue.html",
        {
            "title": "Identitovigilance",
            "active": "identity_queue",
            "rows": rows,
            "merges": merges,
            "outcomes": OUTCOMES,
            "statuses": STATUSES,
            "labels": STATUS_LABELS,
            "ins_alert": INS_KEY_INVALID,
            "done": view.request.query_params.get("fait"),
        },
    )


def _candidate(tx: Transaction, pk: int) -> Candidate | None:
    row = tx.conn.execute(select(identity_candidate).where(identity_candidate.c.pk == pk)).first()
    # The queue module's own row reader: one way to turn a row into a Candidate.
    return candidate_of_row(row) if row is not None else None


FIELDS = (
    ("birth_name", "Nom de naissance"),
    ("used_name", "Nom utilisé"),
    ("given", "Prénom(s) de naissance"),
    ("birth_date", "Date de naissance"),
    ("gender", "Sexe"),
    ("birthplace", "Lieu de naissance"),
    ("ins", "INS"),
    ("status", "Statut de l’identité"),
)


def _shown(identity: Identity, name: str) -> str:
    if name == "ins":
        return ", ".join(f"{label} {value}" for label, value in identity.ins) or "—"
    if name == "status":
        return STATUS_LABELS[identity.status][0]
    if name == "birth_date":
        return french_date(identity.birth_date) or "—"
    return str(getattr(identity, name) or "—")


def _pk(view: View) -> int:
    raw = view.request.path_params["pk"]
    return int(raw) if str(raw).isdigit() and len(str(raw)) < 18 else -1


def identity_pair(view: View) -> Response:
    pk = _pk(view)
    try:
        with _referent_tx(view) as tx:
            candidate = _candidate(tx, pk)
        if candidate is None:
            raise UiError(404, f"Aucune entrée {pk} dans la file d’identitovigilance.")
        a = _identity(view.fhir.read("Patient", candidate.patient_a))
        b = _identity(view.fhir.read("Patient", candidate.patient_b))
    except UiError as error:
        return error_page(view, error)
    lines = [
        (label, _shown(a, name), _shown(b, name), _shown(a, name) != _shown(b, name))
        for name, label in FIELDS
    ]
    return render(
        view.request,
        "identity_pair.html",
        {
            "title": f"Doublon potentiel n° {pk}",
            "active": "identity_queue",
            "candidate": candidate,
            "a": a,
            "b": b,
            "lines": lines,
            "outcomes": OUTCOMES,
            "labels": STATUS_LABELS,
            "error": None,
        },
    )


def _back(view: View, done: str) -> Response:
    url = str(view.request.app.url_path_for("identity_queue"))
    return RedirectResponse(f"{url}?fait={done}", 303)


def identity_merge_action(view: View) -> Response:
    pk = _pk(view)
    survivor = view.field("conserver")
    reason = view.field("motif") or "doublon confirmé par l’identitovigilance"
    try:
        with _referent_tx(view) as tx:
            candidate = _candidate(tx, pk)
        if candidate is None:
            raise UiError(404, f"Aucune entrée {pk} dans la file d’identitovigilance.")
        pair = {candidate.patient_a, candidate.patient_b}
        if survivor not in pair:
            raise UiError(400, "Choisissez l’identité à conserver.")
        (source,) = pair - {survivor}
        view.fhir.operation(
            ("Patient", "$merge"),
            [
                {"name": "source-patient", "valueReference": {"reference": f"Patient/{source}"}},
                {"name": "target-patient", "valueReference": {"reference": f"Patient/{survivor}"}},
                {"name": "reason", "valueString": reason[:500]},
            ],
        )
    except UiError as error:
        return error_page(view, error)
    return _back(view, "fusion")


def identity_not_duplicate(view: View) -> Response:
    pk = _pk(view)
    reason = view.field("motif") or "pas un doublon"
    request = FhirRequest(
        "POST", ("Patient", "$not-duplicate"), principal=view.user, client=view.fhir.client
    )
    try:
        with _referent_tx(view, write=True) as tx:
            before = len(tx.written)
            candidate = decide(
                tx, pk, CandidateStatus.NOT_DUPLICATE, actor=view.user.subject, reason=reason[:500]
            )
            patients = [
                tx.read("Patient", candidate.patient_a),
                tx.read("Patient", candidate.patient_b),
            ]
            outcome = FhirResponse(
                200,
                {
                    "resourceType": "Parameters",
                    "parameter": [{"name": "patient", "resource": p} for p in patients],
                },
            )
            # The decision is in the trail like an API identity operation, naming both patients.
            view.web.engine.audit(request, "operation", outcome, tx, before, "Patient")
    except UiError as error:
        return error_page(view, error)
    except ParcoursError as exc:  # NotFound / Conflict from the queue
        return error_page(view, UiError(exc.status, str(exc)))
    return _back(view, "pas-un-doublon")


def identity_unmerge(view: View) -> Response:
    merge_id = view.request.path_params["merge_id"]
    reason = view.field("motif") or "fusion annulée par l’identitovigilance"
    try:
        view.fhir.operation(
            ("Patient", "$unmerge"),
            [
                {"name": "merge-id", "valueString": str(merge_id)},
                {"name": "reason", "valueString": reason[:500]},
            ],
        )
    except UiError as error:
        return error_page(view, error)
    return _back(view, "defusion")
