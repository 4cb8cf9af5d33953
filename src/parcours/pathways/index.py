"""The store hook that keeps ``pathway_task`` in step with pathway Tasks (a derived hook)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, insert

from parcours.pathways.codes import OPEN_STATUSES
from parcours.pathways.resources import alerts_of, due_ms, task_key
from parcours.pathways.tables import pathway_task
from parcours.store import Transaction

__all__ = ["on_write"]

# Built once: compiling a Core statement per write costs more than running it.
_DELETE = delete(pathway_task).where(pathway_task.c.task_id == bindparam("id"))
_INSERT = insert(pathway_task)


def _reference_id(ref: Any, kind: str) -> str | None:
    value = (ref or {}).get("reference") if isinstance(ref, dict) else None
    if isinstance(value, str) and value.startswith(f"{kind}/"):
        return value[len(kind) + 1 :]
    return None


def on_write(tx: Transaction, new: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
    current = new if new is not None else old
    if current is None or current.get("resourceType") != "Task":
        return
    was_ours = old is not None and task_key(old) is not None
    key = task_key(new) if new is not None else None
    if key is None and not was_ours:
        return
    task_id = str(current["id"])
    # A first version has no row yet (reindex passes the same content as new and old).
    first = old is None and str((current.get("meta") or {}).get("versionId", "1")) == "1"
    if not first:
        tx.conn.execute(_DELETE, {"id": task_id})
    if new is None or key is None:
        return
    careplan = next(
        (c for c in (_reference_id(r, "CarePlan") for r in new.get("basedOn") or []) if c), None
    )
    if careplan is None:
        return
    status = str(new.get("status"))
    pending = [a.at_ms for a in alerts_of(new) if not a.sent]
    tx.conn.execute(
        _INSERT,
        {
            "task_id": task_id,
            "careplan_id": careplan,
            "patient_id": _reference_id(new.get("for"), "Patient"),
            "task_code": key.task,
            "status": status,
            "due_ms": due_ms(new),
            "next_alert_ms": min(pending) if pending and status in OPEN_STATUSES else None,
        },
    )
