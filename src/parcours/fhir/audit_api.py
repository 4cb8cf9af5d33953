"""The audit trail through the FHIR API, as the TdE *Gestionnaire*.

``GET AuditEvent?…`` and ``GET AuditEvent/{id}`` read the hash-chained trail (not the resource
store); ``GET Patient/{id}/$access-report`` answers "who accessed my record". The trail is
written by the platform only: create, update and delete of AuditEvents answer 405. Reading it
is for operations staff, identity-vigilance referents and system clients with an AuditEvent
scope.
"""

from __future__ import annotations

from typing import Any

from parcours.errors import InvalidInput
from parcours.fhir.context import FhirContext
from parcours.fhir.render import bundle, url
from parcours.fhir.request import FhirRequest, FhirResponse
from parcours.security import guard
from parcours.store import Transaction
from parcours.store.clock import instant, parse_instant_ms

__all__ = ["access_report", "read", "search"]

Params = dict[str, str]


def _trail(ctx: FhirContext) -> Any:
    trail = ctx.store.audit
    if trail is None:
        raise InvalidInput("this server keeps no audit trail")
    return trail


def search(req: FhirRequest, tx: Transaction, ctx: FhirContext, p: Params) -> FhirResponse:
    guard.require_every(tx, "AuditEvent")
    params = [(k, v) for k, v in req.query if k not in ("_format", "_pretty")]
    resources, cursor, total = _trail(ctx).search(
        tx.conn, params, ctx.settings.page_size_default, None
    )
    links = [("self", url(req.base_url, "AuditEvent", params=req.query))]
    if cursor is not None:
        kept = [(k, v) for k, v in req.query if k != "_cursor"]
        links.append(("next", url(req.base_url, "AuditEvent", params=[*kept, ("_cursor", cursor)])))
    entries = [
        {
            "fullUrl": url(req.base_url, "AuditEvent", r["id"]),
            "resource": r,
            "search": {"mode": "match"},
        }
        for r in resources
    ]
    return FhirResponse(200, bundle("searchset", entries, total=total, links=links))


def read(req: FhirRequest, tx: Transaction, ctx: FhirContext, p: Params) -> FhirResponse:
    guard.require_every(tx, "AuditEvent")
    return FhirResponse(200, _trail(ctx).read(tx.conn, p["id"]))


def access_report(req: FhirRequest, tx: Transaction, ctx: FhirContext, p: Params) -> FhirResponse:
    guard.require_every(tx, "AuditEvent")
    patient_id = p["id"]
    tx.read("Patient", patient_id)
    since = req.param("since")
    try:
        since_ms = parse_instant_ms(since) if since else None
    except ValueError:
        raise InvalidInput(f"since={since!r} is not a FHIR date or instant") from None
    lines = _trail(ctx).access_report(tx.conn, patient_id, since_ms)
    parts = []
    for line in lines:
        part: list[dict[str, Any]] = [
            {"name": "agent", "valueString": str(line["agent"])},
            {"name": "display", "valueString": str(line.get("display") or line["agent"])},
            {"name": "first", "valueInstant": _instant(line["first"])},
            {"name": "last", "valueInstant": _instant(line["last"])},
            {"name": "count", "valueInteger": int(line["count"])},
            {"name": "break-glass", "valueBoolean": bool(line["break_glass"])},
        ]
        if line.get("practitioner"):
            part.append(
                {"name": "practitioner", "valueReference": {"reference": line["practitioner"]}}
            )
        parts.append({"name": "access", "part": part})
    return FhirResponse(200, {"resourceType": "Parameters", "parameter": parts})


def _instant(value: Any) -> str:
    return instant(value) if isinstance(value, int) else str(value)
