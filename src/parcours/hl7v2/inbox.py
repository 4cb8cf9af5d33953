"""The durable inbox: every received frame, its outcome, and the operator functions on it.

Row life cycle::

    received --apply ok--> applied          (AA)
             --ignored---> ignored          (AA, unknown or unsupported-but-harmless trigger)
             --error-----> failed           (AE; kept with its error, replayable)
    rejected                                (AR/AE before storage as "received": bad header,
                                             unsupported type or version, oversized, garbage)

A row in ``received`` is one whose apply never finished (crash, database down): a resend of
the same message or ``replay`` applies it. Nothing here deletes a failed or received row;
``purge`` only removes applied, ignored and rejected rows past the retention period.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from parcours.hl7v2.tables import hl7_inbox
from parcours.store.clock import now_ms
from parcours.store.repository import Store

__all__ = [
    "FINAL",
    "InboxRow",
    "MessageFilter",
    "count_by_status",
    "get",
    "insert_row",
    "list_messages",
    "mark",
    "purge",
]

STATUSES = ("received", "applied", "failed", "ignored", "rejected")
# Outcomes that a resend gets back as they are, without applying again.
FINAL = frozenset({"applied", "ignored"})
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class InboxRow:
    id: int
    received_at: int
    dedup_key: str | None
    sending_application: str
    sending_facility: str
    control_id: str
    message_type: str
    trigger: str
    charset: str
    raw: bytes
    size: int
    content_hash: str
    status: str
    ack_code: str | None
    error: str | None
    patient_key: str | None
    targets: str | None
    attempts: int
    processed_at: int | None
    peer: str | None

    def summary(self) -> dict[str, Any]:
        """What ``parcours hl7 messages`` prints: no message content (it holds identities)."""
        return {
            "id": self.id,
            "received_at": self.received_at,
            "sender": f"{self.sending_application}@{self.sending_facility}",
            "control_id": self.control_id,
            "type": f"{self.message_type}^{self.trigger}",
            "status": self.status,
            "ack": self.ack_code,
            "error": self.error,
            "patient_key": self.patient_key,
            "targets": self.targets,
            "attempts": self.attempts,
            "size": self.size,
        }


def content_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _row(r: Any) -> InboxRow:
    values: dict[str, Any] = {c: getattr(r, c, None) for c in InboxRow.__slots__}
    if values["raw"] is None:
        values["raw"] = b""  # listings do not load message bodies
    return InboxRow(**values)


_LISTED = [c for c in hl7_inbox.c if c.name != "raw"]


def insert_row(conn: Connection, **values: Any) -> int | None:
    """Insert a row; None when ``dedup_key`` is already taken (a resend)."""
    raw: bytes = values["raw"]
    values.setdefault("received_at", now_ms())
    values.setdefault("size", len(raw))
    values.setdefault("content_hash", content_hash(raw))
    values.setdefault("attempts", 0)
    for col in ("sending_application", "sending_facility", "control_id"):
        values[col] = (values.get(col) or "")[:255]
    for col in ("message_type", "trigger"):
        values[col] = (values.get(col) or "")[:16]
    values["charset"] = (values.get("charset") or "")[:32]
    if values.get("dedup_key") is not None:
        # A savepoint keeps the surrounding transaction usable after a duplicate key.
        try:
            with conn.begin_nested():
                result = conn.execute(insert(hl7_inbox).values(**values))
        except IntegrityError:
            return None
    else:
        result = conn.execute(insert(hl7_inbox).values(**values))
    pk = result.inserted_primary_key
    return int(pk[0]) if pk else None


def get(conn: Connection, row_id: int, *, lock: bool = False) -> InboxRow | None:
    stmt = select(hl7_inbox).where(hl7_inbox.c.id == row_id)
    if lock and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    r = conn.execute(stmt).first()
    return _row(r) if r is not None else None


def by_dedup_key(conn: Connection, key: str, *, lock: bool = False) -> InboxRow | None:
    stmt = select(hl7_inbox).where(hl7_inbox.c.dedup_key == key)
    if lock and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    r = conn.execute(stmt).first()
    return _row(r) if r is not None else None


def mark(conn: Connection, row_id: int, **values: Any) -> None:
    values.setdefault("processed_at", now_ms())
    conn.execute(update(hl7_inbox).where(hl7_inbox.c.id == row_id).values(**values))


@dataclass(frozen=True, slots=True)
class MessageFilter:
    """Selection for listing and replay; every criterion is optional and they combine (AND)."""

    ids: Sequence[int] = ()
    statuses: Sequence[str] = ()
    sender: str | None = None  # MSH-3, or MSH-3@MSH-4
    control_id: str | None = None
    trigger: str | None = None
    patient_key: str | None = None  # "system|value" of the IPP, or just the value
    error_contains: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None

    def where(self) -> list[Any]:
        c = hl7_inbox.c
        conds: list[Any] = []
        if self.ids:
            conds.append(c.id.in_(list(self.ids)))
        if self.statuses:
            conds.append(c.status.in_(list(self.statuses)))
        if self.sender:
            app, _, fac = self.sender.partition("@")
            conds.append(c.sending_application == app)
            if fac:
                conds.append(c.sending_facility == fac)
        if self.control_id:
            conds.append(c.control_id == self.control_id)
        if self.trigger:
            conds.append(c.trigger == self.trigger.upper())
        if self.patient_key:
            conds.append(
                or_(c.patient_key == self.patient_key, c.patient_key.like(f"%|{self.patient_key}"))
            )
        if self.error_contains:
            conds.append(c.error.like(f"%{self.error_contains}%"))
        if self.since_ms is not None:
            conds.append(c.received_at >= self.since_ms)
        if self.until_ms is not None:
            conds.append(c.received_at < self.until_ms)
        return conds


def list_messages(
    store: Store,
    flt: MessageFilter | None = None,
    *,
    limit: int = 100,
    offset: int = 0,
    with_raw: bool = False,
) -> list[InboxRow]:
    """Rows matching ``flt``, oldest first (the order they were received and applied)."""
    flt = flt or MessageFilter()
    with store.begin(readonly=True) as tx:
        rows = tx.conn.execute(
            select(*(hl7_inbox.c if with_raw else _LISTED))
            .where(*flt.where())
            .order_by(hl7_inbox.c.id)
            .offset(offset)
            .limit(limit)
        )
        return [_row(r) for r in rows]


def ids_matching(store: Store, flt: MessageFilter) -> list[int]:
    with store.begin(readonly=True) as tx:
        rows = tx.conn.execute(select(hl7_inbox.c.id).where(*flt.where()).order_by(hl7_inbox.c.id))
        return [int(r.id) for r in rows]


def count_by_status(store: Store) -> dict[str, int]:
    with store.begin(readonly=True) as tx:
        rows = tx.conn.execute(
            select(hl7_inbox.c.status, func.count()).group_by(hl7_inbox.c.status)
        )
        return {str(r[0]): int(r[1]) for r in rows}


def purge(
    store: Store,
    older_than_days: int,
    *,
    statuses: Iterable[str] = ("applied", "ignored", "rejected"),
    now: int | None = None,
) -> int:
    """Delete finished rows received more than ``older_than_days`` ago; returns the count.

    Failed and received rows are never purged: they wait for a replay or a discard. Once a
    row is purged, a resend of that message is applied again, so keep the retention longer
    than any sender's resend window.
    """
    keep = [s for s in statuses if s in ("applied", "ignored", "rejected")]
    cutoff = (now if now is not None else now_ms()) - older_than_days * DAY_MS
    with store.begin() as tx:
        result = tx.conn.execute(
            delete(hl7_inbox).where(hl7_inbox.c.status.in_(keep), hl7_inbox.c.received_at < cutoff)
        )
        return int(result.rowcount or 0)
