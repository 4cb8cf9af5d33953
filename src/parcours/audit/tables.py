"""Tables of the audit trail, on the store's metadata (created by migration 0006).

``audit_event``: one row per AuditEvent, append-only and hash-chained (each row's ``hash``
covers its own columns, its content and the previous row's hash). ``audit_patient``: the
second and further patients of an event that concerns several (the first one is in
``audit_event.patient_id``, which is the common case and costs no extra row).
``audit_head``: one row (id = 1) holding the last entry of the chain, locked by every appender
on PostgreSQL; without it, deleting the newest entries would leave a valid, shorter chain.
On PostgreSQL a trigger refuses UPDATE, DELETE and TRUNCATE of the two event tables.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, SmallInteger, String, Table, text

from parcours.store.schema import Json, metadata

__all__ = ["GENESIS_HASH", "audit_event", "audit_head", "audit_patient"]

# The prev_hash of the first entry.
GENESIS_HASH = "0" * 64

# SQLite only auto-increments an INTEGER PRIMARY KEY (seq is assigned by the appender anyway).
BigId = BigInteger().with_variant(Integer(), "sqlite")

audit_event = Table(
    "audit_event",
    metadata,
    # Position in the chain, 1, 2, 3… without gaps: a gap is a deleted entry.
    Column("seq", BigId, primary_key=True, autoincrement=False),
    # Milliseconds since the epoch, UTC (AuditEvent.recorded and period.start).
    Column("recorded", BigInteger, nullable=False),
    # C | R | U | D | E
    Column("action", String(1), nullable=False),
    # restful-interaction code, or login, logout, export, merge, break-glass
    Column("interaction", String(32), nullable=False),
    # 0 success, 4 minor failure, 8 serious failure, 12 major failure
    Column("outcome", SmallInteger, nullable=False),
    # Principal.subject, and the Practitioner reference the caller is, if any.
    Column("agent", String(255), nullable=False),
    Column("practitioner", String(255), nullable=True),
    Column("patient_id", String(64), nullable=True),
    # "BTG" when the access relied on break-the-glass.
    Column("purpose", String(16), nullable=True),
    Column("source_address", String(64), nullable=True),
    # The AuditEvent, without its id (the id is the seq).
    Column("content", Json, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # Searches page newest first by seq, so the composite indexes end with seq.
    Index("ix_audit_event_patient", "patient_id", "seq"),
    Index("ix_audit_event_agent", "agent", "seq"),
    Index("ix_audit_event_practitioner", "practitioner", "seq"),
    Index("ix_audit_event_recorded", "recorded"),
    # Partial: almost every row has no purpose, and the break-glass review only wants the rest.
    Index(
        "ix_audit_event_purpose",
        "purpose",
        "seq",
        postgresql_where=text("purpose IS NOT NULL"),
        sqlite_where=text("purpose IS NOT NULL"),
    ),
)

audit_patient = Table(
    "audit_patient",
    metadata,
    Column("patient_id", String(64), primary_key=True),
    Column("seq", BigId, primary_key=True, autoincrement=False),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)
