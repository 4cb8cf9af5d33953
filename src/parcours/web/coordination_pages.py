"""Coordination requests: the structure's board (a column per status, buttons to move a
request), triage, the intake form, all through the FHIR operations of
``parcours.coordination`` (``Task/$intake``, ``$transition``, ``$triage``) run by the engine
with the coordinator's identity: the state machine, the policy and the audit trail apply.

The intake form is drawn from the shipped Questionnaire (``coordination.questionnaire()``),
so a question added there appears here without a template change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.responses import RedirectResponse, Response

from parcours.coordination import (
    PRIORITIES,
    STATUS_DISPLAY,
    SYSTEM_TASK,
    TRANSITIONS,
    Status,
    business_status,
)
from parcours.coordination import history as request_history
from parcours.coordination import questionnaire as intake_questionnaire
from parcours.coordination.model import REQUEST_CODE
from parcours.coordination.states import NEEDS_REASON
from parcours.web.gateway import UiError
from parcours.web.home import search_each
from parcours.web.patients import error_page
from parcours.web.people import display_name, patient_name, split_entries
from parcours.web.rendering import render
from parcours.web.session import View
from parcours.web.workspace import MyRefs, my_refs

__all__ = [
    "assigned_requests",
    "intake_form",
    "intake_submit",
    "request_move",
    "request_triage",
    "requests_board",
]

PRIORITY_LABELS = {
    "routine": "Normale",
    "urgent": "Urgente",
    "asap": "Très urgente",
    "stat": "Immédiate",
}
BOARD_SIZE = 200


@dataclass(frozen=True, slots=True)
class Card:
    id: str
    patient_id: str
    patient: str
    received: str
    priority: str
    due: str
    status: Status
    moves: list[tuple[str, str, bool]]  # (status code, label, needs a reason)
    summary: str


def _search_requests(
    view: View, owners: tuple[str, ...], extra: list[tuple[str, str]]
) -> list[Card]:
    if not owners:
        return []
    entries, _more = search_each(
        view,
        "Task",
        "owner",
        owners,
        [
            ("code", f"{SYSTEM_TASK}|{REQUEST_CODE}"),
            ("_include", "Task:patient"),
            ("_sort", "-_lastUpdated"),
            ("_count", str(BOARD_SIZE)),
            *extra,
        ],
    )
    matches, included = split_entries(entries)
    cards = []
    for task in matches:
        status = business_status(task)
        if status is None:
            continue
        ref = str(task.get("for", {}).get("reference", ""))
        patient = included.get(ref)
        steps = request_history(task)
        cards.append(
            Card(
                id=str(task["id"]),
                patient_id=ref.split("/", 1)[-1],
                patient=patient_name(patient) if patient else ref,
                received=str(task.get("authoredOn") or ""),
                priority=PRIORITY_LABELS.get(
                    str(task.get("priority")), str(task.get("priority") or "")
                ),
                due=str(task.get("restriction", {}).get("period", {}).get("end") or ""),
                status=status,
                moves=[
                    (target.value, STATUS_DISPLAY[target], target in NEEDS_REASON)
                    for target in Status
                    if target in TRANSITIONS[status]
                ],
                summary=str(task.get("description") or (steps[-1].reason if steps else "") or ""),
            )
        )
    return cards


def assigned_requests(view: View, refs: MyRefs) -> dict[str, Any]:
    """Home page block: open requests assigned to me or to my structure."""
    if not view.user.roles & {"coordinator", "admin"}:
        return {}
    try:
        cards = _search_requests(
            view,
            refs.organizations,
            [
                (
                    "business-status",
                    ",".join(
                        f"{s.value}"
                        for s in (Status.RECEIVED, Status.UNDER_ANALYSIS, Status.ACCEPTED)
                    ),
                )
            ],
        )
    except UiError:
        return {}
    url = view.request.app.url_path_for
    return {
        "requests": [
            {
                "href": f"{url('requests_board')}#demande-{c.id}",
                "title": c.patient,
                "received": c.received,
                "status": STATUS_DISPLAY[c.status],
            }
            for c in cards[:10]
        ]
    }


def requests_board(view: View) -> Response:
    refs = my_refs(view.web.engine.ctx.store, view.user)
    try:
        cards = _search_requests(view, refs.organizations, [])
        orgs = [display_name(view.fhir.read(*o.split("/", 1))) for o in refs.organizations]
    except UiError as error:
        return error_page(view, error)
    columns = [
        (status, STATUS_DISPLAY[status], [c for c in cards if c.status is status])
        for status in Status
    ]
    return render(
        view.request,
        "requests_board.html",
        {
            "title": "Demandes de coordination",
            "active": "requests_board",
            "columns": columns,
            "organizations": orgs,
            "priorities": [(p, PRIORITY_LABELS[p]) for p in PRIORITIES],
            "done": view.request.query_params.get("fait"),
            "problem": view.request.query_params.get("erreur"),
        },
    )


def _back(view: View, done: str | None = None, problem: str | None = None) -> Response:
    url = str(view.request.app.url_path_for("requests_board"))
    query = f"?fait={done}" if done else ""
    if problem:
        query = "?" + urlencode({"erreur": problem[:300]})
    return RedirectResponse(
        f"{url}{query}#demande-{view.request.path_params.get('task_id', '')}", 303
    )


def request_move(view: View) -> Response:
    task_id = view.request.path_params["task_id"]
    target = view.field("statut")
    reason = view.field("motif")
    parameters: list[dict[str, Any]] = [{"name": "status", "valueCode": target}]
    if reason:
        parameters.append({"name": "reason", "valueString": reason[:1000]})
    try:
        view.fhir.operation(("Task", task_id, "$transition"), parameters)
    except UiError as error:
        return _back(view, problem=error.message)
    return _back(view, "statut")


def request_triage(view: View) -> Response:
    task_id = view.request.path_params["task_id"]
    priority = view.field("priorite")
    try:
        view.fhir.operation(
            ("Task", task_id, "$triage"), [{"name": "priority", "valueCode": priority}]
        )
    except UiError as error:
        return _back(view, problem=error.message)
    return _back(view, "priorite")


def _fields() -> list[dict[str, Any]]:
    out = []
    for item in intake_questionnaire()["item"]:
        options = [
            (
                str(o["valueCoding"]["code"]),
                str(o["valueCoding"].get("display") or o["valueCoding"]["code"]),
            )
            for o in item.get("answerOption") or []
            if "valueCoding" in o
        ]
        out.append(
            {
                "id": item["linkId"],
                "text": item["text"],
                "type": item["type"],
                "required": bool(item.get("required")),
                "repeats": bool(item.get("repeats")),
                "options": options,
            }
        )
    return out


def _response(view: View, patient_id: str) -> dict[str, Any]:
    """The QuestionnaireResponse of the submitted form (the service checks it)."""
    form = intake_questionnaire()
    items = []
    for item in form["item"]:
        link = item["linkId"]
        codings = {
            str(o["valueCoding"]["code"]): o["valueCoding"]
            for o in item.get("answerOption") or []
            if "valueCoding" in o
        }
        answers: list[dict[str, Any]] = []
        if item["type"] == "choice":
            answers = [
                {"valueCoding": dict(codings[v])}
                for v in view.form_lists.get(link, [])
                if v in codings
            ]
        elif item["type"] == "boolean":
            value = view.form.get(link)
            if value in ("oui", "non"):
                answers = [{"valueBoolean": value == "oui"}]
        else:
            text = view.field(link)
            if text:
                answers = [{"valueString": text[:4000]}]
        if answers:
            items.append({"linkId": link, "text": item["text"], "answer": answers})
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": form["url"],
        "status": "completed",
        "subject": {"reference": f"Patient/{patient_id}"},
        "item": items,
    }


def intake_form(view: View, status: int = 200, **extra: Any) -> Response:
    patient_id = view.request.query_params.get("patient") or view.field("patient")
    refs = my_refs(view.web.engine.ctx.store, view.user)
    try:
        patient = view.fhir.read("Patient", patient_id) if patient_id else None
        orgs = [(o, display_name(view.fhir.read(*o.split("/", 1)))) for o in refs.organizations]
    except UiError as error:
        return error_page(view, error)
    return render(
        view.request,
        "intake.html",
        {
            "title": "Nouvelle demande de coordination",
            "active": "requests_board",
            "patient": patient,
            "patient_label": patient_name(patient) if patient else "",
            "fields": _fields(),
            "organizations": orgs,
            "values": view.form,
            "lists": view.form_lists,
            **extra,
        },
        status,
    )


def intake_submit(view: View) -> Response:
    patient_id = view.field("patient")
    organization = view.field("structure")
    if not patient_id or not organization.startswith("Organization/"):
        return intake_form(
            view, 400, error="Choisissez le patient et la structure qui reçoit la demande."
        )
    parameters: list[dict[str, Any]] = [
        {"name": "patient", "valueReference": {"reference": f"Patient/{patient_id}"}},
        {"name": "organization", "valueReference": {"reference": organization}},
        {"name": "response", "resource": _response(view, patient_id)},
    ]
    try:
        view.fhir.operation(("Task", "$intake"), parameters)
    except UiError as error:
        return intake_form(view, error.status if error.status < 500 else 400, error=error.message)
    return RedirectResponse(
        str(view.request.app.url_path_for("requests_board")) + "?fait=demande", 303
    )
