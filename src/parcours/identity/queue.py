"""The review queue: pairs of Patients that may be one person, and the referents' decisions.

Online matching (every Patient write) and the batch audit record pairs here; an
identity-vigilance referent lists the open ones and decides (merge, or "not a duplicate").
A decided pair is never reopened by matching: the decision is a label (STYLE 3.5), and a
rerun of the audit must not put the same pair back in front of the referent.

The queue also holds single-Patient alerts, kind ``ins-key-invalid`` (D5): a FHIR write
whose key-invalid INS was dropped before storage. The row is the Patient paired with itself
(``patient_a == patient_b``, tier ``ins-key-invalid``) and its details keep each dropped
identifier *with its value*, the one place the value is kept, so that the referent can check
it against the carte Vitale or INSi. The referent closes it with ``decide(..., RESOLVED)``;
a later write dropping a value not seen yet reopens it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from parcours.errors import Conflict, NotFound
from parcours.store import Transaction
from parcours.store.clock import now_ms

from .tables import identity_candidate

__all__ = [
    "INS_KEY_INVALID",
    "PAIR",
    "Candidate",
    "CandidateSource",
    "CandidateStatus",
    "Offer",
    "decide",
    "list_candidates",
    "mark_pair",
    "offer_pairs",
    "record_candidate",
    "record_ins_alert",
]

# Kinds of queue entries (``Candidate.kind``).
PAIR = "pair"
"""Two Patients that may be one person (online matching or the batch audit)."""
INS_KEY_INVALID = "ins-key-invalid"
"""One Patient whose key-invalid INS was dropped on a FHIR write (D5)."""


class CandidateStatus(Enum):
    OPEN = "open"
    """Waiting for a referent (middle band, minors, different INS, batch audit)."""
    LINKED = "linked"
    """Online matching is certain (auto-link); kept as two records until someone merges."""
    MERGED = "merged"
    NOT_DUPLICATE = "not-duplicate"
    RESOLVED = "resolved"
    """An ``ins-key-invalid`` alert the referent has dealt with."""


class CandidateSource(Enum):
    ONLINE = "online"
    AUDIT = "audit"


_UNDECIDED = (CandidateStatus.OPEN.value, CandidateStatus.LINKED.value)


@dataclass(frozen=True, slots=True)
class Candidate:
    pk: int
    patient_a: str
    patient_b: str
    score: float
    grade: str
    outcome: str
    tier: str
    details: dict[str, Any]
    source: CandidateSource
    status: CandidateStatus
    created_at: int
    decided_by: str | None
    decided_at: int | None
    decision_reason: str | None

    @property
    def kind(self) -> str:
        """``pair`` or ``ins-key-invalid`` (a single-Patient alert)."""
        return INS_KEY_INVALID if self.tier == INS_KEY_INVALID else PAIR

    @property
    def reason(self) -> str | None:
        """Why an alert was queued (``ins-key-invalid``); None for a pair."""
        value = self.details.get("reason")
        return value if isinstance(value, str) else None

    def as_json(self) -> dict[str, Any]:
        patients = [f"Patient/{self.patient_a}"]
        if self.kind == PAIR:
            patients.append(f"Patient/{self.patient_b}")
        return {
            "id": self.pk,
            "kind": self.kind,
            "patients": patients,
            "score": round(self.score, 6),
            "grade": self.grade,
            "outcome": self.outcome,
            "tier": self.tier,
            "details": self.details,
            "source": self.source.value,
            "status": self.status.value,
            "decided_by": self.decided_by,
            "decided_at": self.decided_at,
        }


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


def _candidate(row: Any) -> Candidate:
    return Candidate(
        pk=row.pk,
        patient_a=row.patient_a,
        patient_b=row.patient_b,
        score=row.score,
        grade=row.grade,
        outcome=row.outcome,
        tier=row.tier,
        details=json.loads(row.reasons),
        source=CandidateSource(row.source),
        status=CandidateStatus(row.status),
        created_at=row.created_at,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        decision_reason=row.decision_reason,
    )


def record_candidate(
    tx: Transaction,
    a: str,
    b: str,
    *,
    score: float,
    grade: str,
    outcome: str,
    tier: str,
    details: dict[str, Any],
    source: CandidateSource,
    status: CandidateStatus,
) -> None:
    """Insert or refresh the pair's row; a decided pair keeps its decision."""
    first, second = _pair(a, b)
    conn = tx.conn
    row = conn.execute(
        select(identity_candidate.c.pk, identity_candidate.c.status).where(
            identity_candidate.c.patient_a == first, identity_candidate.c.patient_b == second
        )
    ).first()
    stamp = now_ms()
    values = {
        "score": score,
        "grade": grade,
        "outcome": outcome,
        "tier": tier,
        "reasons": json.dumps(details, sort_keys=True),
        "source": source.value,
        "status": status.value,
        "updated_at": stamp,
    }
    if row is None:
        conn.execute(
            insert(identity_candidate).values(
                patient_a=first, patient_b=second, created_at=stamp, **values
            )
        )
    elif row.status in _UNDECIDED:
        conn.execute(
            update(identity_candidate).where(identity_candidate.c.pk == row.pk).values(**values)
        )


def list_candidates(
    tx: Transaction,
    *,
    statuses: Sequence[CandidateStatus] = (CandidateStatus.OPEN,),
    patient_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Candidate]:
    """Rows of the queue, highest score first."""
    stmt = select(identity_candidate).where(
        identity_candidate.c.status.in_([s.value for s in statuses])
    )
    if patient_id is not None:
        stmt = stmt.where(
            (identity_candidate.c.patient_a == patient_id)
            | (identity_candidate.c.patient_b == patient_id)
        )
    stmt = stmt.order_by(identity_candidate.c.score.desc(), identity_candidate.c.pk)
    rows = tx.conn.execute(stmt.offset(offset).limit(limit))
    return [_candidate(r) for r in rows]


def _set_status(
    tx: Transaction, pk: int, status: CandidateStatus, actor: str | None, reason: str | None
) -> None:
    tx.conn.execute(
        update(identity_candidate)
        .where(identity_candidate.c.pk == pk)
        .values(
            status=status.value,
            decided_by=actor,
            decided_at=now_ms() if actor else None,
            decision_reason=reason,
            updated_at=now_ms(),
        )
    )


def decide(
    tx: Transaction, pk: int, status: CandidateStatus, *, actor: str, reason: str
) -> Candidate:
    """Record a referent's decision on a queued pair ("not a duplicate", or back to open).

    A merge is decided by :func:`parcours.identity.merge_patients`, which marks the pair.
    """
    if status is CandidateStatus.MERGED:
        raise Conflict("a pair is marked merged by merging the two patients, not by a decision")
    row = tx.conn.execute(select(identity_candidate).where(identity_candidate.c.pk == pk)).first()
    if row is None:
        raise NotFound(f"no review-queue entry {pk}")
    alert = row.tier == INS_KEY_INVALID
    if alert and status not in (CandidateStatus.OPEN, CandidateStatus.RESOLVED):
        raise Conflict("an ins-key-invalid alert is either open or resolved")
    if not alert and status is CandidateStatus.RESOLVED:
        raise Conflict("a pair is decided not-duplicate or merged, not resolved")
    _set_status(tx, pk, status, actor if status is not CandidateStatus.OPEN else None, reason)
    decided = tx.conn.execute(select(identity_candidate).where(identity_candidate.c.pk == pk)).one()
    return _candidate(decided)


def mark_pair(
    tx: Transaction,
    a: str,
    b: str,
    status: CandidateStatus,
    *,
    actor: str | None,
    reason: str | None,
) -> None:
    """Set the status of a pair's row, creating it (score 0) when nothing queued it."""
    first, second = _pair(a, b)
    row = tx.conn.execute(
        select(identity_candidate.c.pk).where(
            identity_candidate.c.patient_a == first, identity_candidate.c.patient_b == second
        )
    ).first()
    if row is None:
        record_candidate(
            tx,
            first,
            second,
            score=0.0,
            grade="possible",
            outcome="review",
            tier="manual",
            details={"reasons": ["decided without a queued candidate"]},
            source=CandidateSource.ONLINE,
            status=status,
        )
        row = tx.conn.execute(
            select(identity_candidate.c.pk).where(
                identity_candidate.c.patient_a == first, identity_candidate.c.patient_b == second
            )
        ).one()
    _set_status(tx, row.pk, status, actor, reason)


@dataclass(frozen=True, slots=True)
class Offer:
    """A pair offered to the queue in bulk (the batch audit)."""

    a: str
    b: str
    score: float
    grade: str
    outcome: str
    tier: str
    details: dict[str, Any]


_REFRESH = (
    update(identity_candidate)
    .where(identity_candidate.c.pk == bindparam("b_pk"))
    .values(
        score=bindparam("b_score"),
        grade=bindparam("b_grade"),
        outcome=bindparam("b_outcome"),
        tier=bindparam("b_tier"),
        reasons=bindparam("b_reasons"),
        source=bindparam("b_source"),
        status=bindparam("b_status"),
        updated_at=bindparam("b_updated"),
    )
)


def offer_pairs(
    tx: Transaction,
    offers: Sequence[Offer],
    *,
    source: CandidateSource,
    status: CandidateStatus,
) -> int:
    """:func:`record_candidate` for many pairs in a few statements; returns rows written."""
    if not offers:
        return 0
    by_pair = {_pair(o.a, o.b): o for o in offers}
    conn = tx.conn
    existing = {
        (r.patient_a, r.patient_b): r
        for r in conn.execute(
            select(
                identity_candidate.c.pk,
                identity_candidate.c.patient_a,
                identity_candidate.c.patient_b,
                identity_candidate.c.status,
            ).where(identity_candidate.c.patient_a.in_({a for a, _ in by_pair}))
        )
    }
    stamp = now_ms()
    inserts, refreshes = [], []
    for (a, b), offer in by_pair.items():
        reasons = json.dumps(offer.details, sort_keys=True)
        row = existing.get((a, b))
        if row is None:
            inserts.append(
                {
                    "patient_a": a,
                    "patient_b": b,
                    "score": offer.score,
                    "grade": offer.grade,
                    "outcome": offer.outcome,
                    "tier": offer.tier,
                    "reasons": reasons,
                    "source": source.value,
                    "status": status.value,
                    "created_at": stamp,
                    "updated_at": stamp,
                }
            )
        elif row.status in _UNDECIDED:
            refreshes.append(
                {
                    "b_pk": row.pk,
                    "b_score": offer.score,
                    "b_grade": offer.grade,
                    "b_outcome": offer.outcome,
                    "b_tier": offer.tier,
                    "b_reasons": reasons,
                    "b_source": source.value,
                    "b_status": status.value,
                    "b_updated": stamp,
                }
            )
    if inserts:
        conn.execute(insert(identity_candidate), inserts)
    if refreshes:
        conn.execute(_REFRESH, refreshes)
    return len(inserts) + len(refreshes)


def record_ins_alert(
    tx: Transaction,
    patient_id: str,
    dropped: Sequence[Mapping[str, Any]],
    *,
    version: str | None = None,
    status_before: str | None = None,
) -> None:
    """Queue (or refresh) the ``ins-key-invalid`` alert of a Patient.

    ``dropped`` holds one mapping per dropped identifier (location, system, type, use, value,
    see :class:`parcours.identity.DroppedIns`); values already listed are not repeated. An
    open alert is refreshed; a resolved one reopens only for a value it did not list.
    """
    conn = tx.conn
    row = conn.execute(
        select(identity_candidate.c.pk, identity_candidate.c.status, identity_candidate.c.reasons)
        .where(
            identity_candidate.c.patient_a == patient_id,
            identity_candidate.c.patient_b == patient_id,
        )
        .with_for_update()
    ).first()
    stamp = now_ms()
    details: dict[str, Any] = (
        json.loads(row.reasons)
        if row is not None
        else {
            "reason": INS_KEY_INVALID,
            "reasons": [
                "a key-invalid INS was dropped from this Patient on a FHIR write (RNIV: never "
                "stored as an INS); check the matricule against the carte Vitale or INSi"
            ],
            "dropped": [],
        }
    )
    seen = {(d.get("system"), d.get("value")) for d in details.get("dropped", [])}
    new = [
        {**d, "version": version, "at": stamp}
        for d in dropped
        if (d.get("system"), d.get("value")) not in seen
    ]
    if row is not None and not new:
        return
    details["dropped"] = [*details.get("dropped", []), *new]
    if status_before is not None:
        details["status_before"] = status_before
    values = {
        "score": 0.0,
        "grade": "alert",
        "outcome": "review",
        "tier": INS_KEY_INVALID,
        "reasons": json.dumps(details, sort_keys=True),
        "source": CandidateSource.ONLINE.value,
        "status": CandidateStatus.OPEN.value,
        "updated_at": stamp,
    }
    if row is None:
        conn.execute(
            insert(identity_candidate).values(
                patient_a=patient_id, patient_b=patient_id, created_at=stamp, **values
            )
        )
        return
    reopen = {"decided_by": None, "decided_at": None, "decision_reason": None}
    conn.execute(
        update(identity_candidate)
        .where(identity_candidate.c.pk == row.pk)
        .values(**values, **(reopen if row.status != CandidateStatus.OPEN.value else {}))
    )
