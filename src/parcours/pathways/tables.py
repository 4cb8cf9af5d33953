"""Open pathway tasks as rows: what the overdue sweep reads instead of every Task's JSON.

Derived data (like the care-circle memberships): rewritten by ``index.on_write`` at every write
of a pathway Task, rebuilt by ``parcours db reindex``. The Task resource stays the truth: its
``pathway-alert`` extensions say when each reminder or escalation is due and whether it was
sent, and ``next_alert_ms`` is the earliest unsent one of a task that is still open.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, String, Table

from parcours.store.schema import metadata

__all__ = ["pathway_task"]

pathway_task = Table(
    "pathway_task",
    metadata,
    Column("task_id", String(64), primary_key=True),
    Column("careplan_id", String(64), nullable=False),
    Column("patient_id", String(64), nullable=True),
    Column("task_code", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("due_ms", BigInteger, nullable=True),
    # Earliest reminder or escalation not yet sent, for open tasks only; NULL otherwise.
    Column("next_alert_ms", BigInteger, nullable=True),
    Index("ix_pathway_task_next_alert", "next_alert_ms"),
    Index("ix_pathway_task_careplan", "careplan_id"),
)
