"""The outbox reactor: REST clients move patients too (a Task PUT completed, a
QuestionnaireResponse POSTed), and the engine catches up after the commit.

Why an outbox handler rather than a write hook (decision D22): the engine's reaction writes
several resources (next tasks, CarePlan) as the platform, not as the client; a failure in it
must not refuse the client's own write; and the handler runs exactly once per committed change
(outbox guarantees). ``advance`` is idempotent, so the Python API (``complete_task``,
``answer_form``), which advances at once in the caller's transaction, and this reactor, which
then sees the same change, never do the work twice.
"""

from __future__ import annotations

from parcours.errors import Gone, NotFound
from parcours.pathways.engine import Clock, advance, attach_response
from parcours.pathways.resources import task_key
from parcours.store import Transaction
from parcours.store.clock import now_ms
from parcours.store.outbox import Action, OutboxEvent

__all__ = ["PathwayReactor"]

_SETTLED = frozenset({"completed", "cancelled", "failed"})


class PathwayReactor:
    """Outbox handler: advances the enrolment of a settled Task or an answered form."""

    name = "pathways"

    def __init__(self, clock: Clock = now_ms) -> None:
        self.clock = clock

    def handle(self, event: OutboxEvent, tx: Transaction) -> None:
        if event.action is Action.DELETE or event.res_type not in ("Task", "QuestionnaireResponse"):
            return
        try:
            resource = tx.vread(event.res_type, event.res_id, event.version_id)
        except (NotFound, Gone):
            return
        if event.res_type == "QuestionnaireResponse":
            attach_response(tx, resource, self.clock)
            return
        if task_key(resource) is None or resource.get("status") not in _SETTLED:
            return
        for ref in resource.get("basedOn") or []:
            value = str(ref.get("reference", ""))
            if value.startswith("CarePlan/"):
                careplan = tx.read("CarePlan", value.removeprefix("CarePlan/"))
                if careplan.get("status") == "active":
                    advance(tx, str(careplan["id"]), self.clock)
