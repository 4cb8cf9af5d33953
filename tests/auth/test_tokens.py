"""Platform tokens: claims, expiry, forgeries, key rotation, keys shared through the database."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey
from sqlalchemy import func, select

from parcours.auth import Authenticator
from parcours.auth.tables import auth_signing_key
from parcours.auth.tokens import TokenService
from parcours.errors import Unauthenticated
from parcours.platform import Platform
from parcours.security.principal import ADMIN, Principal

from .conftest import ADMIN_TOKEN, Clock

DR = Principal(
    "Practitioner/p1",
    frozenset({"professional"}),
    practitioner="Practitioner/p1",
    scopes=frozenset({"user/*.read"}),
    display="Dr Jeanne Martin",
)


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _parts(token: str) -> tuple[dict[str, object], dict[str, object]]:
    def load(part: str) -> dict[str, object]:
        data: dict[str, object] = json.loads(
            base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        )
        return data

    head, body, _ = token.split(".")
    return load(head), load(body)


def test_issue_and_verify_round_trip(auth: Authenticator, clock: Clock) -> None:
    token = auth.tokens.issue(DR, 300)
    header, claims = _parts(token)
    assert header["alg"] == "ES256" and header["kid"]
    assert claims["iss"] == auth.settings.base_url and claims["aud"] == "parcours"
    assert claims["exp"] == int(clock.now) + 300 and claims["nbf"] == int(clock.now)
    assert claims["roles"] == ["professional"] and claims["scope"] == "user/*.read"

    principal = auth.authenticate({"authorization": f"Bearer {token}"})
    assert principal.subject == "Practitioner/p1"
    assert principal.practitioner == "Practitioner/p1"
    assert principal.roles == frozenset({"professional"})
    assert principal.scopes == frozenset({"user/*.read"})
    assert principal.display == "Dr Jeanne Martin"
    assert principal.method == "jwt" and principal.session == claims["jti"]


def test_admin_token_and_malformed_headers(auth: Authenticator) -> None:
    assert auth.authenticate({"authorization": f"Bearer {ADMIN_TOKEN}"}) is ADMIN
    assert auth.authenticate({"authorization": f"bearer  {ADMIN_TOKEN} "}) is ADMIN
    for headers in (
        {},
        {"authorization": ADMIN_TOKEN},
        {"authorization": "Basic abc"},
        {"authorization": "Bearer x"},
        {"authorization": "Bearer é"},
        {"authorization": "Bearer a.b.c"},
    ):
        with pytest.raises(Unauthenticated):
            auth.authenticate(headers)


def test_ttl_is_bounded(auth: Authenticator) -> None:
    from parcours.errors import InvalidInput

    with pytest.raises(InvalidInput, match="at most"):
        auth.tokens.issue(DR, auth.settings.token_max_seconds + 1)
    with pytest.raises(InvalidInput):
        auth.tokens.issue(DR, 0)


def test_expired_token_says_so(auth: Authenticator, clock: Clock) -> None:
    token = auth.tokens.issue(DR, 60)
    header = {"authorization": f"Bearer {token}"}
    # Verified once, then kept by the service: still refused the moment it expires.
    assert auth.authenticate(header).subject == "Practitioner/p1"
    clock.advance(60 + 29)  # within the 30 s leeway after exp: still valid
    assert auth.authenticate(header).subject == "Practitioner/p1"
    clock.advance(1)
    with pytest.raises(Unauthenticated, match="expired"):
        auth.authenticate(header)


def test_not_yet_valid_token_refused(auth: Authenticator, clock: Clock) -> None:
    token = auth.tokens.issue(DR, 600)
    clock.advance(-120)
    with pytest.raises(Unauthenticated, match="not valid"):
        auth.authenticate({"authorization": f"Bearer {token}"})


def test_forged_tokens_refused(auth: Authenticator) -> None:
    good = auth.tokens.issue(DR, 300)
    header, claims = _parts(good)
    head, _body, sig = good.split(".")
    admin_claims = {**claims, "roles": ["admin"]}
    attacker = ECKey.generate_key("P-256", parameters={"kid": str(header["kid"])})
    forgeries = {
        # Payload changed, signature kept.
        "tampered": f"{head}.{_b64(admin_claims)}.{sig}",
        # alg=none, no signature.
        "none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(admin_claims)}.",
        "none-kid": f"{_b64({'alg': 'none', 'kid': header['kid']})}.{_b64(admin_claims)}.",
        # Signed by another key that claims our kid.
        "foreign-key": jwt.encode(header, admin_claims, attacker),
        # HS256 with the public key as secret (the classic confusion attack).
        "hmac": jwt.encode(
            {"alg": "HS256", "kid": header["kid"]},
            admin_claims,
            OctKey.import_key(json.dumps(auth.tokens.keys.jwks()["keys"][0]).encode()),
        ),
        "unknown-kid": jwt.encode({**header, "kid": "nope"}, admin_claims, attacker),
    }
    for name, forged in forgeries.items():
        with pytest.raises(Unauthenticated):
            auth.authenticate({"authorization": f"Bearer {forged}"})
            pytest.fail(f"{name} accepted")


def test_other_issuer_or_audience_refused(
    make_platform: Callable[..., Platform], clock: Clock
) -> None:
    ours = make_platform(base_url="https://parcours.example.fr")
    theirs = make_platform(base_url="https://other.example.fr")
    token = TokenService(theirs.store, theirs.settings, clock).issue(DR, 300)
    # Same database, hence the same keys: only the issuer differs.
    with pytest.raises(Unauthenticated, match="iss"):
        TokenService(ours.store, ours.settings, clock).verify(token)


def test_keys_are_shared_through_the_database(
    make_platform: Callable[..., Platform], clock: Clock
) -> None:
    first = make_platform()
    token = TokenService(first.store, first.settings, clock).issue(DR, 300)
    first.close()
    # A new engine and store: another process, or the same server after a restart.
    restarted = make_platform()
    principal = TokenService(restarted.store, restarted.settings, clock).verify(token)
    assert principal.subject == "Practitioner/p1"
    second = TokenService(restarted.store, restarted.settings, clock).issue(DR, 300)
    assert _parts(second)[0]["kid"] == _parts(token)[0]["kid"]
    with restarted.store.begin(readonly=True) as tx:
        assert tx.conn.execute(select(func.count()).select_from(auth_signing_key)).scalar() == 1


def test_manual_rotation_keeps_old_tokens(auth: Authenticator, clock: Clock) -> None:
    old = auth.tokens.issue(DR, 600)
    old_kid = _parts(old)[0]["kid"]
    new_kid = auth.tokens.keys.rotate()
    assert new_kid != old_kid
    new = auth.tokens.issue(DR, 600)
    assert _parts(new)[0]["kid"] == new_kid
    assert auth.authenticate({"authorization": f"Bearer {old}"}).subject == "Practitioner/p1"
    assert auth.authenticate({"authorization": f"Bearer {new}"}).subject == "Practitioner/p1"
    assert {k["kid"] for k in auth.tokens.keys.jwks()["keys"]} == {old_kid, new_kid}
    # Once no token of the old key can still be alive, the key leaves the JWKS.
    clock.advance(auth.settings.token_max_seconds + 121)
    assert {k["kid"] for k in auth.tokens.keys.jwks()["keys"]} == {new_kid}


def test_rotation_by_age_and_seen_by_another_process(
    make_platform: Callable[..., Platform], clock: Clock
) -> None:
    a = make_platform(signing_key_days=1)
    b = make_platform(signing_key_days=1)
    tokens_a = TokenService(a.store, a.settings, clock)
    tokens_b = TokenService(b.store, b.settings, clock)
    first = tokens_a.issue(DR, 3600)
    tokens_b.verify(first)  # b loads the first key
    clock.advance(86_400 + 10)  # the key has signed for its day
    second = tokens_a.issue(DR, 3600)
    assert _parts(second)[0]["kid"] != _parts(first)[0]["kid"]
    # b has never seen the new kid: it reloads the keys from the database.
    assert tokens_b.verify(second).subject == "Practitioner/p1"
    # b signs with the newest key too, not with its cached old one.
    assert _parts(tokens_b.issue(DR, 60))[0]["kid"] == _parts(second)[0]["kid"]


def test_retired_key_refuses_its_tokens(auth: Authenticator) -> None:
    token = auth.tokens.issue(DR, 600)
    assert auth.tokens.verify(token).subject == "Practitioner/p1"  # verified and kept
    assert auth.tokens.keys.retire(str(_parts(token)[0]["kid"]))
    with pytest.raises(Unauthenticated, match="key"):
        auth.tokens.verify(token)
