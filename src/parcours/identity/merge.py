"""Merging two Patients, and undoing it, in one transaction through the repository.

``merge_patients(tx, source_id, target_id, ...)`` keeps both records: the source (obsolete)
becomes ``active: false`` with ``link`` replaced-by the target, the target gains ``link``
replaces the source, and every resource that references the source (found through the
reference index, ``idx_reference``) gets a new version where each such reference points to
the target. Each rewritten JSON path is journalled (``identity_merge``) with the versions, so
``unmerge`` puts back exactly what the merge changed, and only that: a later edit of another
element of a re-pointed resource survives the undo. Every write goes through the repository,
so it is validated, indexed, evented and seen by the identity hook like any other.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update

from parcours.errors import Conflict, NotFound
from parcours.store import Transaction
from parcours.store.clock import now_ms
from parcours.store.schema import idx_reference, resource

from .queue import CandidateStatus, mark_pair
from .record import record_from_patient
from .service import is_merged_away
from .tables import identity_merge

__all__ = ["MergeResult", "merge_patients", "repoint", "unmerge"]

Path = list[str | int]


@dataclass(frozen=True, slots=True)
class MergeResult:
    merge_id: int
    source_id: str
    target_id: str
    written: tuple[str, ...]
    """``Type/id`` of every resource given a new version (patients included)."""


def _target_of(reference: str, source_id: str, target_id: str) -> str | None:
    """The re-pointed reference, or None if ``reference`` is not to ``Patient/source_id``."""
    head = reference.split("/_history/", 1)[0]
    suffix = f"Patient/{source_id}"
    if head == suffix or head.endswith("/" + suffix):
        # A version-specific reference to the obsolete record cannot name a target version.
        return head[: len(head) - len(source_id)] + target_id
    return None


def repoint(
    value: Any, source_id: str, target_id: str, path: Path | None = None
) -> list[tuple[Path, str, str]]:
    """Rewrite, in place, every ``reference`` to the source; returns (path, old, new) edits."""
    here: Path = path or []
    edits: list[tuple[Path, str, str]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                new = _target_of(item, source_id, target_id)
                if new is not None:
                    value[key] = new
                    edits.append(([*here, key], item, new))
            else:
                edits += repoint(item, source_id, target_id, [*here, key])
    elif isinstance(value, list):
        for i, item in enumerate(value):
            edits += repoint(item, source_id, target_id, [*here, i])
    return edits


def _referrers(tx: Transaction, patient_id: str) -> list[tuple[str, str]]:
    rows = tx.conn.execute(
        select(resource.c.type, resource.c.id)
        .distinct()
        .select_from(idx_reference.join(resource, resource.c.pk == idx_reference.c.resource_pk))
        .where(
            idx_reference.c.target_type == "Patient",
            idx_reference.c.target_id == patient_id,
            resource.c.deleted.is_(False),
        )
        .order_by(resource.c.type, resource.c.id)
    )
    return [(r.type, r.id) for r in rows]


def _version(res: dict[str, Any]) -> int:
    return int(res["meta"]["versionId"])


def _link(kind: str, patient_id: str) -> dict[str, Any]:
    return {"other": {"reference": f"Patient/{patient_id}"}, "type": kind}


def merge_patients(
    tx: Transaction,
    source_id: str,
    target_id: str,
    *,
    actor: str,
    reason: str,
    allow_different_ins: bool = False,
) -> MergeResult:
    """Merge ``source_id`` (obsolete) into ``target_id`` (survivor); see the module doc."""
    if source_id == target_id:
        raise Conflict("a patient cannot be merged into itself")
    source = copy.deepcopy(tx.read("Patient", source_id))
    target = copy.deepcopy(tx.read("Patient", target_id))
    if is_merged_away(source):
        raise Conflict(f"Patient/{source_id} was already merged into another patient")
    if is_merged_away(target):
        raise Conflict(f"Patient/{target_id} was merged away; merge into its survivor instead")
    a, b = (
        record_from_patient(source, allow_test_ins=True),
        record_from_patient(target, allow_test_ins=True),
    )
    if not allow_different_ins and a.ins is not None and b.ins is not None and a.ins != b.ins:
        raise Conflict(
            f"Patient/{source_id} and Patient/{target_id} carry different INS: one person has "
            "one INS; check with INSi first (allow_different_ins for an NIA -> NIR case)"
        )
    changes: list[dict[str, Any]] = []
    written: list[str] = []
    for res_type, res_id in _referrers(tx, source_id):
        if res_type == "Patient" and res_id in (source_id, target_id):
            continue
        content = copy.deepcopy(tx.read(res_type, res_id))
        before = _version(content)
        edits = repoint(content, source_id, target_id)
        if not edits:
            continue
        after = _version(tx.update(content).resource)
        changes.append(
            {
                "type": res_type,
                "id": res_id,
                "before": before,
                "after": after,
                "edits": [[p, old, new] for p, old, new in edits],
            }
        )
        written.append(f"{res_type}/{res_id}")
    # The obsolete record first: the identity hook then drops its blocking keys, so the
    # survivor's own re-matching below no longer sees it.
    had_active = "active" in source
    previous_active = source.get("active")
    source["active"] = False
    source["link"] = [*(source.get("link") or []), _link("replaced-by", target_id)]
    tx.update(source)
    target["link"] = [*(target.get("link") or []), _link("replaces", source_id)]
    tx.update(target)
    written[:0] = [f"Patient/{source_id}", f"Patient/{target_id}"]
    journal = {
        "resources": changes,
        "source_active": {"present": had_active, "value": previous_active},
    }
    merge_id = tx.conn.execute(
        insert(identity_merge).values(
            source_id=source_id,
            target_id=target_id,
            actor=actor,
            reason=reason,
            merged_at=now_ms(),
            changes=journal,
        )
    ).inserted_primary_key[0]  # type: ignore[index]
    mark_pair(tx, source_id, target_id, CandidateStatus.MERGED, actor=actor, reason=reason)
    return MergeResult(int(merge_id), source_id, target_id, tuple(written))


def _get(value: Any, path: Path) -> Any:
    for part in path:
        if isinstance(part, int):
            if not isinstance(value, list) or part >= len(value):
                return None
        elif not isinstance(value, dict):
            return None
        value = value[part] if isinstance(part, int) else value.get(part)
    return value


def _set(value: Any, path: Path, new: str) -> None:
    for part in path[:-1]:
        value = value[part]
    value[path[-1]] = new


def _without_link(patient: dict[str, Any], link: dict[str, Any]) -> None:
    links = [ln for ln in patient.get("link") or [] if ln != link]
    if links:
        patient["link"] = links
    else:
        patient.pop("link", None)


def unmerge(tx: Transaction, merge_id: int, *, actor: str, reason: str) -> MergeResult:
    """Undo a merge: every journalled reference back, the source active again, links gone.

    A path whose value was changed again after the merge is left as it is now: the undo puts
    back what the merge did, not what someone did since.
    """
    row = tx.conn.execute(select(identity_merge).where(identity_merge.c.pk == merge_id)).first()
    if row is None:
        raise NotFound(f"no merge {merge_id} in the merge journal")
    if row.undone_at is not None:
        raise Conflict(f"merge {merge_id} was already undone")
    source_id, target_id = row.source_id, row.target_id
    journal: dict[str, Any] = row.changes
    written: list[str] = []
    source = copy.deepcopy(tx.read("Patient", source_id))
    was = journal["source_active"]
    if was["present"]:
        source["active"] = was["value"]
    else:
        source.pop("active", None)
    _without_link(source, _link("replaced-by", target_id))
    tx.update(source)
    target = copy.deepcopy(tx.read("Patient", target_id))
    _without_link(target, _link("replaces", source_id))
    tx.update(target)
    written += [f"Patient/{source_id}", f"Patient/{target_id}"]
    for change in journal["resources"]:
        if not tx.exists(change["type"], change["id"]):
            continue
        content = copy.deepcopy(tx.read(change["type"], change["id"]))
        restored = False
        for path, old, new in change["edits"]:
            if _get(content, path) == new:
                _set(content, path, old)
                restored = True
        if restored:
            tx.update(content)
            written.append(f"{change['type']}/{change['id']}")
    tx.conn.execute(
        update(identity_merge)
        .where(identity_merge.c.pk == merge_id)
        .values(undone_at=now_ms(), undone_by=actor, undo_reason=reason)
    )
    mark_pair(tx, source_id, target_id, CandidateStatus.OPEN, actor=None, reason=reason)
    return MergeResult(merge_id, source_id, target_id, tuple(written))
