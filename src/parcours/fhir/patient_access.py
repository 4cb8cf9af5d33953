"""``Patient/{id}/$everything`` and ``Patient/{id}/$break-glass``.

``$everything`` returns the Patient and every resource of its compartment that the caller may
see (the policy's row filter, so a professional's view and an identity referent's differ),
paged with ``_count`` and ``_offset``. ``$break-glass`` (Parcours; parameter ``reason``) opens
the patient's record to a professional outside its care circle for a limited time; the grant is
recorded, flagged in the audit trail and listed by ``parcours audit break-glass``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from parcours.errors import Forbidden, InvalidInput
from parcours.fhir.context import FhirContext
from parcours.fhir.interactions import int_param
from parcours.fhir.outcome import operation_outcome
from parcours.fhir.render import bundle, url
from parcours.fhir.request import FhirRequest, FhirResponse
from parcours.security import guard
from parcours.security.policy import break_glass
from parcours.store import Transaction
from parcours.store.clock import instant
from parcours.store.schema import resource

__all__ = ["patient_break_glass", "patient_everything"]

Params = dict[str, str]


def patient_everything(
    req: FhirRequest, tx: Transaction, ctx: FhirContext, p: Params
) -> FhirResponse:
    patient_id = p["id"]
    tx.read("Patient", patient_id)  # 404 / 410 first
    guard.check_read(tx, "Patient", patient_id)
    access = guard.scope(tx)
    if access is not None and access.pseudonymised:
        raise Forbidden("$everything gathers one person's record: not for pseudonymised access")
    settings = ctx.settings
    count = int_param(req, "_count", settings.page_size_default, settings.page_size_max)
    offset = int_param(req, "_offset", 0, 10**9)
    conds: list[Any] = [resource.c.patient_id == patient_id, resource.c.deleted.is_(False)]
    if access is not None and (test := access.condition(resource, None)) is not None:
        conds.append(test)
    total = tx.conn.execute(select(func.count()).select_from(resource).where(*conds)).scalar_one()
    rows = tx.conn.execute(
        select(resource.c.content)
        .where(*conds)
        # The Patient first, then its resources in the order they were created.
        .order_by((resource.c.type != "Patient"), resource.c.pk)
        .offset(offset)
        .limit(count)
    )
    entries = [
        {
            "fullUrl": url(req.base_url, r.content["resourceType"], r.content["id"]),
            "resource": r.content,
            "search": {"mode": "match"},
        }
        for r in rows
    ]
    links = [("self", url(req.base_url, "Patient", patient_id, "$everything", params=req.query))]
    if offset + count < total:
        kept = [(k, v) for k, v in req.query if k != "_offset"]
        params = [*kept, ("_offset", str(offset + count))]
        links.append(
            ("next", url(req.base_url, "Patient", patient_id, "$everything", params=params))
        )
    return FhirResponse(200, bundle("searchset", entries, total=int(total), links=links))


def patient_break_glass(
    req: FhirRequest, tx: Transaction, ctx: FhirContext, p: Params
) -> FhirResponse:
    access = guard.scope(tx)
    if access is None:
        raise Forbidden("break-the-glass is for authenticated professionals")
    body = req.body
    reason = None
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        for parameter in body.get("parameter") or []:
            if isinstance(parameter, dict) and parameter.get("name") == "reason":
                reason = parameter.get("valueString")
    if not isinstance(reason, str):
        raise InvalidInput(
            "$break-glass takes Parameters with a 'reason' (valueString): why you need this "
            "record now"
        )
    expires = break_glass(tx, access, p["id"], reason, ctx.settings.break_glass_seconds)
    outcome = operation_outcome(
        f"access to Patient/{p['id']} opened until {instant(expires)}; this access is "
        "recorded and reported to the identity-vigilance and security referents",
        severity="warning",
        code="informational",
    )
    return FhirResponse(
        200,
        {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "expires", "valueInstant": instant(expires)},
                {"name": "outcome", "resource": outcome},
            ],
        },
    )
