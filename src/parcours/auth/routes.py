"""HTTP endpoints of authentication, under ``/auth``.

``POST /auth/token`` (OAuth2 client credentials, RFC 6749 §4.4), ``GET /auth/oidc/login``
and ``/auth/oidc/callback`` (OpenID Connect), ``POST /auth/login`` (local password + TOTP),
``POST /auth/logout``, ``GET /auth/session`` (who am I) and ``GET /auth/jwks.json``.
The store is synchronous: every handler runs its work in the thread pool.
"""

from __future__ import annotations

import base64
import html
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from parcours.auth.accounts import LoginRefused, RateLimited
from parcours.auth.authenticator import SESSION_COOKIE, Authenticator, Session
from parcours.auth.oidc import OidcError
from parcours.config import Settings
from parcours.errors import Unauthenticated
from parcours.security.principal import Principal

if TYPE_CHECKING:
    from parcours.platform import Platform

__all__ = ["auth_routes", "clear_session_cookie", "set_session_cookie"]

_MAX_FORM = 64 * 1024
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def _form(request: Request) -> dict[str, str]:
    """The body as a flat dict: form-encoded or JSON (the UI may post either)."""
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > _MAX_FORM:
            return {}
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        try:
            data = orjson.loads(raw or b"{}")
        except orjson.JSONDecodeError:
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))


def _source(request: Request) -> str | None:
    return request.client.host if request.client else None


def _local_path(value: str | None) -> str:
    """A post-login destination on this site only (no open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def _principal_json(principal: Principal, expires_at: float | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subject": principal.subject,
        "roles": sorted(principal.roles),
        "practitioner": principal.practitioner,
        "scopes": sorted(principal.scopes),
        "display": principal.display,
        "method": principal.method,
    }
    if expires_at is not None:
        body["expires_at"] = int(expires_at)
    return body


def _page(status: int, title: str, message: str) -> HTMLResponse:
    return HTMLResponse(
        '<!doctype html><html lang="fr"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body><main>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>"
        '<p><a href="/">Retour à l\'accueil</a></p></main></body></html>',
        status_code=status,
        headers=_NO_STORE,
    )


def set_session_cookie(response: Response, session: Session, settings: Settings) -> None:
    """The web session cookie, with the same flags for the API's and the workspace's logins."""
    response.set_cookie(
        SESSION_COOKIE,
        session.token,
        max_age=settings.session_seconds,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.base_url.startswith("https://"),
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.base_url.startswith("https://"),
    )


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "json" in accept and "text/html" not in accept


class _Handlers:
    def __init__(self, auth: Authenticator) -> None:
        self.auth = auth

    def _set_cookie(self, response: Response, session: Session) -> None:
        set_session_cookie(response, session, self.auth.settings)

    # ---- client credentials ----------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        def error(status: int, code: str, description: str, basic: bool = False) -> Response:
            headers = dict(_NO_STORE)
            if basic:
                headers["WWW-Authenticate"] = 'Basic realm="parcours"'
            return JSONResponse(
                {"error": code, "error_description": description}, status, headers=headers
            )

        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return error(400, "invalid_request", "send application/x-www-form-urlencoded")
        form = await _form(request)
        if form.get("grant_type") != "client_credentials":
            return error(
                400, "unsupported_grant_type", "only grant_type=client_credentials is supported"
            )
        header = request.headers.get("authorization", "")
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        basic = header[:6].lower() == "basic "
        if basic:
            if secret:
                # RFC 6749 §2.3: a client uses one authentication method per request.
                return error(400, "invalid_request", "use one client authentication method")
            try:
                decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
                user, _, password = decoded.partition(":")
            except (ValueError, UnicodeDecodeError):
                return error(401, "invalid_client", "malformed Basic credentials", True)
            # §2.3.1: id and secret are form-urlencoded before Basic encoding.
            client_id, secret = unquote(user.replace("+", " ")), unquote(password.replace("+", " "))
        if not client_id or not secret:
            return error(401, "invalid_client", "client authentication is required", True)
        scope = form.get("scope") or None
        try:
            granted = await run_in_threadpool(
                self.auth.client_credentials, client_id, secret, scope, _source(request)
            )
        except RateLimited as limited:
            response = error(429, "slow_down", "too many attempts; retry later")
            response.headers["Retry-After"] = str(limited.retry_after)
            return response
        except LoginRefused as refused:
            if refused.reason == "invalid-scope":
                return error(400, "invalid_scope", refused.message)
            return error(401, "invalid_client", "client authentication failed", basic)
        return JSONResponse(
            {
                "access_token": granted.access_token,
                "token_type": "Bearer",
                "expires_in": granted.expires_in,
                "scope": " ".join(sorted(granted.scopes)),
            },
            headers=_NO_STORE,
        )

    # ---- local login -----------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        form = await _form(request)
        username = form.get("username", "").strip()
        password = form.get("password", "")
        if not username or not password:
            return JSONResponse(
                {"error": "invalid_request", "message": "Identifiant et mot de passe requis."},
                400,
                headers=_NO_STORE,
            )
        try:
            session = await run_in_threadpool(
                self.auth.login_local, username, password, form.get("totp"), _source(request)
            )
        except RateLimited as limited:
            return JSONResponse(
                {"error": "rate_limited", "message": limited.message},
                429,
                headers={**_NO_STORE, "Retry-After": str(limited.retry_after)},
            )
        except LoginRefused as refused:
            # Unknown user, wrong password and wrong code get the same answer (no enumeration).
            code = {
                "locked": "locked",
                "totp-missing": "totp_required",
                "totp-replay": "totp_replay",
            }.get(refused.reason, "invalid_credentials")
            return JSONResponse({"error": code, "message": refused.message}, 401, headers=_NO_STORE)
        response: Response
        if "next" in form:
            response = RedirectResponse(_local_path(form["next"]), 303, headers=_NO_STORE)
        else:
            response = JSONResponse(
                _principal_json(session.principal, session.expires_at), headers=_NO_STORE
            )
        self._set_cookie(response, session)
        return response

    async def logout(self, request: Request) -> Response:
        token = request.cookies.get(SESSION_COOKIE, "")
        closed = bool(token) and await run_in_threadpool(self.auth.logout, token)
        response: Response = JSONResponse({"logged_out": closed}, headers=_NO_STORE)
        if "next" in request.query_params:
            response = RedirectResponse(_local_path(request.query_params["next"]), 303)
        clear_session_cookie(response, self.auth.settings)
        return response

    async def session(self, request: Request) -> Response:
        token = request.cookies.get(SESSION_COOKIE)
        try:
            if token:
                principal = await run_in_threadpool(self.auth.session_principal, token)
                expires = await run_in_threadpool(self.auth.session_expiry, token)
                return JSONResponse(_principal_json(principal, expires), headers=_NO_STORE)
            headers = {k.lower(): v for k, v in request.headers.items()}
            principal = await run_in_threadpool(self.auth.authenticate, headers)
        except Unauthenticated as exc:
            return JSONResponse(
                {"error": "unauthenticated", "message": exc.message},
                401,
                headers={**_NO_STORE, "WWW-Authenticate": 'Bearer realm="parcours"'},
            )
        return JSONResponse(_principal_json(principal), headers=_NO_STORE)

    async def jwks(self, _request: Request) -> Response:
        keys = await run_in_threadpool(self.auth.tokens.keys.jwks)
        return JSONResponse(keys, headers={"Cache-Control": "max-age=300"})

    # ---- OpenID Connect --------------------------------------------------------------------

    def _redirect_uri(self) -> str:
        return f"{self.auth.settings.base_url.rstrip('/')}/auth/oidc/callback"

    def _oidc_error(self, request: Request, error: OidcError) -> Response:
        status = 403
        if error.reason in ("bad-state", "no-code") or error.reason.startswith("bad-id-token"):
            status = 400
        elif error.reason.startswith(("provider-", "token-refused", "userinfo")):
            status = 502
        elif error.reason == "not-configured":
            status = 404
        elif error.reason == "rate-limited":
            status = 429
        if _wants_json(request):
            return JSONResponse(
                {"error": error.reason, "message": error.message}, status, headers=_NO_STORE
            )
        return _page(status, "Connexion refusée", error.message)

    async def oidc_login(self, request: Request) -> Response:
        client = self.auth.oidc
        if client is None:
            return self._oidc_error(
                request,
                OidcError("not-configured", "La connexion par fournisseur n'est pas configurée."),
            )
        return_to = _local_path(request.query_params.get("next"))
        try:
            url = await run_in_threadpool(client.begin, self._redirect_uri(), return_to)
        except OidcError as error:
            return self._oidc_error(request, error)
        return RedirectResponse(url, 303, headers=_NO_STORE)

    async def oidc_callback(self, request: Request) -> Response:
        params = dict(request.query_params)
        try:
            session, return_to = await run_in_threadpool(
                self.auth.login_oidc, params, _source(request)
            )
        except OidcError as error:
            return self._oidc_error(request, error)
        response = RedirectResponse(_local_path(return_to), 303, headers=_NO_STORE)
        self._set_cookie(response, session)
        return response


def auth_routes(target: Authenticator | Platform, prefix: str = "/auth") -> list[BaseRoute]:
    """The routes of authentication; give the process's ``Authenticator`` (or a platform, for
    which one is built) so its login listeners hear these logins."""
    auth = (
        target
        if isinstance(target, Authenticator)
        else Authenticator(target.store, target.settings)
    )
    h = _Handlers(auth)
    return [
        Route(f"{prefix}/token", h.token, methods=["POST"]),
        Route(f"{prefix}/login", h.login, methods=["POST"]),
        Route(f"{prefix}/logout", h.logout, methods=["POST"]),
        Route(f"{prefix}/session", h.session, methods=["GET"]),
        Route(f"{prefix}/jwks.json", h.jwks, methods=["GET"]),
        Route(f"{prefix}/oidc/login", h.oidc_login, methods=["GET"]),
        Route(f"{prefix}/oidc/callback", h.oidc_callback, methods=["GET"]),
    ]
