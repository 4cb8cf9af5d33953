"""``PlanDefinition/{id}/$apply``: enrol a patient over FHIR (the adapter over ``enrol``).

Parameters (a ``Parameters`` body, or the query string for the simple ones):

- ``subject`` (required): ``Patient/<id>`` as valueString or valueReference;
- ``consent`` (valueBoolean): the patient's consent was obtained (pathways that require it);
- ``assignment`` (repeatable, parts ``role`` valueCode + ``who`` valueReference): who holds a
  role in this enrolment.

Unlike a plain R4 ``$apply``, which only proposes a CarePlan, the CarePlan and its Tasks are
stored (the enrolment happens); the answer is ``201`` with the stored CarePlan.
"""

from __future__ import annotations

from typing import Any

from parcours.errors import InvalidInput
from parcours.fhir.context import FhirContext
from parcours.fhir.render import url
from parcours.fhir.request import FhirRequest, FhirResponse
from parcours.pathways.engine import enrol
from parcours.store import Transaction

__all__ = ["plan_apply"]


def _reference(parameter: dict[str, Any]) -> str | None:
    if isinstance(parameter.get("valueString"), str):
        return str(parameter["valueString"])
    ref = (parameter.get("valueReference") or {}).get("reference")
    return str(ref) if isinstance(ref, str) else None


def _parameters(req: FhirRequest) -> tuple[str | None, bool, dict[str, str]]:
    subject = req.param("subject")
    consent = (req.param("consent") or "").lower() == "true"
    assignments: dict[str, str] = {}
    body = req.body
    if body is None:
        return subject, consent, assignments
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise InvalidInput("$apply takes a Parameters resource (or query parameters)")
    for parameter in body.get("parameter") or []:
        name = parameter.get("name")
        if name == "subject":
            subject = _reference(parameter)
        elif name == "consent":
            consent = parameter.get("valueBoolean") is True
        elif name == "assignment":
            parts = {p.get("name"): p for p in parameter.get("part") or []}
            role = (parts.get("role") or {}).get("valueCode")
            who = _reference(parts.get("who") or {})
            if not isinstance(role, str) or who is None:
                raise InvalidInput(
                    "an assignment parameter needs the parts role (valueCode) and who "
                    "(valueReference)"
                )
            assignments[role] = who
    return subject, consent, assignments


def plan_apply(
    req: FhirRequest, tx: Transaction, ctx: FhirContext, p: dict[str, str]
) -> FhirResponse:
    subject, consent, assignments = _parameters(req)
    if not subject or not subject.startswith("Patient/"):
        raise InvalidInput("$apply needs a subject parameter: Patient/<id>")
    plan = tx.read("PlanDefinition", p["id"])
    enrolment = enrol(
        tx, plan, subject.removeprefix("Patient/"), assignments=assignments, consent=consent
    )
    careplan = tx.read("CarePlan", enrolment.careplan_id)
    location = url(
        req.base_url, "CarePlan", careplan["id"], "_history", careplan["meta"]["versionId"]
    )
    return FhirResponse(201, careplan, {"Location": location})
