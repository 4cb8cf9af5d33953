"""Tables of the HL7 v2 interface, on the store's metadata (created by migration 0002).

``hl7_inbox``: one row per frame received, committed before the ACK is sent. ``dedup_key``
(MSH-3 + MSH-4 + MSH-10) is unique, so a resend finds the first copy; rows for frames that
were refused before they had a usable key (garbage, unsupported type...) leave it NULL.

``hl7_xref``: which resource carries which sender identifier (IPP, INS, visit number). It is
derived data, written in the same transaction as the resources, and can be rebuilt from
them; it lets the listener find a Patient or an Encounter without depending on the search
index configuration.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, String, Table, Text

from parcours.store.schema import metadata

# SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")

__all__ = ["hl7_inbox", "hl7_xref"]

hl7_inbox = Table(
    "hl7_inbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("received_at", BigInteger, nullable=False),
    Column("dedup_key", String(768), nullable=True),
    Column("sending_application", String(255), nullable=False, default=""),
    Column("sending_facility", String(255), nullable=False, default=""),
    Column("control_id", String(255), nullable=False, default=""),
    Column("message_type", String(16), nullable=False, default=""),
    Column("trigger", String(16), nullable=False, default=""),
    Column("charset", String(32), nullable=False, default=""),
    Column("raw", LargeBinary, nullable=False),
    Column("size", Integer, nullable=False),
    # SHA-256 of the message without MSH-7 (``Message.fingerprint``), raw bytes if unparsed.
    Column("content_hash", String(64), nullable=False),
    # received | applied | failed | ignored | rejected
    Column("status", String(16), nullable=False),
    Column("ack_code", String(2), nullable=True),
    Column("error", Text, nullable=True),
    Column("patient_key", String(768), nullable=True),
    Column("targets", Text, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("processed_at", BigInteger, nullable=True),
    Column("peer", String(255), nullable=True),
    Index("ux_hl7_inbox_dedup", "dedup_key", unique=True),
    Index("ix_hl7_inbox_status", "status", "id"),
    Index("ix_hl7_inbox_patient", "patient_key", "id"),
    Index("ix_hl7_inbox_received", "received_at"),
    Index("ix_hl7_inbox_control", "control_id"),
)

hl7_xref = Table(
    "hl7_xref",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    # ipp | ins | visit
    Column("kind", String(16), nullable=False),
    Column("system", String(255), nullable=False),
    Column("value", String(255), nullable=False),
    Column("res_type", String(64), nullable=False),
    Column("res_id", String(64), nullable=False),
    # For visits: the Patient the Encounter belongs to (re-pointed by a merge).
    Column("patient_id", String(64), nullable=True),
    Index("ix_hl7_xref_value", "kind", "value", "system"),
    Index("ix_hl7_xref_resource", "res_type", "res_id"),
    Index("ix_hl7_xref_patient", "patient_id"),
)
