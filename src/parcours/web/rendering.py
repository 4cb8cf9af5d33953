"""Jinja2 templates of the workspace, and the small formatting helpers they use.

Autoescape is on for every template; French on screen, Europe/Paris time (DESIGN: UTC in
storage). A request made by htmx (``HX-Request``) gets only the fragment the page names, so
one handler serves both the full page (no JavaScript, first load) and the partial update.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import NoMatchFound

from parcours.security.principal import Principal

__all__ = ["PARIS", "is_htmx", "render", "templates"]

PARIS = ZoneInfo("Europe/Paris")
_MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)  # fmt: skip
_NO_STORE = {"Cache-Control": "no-store"}


def french_date(value: Any) -> str:
    """``1950-03-07`` → ``07/03/1950`` (the form people type and read on documents)."""
    if not value:
        return ""
    text = str(value)
    try:
        day = date.fromisoformat(text[:10])
    except ValueError:
        return text
    return day.strftime("%d/%m/%Y") if len(text) >= 10 else text


def long_date(value: Any) -> str:
    if not value:
        return ""
    try:
        day = date.fromisoformat(str(value)[:10])
    except ValueError:
        return str(value)
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


def paris_time(value: Any) -> str:
    """An instant (FHIR dateTime or epoch ms) as ``23/11/2026 à 14:05`` in Paris time."""
    if value is None or value == "":
        return ""
    if isinstance(value, int | float):
        moment = datetime.fromtimestamp(value / 1000, tz=PARIS)
    else:
        text = str(value)
        if len(text) <= 10:
            return french_date(text)
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return text
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo("UTC"))
        moment = moment.astimezone(PARIS)
    return moment.strftime("%d/%m/%Y à %H:%M")


def nav_items(user: Principal) -> list[tuple[str, str]]:
    """The main menu for this user's roles (route name, label)."""
    roles = user.roles
    items = [("home", "Ma file active"), ("patient_search", "Patients")]
    if roles & {"coordinator", "admin"}:
        items.append(("requests_board", "Demandes de coordination"))
    if roles & {"identity-referent", "admin"}:
        items.append(("identity_queue", "Identitovigilance"))
    items.append(("notifications", "Notifications"))
    return items


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(("html",), default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["date_fr"] = french_date
    env.filters["date_long"] = long_date
    env.filters["heure_paris"] = paris_time
    return env


templates = _environment()


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """Render ``name`` with the request's helpers (``url``, ``user``, ``csrf``)."""

    def url(route: str, **params: Any) -> str:
        return str(request.app.url_path_for(route, **{k: str(v) for k, v in params.items()}))

    def routed(name: str) -> bool:
        try:
            request.app.url_path_for(name)
        except NoMatchFound:
            return False
        return True

    user = request.scope.get("parcours.user")
    nav = [(n, label) for n, label in nav_items(user) if routed(n)] if user else []

    full = {
        "request": request,
        "url": url,
        "user": user,
        "nav": nav,
        "csrf": request.scope.get("parcours.csrf", ""),
        "htmx": is_htmx(request),
        **context,
    }
    return HTMLResponse(templates.get_template(name).render(full), status, headers=_NO_STORE)
