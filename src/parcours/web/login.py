"""The login page (local account, or Pro Santé Connect through ``/auth/oidc/login``) and logout.

The form posts here rather than to ``/auth/login`` so that a refusal is a page with the message
next to the field (RGAA: errors are announced and tied to their field), not a JSON body. The
work is the same: ``Authenticator.login_local`` (rate limit, lock-out, TOTP, audit of every
attempt), then the same session cookie.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from parcours.auth import SESSION_COOKIE, Authenticator, LoginRefused, RateLimited
from parcours.auth.routes import clear_session_cookie, set_session_cookie
from parcours.web.rendering import render
from parcours.web.session import _read_form

__all__ = ["LoginPages"]


def _local_path(value: str | None) -> str:
    """A post-login destination on this site only (no open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


class LoginPages:
    def __init__(self, auth: Authenticator) -> None:
        self.auth = auth

    def _page(self, request: Request, status: int = 200, **context: object) -> Response:
        oidc = self.auth.settings.oidc_issuer is not None
        target = _local_path(request.query_params.get("suivant") or str(context.get("next", "")))
        psc = str(request.app.url_path_for("oidc_login")) + "?" + urlencode({"next": target})
        return render(
            request,
            "login.html",
            {"title": "Connexion", "next": target, "oidc": oidc, "psc_url": psc, **context},
            status,
        )

    async def show(self, request: Request) -> Response:
        return self._page(request)

    async def submit(self, request: Request) -> Response:
        form = dict(await _read_form(request))
        username = form.get("identifiant", "").strip()
        password = form.get("mot_de_passe", "")
        code = form.get("code", "").strip() or None
        target = _local_path(form.get("suivant"))
        if not username or not password:
            return self._page(
                request,
                400,
                error="Saisissez votre identifiant et votre mot de passe.",
                username=username,
                next=target,
            )
        source = request.client.host if request.client else None
        try:
            session = await run_in_threadpool(
                self.auth.login_local, username, password, code, source
            )
        except RateLimited as limited:
            return self._page(request, 429, error=limited.message, username=username, next=target)
        except LoginRefused as refused:
            return self._page(
                request,
                401,
                error=refused.message,
                totp=refused.reason in ("totp-missing", "bad-totp", "totp-replay"),
                username=username,
                next=target,
            )
        response = RedirectResponse(target, 303, headers={"Cache-Control": "no-store"})
        set_session_cookie(response, session, self.auth.settings)
        return response

    async def logout(self, request: Request) -> Response:
        # Logging out needs no CSRF check: the worst a forged request does is log one out.
        token = request.cookies.get(SESSION_COOKIE, "")
        if token:
            await run_in_threadpool(self.auth.logout, token)
        response = RedirectResponse(str(request.app.url_path_for("web_login")), 303)
        clear_session_cookie(response, self.auth.settings)
        return response
