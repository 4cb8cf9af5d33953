"""The workspace's routes: one table, each page a synchronous view wrapped by ``page``."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from parcours.auth import Authenticator
from parcours.fhir.router import FhirEngine
from parcours.notify.delivery.inbox import InboxSignal
from parcours.web import circle_actions, identity_pages, inbox_pages
from parcours.web.extensions import extension_hooks, extension_routes
from parcours.web.home import home
from parcours.web.login import LoginPages
from parcours.web.patients import patient_page, patient_search
from parcours.web.session import WebContext, page

__all__ = ["web_routes"]

STATIC = Path(__file__).parent / "static"


def web_routes(
    engine: FhirEngine, auth: Authenticator, signal: InboxSignal | None = None
) -> list[BaseRoute]:
    """Routes of the coordinator's workspace, served at the application's root."""
    settings = auth.settings
    base = f"{settings.base_url.rstrip('/')}/fhir" if settings.production else ""
    home_hooks, patient_hooks = extension_hooks()
    web = WebContext(
        engine,
        auth,
        base,
        home_hooks=(identity_pages.open_count, *home_hooks),
        patient_hooks=patient_hooks,
    )
    login = LoginPages(auth)
    circle, identity, inbox = circle_actions, identity_pages, inbox_pages
    get, post = ["GET"], ["POST"]
    views = (
        ("/", "home", home, ["GET", "HEAD"]),
        ("/patients", "patient_search", patient_search, get),
        ("/patients/{patient_id}", "patient_page", patient_page, get),
        ("/patients/{patient_id}/cercle/ajouter", "circle_add", circle.add_member, post),
        ("/patients/{patient_id}/cercle/retirer", "circle_remove", circle.remove_member, post),
        ("/patients/{patient_id}/opposition", "opposition_add", circle.record_opposition, post),
        (
            "/patients/{patient_id}/opposition/lever",
            "opposition_lift",
            circle.lift_opposition,
            post,
        ),
        ("/identitovigilance", "identity_queue", identity.identity_queue, get),
        ("/identitovigilance/{pk}", "identity_pair", identity.identity_pair, get),
        ("/identitovigilance/{pk}/fusion", "identity_merge", identity.identity_merge_action, post),
        (
            "/identitovigilance/{pk}/pas-un-doublon",
            "identity_not_duplicate",
            identity.identity_not_duplicate,
            post,
        ),
        (
            "/identitovigilance/fusions/{merge_id}/annuler",
            "identity_unmerge",
            identity.identity_unmerge,
            post,
        ),
        ("/notifications", "notifications", inbox.inbox_page, get),
        ("/notifications/lues", "notifications_read", inbox.inbox_read, post),
    )
    routes: list[BaseRoute] = [
        Route("/connexion", login.show, methods=["GET"], name="web_login"),
        Route("/connexion", login.submit, methods=["POST"], name="web_login_submit"),
        Route("/deconnexion", login.logout, methods=["POST"], name="web_logout"),
        Route(
            "/notifications/flux",
            inbox_pages.inbox_stream(web, signal or InboxSignal()),
            methods=["GET"],
            name="notifications_stream",
        ),
        *(
            Route(path, page(web, view), methods=methods, name=name)
            for path, name, view, methods in views
        ),
        *extension_routes(web),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    return routes
