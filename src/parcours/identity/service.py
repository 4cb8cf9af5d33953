"""Online matching on every Patient write, and ``$match``: the identity rules on the store.

:class:`IdentityService` is wired once (``parcours.platform``): its :meth:`on_write` is a
store write hook, so the REST API, the HL7 listener and the UI all go through it, inside the
transaction of the write. For each Patient written it

1. rewrites the Patient's blocking keys (``identity_block``; hashed, so no trait or
   matricule sits in clear in that index) and its flat row for the batch audit
   (``identity_record``);
2. fetches the stored Patients sharing a key (the ones sharing most keys first, capped);
3. runs :class:`Matcher` on each pair: a COLLISION (same INS, conflicting strict trait) refuses
   the write with :class:`IdentityCollision` (409, HL7 ACK AR); AUTO_LINK records the pair as
   ``linked``; REVIEW puts it in the review queue; NEW records nothing.

The write itself is always stored as sent: a REST create is never dropped or merged behind the
client's back (docs/decisions.md D4) — except for a key-invalid INS, which the validator's
profile check removes before storage (D5): the check hands the dropped values to this service,
and the write hook of the same resource queues them as an ``ins-key-invalid`` alert, in the
transaction of the write. A Patient merged away (inactive, ``replaced-by``) has no blocking
keys and is never a candidate.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select

from parcours.errors import Conflict, InvalidInput, Issue
from parcours.store import Transaction
from parcours.store.clock import now_ms
from parcours.store.schema import resource

from .errors import IdentityError
from .flat import flat_row
from .matching import Matcher, MatchGrade, MatchResult, Outcome, Tier, blocking_keys
from .profile import DroppedIns, fr_core_patient_check
from .queue import CandidateSource, CandidateStatus, record_candidate, record_ins_alert
from .record import IdentityRecord, record_from_patient
from .tables import identity_block, identity_record

__all__ = [
    "IdentityCollision",
    "IdentityService",
    "PatientMatch",
    "identity_service",
    "is_merged_away",
]

log = logging.getLogger(__name__)

# A common name in a common year can share keys with hundreds of records; the ones sharing
# the most keys are the likely duplicates, so the tail is cut rather than scored.
MAX_CANDIDATES = 100


class IdentityCollision(Conflict):
    """Same INS as a stored Patient but a conflicting strict trait: one INS, two people."""


@dataclass(frozen=True, slots=True)
class PatientMatch:
    """One stored Patient as a match of an incoming identity."""

    patient: dict[str, Any]
    result: MatchResult

    @property
    def score(self) -> float:
        # Deterministic tiers are certain whatever the traits' score.
        if self.result.grade is MatchGrade.CERTAIN and self.result.tier is not Tier.PROBABILISTIC:
            return 1.0
        return self.result.probability


def is_merged_away(patient: Mapping[str, Any]) -> bool:
    links = patient.get("link") or ()
    return patient.get("active") is False and any(
        isinstance(link, Mapping) and link.get("type") == "replaced-by" for link in links
    )


def _key_hash(key: str) -> str:
    return hashlib.blake2b(key.encode("utf-8"), digest_size=12).hexdigest()


def _today() -> date:
    return datetime.fromtimestamp(now_ms() / 1000, tz=UTC).date()


_SHARED_KEYS = (
    select(identity_block.c.patient_id, func.count().label("shared"))
    .where(
        identity_block.c.key.in_(bindparam("keys", expanding=True)),
        identity_block.c.patient_id != bindparam("self_id"),
    )
    .group_by(identity_block.c.patient_id)
    .order_by(func.count().desc(), identity_block.c.patient_id)
    .limit(bindparam("cap"))
    .subquery()
)
# One round trip: the best candidates by shared keys, with their current content.
_CANDIDATES = (
    select(resource.c.id, resource.c.content)
    .join(_SHARED_KEYS, resource.c.id == _SHARED_KEYS.c.patient_id)
    .where(resource.c.type == "Patient", resource.c.deleted.is_(False))
)


_Dropped = tuple[tuple[DroppedIns, ...], str | None]


class _PendingDrops:
    """Key-invalid INS the validator dropped, waiting for the write hook of the same resource.

    The store validates the dict it is about to write and then passes that very dict to the
    write hooks, in the same transaction: the entry is keyed by the dict's identity (and holds
    it, so the id is not reused meanwhile). A write that fails between the two leaves its entry
    behind; the oldest ones are forgotten beyond ``cap``.
    """

    def __init__(self, cap: int = 1024) -> None:
        self._cap = cap
        self._lock = threading.Lock()
        self._items: OrderedDict[int, tuple[dict[str, Any], _Dropped]] = OrderedDict()

    def put(
        self, resource: dict[str, Any], dropped: Sequence[DroppedIns], before: str | None
    ) -> None:
        with self._lock:
            self._items[id(resource)] = (resource, (tuple(dropped), before))
            self._items.move_to_end(id(resource))
            while len(self._items) > self._cap:
                self._items.popitem(last=False)

    def take(self, resource: Mapping[str, Any]) -> _Dropped | None:
        with self._lock:
            item = self._items.pop(id(resource), None)
        if item is None or item[0] is not resource:
            return None
        return item[1]


class IdentityService:
    """The identity rules bound to the store; one per process (see :func:`identity_service`)."""

    def __init__(self, *, production: bool, matcher: Matcher | None = None) -> None:
        self.production = production
        self.matcher = matcher or Matcher()
        self._pending = _PendingDrops()
        self.profile_check = fr_core_patient_check(production=production, on_drop=self._pending.put)

    def record(self, patient: Mapping[str, Any]) -> IdentityRecord:
        return record_from_patient(patient, allow_test_ins=not self.production)

    # ---- candidates -------------------------------------------------------------------

    def candidates(
        self, tx: Transaction, record: IdentityRecord, *, exclude: str = ""
    ) -> list[tuple[IdentityRecord, dict[str, Any]]]:
        keys = [_key_hash(k) for k in blocking_keys(record)]
        if not keys:
            return []
        out = []
        params = {"keys": keys, "self_id": exclude, "cap": MAX_CANDIDATES}
        for row in tx.conn.execute(_CANDIDATES, params):
            content: dict[str, Any] = row.content
            if not is_merged_away(content):
                out.append((self.record(content), content))
        return out

    def _write_keys(
        self, tx: Transaction, patient_id: str, record: IdentityRecord | None, *, new: bool = False
    ) -> None:
        """Blocking keys and flat row of one Patient (none for a deleted or merged one)."""
        conn = tx.conn
        if not new:
            # (A deleted Patient's rows went with its deletion: a create has none to clear.)
            conn.execute(delete(identity_block).where(identity_block.c.patient_id == patient_id))
            conn.execute(delete(identity_record).where(identity_record.c.unique_id == patient_id))
        if record is not None:
            rows = [{"key": _key_hash(k), "patient_id": patient_id} for k in blocking_keys(record)]
            if rows:
                conn.execute(insert(identity_block), rows)
            conn.execute(insert(identity_record), [flat_row(record)])

    def reindex(self, tx: Transaction, patient: Mapping[str, Any]) -> bool:
        """Rebuild one Patient's keys and flat row, without matching; True if matchable.

        For Patients stored before migration 0003, or after a change of the blocking keys.
        """
        patient_id = str(patient["id"])
        if is_merged_away(patient):
            self._write_keys(tx, patient_id, None)
            return False
        try:
            record = self.record(patient)
        except IdentityError:
            self._write_keys(tx, patient_id, None)
            return False
        self._write_keys(tx, patient_id, record)
        return True

    # ---- the write hook ---------------------------------------------------------------

    def on_write(
        self, tx: Transaction, new: dict[str, Any] | None, previous: dict[str, Any] | None
    ) -> None:
        """Store write hook: keys, matching and review queue for every Patient write."""
        patient = new if new is not None else previous
        if patient is None or patient.get("resourceType") != "Patient":
            return
        patient_id = str(patient["id"])
        if new is not None:
            self._queue_dropped_ins(tx, new)
        if new is None or is_merged_away(new):
            self._write_keys(tx, patient_id, None)
            return
        try:
            record = self.record(new)
        except IdentityError:
            # A malformed birth date was already refused by validation when the FR Core
            # check applies; a plain R4 Patient is stored but cannot be matched.
            self._write_keys(tx, patient_id, None)
            return
        if previous is not None and not is_merged_away(previous):
            try:
                unchanged = self.record(previous) == record
            except IdentityError:
                unchanged = False
            if unchanged:
                # Same traits and identifiers: same keys, same pairs (and no re-scoring on
                # every HL7 movement that rewrites the Patient).
                return
        self._write_keys(tx, patient_id, record, new=previous is None)
        today = _today()
        results = [
            (other, self.matcher.match(record, other, as_of=today))
            for other, _content in self.candidates(tx, record, exclude=patient_id)
        ]
        for other, result in results:
            if result.outcome is Outcome.COLLISION:
                # The refused write leaves no row behind: the log is the vigilance trace.
                # Record ids and trait names only, never a value.
                log.warning(
                    "identity collision refused: Patient/%s has the INS of Patient/%s, "
                    "conflicting %s",
                    patient_id,
                    other.record_id,
                    ",".join(result.conflicts),
                )
                raise IdentityCollision(
                    f"identity collision: Patient/{patient_id} carries the same INS as "
                    f"Patient/{other.record_id} but their strict traits differ "
                    f"({', '.join(result.conflicts)}); nothing was written, refer the case to "
                    "identity vigilance",
                    [
                        Issue(
                            "same INS as another patient with conflicting strict traits",
                            "Patient.identifier",
                            code="conflict",
                        )
                    ],
                )
        for other, result in results:
            if result.outcome in (Outcome.AUTO_LINK, Outcome.REVIEW):
                assert other.record_id is not None
                record_candidate(
                    tx,
                    patient_id,
                    other.record_id,
                    score=result.probability,
                    grade=result.grade.value,
                    outcome=result.outcome.value,
                    tier=result.tier.value,
                    details=_details(result),
                    source=CandidateSource.ONLINE,
                    status=CandidateStatus.LINKED
                    if result.outcome is Outcome.AUTO_LINK
                    else CandidateStatus.OPEN,
                )

    def _queue_dropped_ins(self, tx: Transaction, new: Mapping[str, Any]) -> None:
        """The ``ins-key-invalid`` alert of a write whose key-invalid INS was dropped (D5)."""
        pending = self._pending.take(new)
        if pending is None:
            return
        dropped, before = pending
        meta = new.get("meta")
        version = meta.get("versionId") if isinstance(meta, Mapping) else None
        record_ins_alert(
            tx,
            str(new["id"]),
            [d.as_json() for d in dropped],
            version=version if isinstance(version, str) else None,
            status_before=before,
        )

    # ---- $match -----------------------------------------------------------------------

    def find_matches(
        self,
        tx: Transaction,
        patient: Mapping[str, Any],
        *,
        count: int = 10,
        only_certain: bool = False,
    ) -> list[PatientMatch]:
        """Stored Patients that may be ``patient``, best first (``certainly-not`` left out)."""
        try:
            record = self.record(patient)
        except IdentityError as exc:
            raise InvalidInput(
                f"the Patient to match is not usable: {exc.message}",
                [Issue(exc.message, exc.field, code="value")],
            ) from None
        own_id = patient.get("id")
        today = _today()
        matches = [
            PatientMatch(content, self.matcher.match(record, other, as_of=today))
            for other, content in self.candidates(
                tx, record, exclude=own_id if isinstance(own_id, str) else ""
            )
        ]
        wanted: Iterable[PatientMatch] = (
            m
            for m in matches
            if m.result.grade is not MatchGrade.CERTAINLY_NOT
            and (not only_certain or m.result.grade is MatchGrade.CERTAIN)
        )
        return sorted(wanted, key=lambda m: (-m.score, str(m.patient.get("id"))))[:count]


def _details(result: MatchResult) -> dict[str, Any]:
    # Level names and rule texts only: no trait value ever lands in the queue.
    return {
        "levels": result.levels,
        "conflicts": list(result.conflicts),
        "reasons": list(result.reasons),
        "weight": round(result.weight, 3),
    }


@cache
def identity_service(production: bool) -> IdentityService:
    """One service per mode and process: the model is loaded once, never re-trained."""
    return IdentityService(production=production)
