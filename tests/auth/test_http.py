"""The /auth endpoints over real HTTP (uvicorn): login, session, logout, client credentials."""

from __future__ import annotations

import base64

import pyotp

from parcours.auth.authenticator import SESSION_COOKIE
from parcours.security.principal import ADMIN

from .conftest import Clock, Server

PASSWORD = "correct horse battery"


def test_login_session_logout(server: Server, clock: Clock) -> None:
    created = server.auth.accounts.create(
        "coord", ["coordinator"], password=PASSWORD, display="Claire Coord"
    )
    totp = pyotp.TOTP(created.totp_secret or "")
    with server.client() as http:
        assert http.get("/auth/session").status_code == 401
        bad = http.post(
            "/auth/login", data={"username": "coord", "password": "nope nope nope", "totp": "1"}
        )
        assert bad.status_code == 401
        assert bad.json()["error"] == "invalid_credentials"
        assert "incorrect" in bad.json()["message"]
        assert SESSION_COOKIE not in bad.cookies

        ok = http.post(
            "/auth/login",
            data={"username": "coord", "password": PASSWORD, "totp": totp.at(clock.now)},
        )
        assert ok.status_code == 200, ok.text
        assert ok.json()["subject"] == "account/coord"
        cookie = ok.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie

        me = http.get("/auth/session")
        assert me.status_code == 200
        assert me.json()["roles"] == ["coordinator"] and me.json()["method"] == "session"
        assert me.json()["display"] == "Claire Coord"

        out = http.post("/auth/logout")
        assert out.json() == {"logged_out": True}
    # The cookie value itself no longer opens anything (the client forgot it, we check it).
    token = ok.cookies[SESSION_COOKIE]
    with server.client(cookies={SESSION_COOKIE: token}) as http:
        gone = http.get("/auth/session")
        assert gone.status_code == 401 and "log in" in gone.json()["message"]


def test_login_json_body_and_redirect(server: Server, clock: Clock) -> None:
    created = server.auth.accounts.create("json", ["analyst"], password=PASSWORD)
    totp = pyotp.TOTP(created.totp_secret or "")
    with server.client() as http:
        ok = http.post(
            "/auth/login",
            json={"username": "json", "password": PASSWORD, "totp": totp.at(clock.now)},
        )
        assert ok.status_code == 200 and ok.json()["roles"] == ["analyst"]
        clock.advance(30)
        redirected = http.post(
            "/auth/login",
            data={
                "username": "json",
                "password": PASSWORD,
                "totp": totp.at(clock.now),
                "next": "//evil.example/",
            },
        )
        # An off-site "next" is ignored: no open redirect.
        assert redirected.status_code == 303 and redirected.headers["location"] == "/"


def test_login_rate_limited_over_http(server: Server) -> None:
    server.auth.accounts.rate_limit = 3
    with server.client() as http:
        codes = [
            http.post("/auth/login", data={"username": "x", "password": "y" * 12}).status_code
            for _ in range(4)
        ]
        assert codes == [401, 401, 401, 429]
        last = http.post("/auth/login", data={"username": "x", "password": "y" * 12})
        assert last.status_code == 429 and int(last.headers["retry-after"]) >= 1
        assert "Trop de tentatives" in last.json()["message"]


def _basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def test_client_credentials(server: Server) -> None:
    created = server.auth.accounts.create_client("his-a", ["system/*.read system/Patient.write"])
    secret = created.secret
    with server.client() as http:
        # client_secret_basic, no scope: everything granted.
        whole = http.post(
            "/auth/token",
            data={"grant_type": "client_credentials"},
            headers=_basic("his-a", secret),
        )
        assert whole.status_code == 200, whole.text
        body = whole.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
        assert body["scope"] == "system/*.read system/Patient.write"
        assert whole.headers["cache-control"] == "no-store"
        me = http.get("/auth/session", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert me.status_code == 200
        assert me.json()["subject"] == "client/his-a"
        assert me.json()["roles"] == ["system"] and me.json()["method"] == "jwt"

        # client_secret_post with a subset (one covered by the wildcard).
        subset = http.post(
            "/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "his-a",
                "client_secret": secret,
                "scope": "system/Observation.read",
            },
        )
        assert subset.status_code == 200 and subset.json()["scope"] == "system/Observation.read"
        principal = server.auth.authenticate(
            {"authorization": f"Bearer {subset.json()['access_token']}"}
        )
        assert principal.scopes == frozenset({"system/Observation.read"})

        # A superset is refused with RFC 6749's invalid_scope.
        superset = http.post(
            "/auth/token",
            data={"grant_type": "client_credentials", "scope": "system/*.write"},
            headers=_basic("his-a", secret),
        )
        assert superset.status_code == 400 and superset.json()["error"] == "invalid_scope"

        wrong = http.post(
            "/auth/token", data={"grant_type": "client_credentials"}, headers=_basic("his-a", "x")
        )
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
        assert wrong.headers["www-authenticate"].startswith("Basic")
        unknown = http.post(
            "/auth/token",
            data={"grant_type": "client_credentials", "client_id": "nope", "client_secret": "x"},
        )
        assert unknown.status_code == 401 and unknown.json()["error"] == "invalid_client"
        grant = http.post(
            "/auth/token", data={"grant_type": "password"}, headers=_basic("his-a", secret)
        )
        assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"
        as_json = http.post("/auth/token", json={"grant_type": "client_credentials"})
        assert as_json.status_code == 400 and as_json.json()["error"] == "invalid_request"


def test_jwks_publishes_public_keys_only(server: Server) -> None:
    server.auth.tokens.issue(ADMIN, 60)
    with server.client() as http:
        keys = http.get("/auth/jwks.json").json()["keys"]
    assert len(keys) == 1
    assert keys[0]["kty"] == "EC" and keys[0]["alg"] == "ES256" and "d" not in keys[0]


def test_oidc_not_configured(server: Server) -> None:
    with server.client() as http:
        answer = http.get("/auth/oidc/login", headers={"Accept": "application/json"})
    assert answer.status_code == 404 and answer.json()["error"] == "not-configured"
