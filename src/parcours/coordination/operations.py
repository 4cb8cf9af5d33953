"""The FHIR operations of coordination requests: thin handlers over :class:`Coordination`.

- ``POST Task/$intake`` (``patient``, ``organization``, ``response`` the intake form's
  QuestionnaireResponse, optional ``requester``, ``priority``, ``received``): writes the
  ServiceRequest, the Task and the QuestionnaireResponse in one transaction; answers 201 with
  a Parameters naming each (``Location``: the Task).
- ``POST Task/{id}/$transition`` (``status``, ``reason``, ``occurred``, ``redirect-to``): one
  step of the state machine; answers the Task. A plain PUT or PATCH that changes
  ``Task.businessStatus`` is held to the same rules, but must itself append the history entry
  and set ``Task.status``: the operation does that, which is why it is the documented way.
- ``POST Task/{id}/$triage`` (``priority``), ``$assign`` (``organization``, ``coordinator``),
  ``$plan-action`` (``description``, ``owner``, ``due``; answers 201 with the new Task) and
  ``$link-pathway`` (``careplan``).
- ``GET Organization/{id}/$coordination-report?start=…&end=…``: the structure's figures as a
  Parameters, for its coordinators, administrators, analysts and system clients.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from parcours.errors import Forbidden, InvalidInput, Issue
from parcours.fhir.context import FhirContext
from parcours.fhir.parameters import one_parameter, parameters_of
from parcours.fhir.render import resource_headers
from parcours.fhir.request import FhirRequest, FhirResponse
from parcours.security import guard
from parcours.store import Transaction

from .report import coordination_report, period_ms
from .service import Coordination

__all__ = ["ROUTES", "service"]

Params = dict[str, str]
Handler = Callable[[FhirRequest, Transaction, FhirContext, Params], FhirResponse]

# One per process; the clock and SLA policy are the defaults (tests drive the Python API).
service: Final = Coordination()


def _value(parameters: list[dict[str, Any]], name: str, *keys: str) -> Any:
    key, value = one_parameter(parameters, name, *keys)
    if key == "valueReference":
        ref = value.get("reference") if isinstance(value, dict) else None
        if not isinstance(ref, str) or not ref:
            raise InvalidInput(
                f"parameter {name} needs a reference", [Issue("no reference", name, "value")]
            )
        return ref
    return value


def _text(parameters: list[dict[str, Any]], name: str, *keys: str) -> str | None:
    value = _value(parameters, name, *keys)
    if value is not None and not isinstance(value, str):
        raise InvalidInput(
            f"parameter {name} must be a string", [Issue("not a string", name, "value")]
        )
    return value


def _required(value: str | None, name: str) -> str:
    if value is None:
        raise InvalidInput(f"parameter {name} is required", [Issue("required", name, "required")])
    return value


def _task(req: FhirRequest, task: dict[str, Any], status: int = 200) -> FhirResponse:
    headers = resource_headers(req.base_url, task)
    if status != 201:
        headers.pop("Location", None)
    return FhirResponse(status, task, headers)


def intake(req: FhirRequest, tx: Transaction, ctx: FhirContext, p: Params) -> FhirResponse:
    parameters = parameters_of(req, "Task/$intake")
    response = _value(parameters, "response", "resource")
    if not isinstance(response, dict):
        raise InvalidInput(
            "parameter response (the intake form's QuestionnaireResponse) is required",
            [Issue("required", "response", "required")],
        )
    result = service.intake(
        tx,
        patient=_required(_text(parameters, "patient", "valueReference"), "patient"),
        organization=_required(_text(parameters, "organization", "valueReference"), "organization"),
        response=response,
        requester=_text(parameters, "requester", "valueReference"),
        priority=_text(parameters, "priority", "valueCode"),
        received=_text(parameters, "received", "valueDateTime", "valueInstant"),
    )
    out = [
        {"name": "task", "resource": result.task},
        {"name": "serviceRequest", "resource": result.service_request},
        {"name": "questionnaireResponse", "resource": result.questionnaire_response},
    ]
    if result.care_team is not None:
        out.append({"name": "careTeam", "resource": result.care_team})
    headers = resource_headers(req.base_url, result.task)
    headers.pop("ETag", None)
    headers.pop("Last-Modified", None)
    return FhirResponse(201, {"resourceType": "Parameters", "parameter": out}, headers)


def transition(req: FhirRequest, tx: Transaction, ctx: FhirContext, p: Params) -> FhirResponse:
    parameters = parameters_of(req, "Task/$transition")
    task = service.transition(
        tx,
        p["id"],
        _required(_text(parameters, "status", "valueCode"), "status"),
        reason=_text(parameters, "reason", "valueString"),
        occurred=_text(parameters, "occurred", "valueDateTime", "valueInstant"),
        redirect_to=_text(parameters, "redirect-to", "valueReference"),
    )
    return _task(req, task)


def triage(req: FhirRequest, tx: Transaction, ctx: FhirContext, p: Params) -> FhirResponse:
    parameters = parameters_of(req, "Task/$triage")
    priority = _required(_text(parameters, "priority", "valueCode"), "priority")
    return _task(req, service.triage(tx, p["id"], priority))


def assign(req: FhirRequest, tx: Transaction, ctx: FhirContext, p: Params) -> FhirResponse:
    parameters = parameters_of(req, "Task/$assign")
    task = service.assign(
        tx,
        p["id"],
        organization=_text(parameters, "organization", "valueReference"),
        coordinator=_text(parameters, "coordinator", "valueReference"),
    )
    return _task(req, task)


def plan_action(req: FhirRequest, tx: Transaction, ctx: FhirContext, p: Params) -> FhirResponse:
    parameters = parameters_of(req, "Task/$plan-action")
    action = service.plan_action(
        tx,
        p["id"],
        description=_required(_text(parameters, "description", "valueString"), "description"),
        owner=_text(parameters, "owner", "valueReference"),
        due=_text(parameters, "due", "valueDate", "valueDateTime"),
    )
    return _task(req, action, 201)


def link_pathway(req: FhirRequest, tx: Transaction, ctx: FhirContext, p: Params) -> FhirResponse:
    parameters = parameters_of(req, "Task/$link-pathway")
    careplan = _required(_text(parameters, "careplan", "valueReference"), "careplan")
    return _task(req, service.link_pathway(tx, p["id"], careplan))


def report(req: FhirRequest, tx: Transaction, ctx: FhirContext, p: Params) -> FhirResponse:
    organization = f"Organization/{p['id']}"
    tx.read("Organization", p["id"])
    access = guard.scope(tx)
    if access is not None:
        roles = access.principal.roles
        allowed = (
            access.unrestricted
            or "analyst" in roles
            or ("system" in roles and access.rule("Task") == "all")
            or ("coordinator" in roles and organization in access.org_keys)
        )
        if not allowed:
            raise Forbidden(
                f"the coordination figures of {organization} are for its coordinators, "
                "administrators and analysts"
            )
    start, end = req.param("start"), req.param("end")
    if not start or not end:
        raise InvalidInput(
            "start and end (dates, both included) are required",
            [Issue("required", "start" if not start else "end", "required")],
        )
    start_ms, end_ms = period_ms(start, end)
    figures = coordination_report(tx, organization, start_ms, end_ms, policy=service.sla)
    return FhirResponse(200, report_parameters(figures.as_dict()))


def report_parameters(figures: dict[str, Any]) -> dict[str, Any]:
    """The figures as a FHIR Parameters (integers, decimals, nested counts)."""
    out: list[dict[str, Any]] = []
    for name, value in figures.items():
        if isinstance(value, dict):
            out.append(
                {"name": name, "part": [{"name": k, "valueInteger": v} for k, v in value.items()]}
            )
        elif name == "organization":
            out.append({"name": name, "valueReference": {"reference": value}})
        elif name in ("start", "end"):
            out.append({"name": name, "valueDateTime": value})
        elif value is None:
            continue  # no contact or decision in the period: no median
        elif isinstance(value, float):
            out.append({"name": name, "valueDecimal": value})
        else:
            out.append({"name": name, "valueInteger": value})
    return {"resourceType": "Parameters", "parameter": out}


# (method, path pattern, transaction mode, handler) for parcours.fhir.router.
ROUTES: Final[tuple[tuple[str, tuple[str, ...], str, Handler], ...]] = (
    ("POST", ("Task", "$intake"), "write", intake),
    ("POST", ("Task", "{id}", "$transition"), "write", transition),
    ("POST", ("Task", "{id}", "$triage"), "write", triage),
    ("POST", ("Task", "{id}", "$assign"), "write", assign),
    ("POST", ("Task", "{id}", "$plan-action"), "write", plan_action),
    ("POST", ("Task", "{id}", "$link-pathway"), "write", link_pathway),
    ("GET", ("Organization", "{id}", "$coordination-report"), "read", report),
)
