"""The coordination requests' Python API: intake, transition, triage, assignment, planning.

One :class:`Coordination` per process; every method takes an open store transaction, so the
FHIR operations, the web workspace and the command line share it. When the transaction carries
a caller (``tx.access``), the access policy applies as for a REST write (read checks before,
written-resource checks after); the state machine itself is enforced below this API, by the
store write hook of :mod:`.rules`, so nothing here can skip it.

Who may do what, on top of the policy: intake by anyone who sees the patient or by a
coordinator of the receiving structure (a DAC takes requests by phone for patients it does not
know yet); status changes and assignment by a coordinator of the owning structure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import or_, select

from parcours.errors import Forbidden, Gone, InvalidInput, Issue, NotFound
from parcours.security.tables import care_member
from parcours.store import Transaction
from parcours.store.clock import instant, now_ms, parse_instant_ms
from parcours.store.search import parse_search

from . import access as checks
from .model import (
    ACTION_CODE,
    EXT_COORDINATOR,
    EXT_SLA,
    OUTPUT_PATHWAY,
    OUTPUT_REDIRECTED_TO,
    QUESTIONNAIRE_URL,
    REQUEST_CODE,
    SYSTEM_STATUS,
    SYSTEM_TASK,
    HistoryEntry,
    Status,
    business_status,
    history,
    history_extension,
    is_action,
    is_request,
    parse_status,
    reference_of,
    task_code,
)
from .questionnaire import answers, check_response, option_label
from .rules import coordinator_of, may_manage
from .sla import SlaPolicy, sla_extension, sla_state, with_overdue
from .states import FINAL, OPEN, after_decision, check_transition, needs_reason, task_status

__all__ = ["PRIORITIES", "Coordination", "Intake"]

PRIORITIES: Final = ("routine", "urgent", "asap", "stat")
_REQUESTER_TYPES: Final = (
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Patient",
    "RelatedPerson",
)
_ACTION_STATUSES: Final = ("requested", "in-progress", "on-hold", "completed", "cancelled")
STATUS_DISPLAY: Final = {
    Status.RECEIVED: "Reçue",
    Status.UNDER_ANALYSIS: "En analyse",
    Status.ACCEPTED: "Acceptée",
    Status.REDIRECTED: "Réorientée",
    Status.REFUSED: "Refusée",
    Status.CLOSED: "Clôturée",
}


@dataclass(frozen=True, slots=True)
class Intake:
    """What one intake wrote, in one transaction."""

    task: dict[str, Any]
    service_request: dict[str, Any]
    questionnaire_response: dict[str, Any]
    # The CareTeam opened so the receiving structure sees the patient (None: it already did).
    care_team: dict[str, Any] | None


def _ref(kind: str, value: str) -> str:
    """``value`` ("Kind/id" or a bare id) as "Kind/id"; InvalidInput for another type."""
    ref = value if "/" in value else f"{kind}/{value}"
    head, _, res_id = ref.partition("/")
    if head != kind or not res_id or "/" in res_id:
        raise InvalidInput(f"{value[:80]!r} is not a reference to a {kind}")
    return ref


def _status(value: Status | str) -> Status:
    try:
        return parse_status(value)
    except ValueError as exc:
        raise InvalidInput(str(exc), [Issue(str(exc), "status", code="code-invalid")]) from None


def _status_concept(status: Status) -> dict[str, Any]:
    return {
        "coding": [
            {"system": SYSTEM_STATUS, "code": status.value, "display": STATUS_DISPLAY[status]}
        ]
    }


def _author(tx: Transaction) -> str | None:
    access = tx.access
    if access is None:
        return None
    practitioner: str | None = access.principal.practitioner
    return practitioner


class Coordination:
    """The coordination service; ``clock`` (ms since the epoch) dates what it records."""

    def __init__(self, *, clock: Callable[[], int] = now_ms, sla: SlaPolicy | None = None) -> None:
        self.clock = clock
        self.sla = sla or SlaPolicy()

    # ---- reads ------------------------------------------------------------------------

    def _existing(self, tx: Transaction, ref: str, what: str) -> dict[str, Any]:
        kind, _, res_id = ref.partition("/")
        try:
            return tx.read(kind, res_id)
        except (NotFound, Gone):
            raise InvalidInput(
                f"{what} {ref[:80]} is not known", [Issue("not found", what, code="not-found")]
            ) from None

    def request(self, tx: Transaction, task_id: str) -> dict[str, Any]:
        """One coordination request (its Task), as the caller may see it."""
        task = tx.read("Task", task_id)
        checks.check_read(tx, "Task", task_id)
        if not is_request(task):
            raise NotFound(f"Task/{task_id[:64]} is not a coordination request")
        return task

    def list_requests(
        self,
        tx: Transaction,
        organization: str,
        statuses: Sequence[Status | str] = (),
        *,
        coordinator: str | None = None,
        count: int = 100,
    ) -> list[dict[str, Any]]:
        """A structure's requests (newest first), of ``statuses`` if given: the board's rows.

        A search under the caller's access policy; ``coordinator`` keeps those assigned to one
        PractitionerRole.
        """
        org = _ref("Organization", organization)
        registry = tx.store.registry
        if registry is None:
            raise InvalidInput("this store was built without search parameters")
        params = [
            ("owner", org),
            ("code", f"{SYSTEM_TASK}|{REQUEST_CODE}"),
            ("_sort", "-authored-on"),
            ("_count", str(count)),
        ]
        if statuses:
            codes = [_status(s).value for s in statuses]
            params.append(("business-status", ",".join(f"{SYSTEM_STATUS}|{c}" for c in codes)))
        access = tx.access
        if access is not None:
            access.require("Task")
        result = tx.search(parse_search("Task", params, registry, max_count=1000), access)
        tasks: list[dict[str, Any]] = list(result.matches)
        if coordinator is not None:
            wanted = _ref("PractitionerRole", coordinator)
            tasks = [t for t in tasks if coordinator_of(t) == wanted]
        return tasks

    def board(
        self, tx: Transaction, organization: str, *, per_status: int = 50
    ) -> dict[Status, list[dict[str, Any]]]:
        """A structure's board: the newest requests of each status, status by status."""
        return {
            status: self.list_requests(tx, organization, [status], count=per_status)
            for status in Status
        }

    def actions(self, tx: Transaction, task_id: str) -> list[dict[str, Any]]:
        """The actions planned for a request."""
        self.request(tx, task_id)
        registry = tx.store.registry
        assert registry is not None
        params = [("part-of", f"Task/{task_id}"), ("_count", "1000")]
        result = tx.search(parse_search("Task", params, registry, max_count=1000), tx.access)
        return [t for t in result.matches if is_action(t)]

    # ---- writes -----------------------------------------------------------------------

    def _create(self, tx: Transaction, resource: dict[str, Any]) -> dict[str, Any]:
        checks.before_write(tx, str(resource["resourceType"]), None)
        created = tx.create(resource)
        checks.check_written(tx, created, None, created=True)
        return created

    def _update(self, tx: Transaction, resource: dict[str, Any]) -> dict[str, Any]:
        kind, res_id = str(resource["resourceType"]), str(resource["id"])
        before = checks.before_write(tx, kind, res_id)
        result = tx.update(resource)
        checks.check_written(tx, result.resource, before, result.created)
        return result.resource

    def _open_circle(
        self, tx: Transaction, patient: str, organization: str, at_ms: int
    ) -> dict[str, Any] | None:
        """A CareTeam managed by ``organization`` for the patient, unless it is in one already:
        the structure's coordinators must see the request they receive (policy D16)."""
        patient_id = patient.split("/", 1)[1]
        now = self.clock()
        known = tx.conn.execute(
            select(care_member.c.pk)
            .where(
                care_member.c.patient_id == patient_id,
                or_(care_member.c.member == organization, care_member.c.member_org == organization),
                or_(care_member.c.start_ms.is_(None), care_member.c.start_ms <= now),
                or_(care_member.c.end_ms.is_(None), care_member.c.end_ms > now),
            )
            .limit(1)
        ).first()
        if known is not None:
            return None
        team = {
            "resourceType": "CareTeam",
            "status": "active",
            "category": [{"coding": [{"system": SYSTEM_TASK, "code": REQUEST_CODE}]}],
            "name": "Appui à la coordination",
            "subject": {"reference": patient},
            # A day, not an instant: the caller's access was computed a moment ago, and the
            # circle must already be open for the checks of this very transaction.
            "period": {"start": instant(at_ms)[:10]},
            "managingOrganization": [{"reference": organization}],
        }
        # Written by the platform on the caller's behalf: the caller may not be in the patient's
        # circle yet (a coordinator taking a call); the intake itself was authorised above.
        return tx.create(team)

    def intake(
        self,
        tx: Transaction,
        *,
        patient: str,
        organization: str,
        response: Mapping[str, Any],
        requester: str | None = None,
        priority: str | None = None,
        received: str | None = None,
    ) -> Intake:
        """Record a request: ServiceRequest + Task (``received``) + QuestionnaireResponse, and
        the receiving structure's CareTeam when needed, all in ``tx``.

        ``response`` answers the intake form; ``requester`` is a Practitioner, PractitionerRole,
        Organization, Patient or RelatedPerson reference (default: the caller's practitioner);
        ``priority`` the triaged priority (default: the urgency the requester felt);
        ``received`` an instant when the request came in earlier than now (a phone call).
        """
        patient_ref = _ref("Patient", patient)
        org_ref = _ref("Organization", organization)
        access = tx.access
        if access is not None:
            access.require("Task", write=True)
            if not (
                access.sees_patient(tx, patient_ref.split("/", 1)[1])
                or ("coordinator" in access.principal.roles and may_manage(access, org_ref))
            ):
                raise Forbidden(
                    f"you may send a coordination request only for a patient of your care "
                    f"circles, or as a coordinator of {org_ref}"
                )
        self._existing(tx, patient_ref, "patient")
        self._existing(tx, org_ref, "organization")
        requester_ref = requester or _author(tx)
        if requester_ref is None:
            raise InvalidInput(
                "the requester is required (a Practitioner, PractitionerRole, Organization, "
                "Patient or RelatedPerson reference)",
                [Issue("required", "requester", code="required")],
            )
        if requester_ref.split("/", 1)[0] not in _REQUESTER_TYPES:
            raise InvalidInput(
                f"the requester must be one of {', '.join(_REQUESTER_TYPES)}, not "
                f"{requester_ref[:80]!r}"
            )
        who = self._existing(tx, requester_ref, "requester")
        if (who["resourceType"] == "Patient" and requester_ref != patient_ref) or (
            who["resourceType"] == "RelatedPerson"
            and reference_of(who.get("patient")) != patient_ref
        ):
            raise InvalidInput(
                f"the requester {requester_ref} is neither the patient nor one of their relatives"
            )
        check_response(response)
        given = answers(response)
        felt = (given.get("urgence") or ["routine"])[0]
        if priority is not None and priority not in PRIORITIES:
            raise InvalidInput(f"priority must be one of {', '.join(PRIORITIES)}")
        triaged = priority or felt
        at_ms = self._instant(received, "received")
        at = instant(at_ms)
        first_due, decision_due = self.sla.due(at_ms, triaged)

        circle = self._open_circle(tx, patient_ref, org_ref, at_ms)
        answered = dict(response)
        answered.pop("id", None)
        answered.update(
            {
                "questionnaire": QUESTIONNAIRE_URL,
                "status": "completed",
                "subject": {"reference": patient_ref},
                "authored": at,
                "author": {"reference": requester_ref},
            }
        )
        if requester_ref.startswith(("Patient/", "RelatedPerson/")):
            answered["source"] = {"reference": requester_ref}
        qr = self._create(tx, answered)
        reasons = [
            {"coding": [{"code": code, "display": label}], "text": label}
            for code in given.get("motif") or ()
            if (label := option_label("motif", code))
        ]
        situation = (given.get("situation") or [""])[0]
        sr = self._create(
            tx,
            {
                "resourceType": "ServiceRequest",
                "status": "active",
                "intent": "order",
                "category": [task_code(REQUEST_CODE)],
                "code": task_code(REQUEST_CODE),
                "priority": felt,
                "subject": {"reference": patient_ref},
                "authoredOn": at,
                "requester": {"reference": requester_ref},
                "performer": [{"reference": org_ref}],
                "reasonCode": reasons,
                "supportingInfo": [{"reference": f"QuestionnaireResponse/{qr['id']}"}],
                "note": [{"text": situation}] if situation else [],
            },
        )
        entry = HistoryEntry(Status.RECEIVED, at_ms, at, _author(tx) or requester_ref)
        task = self._create(
            tx,
            {
                "resourceType": "Task",
                "extension": [history_extension(entry), sla_extension(first_due, decision_due)],
                "status": task_status(Status.RECEIVED, None),
                "businessStatus": _status_concept(Status.RECEIVED),
                "intent": "order",
                "priority": triaged,
                "code": task_code(REQUEST_CODE),
                "focus": {"reference": f"ServiceRequest/{sr['id']}"},
                "for": {"reference": patient_ref},
                "authoredOn": at,
                "lastModified": at,
                "requester": {"reference": requester_ref},
                "owner": {"reference": org_ref},
                "restriction": {"period": {"end": instant(decision_due)}},
                "input": [
                    {
                        "type": {"text": "Formulaire de demande"},
                        "valueReference": {"reference": f"QuestionnaireResponse/{qr['id']}"},
                    }
                ],
            },
        )
        return Intake(task, sr, qr, circle)

    def _instant(self, value: str | None, what: str) -> int:
        if value is None:
            return self.clock()
        try:
            at = parse_instant_ms(value)
        except ValueError:
            raise InvalidInput(f"{what} {value[:40]!r} is not a FHIR dateTime") from None
        if "T" not in value:
            raise InvalidInput(f"{what} must be an instant with a time, not {value[:40]!r}")
        return at

    def transition(
        self,
        tx: Transaction,
        task_id: str,
        target: Status | str,
        *,
        reason: str | None = None,
        occurred: str | None = None,
        redirect_to: str | None = None,
    ) -> dict[str, Any]:
        """Move a request to ``target`` (dated ``occurred``, default now); returns the Task.

        A redirection to another structure (``redirect_to``) opens a new request there, for
        the same ServiceRequest, and records both in ``Task.output``.
        """
        task = self.request(tx, task_id)
        goal = _status(target)
        current = business_status(task)
        assert current is not None
        ref = f"Task/{task_id}"
        if not may_manage(tx.access, reference_of(task.get("owner"))):
            raise Forbidden(
                f"only a coordinator of {reference_of(task.get('owner'))} changes the status "
                f"of {ref}"
            )
        check_transition(ref, current, goal)
        text = (reason or "").strip()
        if needs_reason(current, goal) and not text:
            raise InvalidInput(
                f"moving {ref} to '{goal.value}' needs a reason",
                [Issue("required", "reason", code="required")],
            )
        if redirect_to is not None and goal is not Status.REDIRECTED:
            raise InvalidInput("redirect-to is given only with the status 'redirected'")
        at_ms = self._instant(occurred, "occurred")
        at = instant(at_ms)
        updated = dict(task)
        updated["extension"] = [
            *(task.get("extension") or []),
            history_extension(HistoryEntry(goal, at_ms, at, _author(tx), text or None)),
        ]
        updated["businessStatus"] = _status_concept(goal)
        updated["status"] = task_status(goal, current)
        updated["lastModified"] = at
        if text:
            updated["statusReason"] = {"text": text}
        else:
            updated.pop("statusReason", None)
        period = dict(updated.get("executionPeriod") or {})
        if current is Status.RECEIVED:
            period["start"] = at
        if goal in FINAL:
            period["end"] = at
        updated["executionPeriod"] = period
        if redirect_to is not None:
            updated["output"] = [
                *(task.get("output") or []),
                *self._redirect(tx, task, _ref("Organization", redirect_to), at_ms, text),
            ]
        updated = with_overdue(updated, sla_state(updated, self.clock(), self.sla).overdue)
        result = self._update(tx, updated)
        self._follow_request(tx, task, goal, redirected=redirect_to is not None)
        return result

    def _redirect(
        self, tx: Transaction, task: Mapping[str, Any], target: str, at_ms: int, reason: str
    ) -> list[dict[str, Any]]:
        owner = reference_of(task.get("owner"))
        if target == owner:
            raise InvalidInput(f"a request is redirected to another structure than {owner}")
        self._existing(tx, target, "redirect-to")
        patient = str(reference_of(task.get("for")))
        at = instant(at_ms)
        self._open_circle(tx, patient, target, at_ms)
        priority = task.get("priority") if isinstance(task.get("priority"), str) else None
        first_due, decision_due = self.sla.due(at_ms, priority)
        entry = HistoryEntry(Status.RECEIVED, at_ms, at, _author(tx), f"réorientée par {owner}")
        fresh = {
            "resourceType": "Task",
            "extension": [history_extension(entry), sla_extension(first_due, decision_due)],
            "status": task_status(Status.RECEIVED, None),
            "businessStatus": _status_concept(Status.RECEIVED),
            "intent": "order",
            "priority": priority or "routine",
            "code": task_code(REQUEST_CODE),
            "focus": task.get("focus"),
            "for": task.get("for"),
            "authoredOn": at,
            "lastModified": at,
            "requester": {"reference": owner},
            "owner": {"reference": target},
            "note": [{"text": reason}],
            "restriction": {"period": {"end": instant(decision_due)}},
            "input": list(task.get("input") or []),
        }
        # The new request belongs to the target structure: created as the platform's work.
        created = tx.create(fresh)
        kind = {"coding": [{"system": SYSTEM_TASK, "code": OUTPUT_REDIRECTED_TO}]}
        return [
            {"type": kind, "valueReference": {"reference": target}},
            {"type": kind, "valueReference": {"reference": f"Task/{created['id']}"}},
        ]

    def _follow_request(
        self, tx: Transaction, task: Mapping[str, Any], goal: Status, *, redirected: bool
    ) -> None:
        """Keep the ServiceRequest's status in step with its structure's decision."""
        wanted = {
            Status.REFUSED: "revoked",
            Status.REDIRECTED: "active" if redirected else "revoked",
            Status.CLOSED: "completed",
        }.get(goal)
        focus = reference_of(task.get("focus"))
        if wanted is None or focus is None:
            return
        sr = tx.read("ServiceRequest", focus.split("/", 1)[1])
        if goal is Status.CLOSED and history(task)[-1].status is not Status.ACCEPTED:
            wanted = "revoked"
        if sr.get("status") != wanted:
            self._update(tx, {**sr, "status": wanted})

    def _open_request(self, tx: Transaction, task_id: str, what: str) -> dict[str, Any]:
        task = self.request(tx, task_id)
        status = business_status(task)
        if status not in OPEN:
            raise after_decision(f"Task/{task_id}", status, what)
        return task

    def triage(self, tx: Transaction, task_id: str, priority: str) -> dict[str, Any]:
        """Set the triaged priority of an open request; its SLA due times follow."""
        if priority not in PRIORITIES:
            raise InvalidInput(f"priority must be one of {', '.join(PRIORITIES)}")
        task = self._open_request(tx, task_id, "triaged")
        if not may_manage(tx.access, reference_of(task.get("owner"))):
            raise Forbidden(f"only a coordinator of {reference_of(task.get('owner'))} triages")
        received = history(task)[0].at_ms
        first_due, decision_due = self.sla.due(received, priority)
        updated = {
            **task,
            "priority": priority,
            "restriction": {
                **(task.get("restriction") or {}),
                "period": {"end": instant(decision_due)},
            },
            "extension": [
                *(e for e in task.get("extension") or [] if e.get("url") != EXT_SLA),
                sla_extension(first_due, decision_due),
            ],
        }
        updated = with_overdue(updated, sla_state(updated, self.clock(), self.sla).overdue)
        return self._update(tx, updated)

    def assign(
        self,
        tx: Transaction,
        task_id: str,
        *,
        organization: str | None = None,
        coordinator: str | None = None,
    ) -> dict[str, Any]:
        """Assign an open request to a structure and/or one of its coordinators."""
        if organization is None and coordinator is None:
            raise InvalidInput("assign needs an organization, a coordinator or both")
        task = self._open_request(tx, task_id, "reassigned")
        org = (
            _ref("Organization", organization) if organization else reference_of(task.get("owner"))
        )
        assert org is not None
        updated = dict(task)
        if organization is not None and org != reference_of(task.get("owner")):
            self._existing(tx, org, "organization")
            updated["owner"] = {"reference": org}
            self._open_circle(tx, str(reference_of(task.get("for"))), org, self.clock())
        extensions = [e for e in task.get("extension") or [] if e.get("url") != EXT_COORDINATOR]
        role_ref = _ref("PractitionerRole", coordinator) if coordinator else coordinator_of(task)
        if role_ref is not None:
            role = self._existing(tx, role_ref, "coordinator")
            if reference_of(role.get("organization")) != org or role.get("active") is False:
                raise InvalidInput(
                    f"the coordinator {role_ref} is not an active role of {org}",
                    [Issue("another structure", "coordinator", code="business-rule")],
                )
            extensions.append({"url": EXT_COORDINATOR, "valueReference": {"reference": role_ref}})
        updated["extension"] = extensions
        return self._update(tx, updated)

    def plan_action(
        self,
        tx: Transaction,
        task_id: str,
        *,
        description: str,
        owner: str | None = None,
        due: str | None = None,
    ) -> dict[str, Any]:
        """Plan an action for a request (a child Task ``partOf`` it)."""
        task = self.request(tx, task_id)
        if not description.strip():
            raise InvalidInput("an action needs a description")
        action: dict[str, Any] = {
            "resourceType": "Task",
            "status": "requested",
            "intent": "plan",
            "code": task_code(ACTION_CODE),
            "description": description.strip(),
            "partOf": [{"reference": f"Task/{task_id}"}],
            "for": task.get("for"),
            "authoredOn": instant(self.clock()),
            "requester": {"reference": _author(tx) or str(reference_of(task.get("owner")))},
        }
        if owner is not None:
            kind = owner.split("/", 1)[0]
            if kind not in ("Practitioner", "PractitionerRole", "Organization", "CareTeam"):
                raise InvalidInput(
                    f"an action is owned by a professional or a structure, not {owner[:80]!r}"
                )
            self._existing(tx, owner, "owner")
            action["owner"] = {"reference": owner}
        if due is not None:
            self._instant(due if "T" in due else f"{due}T00:00:00Z", "due")
            action["restriction"] = {"period": {"end": due}}
        return self._create(tx, action)

    def set_action_status(
        self, tx: Transaction, action_id: str, status: str, *, note: str | None = None
    ) -> dict[str, Any]:
        action = tx.read("Task", action_id)
        checks.check_read(tx, "Task", action_id)
        if not is_action(action):
            raise NotFound(f"Task/{action_id[:64]} is not a planned action")
        if status not in _ACTION_STATUSES:
            raise InvalidInput(f"an action's status is one of {', '.join(_ACTION_STATUSES)}")
        updated = {**action, "status": status, "lastModified": instant(self.clock())}
        if note:
            updated["note"] = [*(action.get("note") or []), {"text": note}]
        return self._update(tx, updated)

    def link_pathway(self, tx: Transaction, task_id: str, careplan: str) -> dict[str, Any]:
        """Record the pathway enrolment (a CarePlan of the same patient) of a request."""
        task = self.request(tx, task_id)
        status = business_status(task)
        if status in FINAL:
            raise after_decision(
                f"Task/{task_id}", status, "linked to a pathway", "while open or accepted"
            )
        plan_ref = _ref("CarePlan", careplan)
        plan = self._existing(tx, plan_ref, "careplan")
        checks.check_read(tx, "CarePlan", plan_ref.split("/", 1)[1])
        if reference_of(plan.get("subject")) != reference_of(task.get("for")):
            raise InvalidInput(f"{plan_ref} is not a plan of the request's patient")
        kind = {"coding": [{"system": SYSTEM_TASK, "code": OUTPUT_PATHWAY}]}
        outputs = list(task.get("output") or [])
        if any(reference_of(o.get("valueReference")) == plan_ref for o in outputs):
            return task
        outputs.append({"type": kind, "valueReference": {"reference": plan_ref}})
        return self._update(tx, {**task, "output": outputs})
