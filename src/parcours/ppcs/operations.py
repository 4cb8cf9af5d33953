"""The PPCS FHIR operations (routes in ``parcours.fhir.router``), thin handlers:

- ``GET CarePlan/{id}/$ppcs-html`` and ``GET CarePlan/{id}/$ppcs-pdf`` (also on
  ``CarePlan/{id}/_history/{vid}/…``): the document as a FHIR ``Binary`` (``contentType``
  ``text/html`` or ``application/pdf``, ``data`` in base64) — the API speaks FHIR JSON only;
- ``POST CarePlan/{id}/$ppcs-sign`` (body: an empty ``Parameters``): signs the current draft
  as the calling professional (``If-Match`` names the version that was reviewed); answers the
  signed CarePlan. An engine-level handler: the PDF is made before the write transaction.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from parcours.errors import Forbidden, Gone, InvalidInput, NotFound
from parcours.fhir.context import FhirContext
from parcours.fhir.interactions import parse_if_match
from parcours.fhir.render import resource_headers
from parcours.fhir.request import FhirRequest, FhirResponse
from parcours.ppcs.render import pdf_document, render_html
from parcours.ppcs.signing import commit, prepare
from parcours.ppcs.view import human_name
from parcours.security import guard
from parcours.store import Transaction

if TYPE_CHECKING:
    from parcours.fhir.router import FhirEngine

__all__ = ["ppcs_html", "ppcs_pdf", "ppcs_sign"]

Params = dict[str, str]


def _version(p: Params) -> int | None:
    raw = p.get("vid")
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 9:
        raise NotFound(f"CarePlan/{p['id']} has no version {raw[:20]!r}")
    return int(raw)


def _binary(content_type: str, data: bytes) -> dict[str, Any]:
    return {
        "resourceType": "Binary",
        "contentType": content_type,
        "data": base64.b64encode(data).decode("ascii"),
    }


def ppcs_html(req: FhirRequest, tx: Transaction, ctx: FhirContext, p: Params) -> FhirResponse:
    html = render_html(tx, p["id"], _version(p))
    return FhirResponse(200, _binary("text/html; charset=utf-8", html.encode("utf-8")))


def ppcs_pdf(req: FhirRequest, tx: Transaction, ctx: FhirContext, p: Params) -> FhirResponse:
    pdf = pdf_document(render_html(tx, p["id"], _version(p)))
    return FhirResponse(200, _binary("application/pdf", pdf))


def _signer(req: FhirRequest, tx: Transaction) -> dict[str, Any]:
    principal = req.principal
    practitioner = principal.practitioner if principal is not None else None
    if principal is None or practitioner is None:
        raise Forbidden(
            "signing a PPCS needs a professional identity (a Practitioner): this caller has none"
        )
    signer: dict[str, Any] = {"reference": practitioner}
    try:
        name = human_name(tx.read("Practitioner", practitioner.split("/", 1)[1]).get("name"))
    except (NotFound, Gone):
        name = ""
    if name or principal.display:
        signer["display"] = name or principal.display
    return signer


def ppcs_sign(req: FhirRequest, engine: FhirEngine) -> FhirResponse:
    """Checked and rendered in a read transaction, written in a short write transaction."""
    if req.body is not None and not (
        isinstance(req.body, dict) and req.body.get("resourceType") == "Parameters"
    ):
        raise InvalidInput("$ppcs-sign takes no body, or an empty Parameters resource")
    careplan_id = req.path[1]
    if_match = parse_if_match(req.header("if-match"))
    with engine.begin(req, readonly=True) as tx:
        guard.before_write(tx, "CarePlan", careplan_id)
        prepared = prepare(tx, careplan_id, _signer(req, tx), if_match=if_match)
    with engine.begin(req) as tx:
        before = len(tx.written)
        # Again: the caller may have left the care circle while the PDF was made.
        guard.before_write(tx, "CarePlan", careplan_id)
        result = commit(tx, prepared)
        response = FhirResponse(
            200, result.careplan, resource_headers(req.base_url, result.careplan)
        )
        engine.audit(req, "operation", response, tx, before, "CarePlan", careplan_id)
    return response
