"""The coordinator's workspace: server-rendered pages in the French State design system (DSFR),
htmx for partial updates and the live inbox, every read and write through the FHIR engine with
the user's own identity (see docs/web.md)."""

from parcours.web.demo_accounts import DEMO_PASSWORD, ensure_demo_accounts
from parcours.web.routes import web_routes

__all__ = ["DEMO_PASSWORD", "ensure_demo_accounts", "web_routes"]
