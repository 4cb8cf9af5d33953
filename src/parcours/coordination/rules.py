"""The rules every write of a coordination Task obeys, whatever its entry point.

:class:`CoordinationRules.on_write` is a store write hook (``parcours.platform``), so a REST
PUT or PATCH, a transaction Bundle, the ``$transition`` operation and the Python API of
``parcours.coordination.service`` are held to the same state machine, inside the transaction of
the write (a refused write leaves nothing behind):

- a request is created ``received``, with a one-entry status history;
- a change of ``Task.businessStatus`` must be allowed by :mod:`.states` (else 409 naming both
  states), append exactly one dated entry to the history (earlier entries never change), carry
  the matching ``Task.status`` and, for a refusal, a redirection or a closure without
  acceptance, a ``Task.statusReason``;
- only a coordinator of the structure that owns the request (or an administrator, a system
  client, the platform itself) changes its status or its assignment;
- the patient (``for``) changes only by an identity merge, the ServiceRequest (``focus``)
  never; the structure and the coordinator change only before a decision; a request is never
  deleted (close it instead);
- a planned action (child Task, ``partOf`` the request) belongs to the request's patient and
  is added only while the request is open or accepted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from parcours.errors import Conflict, Forbidden, Gone, InvalidResource, Issue, NotFound
from parcours.store import Transaction
from parcours.store.clock import now_ms

from .model import (
    EXT_COORDINATOR,
    HistoryEntry,
    Status,
    business_status,
    history,
    is_action,
    is_request,
    reference_of,
)
from .states import FINAL, OPEN, check_transition, needs_reason, task_status

__all__ = ["CLOCK_SKEW_MS", "CoordinationRules", "coordinator_of", "may_manage"]

# A history instant may be a little ahead of the server's clock (a client's clock).
CLOCK_SKEW_MS: Final = 5 * 60 * 1000


def _invalid(message: str, location: str) -> InvalidResource:
    return InvalidResource(message, [Issue(message, location, code="business-rule")])


def coordinator_of(task: Mapping[str, Any]) -> str | None:
    for ext in task.get("extension") or ():
        if isinstance(ext, Mapping) and ext.get("url") == EXT_COORDINATOR:
            return reference_of(ext.get("valueReference"))
    return None


def may_manage(access: Any, owner: str | None) -> bool:
    """A coordinator of the owning structure, an administrator or a system client."""
    if access is None:
        return True
    roles = access.principal.roles
    if "admin" in roles or "system" in roles:
        return True
    return "coordinator" in roles and owner is not None and owner in access.org_keys


class CoordinationRules:
    """The store write hook of coordination Tasks; ``clock`` bounds history instants."""

    def __init__(self, clock: Callable[[], int] = now_ms) -> None:
        self.clock = clock

    def on_write(
        self, tx: Transaction, new: dict[str, Any] | None, old: dict[str, Any] | None
    ) -> None:
        current = new if new is not None else old
        if current is None or current.get("resourceType") != "Task":
            return
        if is_request(old) or is_request(new):
            self._request(tx, new, old)
        elif new is not None and is_action(new):
            self._action(tx, new, old)

    # ---- requests ---------------------------------------------------------------------

    def _request(
        self, tx: Transaction, new: dict[str, Any] | None, old: dict[str, Any] | None
    ) -> None:
        ref = f"Task/{(new or old or {}).get('id')}"
        if new is None:
            access = tx.access
            if access is None or "admin" in access.principal.roles:
                return
            raise Conflict(
                f"{ref} is a coordination request: it is never deleted; close it, refuse it or "
                "redirect it with $transition instead"
            )
        if not is_request(new):
            raise _invalid(f"{ref} is a coordination request: Task.code cannot change", "Task.code")
        if old is not None and is_request(old):
            # The state machine first: an impossible move is refused as such (409), whatever
            # else is wrong with the new version.
            self._check_move(tx, ref, new, old)
        entries = self._shape(ref, new)
        if old is None or not is_request(old):
            if entries[-1].status is not Status.RECEIVED or len(entries) != 1:
                raise _invalid(
                    f"a new coordination request starts 'received' with one status history "
                    f"entry; {ref} is '{entries[-1].status.value}' with {len(entries)}",
                    "Task.businessStatus",
                )
            self._not_future(ref, entries[-1])
            return
        before = history(old)
        if not _identity_operation(tx):
            self._same(ref, new, old, "for", "Task.for")
        self._same(ref, new, old, "focus", "Task.focus")
        previous, target = before[-1].status, entries[-1].status
        access = tx.access
        owner_before = reference_of(old.get("owner"))
        if previous is not target:
            if len(entries) != len(before) + 1 or entries[: len(before)] != before:
                raise _invalid(
                    f"changing {ref} from '{previous.value}' to '{target.value}' appends one "
                    "entry (status, at, author) to the coordination-status-history extension "
                    f"and keeps the earlier ones: use {ref}/$transition, which does it",
                    "Task.extension",
                )
            if entries[-1].at_ms < before[-1].at_ms:
                raise _invalid(
                    f"the new status of {ref} is dated {entries[-1].at}, before its previous "
                    f"step ({before[-1].at})",
                    "Task.extension",
                )
            self._not_future(ref, entries[-1])
        elif entries != before:
            raise _invalid(
                f"the status history of {ref} is append-only and changes only with its status",
                "Task.extension",
            )
        assignment = (reference_of(new.get("owner")), coordinator_of(new))
        if assignment != (owner_before, coordinator_of(old)):
            if previous not in OPEN:
                raise Conflict(
                    f"{ref} is '{previous.value}': its structure and coordinator are fixed once "
                    "a decision is taken",
                    [Issue("assignment after decision", "Task.owner", code="business-rule")],
                )
            if not may_manage(access, owner_before):
                raise Forbidden(f"only a coordinator of {owner_before} reassigns {ref}")

    @staticmethod
    def _check_move(
        tx: Transaction, ref: str, new: Mapping[str, Any], old: Mapping[str, Any]
    ) -> None:
        """Who may move the request, then whether the machine allows the move."""
        try:
            previous, target = business_status(old), business_status(new)
        except ValueError as exc:
            raise _invalid(f"{ref}: {exc}", "Task.businessStatus") from None
        if previous is target:
            return
        owner = reference_of(old.get("owner"))
        if not may_manage(tx.access, owner):
            raise Forbidden(f"only a coordinator of {owner} changes the status of {ref}")
        if previous is not None and target is not None:
            check_transition(ref, previous, target)

    def _shape(self, ref: str, task: Mapping[str, Any]) -> list[HistoryEntry]:
        try:
            status = business_status(task)
            entries = history(task)
        except ValueError as exc:
            raise _invalid(f"{ref}: {exc}", "Task.businessStatus") from None
        if status is None:
            raise _invalid(
                f"{ref} is a coordination request: Task.businessStatus needs a coding of "
                "the statut-demande-coordination CodeSystem",
                "Task.businessStatus",
            )
        if not entries or entries[-1].status is not status:
            raise _invalid(
                f"{ref}: the last entry of the coordination-status-history extension must be "
                f"the business status '{status.value}'",
                "Task.extension",
            )
        for kind, location in (("Patient/", "Task.for"), ("ServiceRequest/", "Task.focus")):
            value = reference_of(task.get(location.split(".")[1]))
            if value is None or not value.startswith(kind):
                raise _invalid(f"{ref}: {location} must reference a {kind[:-1]}", location)
        owner = reference_of(task.get("owner"))
        if owner is None or not owner.startswith("Organization/"):
            raise _invalid(
                f"{ref}: Task.owner must reference the Organization handling the request",
                "Task.owner",
            )
        coordinator = coordinator_of(task)
        if coordinator is not None and not coordinator.startswith("PractitionerRole/"):
            raise _invalid(f"{ref}: the coordinator must be a PractitionerRole", "Task.extension")
        expected = task_status(status, entries[-2].status if len(entries) > 1 else None)
        if task.get("status") != expected:
            raise _invalid(
                f"{ref} is '{status.value}': its Task.status must be '{expected}', not "
                f"{task.get('status')!r}",
                "Task.status",
            )
        previous = entries[-2].status if len(entries) > 1 else None
        if needs_reason(previous, status) and not _has_reason(task):
            raise _invalid(
                f"{ref} is '{status.value}': Task.statusReason must say why", "Task.statusReason"
            )
        return entries

    def _not_future(self, ref: str, entry: HistoryEntry) -> None:
        if entry.at_ms > self.clock() + CLOCK_SKEW_MS:
            raise _invalid(
                f"{ref}: status '{entry.status.value}' is dated {entry.at}, in the future",
                "Task.extension",
            )

    @staticmethod
    def _same(
        ref: str, new: Mapping[str, Any], old: Mapping[str, Any], key: str, where: str
    ) -> None:
        if reference_of(new.get(key)) != reference_of(old.get(key)):
            raise _invalid(f"{where} of {ref} cannot change", where)

    # ---- planned actions --------------------------------------------------------------

    def _action(self, tx: Transaction, new: dict[str, Any], old: dict[str, Any] | None) -> None:
        ref = f"Task/{new.get('id')}"
        parents = [reference_of(p) for p in new.get("partOf") or ()]
        if len(parents) != 1 or parents[0] is None or not parents[0].startswith("Task/"):
            raise _invalid(
                f"{ref} is a planned action: Task.partOf must reference its coordination "
                "request (one Task)",
                "Task.partOf",
            )
        if old is not None and [reference_of(p) for p in old.get("partOf") or ()] == parents:
            return
        try:
            parent = tx.read("Task", parents[0].split("/", 1)[1])
        except (NotFound, Gone):
            raise _invalid(f"{ref}: {parents[0]} is not known", "Task.partOf") from None
        if not is_request(parent):
            raise _invalid(f"{ref}: {parents[0]} is not a coordination request", "Task.partOf")
        if reference_of(parent.get("for")) != reference_of(new.get("for")):
            raise _invalid(
                f"{ref}: a planned action is for the patient of its request "
                f"({reference_of(parent.get('for'))})",
                "Task.for",
            )
        status = business_status(parent)
        if status in FINAL:
            raise Conflict(
                f"{parents[0]} is '{status.value if status else '?'}': actions are planned only "
                "while a request is open or accepted",
                [Issue("request closed", "Task.partOf", code="business-rule")],
            )


def _identity_operation(tx: Transaction) -> bool:
    """A patient merge (or its undoing) repoints requests: only who may write every Patient."""
    access = tx.access
    return access is None or access.rule("Patient", write=True) == "all"


def _has_reason(task: Mapping[str, Any]) -> bool:
    reason = task.get("statusReason")
    if not isinstance(reason, Mapping):
        return False
    return bool(str(reason.get("text") or "").strip() or reason.get("coding"))
