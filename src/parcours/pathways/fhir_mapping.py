"""A definition to FHIR and back: one PlanDefinition that holds the whole version.

- PlanDefinition: url + version + identifier (the pathway id), title, status, description;
  one ``action`` per step, and inside it one ``action`` per task, pointing at a contained
  ActivityDefinition (kind Task: code, owner role as participant, recurrence as
  ``timingTiming``); each form is a contained Questionnaire (also stored on its own by
  ``catalogue.save_definition``, for clients that resolve a QuestionnaireResponse's canonical);
- what R4 has no element for (inclusion criteria, consent, roles, transitions, exits,
  re-entry, due dates, reminders, escalations, indicators) travels in ``pathway-*`` extensions,
  FHIRPath conditions as ``Expression`` values (``text/fhirpath``).

Carrying everything in one resource means a client can PUT a pathway version atomically and
``from_fhir`` needs nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from parcours.errors import InvalidResource
from parcours.pathways.codes import (
    BASE,
    FHIRPATH,
    PATHWAY_ID_SYSTEM,
    ROLE_SYSTEM,
    TASK_SYSTEM,
    ext,
)
from parcours.pathways.model import (
    Consent,
    Criterion,
    DueRule,
    Escalation,
    ExitCriterion,
    ExitOutcome,
    Form,
    FormItem,
    Inclusion,
    Indicator,
    PathwayDefinition,
    Reentry,
    Reminder,
    Repeat,
    Role,
    Step,
    TaskDefinition,
    Transition,
)

__all__ = [
    "canonical",
    "from_fhir",
    "is_pathway",
    "plan_id",
    "questionnaire_url",
    "questionnaires",
    "to_fhir",
]

Resource = dict[str, Any]

_UCUM = "http://unitsofmeasure.org"
_UNIT = {"W": "wk", "D": "d", "H": "h", "M": "min"}
_LETTER = {v: k for k, v in _UNIT.items()}


def canonical(d: PathwayDefinition) -> str:
    return d.url or f"{BASE}/PlanDefinition/{d.id}"


def plan_id(d: PathwayDefinition) -> str:
    return f"{d.id}-{d.version}"


def questionnaire_url(d: PathwayDefinition, form_id: str) -> str:
    return f"{BASE}/Questionnaire/{d.id}-{form_id}"


def is_pathway(plan: Resource) -> bool:
    """A PlanDefinition written in this format (the engine's marker: its start step)."""
    return any(e.get("url") == ext("start") for e in plan.get("extension") or [])


# ---- durations -----------------------------------------------------------------------------


def _duration(value: str) -> Resource:
    sign = -1 if value.startswith("-") else 1
    amount = sign * int(value.strip("-PT")[:-1])
    unit = _UNIT[value[-1]]
    return {"value": amount, "unit": unit, "system": _UCUM, "code": unit}


def _iso(duration: Resource, where: str) -> str:
    code = duration.get("code")
    value = duration.get("value")
    if code not in _LETTER or not isinstance(value, int | float) or value != int(value):
        raise InvalidResource(f"{where}: a duration in whole wk, d, h or min (UCUM) is expected")
    amount = int(value)
    letter = _LETTER[str(code)]
    sign = "-" if amount < 0 else ""
    return f"{sign}P{'T' if letter in 'HM' else ''}{abs(amount)}{letter}"


# ---- helpers for complex extensions ----------------------------------------------------------


def _complex(name: str, parts: Iterable[tuple[str, str, Any]]) -> Resource:
    return {
        "url": ext(name),
        "extension": [{"url": key, kind: value} for key, kind, value in parts if value is not None],
    }


def _expression(name: str | None, expression: str, description: str | None = None) -> Resource:
    out: Resource = {"language": FHIRPATH, "expression": expression}
    if name is not None:
        out["name"] = name
    if description is not None:
        out["description"] = description
    return out


def _code(system: str, code: str, display: str | None = None) -> Resource:
    coding: Resource = {"system": system, "code": code}
    if display is not None:
        coding["display"] = display
    return {"coding": [coding]}


def _put(out: Resource, key: str, value: Any) -> None:
    if value is not None:
        out[key] = value


# ---- to FHIR ---------------------------------------------------------------------------------


def _due(name: str, rule: DueRule | None) -> Resource | None:
    if rule is None:
        return None
    return _complex(
        name,
        [("after", "valueDuration", _duration(rule.after)), ("from", "valueString", rule.from_)],
    )


def _activity(d: PathwayDefinition, task: TaskDefinition) -> Resource:
    extensions: list[Resource] = [
        e for e in (_due("due", task.due), _due("not-before", task.not_before)) if e
    ]
    if task.form is not None:
        extensions.append({"url": ext("form"), "valueCanonical": f"#form-{task.form}"})
    extensions += [
        {"url": ext("reminder"), "valueDuration": _duration(r.after)} for r in task.reminders
    ]
    extensions += [
        _complex(
            "escalation",
            [("after", "valueDuration", _duration(e.after)), ("to", "valueCode", e.to)],
        )
        for e in task.escalations
    ]
    activity: Resource = {
        "resourceType": "ActivityDefinition",
        "id": f"task-{task.id}",
        "extension": extensions,
        "status": d.status,
        "title": task.title,
        "kind": "Task",
        "code": _code(TASK_SYSTEM, task.id, task.title),
        "participant": [
            {
                "type": "practitioner",
                "role": _code(ROLE_SYSTEM, task.owner, d.role(task.owner).title),
            }
        ],
    }
    _put(activity, "description", task.description)
    if task.repeat is not None:
        every = _duration(task.repeat.every)
        activity["timingTiming"] = {
            "repeat": {
                "count": task.repeat.count,
                "period": every["value"],
                "periodUnit": every["code"],
            }
        }
    return activity


def _questionnaire(d: PathwayDefinition, form: Form) -> Resource:
    items = []
    for item in form.items:
        out: Resource = {"linkId": item.link_id, "text": item.text, "type": item.type.value}
        if item.required:
            out["required"] = True
        if item.options:
            out["answerOption"] = [{"valueString": o} for o in item.options]
        items.append(out)
    return {
        "resourceType": "Questionnaire",
        "id": f"form-{form.id}",
        "url": questionnaire_url(d, form.id),
        "version": d.version,
        "name": form.id,
        "title": form.title,
        "status": d.status,
        "subjectType": ["Patient"],
        "item": items,
    }


def _step_action(step: Step) -> Resource:
    action: Resource = {"id": step.id, "title": step.title}
    _put(action, "description", step.description)
    transitions = [
        _complex(
            "transition",
            [
                ("to", "valueCode", t.to),
                ("when", "valueExpression", _expression(None, t.when) if t.when else None),
                ("description", "valueString", t.description),
            ],
        )
        for t in step.transitions
    ]
    if transitions:
        action["extension"] = transitions
    if step.tasks:
        action["action"] = [_task_action(t) for t in step.tasks]
    return action


def _task_action(task: TaskDefinition) -> Resource:
    action: Resource = {
        "id": task.id,
        "title": task.title,
        "definitionCanonical": f"#task-{task.id}",
    }
    _put(action, "description", task.description)
    return action


def to_fhir(d: PathwayDefinition) -> Resource:
    """The PlanDefinition of one pathway version (id ``<pathway>-<version>``)."""
    extensions: list[Resource] = [{"url": ext("start"), "valueCode": d.start}]
    if d.inclusion.description is not None:
        extensions.append({"url": ext("inclusion"), "valueString": d.inclusion.description})
    extensions += [
        {"url": ext("criterion"), "valueExpression": _expression(c.id, c.expression, c.description)}
        for c in d.inclusion.criteria
    ]
    extensions.append(
        _complex(
            "consent",
            [
                ("required", "valueBoolean", d.consent.required),
                ("description", "valueString", d.consent.description),
            ],
        )
    )
    extensions += [
        _complex("role", [("id", "valueCode", r.id), ("title", "valueString", r.title)])
        for r in d.roles
    ]
    extensions += [
        _complex(
            "exit",
            [
                ("id", "valueCode", x.id),
                ("when", "valueExpression", _expression(None, x.when)),
                ("outcome", "valueCode", x.outcome.value),
                ("description", "valueString", x.description),
            ],
        )
        for x in d.exits
    ]
    extensions.append(
        _complex(
            "reentry",
            [("allowed", "valueBoolean", d.reentry.allowed), ("step", "valueCode", d.reentry.step)],
        )
    )
    extensions += [
        _complex(
            "indicator",
            [
                ("id", "valueCode", i.id),
                ("title", "valueString", i.title),
                ("description", "valueString", i.description),
            ],
        )
        for i in d.indicators
    ]
    contained = [_activity(d, t) for s in d.steps for t in s.tasks]
    contained += [_questionnaire(d, f) for f in d.forms]
    plan: Resource = {
        "resourceType": "PlanDefinition",
        "id": plan_id(d),
        "extension": extensions,
        "url": canonical(d),
        "identifier": [{"system": PATHWAY_ID_SYSTEM, "value": d.id}],
        "version": d.version,
        "title": d.title,
        "type": _code(
            "http://terminology.hl7.org/CodeSystem/plan-definition-type", "workflow-definition"
        ),
        "status": d.status,
    }
    _put(plan, "publisher", d.publisher)
    _put(plan, "description", d.description)
    if contained:
        plan["contained"] = contained
    plan["action"] = [_step_action(s) for s in d.steps]
    return plan


def questionnaires(d: PathwayDefinition) -> list[Resource]:
    """The forms as stand-alone Questionnaires (id ``<pathway>-<form>-<version>``)."""
    out = []
    for form in d.forms:
        q = _questionnaire(d, form)
        q["id"] = f"{d.id}-{form.id}-{d.version}"
        out.append(q)
    return out


# ---- from FHIR -------------------------------------------------------------------------------


class _Parts:
    """The sub-extensions of one complex extension, by url."""

    def __init__(self, extension: Resource, where: str) -> None:
        self.where = where
        self.values: dict[str, Any] = {}
        for part in extension.get("extension") or []:
            for key, value in part.items():
                if key.startswith("value"):
                    self.values[part.get("url", "")] = value

    def get(self, name: str) -> Any:
        return self.values.get(name)

    def need(self, name: str) -> Any:
        if name not in self.values:
            raise InvalidResource(f"{self.where}: the extension has no {name!r} part")
        return self.values[name]


def _ours(element: Resource, name: str) -> list[Resource]:
    return [e for e in element.get("extension") or [] if e.get("url") == ext(name)]


def _code_of(concept: Any, where: str) -> str:
    for coding in (concept or {}).get("coding") or []:
        if isinstance(coding.get("code"), str):
            return str(coding["code"])
    raise InvalidResource(f"{where}: a coded value is expected")


def _rule(extension: Resource | None, where: str) -> DueRule | None:
    if extension is None:
        return None
    parts = _Parts(extension, where)
    return DueRule.model_validate(
        {"after": _iso(parts.need("after"), where), "from": parts.get("from") or "enrolment"}
    )


def _task(action: Resource, contained: dict[str, Resource], where: str) -> TaskDefinition:
    ref = str(action.get("definitionCanonical") or "")
    activity = contained.get(ref.removeprefix("#"))
    if activity is None or activity.get("resourceType") != "ActivityDefinition":
        raise InvalidResource(
            f"{where}: definitionCanonical must point at a contained ActivityDefinition"
        )
    here = f"{where} ({ref})"
    participants = activity.get("participant") or [{}]
    forms = _ours(activity, "form")
    timing = (activity.get("timingTiming") or {}).get("repeat")
    repeat = None
    if timing is not None:
        unit = timing.get("periodUnit")
        repeat = Repeat(
            every=_iso({"value": timing.get("period"), "code": unit}, here),
            count=timing.get("count"),
        )
    due = _rule(next(iter(_ours(activity, "due")), None), here)
    if due is None:
        raise InvalidResource(f"{here}: the task has no pathway-due extension")
    return TaskDefinition(
        id=str(action.get("id")),
        title=str(action.get("title")),
        description=action.get("description"),
        owner=_code_of(participants[0].get("role"), here),
        not_before=_rule(next(iter(_ours(activity, "not-before")), None), here),
        due=due,
        repeat=repeat,
        form=str(forms[0]["valueCanonical"]).removeprefix("#form-") if forms else None,
        reminders=tuple(
            Reminder(after=_iso(e.get("valueDuration") or {}, here))
            for e in _ours(activity, "reminder")
        ),
        escalations=tuple(
            Escalation(after=_iso(p.need("after"), here), to=p.need("to"))
            for p in (_Parts(e, here) for e in _ours(activity, "escalation"))
        ),
    )


def _form(q: Resource) -> Form:
    return Form(
        id=str(q.get("name") or str(q.get("id")).removeprefix("form-")),
        title=str(q.get("title")),
        items=tuple(
            FormItem(
                link_id=i.get("linkId"),
                text=i.get("text"),
                type=i.get("type"),
                required=bool(i.get("required", False)),
                options=tuple(o.get("valueString") for o in i.get("answerOption") or []),
            )
            for i in q.get("item") or []
        ),
    )


def from_fhir(plan: Resource) -> PathwayDefinition:
    """The definition a PlanDefinition written by ``to_fhir`` (or by hand, alike) carries."""
    if plan.get("resourceType") != "PlanDefinition" or not is_pathway(plan):
        raise InvalidResource(
            "not a Parcours pathway: a PlanDefinition with a pathway-start extension is expected"
        )
    try:
        return _from_fhir(plan)
    except InvalidResource:
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        # Pydantic's ValidationError is a ValueError: the message names the field.
        raise InvalidResource(f"PlanDefinition is not a valid pathway: {exc}") from None


def _from_fhir(plan: Resource) -> PathwayDefinition:
    contained = {str(r.get("id")): r for r in plan.get("contained") or []}
    identifier = next(
        (
            i.get("value")
            for i in plan.get("identifier") or []
            if i.get("system") == PATHWAY_ID_SYSTEM
        ),
        None,
    )
    if identifier is None:
        raise InvalidResource(f"PlanDefinition.identifier: the {PATHWAY_ID_SYSTEM} id is missing")
    start = _ours(plan, "start")[0]["valueCode"]
    consent = next(iter(_ours(plan, "consent")), None)
    reentry = next(iter(_ours(plan, "reentry")), None)
    inclusion = next(iter(_ours(plan, "inclusion")), None)
    steps = []
    for si, action in enumerate(plan.get("action") or []):
        where = f"PlanDefinition.action[{si}]"
        transitions = []
        for e in action.get("extension") or []:
            if e.get("url") != ext("transition"):
                continue
            parts = _Parts(e, where)
            when = parts.get("when")
            transitions.append(
                Transition(
                    to=parts.need("to"),
                    when=when.get("expression") if when else None,
                    description=parts.get("description"),
                )
            )
        steps.append(
            Step(
                id=str(action.get("id")),
                title=str(action.get("title")),
                description=action.get("description"),
                tasks=tuple(
                    _task(a, contained, f"{where}.action[{ti}]")
                    for ti, a in enumerate(action.get("action") or [])
                ),
                transitions=tuple(transitions),
            )
        )
    url = plan.get("url")
    data = PathwayDefinition.model_validate(
        dict(
            id=identifier,
            version=plan.get("version"),
            title=plan.get("title"),
            status=plan.get("status"),
            description=plan.get("description"),
            publisher=plan.get("publisher"),
            url=None if url == f"{BASE}/PlanDefinition/{identifier}" else url,
            inclusion=Inclusion(
                description=inclusion.get("valueString") if inclusion else None,
                criteria=tuple(
                    Criterion(
                        id=e["valueExpression"].get("name"),
                        description=e["valueExpression"].get("description"),
                        expression=e["valueExpression"].get("expression"),
                    )
                    for e in _ours(plan, "criterion")
                ),
            ),
            consent=Consent(
                required=bool(_Parts(consent, "consent").get("required")) if consent else False,
                description=_Parts(consent, "consent").get("description") if consent else None,
            ),
            roles=tuple(
                Role(id=p.need("id"), title=p.need("title"))
                for p in (_Parts(e, "PlanDefinition role") for e in _ours(plan, "role"))
            ),
            start=start,
            steps=tuple(steps),
            exits=tuple(
                ExitCriterion(
                    id=p.need("id"),
                    when=p.need("when").get("expression"),
                    outcome=ExitOutcome(p.get("outcome") or "completed"),
                    description=p.get("description"),
                )
                for p in (_Parts(e, "PlanDefinition exit") for e in _ours(plan, "exit"))
            ),
            reentry=Reentry(
                allowed=bool(_Parts(reentry, "reentry").get("allowed")) if reentry else True,
                step=_Parts(reentry, "reentry").get("step") if reentry else None,
            ),
            forms=tuple(
                _form(r)
                for r in plan.get("contained") or []
                if r.get("resourceType") == "Questionnaire"
            ),
            indicators=tuple(
                Indicator(id=p.need("id"), title=p.need("title"), description=p.get("description"))
                for p in (_Parts(e, "PlanDefinition indicator") for e in _ours(plan, "indicator"))
            ),
        )
    )
    return data
