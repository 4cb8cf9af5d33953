"""Pathways on the patient page: enrolment (``PlanDefinition/{id}/$apply``) and the PPCS of a
care plan (``CarePlan/{id}/$ppcs-html`` and ``$ppcs-pdf``), through the engine."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlencode

from starlette.responses import RedirectResponse, Response

from parcours.web.gateway import UiError
from parcours.web.patients import error_page
from parcours.web.session import View

__all__ = ["enrol", "patient_pathways", "ppcs_document"]

_START = "https://parcours.sante.fr/fhir/StructureDefinition/pathway-start"


def patient_pathways(view: View, patient_id: str) -> dict[str, Any]:
    """The active pathway versions a patient can be enrolled in (directory data)."""
    if not view.user.roles & {"professional", "coordinator", "admin"}:
        return {}
    try:
        plans = view.fhir.search(
            "PlanDefinition", [("status", "active"), ("_count", "100"), ("_sort", "title")]
        )
    except UiError:
        return {}
    offered = [
        (
            str(p["id"]),
            f"{p.get('title') or p.get('name') or p['id']} (version {p.get('version', '?')})",
        )
        for p in plans
        if any(e.get("url") == _START for e in p.get("extension") or [])
    ]
    return {"pathways": offered}


def enrol(view: View) -> Response:
    patient_id = view.request.path_params["patient_id"]
    plan = view.field("parcours")
    parameters: list[dict[str, Any]] = [
        {"name": "subject", "valueReference": {"reference": f"Patient/{patient_id}"}},
        {"name": "consent", "valueBoolean": view.form.get("consentement") == "oui"},
    ]
    url = str(view.request.app.url_path_for("patient_page", patient_id=patient_id))
    try:
        if not plan:
            raise UiError(400, "Choisissez le parcours.")
        view.fhir.operation(("PlanDefinition", plan, "$apply"), parameters)
    except UiError as error:
        return RedirectResponse(
            f"{url}?{urlencode({'erreur_parcours': error.message[:300]})}#parcours", 303
        )
    return RedirectResponse(f"{url}?fait=inclusion#parcours", 303)


def ppcs_document(view: View) -> Response:
    careplan = view.request.path_params["careplan_id"]
    pdf = view.request.query_params.get("format") == "pdf"
    try:
        binary = view.fhir.operation(("CarePlan", careplan, "$ppcs-pdf" if pdf else "$ppcs-html"))
    except UiError as error:
        return error_page(view, error)
    data = base64.b64decode(str(binary.get("data") or ""))
    media = str(binary.get("contentType") or ("application/pdf" if pdf else "text/html"))
    headers = {"Cache-Control": "no-store"}
    if pdf:
        headers["Content-Disposition"] = f'inline; filename="ppcs-{careplan}.pdf"'
    return Response(data, media_type=media.split(";")[0], headers=headers)
