"""OpenID Connect login against a real provider (Authlib on werkzeug) run by the test.

The whole flow is driven over HTTP: our /auth/oidc/login → the provider's /authorize (the
test user consents automatically) → our /auth/oidc/callback (code exchange with PKCE, ID
token checked against the provider's JWKS, userinfo) → session cookie → /auth/session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select, update

from parcours.auth import Authenticator, LoginEvent
from parcours.auth.authenticator import SESSION_COOKIE
from parcours.auth.tables import auth_account, auth_oidc_state
from parcours.platform import Platform

from .conftest import Clock, Server, free_port
from .oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider

IDNPS = "810002909371"


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[Provider]:
    # Authlib refuses plain HTTP unless told it is a test set-up.
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
    provider = Provider(free_port())
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture
def site(
    provider: Provider,
    make_platform: Callable[..., Platform],
    start_server: Callable[[Authenticator, int], Server],
    clock: Clock,
) -> Server:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    provider.client.redirect_uris = [f"{base}/auth/oidc/callback"]
    platform = make_platform(
        base_url=base,
        oidc_issuer=provider.issuer,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
        oidc_scopes="openid scope_all",
    )
    # The directory knows Dr Martin by her RPPS only: the IDNPS "8" + RPPS must find her.
    martin = platform.store.create(
        {
            "resourceType": "Practitioner",
            "identifier": [{"system": "https://rpps.esante.gouv.fr", "value": IDNPS[1:]}],
            "name": [{"family": "Martin", "given": ["Jeanne"]}],
        }
    )
    other = platform.store.create(
        {
            "resourceType": "Practitioner",
            "identifier": [{"system": "urn:oid:1.2.250.1.71.4.2.1", "value": "810000000017"}],
        }
    )
    server = start_server(Authenticator(platform.store, platform.settings, clock=clock), port)
    server.data["martin"] = f"Practitioner/{martin['id']}"
    server.data["other"] = f"Practitioner/{other['id']}"
    return server


def _start(http: httpx.Client, site: Server, provider: Provider, path: str = "") -> str:
    """Our login redirects to the provider, which answers with a redirect to our callback."""
    login = http.get(f"{site.base}/auth/oidc/login{path}")
    assert login.status_code == 303
    authorize = login.headers["location"]
    query = parse_qs(urlsplit(authorize).query)
    assert authorize.startswith(f"{provider.issuer}/authorize?")
    assert query["code_challenge_method"] == ["S256"] and query["nonce"] and query["state"]
    assert query["redirect_uri"] == [f"{site.base}/auth/oidc/callback"]
    consent = http.get(authorize)
    assert consent.status_code == 302, consent.text
    callback: str = consent.headers["location"]
    assert callback.startswith(f"{site.base}/auth/oidc/callback?")
    return callback


def test_full_login_maps_the_professional(site: Server, provider: Provider) -> None:
    events: list[LoginEvent] = []
    site.auth.login_listeners.append(events.append)
    with httpx.Client(timeout=30) as http:
        callback = _start(http, site, provider, "?next=/patients")
        done = http.get(callback)
        assert done.status_code == 303, done.text
        assert done.headers["location"] == "/patients"
        assert SESSION_COOKIE in http.cookies
        me = http.get(f"{site.base}/auth/session").json()
    assert me["practitioner"] == site.data["martin"]
    assert me["subject"] == site.data["martin"]
    assert me["roles"] == ["professional"] and me["display"] == "Jeanne Martin"
    assert me["method"] == "session"
    # The provider really received our PKCE verifier and authenticated us.
    assert provider.token_requests[-1]["code_verifier"]
    assert [(e.method, e.outcome, e.username) for e in events] == [("oidc", "success", IDNPS)]
    # An account now maps the IDNPS to the Practitioner.
    with site.auth.store.begin(readonly=True) as tx:
        row = tx.conn.execute(select(auth_account).where(auth_account.c.idnps == IDNPS)).one()
    assert row.practitioner == site.data["martin"] and row.password_hash is None


def test_existing_account_keeps_its_roles(site: Server, provider: Provider) -> None:
    provider.user.idnps = "810000000017"
    site.auth.accounts.create(
        "coord-idnps", ["coordinator"], practitioner=site.data["other"], password="x" * 12
    )
    with httpx.Client(timeout=30) as http:
        assert http.get(_start(http, site, provider)).status_code == 303
        me = http.get(f"{site.base}/auth/session").json()
    assert me["practitioner"] == site.data["other"] and me["roles"] == ["coordinator"]


def test_unknown_professional_refused(site: Server, provider: Provider) -> None:
    provider.user.idnps = "899999999999"
    events: list[LoginEvent] = []
    site.auth.login_listeners.append(events.append)
    with httpx.Client(timeout=30) as http:
        refused = http.get(_start(http, site, provider))
        assert refused.status_code == 403
        assert (
            "pas connu de la plateforme Parcours" in refused.text and "899999999999" in refused.text
        )
        assert SESSION_COOKIE not in http.cookies
    assert events[-1].reason == "unknown-professional" and events[-1].principal is None
    with site.auth.store.begin(readonly=True) as tx:
        assert tx.conn.execute(select(auth_account)).first() is None


def test_wrong_or_replayed_state_refused(site: Server, provider: Provider) -> None:
    with httpx.Client(timeout=30) as http:
        callback = _start(http, site, provider)
        query = parse_qs(urlsplit(callback).query)
        forged = f"{site.base}/auth/oidc/callback?code={query['code'][0]}&state=forged"
        refused = http.get(forged, headers={"Accept": "application/json"})
        assert refused.status_code == 400 and refused.json()["error"] == "bad-state"
        assert http.get(callback).status_code == 303
        # A state is used once: replaying the callback is refused.
        again = http.get(callback, headers={"Accept": "application/json"})
        assert again.status_code == 400 and again.json()["error"] == "bad-state"


def test_pkce_verifier_is_checked_by_the_provider(site: Server, provider: Provider) -> None:
    with httpx.Client(timeout=30) as http:
        callback = _start(http, site, provider)
        # Someone who stole the code but not the verifier: swap the stored verifier.
        with site.auth.store.begin() as tx:
            tx.conn.execute(update(auth_oidc_state).values(code_verifier="x" * 64))
        refused = http.get(callback, headers={"Accept": "application/json"})
    assert refused.status_code == 502
    assert refused.json()["error"] == "token-refused:invalid_grant"
    assert provider.token_requests[-1]["code_verifier"] == "x" * 64


def test_tampered_id_token_refused(site: Server, provider: Provider) -> None:
    provider.tamper_id_token = True
    with httpx.Client(timeout=30) as http:
        refused = http.get(_start(http, site, provider), headers={"Accept": "application/json"})
        assert refused.status_code == 400 and refused.json()["error"] == "bad-id-token"
        assert SESSION_COOKIE not in http.cookies


def test_expired_state_refused(site: Server, provider: Provider, clock: Clock) -> None:
    with httpx.Client(timeout=30) as http:
        callback = _start(http, site, provider)
        clock.advance(601)
        refused = http.get(callback, headers={"Accept": "application/json"})
    assert refused.status_code == 400 and refused.json()["error"] == "bad-state"
    with site.auth.store.begin(readonly=True) as tx:
        assert tx.conn.execute(select(auth_oidc_state)).first() is None
