"""Bearer tokens signed by the platform: JWT (RFC 7519), ES256, audience "parcours".

Claims: ``iss`` (settings.base_url), ``aud``, ``sub``, ``iat``, ``nbf``, ``exp``, ``jti`` and
the principal's ``roles`` (list), ``practitioner``, ``scope`` (space-separated) and ``name``.
Verification accepts ES256 only, from a key of the platform's ring (by ``kid``): ``alg=none``,
HMAC tricks and tokens of another issuer or audience are refused.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import weakref
from collections.abc import Callable
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwt import JWTClaimsRegistry

from parcours.auth.keys import ALGORITHM, KeyRing
from parcours.config import Settings, load_settings
from parcours.errors import InvalidInput, Unauthenticated
from parcours.security.principal import ROLES, Principal
from parcours.store import Store

__all__ = ["AUDIENCE", "TokenService", "issue_token", "key_ring", "verify_token"]

AUDIENCE = "parcours"
# Seconds of clock difference tolerated between the processes that sign and verify.
LEEWAY = 30
# Verified tokens kept per process (``TokenService.verify``); emptied when full.
VERIFIED_MAX = 50_000

_RINGS: weakref.WeakKeyDictionary[Store, KeyRing] = weakref.WeakKeyDictionary()


def key_ring(store: Store, settings: Settings, clock: Callable[[], float] = time.time) -> KeyRing:
    """The process-wide key ring of a store (one cache per store, shared by its users)."""
    ring = _RINGS.get(store)
    if ring is None or ring.settings != settings or ring.clock is not clock:
        ring = KeyRing(store, settings, clock)
        _RINGS[store] = ring
    return ring


class TokenService:
    """Issues and verifies the platform's tokens for one store."""

    def __init__(
        self, store: Store, settings: Settings, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.keys = key_ring(store, settings, clock)
        # Tokens already verified: token -> (principal, kid, exp). A client sends the same
        # token on every request until it expires; checking its ES256 signature and claims
        # each time costs more than the policy. A hit still needs its key to be accepted now.
        self._verified: dict[str, tuple[Principal, str, int]] = {}

    def issue(self, principal: Principal, ttl: int) -> str:
        if ttl <= 0:
            raise InvalidInput("a token needs a positive lifetime (seconds)")
        if ttl > self.settings.token_max_seconds:
            raise InvalidInput(
                f"a token may live at most {self.settings.token_max_seconds} s "
                "(PARCOURS_TOKEN_MAX_SECONDS)"
            )
        now = int(self.clock())
        claims: dict[str, Any] = {
            "iss": self.settings.base_url,
            "aud": AUDIENCE,
            "sub": principal.subject,
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "jti": secrets.token_urlsafe(16),
            "roles": sorted(principal.roles),
        }
        if principal.practitioner:
            claims["practitioner"] = principal.practitioner
        if principal.scopes:
            claims["scope"] = " ".join(sorted(principal.scopes))
        if principal.display:
            claims["name"] = principal.display
        key = self.keys.signing_key()
        return jwt.encode({"alg": ALGORITHM, "kid": key.kid, "typ": "JWT"}, claims, key.key)

    def verify(self, token: str) -> Principal:
        """The principal of a valid token, or ``Unauthenticated`` saying what is wrong."""
        known = self._verified.get(token)
        if known is not None:
            principal, kid, expires = known
            if self.clock() < expires + LEEWAY and self.keys.verification_key(kid) is not None:
                return principal
            self._verified.pop(token, None)
        principal, kid, expires = self._verify(token)
        if len(self._verified) >= VERIFIED_MAX:
            self._verified.clear()
        self._verified[token] = (principal, kid, expires)
        return principal

    def _verify(self, token: str) -> tuple[Principal, str, int]:
        header = _header(token)
        if header.get("alg") != ALGORITHM:
            raise Unauthenticated(f"token algorithm {str(header.get('alg'))[:16]!r} is refused")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthenticated("the token names no signing key (kid)")
        key = self.keys.verification_key(kid)
        if key is None:
            raise Unauthenticated("the token is signed by a key this platform does not accept")
        try:
            decoded = jwt.decode(token, key, algorithms=[ALGORITHM])
        except JoseError:
            raise Unauthenticated("the token signature is not valid") from None
        claims = decoded.claims
        registry = JWTClaimsRegistry(
            now=lambda: int(self.clock()),
            leeway=LEEWAY,
            iss={"essential": True, "value": self.settings.base_url},
            aud={"essential": True, "value": AUDIENCE},
            sub={"essential": True},
            exp={"essential": True},
            jti={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            if exc.error == "expired_token":
                raise Unauthenticated("the token has expired") from None
            raise Unauthenticated(f"the token is not valid: {exc.description or exc}") from None
        roles = claims.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise Unauthenticated("the token's roles claim is malformed")
        scope = claims.get("scope", "")
        practitioner = claims.get("practitioner")
        principal = Principal(
            subject=str(claims["sub"]),
            # Unknown role names (from a newer version, say) grant nothing.
            roles=frozenset(r for r in roles if r in ROLES),
            practitioner=practitioner if isinstance(practitioner, str) else None,
            scopes=frozenset(scope.split()) if isinstance(scope, str) else frozenset(),
            display=str(claims.get("name", "")),
            method="jwt",
            session=str(claims["jti"]),
        )
        return principal, kid, int(claims["exp"])


def _header(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        raise Unauthenticated("the bearer token is not valid")
    try:
        raw = base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4))
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Unauthenticated("the bearer token is not valid") from None
    if not isinstance(header, dict):
        raise Unauthenticated("the bearer token is not valid")
    return header


def issue_token(
    store: Store, principal: Principal, ttl: int, *, settings: Settings | None = None
) -> str:
    """A token for ``principal`` valid ``ttl`` seconds, signed with the store's current key.

    Without ``settings`` they are read from the environment, as the server reads them: the
    issuer (``PARCOURS_BASE_URL``) must be the one the verifying server expects.
    """
    return TokenService(store, settings or load_settings()).issue(principal, ttl)


def verify_token(store: Store, token: str, *, settings: Settings | None = None) -> Principal:
    return TokenService(store, settings or load_settings()).verify(token)
