"""The Patient identity operations: ``$match``, ``$merge`` and ``$unmerge``.

Thin handlers (STYLE 6.2): read the ``Parameters`` body, call the identity service, render.

- ``POST Patient/$match`` (FHIR R4 operation; parameters ``resource``, ``count``,
  ``onlyCertainMatches``): a ``searchset`` Bundle, best first, each entry with
  ``search.score`` and the ``match-grade`` extension (certain / probable / possible);
  ``certainly-not`` candidates are left out.
- ``POST Patient/$merge`` (parameters as R5's Patient-merge: ``source-patient`` and
  ``target-patient`` references, plus ``reason``): merges the source into the target and
  answers ``Parameters`` with the OperationOutcome, the survivor, the merge journal id
  (``merge-id``) and every resource written.
- ``POST Patient/$unmerge`` (Parcours; ``merge-id`` and ``reason``): undoes a merge.
"""

from __future__ import annotations

from typing import Any, Final

from parcours.errors import InvalidInput, Issue
from parcours.fhir.context import FhirContext
from parcours.fhir.outcome import operation_outcome
from parcours.fhir.parameters import one_parameter, parameters_of
from parcours.fhir.render import bundle, url
from parcours.fhir.request import FhirRequest, FhirResponse
from parcours.identity import identity_service, merge_patients, unmerge
from parcours.security import guard
from parcours.store import Transaction

__all__ = ["MATCH_GRADE_URL", "patient_match", "patient_merge", "patient_unmerge"]

MATCH_GRADE_URL: Final = "http://hl7.org/fhir/StructureDefinition/match-grade"
_MAX_COUNT: Final = 100

Params = dict[str, str]


def _one(parameters: list[dict[str, Any]], name: str, key: str) -> Any:
    return one_parameter(parameters, name, key)[1]


def _patient_id(parameters: list[dict[str, Any]], name: str) -> str:
    ref = _one(parameters, name, "valueReference")
    raw = ref.get("reference") if isinstance(ref, dict) else None
    if not isinstance(raw, str):
        raise InvalidInput(
            f"parameter {name} (a Reference to a Patient) is required",
            [Issue("required", name, code="required")],
        )
    head = raw.split("/_history/", 1)[0]
    parts = head.rsplit("/", 2)
    if len(parts) < 2 or parts[-2] != "Patient" or not parts[-1]:
        raise InvalidInput(
            f"parameter {name} must reference a Patient (Patient/id)",
            [Issue("not a Patient reference", name, code="value")],
        )
    return parts[-1]


def _actor(req: FhirRequest) -> str:
    return req.principal.subject if req.principal is not None else "anonymous"


def patient_match(req: FhirRequest, tx: Transaction, ctx: FhirContext, p: Params) -> FhirResponse:
    guard.require_every(tx, "Patient")
    parameters = parameters_of(req, "Patient/$match")
    patient = _one(parameters, "resource", "resource")
    if not isinstance(patient, dict) or patient.get("resourceType") != "Patient":
        raise InvalidInput(
            "parameter resource (the Patient to match) is required",
            [Issue("required", "resource", code="required")],
        )
    count = _one(parameters, "count", "valueInteger")
    if count is None:
        count = 10
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= _MAX_COUNT:
        raise InvalidInput(f"count must be an integer from 1 to {_MAX_COUNT}")
    only_certain = _one(parameters, "onlyCertainMatches", "valueBoolean")
    if only_certain is not None and not isinstance(only_certain, bool):
        raise InvalidInput("onlyCertainMatches must be a boolean")
    service = identity_service(ctx.settings.production)
    matches = service.find_matches(tx, patient, count=count, only_certain=bool(only_certain))
    entries = [
        {
            "fullUrl": url(req.base_url, "Patient", str(m.patient["id"])),
            "resource": m.patient,
            "search": {
                "extension": [{"url": MATCH_GRADE_URL, "valueCode": m.result.grade.value}],
                "mode": "match",
                "score": round(m.score, 6),
            },
        }
        for m in matches
    ]
    return FhirResponse(200, bundle("searchset", entries, total=len(entries)))


def _reason(parameters: list[dict[str, Any]]) -> str:
    reason = _one(parameters, "reason", "valueString")
    return reason if isinstance(reason, str) and reason.strip() else "not given"


def patient_merge(req: FhirRequest, tx: Transaction, ctx: FhirContext, p: Params) -> FhirResponse:
    guard.require_every(tx, "Patient", write=True)
    parameters = parameters_of(req, "Patient/$merge")
    source = _patient_id(parameters, "source-patient")
    target = _patient_id(parameters, "target-patient")
    result = merge_patients(tx, source, target, actor=_actor(req), reason=_reason(parameters))
    survivor = tx.read("Patient", target)
    out: list[dict[str, Any]] = [
        {
            "name": "outcome",
            "resource": operation_outcome(
                f"Patient/{source} merged into Patient/{target}; "
                f"{len(result.written)} resources written (merge {result.merge_id})"
            ),
        },
        {"name": "result", "resource": survivor},
        {"name": "merge-id", "valueString": str(result.merge_id)},
        *({"name": "written", "valueReference": {"reference": ref}} for ref in result.written),
    ]
    return FhirResponse(200, {"resourceType": "Parameters", "parameter": out})


def patient_unmerge(req: FhirRequest, tx: Transaction, ctx: FhirContext, p: Params) -> FhirResponse:
    guard.require_every(tx, "Patient", write=True)
    parameters = parameters_of(req, "Patient/$unmerge")
    raw = _one(parameters, "merge-id", "valueString")
    if not isinstance(raw, str) or not raw.isdigit() or len(raw) > 18:
        raise InvalidInput(
            "parameter merge-id (the id returned by $merge) is required",
            [Issue("required", "merge-id", code="required")],
        )
    result = unmerge(tx, int(raw), actor=_actor(req), reason=_reason(parameters))
    out: list[dict[str, Any]] = [
        {
            "name": "outcome",
            "resource": operation_outcome(
                f"merge {result.merge_id} undone: Patient/{result.source_id} is active again; "
                f"{len(result.written)} resources written"
            ),
        },
        *({"name": "written", "valueReference": {"reference": ref}} for ref in result.written),
    ]
    return FhirResponse(200, {"resourceType": "Parameters", "parameter": out})
