"""Who is using the workspace: the session cookie of ``parcours.auth``, checked on every page.

``page(handler)`` turns a synchronous view ``handler(view: View) -> Response`` into a
Starlette endpoint: it resolves the session (no session: to the login page, keeping where the
user was going), checks the CSRF token of every POST, reads the form, then runs the view in the
thread pool (the store is synchronous) with a :class:`Gateway` bound to the user's principal.

The CSRF token is derived from the session secret (HMAC), so it needs no storage and dies with
the session; the cookie is SameSite=Lax already, the token is the second lock.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from parcours.auth import SESSION_COOKIE, Authenticator
from parcours.errors import Unauthenticated
from parcours.fhir.router import FhirEngine
from parcours.security.principal import Principal
from parcours.web.gateway import Gateway

__all__ = ["View", "WebContext", "csrf_token", "page"]

_MAX_FORM = 256 * 1024


def csrf_token(session_token: str) -> str:
    return hmac.new(session_token.encode(), b"parcours-web-csrf", hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class WebContext:
    """What every view needs, built once by ``web_routes``."""

    engine: FhirEngine
    auth: Authenticator
    fhir_base: str
    # Extra blocks of the home page: each returns template variables for (view, my refs).
    home_hooks: tuple[Callable[..., dict[str, Any]], ...] = ()
    # Extra sections of the patient page, from (view, patient id): pathways, PPCS...
    patient_hooks: tuple[Callable[..., dict[str, Any]], ...] = ()


@dataclass(frozen=True, slots=True)
class View:
    request: Request
    user: Principal
    fhir: Gateway
    form: dict[str, str]
    # Repeated form fields (checkboxes), in order.
    form_lists: dict[str, list[str]]
    web: WebContext

    def field(self, name: str) -> str:
        return self.form.get(name, "").strip()


async def _read_form(request: Request) -> list[tuple[str, str]]:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > _MAX_FORM:
            break
    return parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)


def _login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = str(request.app.url_path_for("web_login")) + "?" + urlencode({"suivant": target})
    if request.headers.get("hx-request") == "true":
        # htmx follows HX-Redirect with a full page load instead of swapping the login page in.
        return Response(status_code=401, headers={"HX-Redirect": location})
    return RedirectResponse(location, 303)


def page(
    web: WebContext, handler: Callable[[View], Response]
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        token = request.cookies.get(SESSION_COOKIE, "")
        try:
            user = await run_in_threadpool(web.auth.session_principal, token)
        except Unauthenticated:
            return _login_redirect(request)
        pairs: list[tuple[str, str]] = []
        csrf = csrf_token(token)
        if request.method == "POST":
            pairs = await _read_form(request)
            sent = request.headers.get("x-csrf-token") or dict(pairs).get("csrf", "")
            if not hmac.compare_digest(sent, csrf):
                return PlainTextResponse(
                    "Jeton de sécurité (CSRF) absent ou périmé : rechargez la page.", 403
                )
        request.scope["parcours.user"] = user
        request.scope["parcours.csrf"] = csrf
        lists: dict[str, list[str]] = {}
        for key, value in pairs:
            lists.setdefault(key, []).append(value)
        client = request.client.host if request.client else None
        gateway = Gateway(web.engine, user, client, web.fhir_base or _base(request))
        view = View(
            request=request,
            user=user,
            fhir=gateway,
            form=dict(pairs),
            form_lists=lists,
            web=web,
        )
        response = await run_in_threadpool(_run, handler, view)
        # The page's own time, for the browser's devtools and bench/web_bench.py.
        elapsed = (time.perf_counter() - started) * 1000
        response.headers["Server-Timing"] = f"app;dur={elapsed:.1f}"
        return response

    return endpoint


def _run(handler: Callable[[View], Response], view: View) -> Response:
    """A page (GET) reads in one transaction; an action (POST) writes each in its own."""
    if view.request.method not in ("GET", "HEAD"):
        return handler(view)
    with view.fhir.reading() as reading:
        return handler(replace(view, fhir=reading))


def _base(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}/fhir"
