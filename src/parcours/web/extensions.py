"""Parts of the workspace over the packages built alongside it: coordination requests
(``parcours.coordination``), pathway enrolment (``parcours.pathways``) and the PPCS
(``parcours.ppcs``), each through its FHIR operations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.routing import BaseRoute, Route

from parcours.web import coordination_pages as requests
from parcours.web import pathway_pages
from parcours.web.session import WebContext, page

__all__ = ["extension_hooks", "extension_routes"]

Hook = Callable[..., dict[str, Any]]


def extension_hooks() -> tuple[tuple[Hook, ...], tuple[Hook, ...]]:
    """(home page hooks, patient page hooks)."""
    return (requests.assigned_requests,), (pathway_pages.patient_pathways,)


def extension_routes(web: WebContext) -> list[BaseRoute]:
    get, post = ["GET"], ["POST"]
    views = (
        ("/demandes", "requests_board", requests.requests_board, get),
        ("/demandes/nouvelle", "request_intake", requests.intake_form, get),
        ("/demandes/nouvelle", "request_intake_submit", requests.intake_submit, post),
        ("/demandes/{task_id}/statut", "request_move", requests.request_move, post),
        ("/demandes/{task_id}/priorite", "request_triage", requests.request_triage, post),
        ("/patients/{patient_id}/parcours", "pathway_enrol", pathway_pages.enrol, post),
        ("/ppcs/{careplan_id}", "ppcs_document", pathway_pages.ppcs_document, get),
    )
    return [
        Route(path, page(web, view), methods=methods, name=name)
        for path, name, view, methods in views
    ]
