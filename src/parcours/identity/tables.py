"""Tables of patient identity, on the store's metadata (created by migration 0003).

``identity_block``: the blocking keys of each active Patient, and ``identity_record``: its
flat row for the batch audit (derived data, rewritten by the write hook in the same
transaction as the Patient; both can be rebuilt from the stored Patients).
``identity_candidate``: one row per pair of Patients worth a human look, or linked with
certainty: the review queue. ``identity_merge``: the merge journal, enough to undo a merge.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, String, Table, Text

from parcours.store.schema import Json, metadata

__all__ = ["identity_block", "identity_candidate", "identity_merge", "identity_record"]

# SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")

identity_block = Table(
    "identity_block",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False),
    Column("patient_id", String(64), nullable=False),
    Index("ix_identity_block_key", "key", "patient_id"),
    Index("ix_identity_block_patient", "patient_id"),
)

# One row per active Patient: the columns of flat.py (Splink input of the batch audit).
identity_record = Table(
    "identity_record",
    metadata,
    Column("unique_id", String(64), primary_key=True),
    Column("birth_name", String(255), nullable=True),
    Column("first_given_name", String(255), nullable=True),
    Column("birth_date", String(10), nullable=True),
    Column("sex", String(1), nullable=True),
    Column("birthplace", String(16), nullable=True),
    Column("ins", String(64), nullable=True),
    Column("name_sx", String(32), nullable=True),
    Column("first_sx", String(32), nullable=True),
    Column("birth_year", Integer, nullable=True),
    Column("birth_md", String(4), nullable=True),
)

identity_candidate = Table(
    "identity_candidate",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    # The pair, ordered (patient_a < patient_b), so each pair has one row.
    Column("patient_a", String(64), nullable=False),
    Column("patient_b", String(64), nullable=False),
    Column("score", Float, nullable=False),
    # MatchGrade / Outcome / Tier values; "audit" rows carry the Splink probability.
    Column("grade", String(16), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("tier", String(16), nullable=False),
    # JSON list of reasons and of the comparison levels: no trait values, only level names.
    Column("reasons", Text, nullable=False),
    # online | audit
    Column("source", String(16), nullable=False),
    # open | linked | merged | not-duplicate
    Column("status", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("decided_by", String(255), nullable=True),
    Column("decided_at", BigInteger, nullable=True),
    Column("decision_reason", Text, nullable=True),
    Index("ux_identity_candidate_pair", "patient_a", "patient_b", unique=True),
    Index("ix_identity_candidate_status", "status", "pk"),
    Index("ix_identity_candidate_b", "patient_b"),
)

identity_merge = Table(
    "identity_merge",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("source_id", String(64), nullable=False),
    Column("target_id", String(64), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("reason", Text, nullable=False),
    Column("merged_at", BigInteger, nullable=False),
    # What the merge changed: every re-pointed resource with its versions and the JSON paths
    # rewritten, plus the patients' previous "active" values (see merge.py).
    Column("changes", Json, nullable=False),
    Column("undone_at", BigInteger, nullable=True),
    Column("undone_by", String(255), nullable=True),
    Column("undo_reason", Text, nullable=True),
    Index("ix_identity_merge_source", "source_id"),
    Index("ix_identity_merge_target", "target_id"),
)
