"""The pathway engine: enrolment, tasks, forms, steps, exit and re-entry, on the repository.

Every change goes through the transaction it is given (so it is validated, audited, evented
and, when ``tx.access`` is set, checked against the caller's rights) and reads the time from
an injectable ``clock`` (milliseconds since the epoch), so tests run months in a second.

How a patient moves (``advance``, idempotent, run after every change):

1. a completed recurring task gets its next occurrence (due ``every`` after the previous due);
2. the exit criteria are checked, in order: the first that holds ends the enrolment
   (CarePlan ``completed`` or ``revoked``; open tasks ``cancelled``);
3. once no task of the current step is open, its transitions are tried in order: the first
   whose ``when`` holds (or that has none) enters its step and creates that step's tasks;
   a step without transitions ends the enrolment as ``completed``.

Enrolment states (``CarePlan.status``): ``active`` -> ``completed`` (exit criterion or last
step done) | ``revoked`` (exit criterion with outcome revoked, or ``leave``). Nothing leaves
``completed`` or ``revoked``; a new enrolment in the same pathway (re-entry) is a new CarePlan
that ``replaces`` the previous one, if the definition allows re-entry.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from parcours.errors import Conflict, InvalidInput, InvalidResource, Issue, NotFound
from parcours.pathways.catalogue import definition_of, resolve_plan, search_all
from parcours.pathways.codes import (
    OPEN_STATUSES,
    ROLE_SYSTEM,
    TASK_SYSTEM,
    ext,
)
from parcours.pathways.conditions import holds
from parcours.pathways.fhir_mapping import canonical, questionnaire_url
from parcours.pathways.model import (
    DueRule,
    ExitOutcome,
    Form,
    ItemType,
    PathwayDefinition,
    TaskDefinition,
    duration_ms,
)
from parcours.pathways.resources import (
    Alert,
    StepEntry,
    assignments_of,
    set_alerts,
    step_entries,
    task_key,
)
from parcours.store import Transaction
from parcours.store.clock import instant, now_ms, parse_instant_ms

__all__ = [
    "Clock",
    "Enrolment",
    "PathwayTask",
    "advance",
    "answer_form",
    "attach_response",
    "complete_task",
    "enrol",
    "enrolments_of",
    "leave",
    "tasks_of",
]

Resource = dict[str, Any]
Clock = Callable[[], int]
_PARIS = ZoneInfo("Europe/Paris")
_MAX_STEPS_AT_ONCE = 100
_DONE = frozenset({"completed", "cancelled", "failed", "rejected", "entered-in-error"})


# ---- views for callers (UI, coordination, PPCS) ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Enrolment:
    careplan_id: str
    patient_id: str
    pathway: str
    version: str
    title: str
    status: str
    step: str | None
    started: str
    ended: str | None
    exit: str | None
    # Every step entered, in order (a step entered twice appears twice).
    history: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PathwayTask:
    task_id: str
    careplan_id: str
    patient_id: str
    task: str
    title: str
    step: str
    occurrence: int
    status: str
    due: str | None
    not_before: str | None
    owner_role: str | None
    owner: str | None
    form: str | None


# ---- one engine run over one enrolment ---------------------------------------------------------


@dataclass
class _Run:
    tx: Transaction
    now: int
    careplan: Resource
    definition: PathwayDefinition
    tasks: dict[str, Resource] = field(default_factory=dict)
    new: bool = False
    dirty: bool = False
    patient: Resource | None = None

    @property
    def patient_id(self) -> str:
        return str(self.careplan["subject"]["reference"]).removeprefix("Patient/")

    @property
    def entries(self) -> list[StepEntry]:
        return step_entries(self.careplan)

    def save(self) -> None:
        if self.new:
            self.tx.create(self.careplan, res_id=self.careplan["id"])
            self.new = self.dirty = False
        elif self.dirty:
            self.careplan = self.tx.update(self.careplan).resource
            self.dirty = False


def _canonical_of(careplan: Resource) -> str:
    for value in careplan.get("instantiatesCanonical") or []:
        if isinstance(value, str) and "|" in value:
            return value
    raise InvalidResource(f"CarePlan/{careplan.get('id')} does not follow a pathway version")


def _plan_for(tx: Transaction, canonical_version: str) -> Resource:
    # url|version -> plan id never changes (versions are immutable): one search per process.
    ids: dict[str, str] = tx.store.caches.setdefault("pathways.plan-ids", {})
    plan_id = ids.get(canonical_version)
    if plan_id is not None:
        return tx.read("PlanDefinition", plan_id)
    plan = resolve_plan(tx, canonical_version)
    ids[canonical_version] = str(plan["id"])
    return plan


def _load(tx: Transaction, careplan_id: str, clock: Clock) -> _Run:
    careplan = tx.read("CarePlan", careplan_id)
    definition = definition_of(tx, _plan_for(tx, _canonical_of(careplan)))
    run = _Run(tx, clock(), careplan, definition)
    for task in search_all(tx, "Task", [("based-on", f"CarePlan/{careplan_id}")]):
        if task_key(task) is not None:
            run.tasks[str(task["id"])] = task
    return run


# ---- conditions ------------------------------------------------------------------------------


def _answers(run: _Run) -> dict[str, dict[str, Any]]:
    if run.new or not run.definition.forms:
        return {}
    by_url = {questionnaire_url(run.definition, f.id): f.id for f in run.definition.forms}
    responses = search_all(
        run.tx, "QuestionnaireResponse", [("based-on", f"CarePlan/{run.careplan['id']}")]
    )
    responses.sort(key=lambda r: (str(r.get("authored") or ""), str(r["meta"]["lastUpdated"])))
    out: dict[str, dict[str, Any]] = {}
    for response in responses:
        form = by_url.get(str(response.get("questionnaire") or "").partition("|")[0])
        if form is None or response.get("status") != "completed":
            continue
        values: dict[str, Any] = {}
        for item in response.get("item") or []:
            for answer in (item.get("answer") or [])[:1]:
                values[str(item.get("linkId"))] = next(
                    (v for k, v in answer.items() if k.startswith("value")), None
                )
        out[form] = values
    return out


def _environment(run: _Run) -> dict[str, Any]:
    if run.patient is None:
        run.patient = run.tx.read("Patient", run.patient_id)
    started = parse_instant_ms(run.careplan["period"]["start"])
    entries = run.entries
    moment = datetime.fromtimestamp(run.now / 1000, tz=UTC)
    return {
        "patient": run.patient,
        "today": moment.astimezone(_PARIS).date().isoformat(),
        "now": instant(run.now),
        "enrolledOn": datetime.fromtimestamp(started / 1000, tz=UTC)
        .astimezone(_PARIS)
        .date()
        .isoformat(),
        "elapsedDays": max(0, (run.now - started) // 86_400_000),
        "step": entries[-1].step if entries else "",
        "done": sorted(
            {
                k.task
                for t in run.tasks.values()
                if t["status"] == "completed" and (k := task_key(t))
            }
        ),
        "answers": _answers(run),
    }


# ---- tasks -----------------------------------------------------------------------------------


def _base_ms(run: _Run, rule: DueRule, entry: StepEntry) -> int:
    if rule.from_ == "enrolment":
        return parse_instant_ms(run.careplan["period"]["start"])
    if rule.from_ == "step":
        return entry.entered_ms
    wanted = rule.from_.removeprefix("step:")
    earlier = [e for e in run.entries if e.step == wanted]
    return earlier[-1].entered_ms if earlier else entry.entered_ms


def _create_task(run: _Run, spec: TaskDefinition, entry: StepEntry, occurrence: int) -> None:
    d = run.definition
    shift = (occurrence - 1) * duration_ms(spec.repeat.every) if spec.repeat else 0
    due = _base_ms(run, spec.due, entry) + duration_ms(spec.due.after) + shift
    period: Resource = {"end": instant(due)}
    if spec.not_before is not None:
        start = _base_ms(run, spec.not_before, entry) + duration_ms(spec.not_before.after) + shift
        period = {"start": instant(start), **period}
    task: Resource = {
        "resourceType": "Task",
        "extension": [
            {
                "url": ext("task"),
                "extension": [
                    {"url": "step", "valueCode": entry.step},
                    {"url": "entry", "valueInteger": entry.entry},
                    {"url": "occurrence", "valueInteger": occurrence},
                ],
            }
        ],
        "basedOn": [{"reference": f"CarePlan/{run.careplan['id']}"}],
        "status": "requested",
        "intent": "plan",
        "priority": "routine",
        "code": {
            "coding": [{"system": TASK_SYSTEM, "code": spec.id, "display": spec.title}],
            "text": spec.title,
        },
        "description": spec.title
        if spec.repeat is None
        else (f"{spec.title} ({occurrence}/{spec.repeat.count})"),
        "for": {"reference": f"Patient/{run.patient_id}"},
        "authoredOn": instant(run.now),
        "restriction": {"period": period},
        "performerType": [
            {
                "coding": [
                    {"system": ROLE_SYSTEM, "code": spec.owner, "display": d.role(spec.owner).title}
                ]
            }
        ],
    }
    holder = assignments_of(run.careplan).get(spec.owner)
    if holder is not None:
        task["owner"] = holder
    if spec.form is not None:
        task["input"] = [
            {
                "type": {"text": "questionnaire"},
                "valueCanonical": f"{questionnaire_url(d, spec.form)}|{d.version}",
            }
        ]
    alerts = [Alert("reminder", due + duration_ms(r.after), False) for r in spec.reminders]
    alerts += [
        Alert("escalation", due + duration_ms(e.after), False, e.to) for e in spec.escalations
    ]
    set_alerts(task, sorted(alerts, key=lambda a: a.at_ms))
    stored = run.tx.create(task)
    run.tasks[str(stored["id"])] = stored
    run.careplan.setdefault("activity", []).append(
        {"reference": {"reference": f"Task/{stored['id']}"}}
    )
    run.dirty = True


def _enter(run: _Run, step_id: str) -> None:
    entry = StepEntry(step_id, run.now, len(run.entries) + 1)
    run.careplan.setdefault("extension", []).append(
        {
            "url": ext("step-entry"),
            "extension": [
                {"url": "step", "valueCode": entry.step},
                {"url": "entered", "valueDateTime": instant(entry.entered_ms)},
                {"url": "entry", "valueInteger": entry.entry},
            ],
        }
    )
    run.dirty = True
    for spec in run.definition.step(step_id).tasks:
        _create_task(run, spec, entry, 1)


def _spawn_recurrences(run: _Run, entry: StepEntry) -> None:
    step = run.definition.step(entry.step)
    keys = {k for t in run.tasks.values() if (k := task_key(t)) is not None}
    for task in list(run.tasks.values()):
        key = task_key(task)
        if key is None or key.entry != entry.entry or task["status"] != "completed":
            continue
        spec = next((t for t in step.tasks if t.id == key.task), None)
        if spec is None or spec.repeat is None or key.occurrence >= spec.repeat.count:
            continue
        if any(
            k.task == key.task and k.entry == key.entry and k.occurrence == key.occurrence + 1
            for k in keys
        ):
            continue
        _create_task(run, spec, entry, key.occurrence + 1)


def _finish(run: _Run, outcome: ExitOutcome, reason: str) -> None:
    run.careplan["status"] = outcome.value
    run.careplan["period"] = {**run.careplan["period"], "end": instant(run.now)}
    run.careplan.setdefault("extension", []).append(
        {
            "url": ext("exit"),
            "extension": [
                {"url": "reason", "valueCode": reason},
                {"url": "at", "valueDateTime": instant(run.now)},
            ],
        }
    )
    run.dirty = True
    for task_id, task in list(run.tasks.items()):
        if task["status"] in OPEN_STATUSES:
            cancelled = {
                **task,
                "status": "cancelled",
                "statusReason": {"text": f"pathway ended ({reason})"},
                "lastModified": instant(run.now),
            }
            run.tasks[task_id] = run.tx.update(cancelled).resource


def _advance(run: _Run) -> None:
    for _ in range(_MAX_STEPS_AT_ONCE):
        if run.careplan["status"] != "active":
            return
        entries = run.entries
        if not entries:
            _enter(run, run.definition.start)
            continue
        current = entries[-1]
        _spawn_recurrences(run, current)
        env = _environment(run)
        for criterion in run.definition.exits:
            if holds(criterion.when, env):
                _finish(run, criterion.outcome, criterion.id)
                return
        in_step = [t for t in run.tasks.values() if (k := task_key(t)) and k.entry == current.entry]
        if any(t["status"] not in _DONE for t in in_step):
            return
        step = run.definition.step(current.step)
        if not step.transitions:
            _finish(run, ExitOutcome.COMPLETED, "completed")
            return
        for transition in step.transitions:
            if transition.when is None or holds(transition.when, env):
                _enter(run, transition.to)
                break
        else:
            return  # waiting: no transition holds yet
    raise InvalidInput(
        f"pathway {run.definition.id!r} changed step {_MAX_STEPS_AT_ONCE} times at once: "
        "its transitions loop"
    )


# ---- access ----------------------------------------------------------------------------------


def _check(tx: Transaction, res_type: str, patient_id: str) -> None:
    if tx.access is not None:
        tx.access.check(tx, res_type, patient_id, write=True)


# ---- public operations -----------------------------------------------------------------------


def enrol(
    tx: Transaction,
    plan: str | Resource,
    patient_id: str,
    clock: Clock = now_ms,
    *,
    assignments: Mapping[str, str] | None = None,
    consent: bool = False,
) -> Enrolment:
    """Enrol a patient (``PlanDefinition/$apply`` with ``subject``): CarePlan + first tasks.

    ``plan``: a PlanDefinition, or a reference ``resolve_plan`` understands (pathway id,
    ``PlanDefinition/<id>``, ``url|version``). ``assignments``: role id -> reference of who
    holds it ("Practitioner/12"), copied to the tasks' ``owner``. ``consent``: the caller
    states the patient's consent was obtained; required when the pathway says so, and then
    recorded as a Consent resource.
    """
    plan_resource = plan if isinstance(plan, dict) else resolve_plan(tx, plan)
    d = definition_of(tx, plan_resource)
    if plan_resource.get("status") != "active":
        raise InvalidInput(
            f"PlanDefinition/{plan_resource.get('id')} is {plan_resource.get('status')}: "
            "only an active pathway version takes new patients"
        )
    patient_id = patient_id.removeprefix("Patient/")
    patient = tx.read("Patient", patient_id)
    _check(tx, "CarePlan", patient_id)
    _check(tx, "Task", patient_id)
    unknown = sorted(set(assignments or {}) - {r.id for r in d.roles})
    if unknown:
        raise InvalidInput(f"assignments name roles this pathway does not have: {unknown}")
    url = canonical(d)
    tx.lock_key(f"pathway-enrol:{patient_id}:{url}")
    previous = [
        c
        for c in search_all(tx, "CarePlan", [("subject", f"Patient/{patient_id}")])
        if any(str(v).partition("|")[0] == url for v in c.get("instantiatesCanonical") or [])
    ]
    active = [c for c in previous if c.get("status") == "active"]
    if active:
        raise Conflict(
            f"Patient/{patient_id} is already enrolled in pathway {d.id!r} "
            f"(CarePlan/{active[0]['id']}): complete or leave it first"
        )
    if previous and not d.reentry.allowed:
        raise Conflict(f"pathway {d.id!r} does not allow re-entry: Patient/{patient_id} left it")
    now = clock()
    careplan: Resource = {
        "resourceType": "CarePlan",
        "id": str(uuid.uuid4()),
        "extension": [
            {
                "url": ext("assignment"),
                "extension": [
                    {"url": "role", "valueCode": role},
                    {"url": "who", "valueReference": {"reference": who}},
                ],
            }
            for role, who in sorted((assignments or {}).items())
        ],
        "instantiatesCanonical": [f"{url}|{d.version}"],
        "status": "active",
        "intent": "plan",
        "title": d.title,
        "subject": {"reference": f"Patient/{patient_id}"},
        "period": {"start": instant(now)},
        "created": instant(now),
    }
    if previous:
        latest = max(previous, key=lambda c: str(c["period"].get("start")))
        careplan["replaces"] = [{"reference": f"CarePlan/{latest['id']}"}]
    run = _Run(tx, now, careplan, d, new=True, patient=patient)
    env = _environment(run)
    unmet = [c for c in d.inclusion.criteria if not holds(c.expression, env)]
    if unmet:
        raise InvalidResource(
            f"Patient/{patient_id} does not meet the inclusion criteria of pathway {d.id!r}: "
            + ", ".join(c.id for c in unmet),
            [Issue(f"inclusion criterion {c.id!r} not met", location=c.expression) for c in unmet],
        )
    if d.consent.required:
        if not consent:
            raise InvalidInput(
                f"pathway {d.id!r} needs the patient's consent: obtain it, then enrol with "
                "consent=true (it is recorded as a Consent resource)"
            )
        recorded = tx.create(_consent(patient_id, url, d, now))
        careplan["supportingInfo"] = [{"reference": f"Consent/{recorded['id']}"}]
    first = d.reentry.step if previous and d.reentry.step else d.start
    _enter(run, first)
    _advance(run)
    run.save()
    return _enrolment(run.careplan, d)


def _consent(patient_id: str, url: str, d: PathwayDefinition, now: int) -> Resource:
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "treatment",
                }
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "dateTime": instant(now),
        "policy": [{"uri": url}],
        "provision": {"type": "permit"},
    }


def advance(tx: Transaction, careplan_id: str, clock: Clock = now_ms) -> Enrolment:
    """Apply whatever the enrolment's current state calls for (idempotent)."""
    run = _load(tx, careplan_id, clock)
    _advance(run)
    run.save()
    return _enrolment(run.careplan, run.definition)


def _open_task(tx: Transaction, task_id: str) -> tuple[Resource, str]:
    task = tx.read("Task", task_id)
    key = task_key(task)
    careplan = next(
        (
            str(r.get("reference")).removeprefix("CarePlan/")
            for r in task.get("basedOn") or []
            if str(r.get("reference", "")).startswith("CarePlan/")
        ),
        None,
    )
    if key is None or careplan is None:
        raise InvalidInput(f"Task/{task_id} is not a task of a pathway")
    if task["status"] not in OPEN_STATUSES:
        raise Conflict(f"Task/{task_id} is already {task['status']}")
    return task, careplan


def complete_task(
    tx: Transaction,
    task_id: str,
    clock: Clock = now_ms,
    *,
    output: Resource | None = None,
) -> Enrolment:
    """Mark a pathway task completed (``output``: a Reference it produced) and advance."""
    task, careplan_id = _open_task(tx, task_id)
    patient_id = str(task["for"]["reference"]).removeprefix("Patient/")
    _check(tx, "Task", patient_id)
    now = clock()
    done = {**task, "status": "completed", "lastModified": instant(now)}
    if output is not None:
        done["output"] = [
            *(task.get("output") or []),
            {"type": {"text": output.get("type", "output")}, "valueReference": output},
        ]
    tx.update(done)
    return advance(tx, careplan_id, clock)


def _answer_value(item_type: ItemType, options: tuple[str, ...], value: Any) -> Resource | None:
    ok = {
        ItemType.BOOLEAN: isinstance(value, bool),
        ItemType.INTEGER: isinstance(value, int) and not isinstance(value, bool),
        ItemType.DECIMAL: isinstance(value, int | float) and not isinstance(value, bool),
        ItemType.DATE: isinstance(value, str) and len(value) == 10,
        ItemType.STRING: isinstance(value, str) and value != "",
        ItemType.TEXT: isinstance(value, str) and value != "",
        ItemType.CHOICE: isinstance(value, str) and value in options,
    }[item_type]
    if not ok:
        return None
    key = {
        ItemType.BOOLEAN: "valueBoolean",
        ItemType.INTEGER: "valueInteger",
        ItemType.DECIMAL: "valueDecimal",
        ItemType.DATE: "valueDate",
    }.get(item_type, "valueString")
    return {key: value}


def _response_items(form: Form, answers: Mapping[str, Any]) -> list[Resource]:
    problems: list[Issue] = []
    known = {i.link_id: i for i in form.items}
    for link_id in sorted(set(answers) - set(known)):
        problems.append(Issue(f"{form.id} has no item {link_id!r}", location=link_id))
    items = []
    for item in form.items:
        if answers.get(item.link_id) is None:
            if item.required:
                problems.append(Issue(f"{item.link_id!r} is required", location=item.link_id))
            continue
        value = _answer_value(item.type, item.options, answers[item.link_id])
        if value is None:
            expected = f"one of {list(item.options)}" if item.options else f"a {item.type.value}"
            problems.append(Issue(f"{item.link_id!r} must be {expected}", location=item.link_id))
            continue
        items.append({"linkId": item.link_id, "text": item.text, "answer": [value]})
    if problems:
        raise InvalidInput(
            f"answers to form {form.id!r} are not acceptable: "
            + "; ".join(p.message for p in problems),
            problems,
        )
    return items


def answer_form(
    tx: Transaction, task_id: str, answers: Mapping[str, Any], clock: Clock = now_ms
) -> Enrolment:
    """Record the answers to a task's form (a QuestionnaireResponse), complete it, advance."""
    task, careplan_id = _open_task(tx, task_id)
    patient_id = str(task["for"]["reference"]).removeprefix("Patient/")
    _check(tx, "QuestionnaireResponse", patient_id)
    run = _load(tx, careplan_id, clock)
    key = task_key(task)
    assert key is not None
    spec = next((t for t in run.definition.step(key.step).tasks if t.id == key.task), None)
    if spec is None or spec.form is None:
        raise InvalidInput(f"Task/{task_id} has no form to answer")
    form = run.definition.form(spec.form)
    version = run.definition.version
    response = tx.create(
        {
            "resourceType": "QuestionnaireResponse",
            "questionnaire": f"{questionnaire_url(run.definition, form.id)}|{version}",
            "status": "completed",
            "subject": {"reference": f"Patient/{patient_id}"},
            "basedOn": [{"reference": f"CarePlan/{careplan_id}"}],
            "authored": instant(run.now),
            "item": _response_items(form, answers),
        }
    )
    return complete_task(
        tx,
        task_id,
        clock,
        output={"reference": f"QuestionnaireResponse/{response['id']}"},
    )


def attach_response(tx: Transaction, response: Resource, clock: Clock = now_ms) -> bool:
    """A QuestionnaireResponse written by a client (REST): complete the open task of its form
    in its enrolment. False when it answers no open pathway task (nothing to do)."""
    ref = f"QuestionnaireResponse/{response['id']}"
    careplans = [
        str(r.get("reference")).removeprefix("CarePlan/")
        for r in response.get("basedOn") or []
        if str(r.get("reference", "")).startswith("CarePlan/")
    ]
    wanted = str(response.get("questionnaire") or "").partition("|")[0]
    if response.get("status") != "completed" or not careplans or not wanted:
        return False
    for careplan_id in careplans:
        if not tx.exists("CarePlan", careplan_id):
            continue
        for task in search_all(tx, "Task", [("based-on", f"CarePlan/{careplan_id}")]):
            if any(
                (o.get("valueReference") or {}).get("reference") == ref
                for o in task.get("output") or []
            ):
                return False  # already attached (answer_form, or a replayed event)
            forms = [
                str(i.get("valueCanonical", "")).partition("|")[0] for i in task.get("input") or []
            ]
            if task["status"] in OPEN_STATUSES and wanted in forms and task_key(task):
                complete_task(tx, str(task["id"]), clock, output={"reference": ref})
                return True
    return False


def leave(
    tx: Transaction, careplan_id: str, clock: Clock = now_ms, *, reason: str = "withdrawn"
) -> Enrolment:
    """End an enrolment before its end (patient's choice, moved away…): ``revoked``."""
    run = _load(tx, careplan_id, clock)
    _check(tx, "CarePlan", run.patient_id)
    if run.careplan["status"] != "active":
        raise Conflict(f"CarePlan/{careplan_id} has already ended ({run.careplan['status']})")
    _finish(run, ExitOutcome.REVOKED, reason)
    run.save()
    return _enrolment(run.careplan, run.definition)


# ---- reading ---------------------------------------------------------------------------------


def _enrolment(careplan: Resource, d: PathwayDefinition) -> Enrolment:
    entries = step_entries(careplan)
    exits = [e for e in careplan.get("extension") or [] if e.get("url") == ext("exit")]
    reason = None
    if exits:
        reason = next(
            (
                p.get("valueCode")
                for p in exits[-1].get("extension") or []
                if p.get("url") == "reason"
            ),
            None,
        )
    return Enrolment(
        careplan_id=str(careplan["id"]),
        patient_id=str(careplan["subject"]["reference"]).removeprefix("Patient/"),
        pathway=d.id,
        version=d.version,
        title=d.title,
        status=str(careplan["status"]),
        step=entries[-1].step if entries else None,
        started=str(careplan["period"]["start"]),
        ended=careplan["period"].get("end"),
        exit=reason,
        history=tuple(e.step for e in entries),
    )


def enrolments_of(tx: Transaction, patient_id: str) -> list[Enrolment]:
    """A patient's pathway enrolments (current and past), within the caller's access."""
    patient_id = patient_id.removeprefix("Patient/")
    out = []
    for careplan in search_all(
        tx, "CarePlan", [("subject", f"Patient/{patient_id}")], scope=tx.access
    ):
        try:
            canonical_version = _canonical_of(careplan)
            d = definition_of(tx, _plan_for(tx, canonical_version))
        except (InvalidResource, NotFound):
            continue  # a CarePlan of another module (PPCS…), not an enrolment
        out.append(_enrolment(careplan, d))
    return sorted(out, key=lambda e: e.started)


def _view(task: Resource) -> PathwayTask:
    key = task_key(task)
    assert key is not None
    period = (task.get("restriction") or {}).get("period") or {}
    role = next(
        (c.get("code") for p in task.get("performerType") or [] for c in p.get("coding") or []),
        None,
    )
    form = next((i.get("valueCanonical") for i in task.get("input") or []), None)
    return PathwayTask(
        task_id=str(task["id"]),
        careplan_id=str(task["basedOn"][0]["reference"]).removeprefix("CarePlan/"),
        patient_id=str(task["for"]["reference"]).removeprefix("Patient/"),
        task=key.task,
        title=str((task.get("code") or {}).get("text") or key.task),
        step=key.step,
        occurrence=key.occurrence,
        status=str(task["status"]),
        due=period.get("end"),
        not_before=period.get("start"),
        owner_role=role,
        owner=(task.get("owner") or {}).get("reference"),
        form=form,
    )


def tasks_of(
    tx: Transaction,
    *,
    careplan_id: str | None = None,
    patient_id: str | None = None,
    open_only: bool = False,
) -> list[PathwayTask]:
    """Pathway tasks of an enrolment or of a patient, soonest due first."""
    if careplan_id is None and patient_id is None:
        raise InvalidInput("tasks_of needs a careplan_id or a patient_id")
    params = (
        [("based-on", f"CarePlan/{careplan_id}")]
        if careplan_id is not None
        else [("subject", f"Patient/{str(patient_id).removeprefix('Patient/')}")]
    )
    out = []
    for task in search_all(tx, "Task", params, scope=tx.access):
        if task_key(task) is None or (open_only and task["status"] not in OPEN_STATUSES):
            continue
        out.append(_view(task))
    return sorted(out, key=lambda t: (t.due or "", t.task_id))
