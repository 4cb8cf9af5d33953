"""OpenID Connect relying party: authorisation code + PKCE (S256), state and nonce.

Works with any provider that publishes ``/.well-known/openid-configuration``; Pro Santé
Connect is the one that matters. The state, the PKCE verifier and the nonce are kept in the
database (``auth_oidc_state``), used once and for ten minutes at most, so the callback may
land on any API process. The ID token is verified against the provider's JWKS; the userinfo
answer (JSON or a signed JWT, PSC gives both depending on configuration) must be about the
same ``sub``.

Pro Santé Connect's claims: ``SubjectNameID`` is the IDNPS ("8" + RPPS for the professions
with an RPPS number), ``SubjectRefPro`` the exercises and activities, plus ``given_name``,
``family_name`` and ``preferred_username``. The professional is the Practitioner carrying
that IDNPS (``urn:oid:1.2.250.1.71.4.2.1``) or the RPPS (``https://rpps.esante.gouv.fr``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import delete, insert

from parcours.auth.tables import auth_oidc_state
from parcours.config import Settings
from parcours.store import Store
from parcours.store.repository import Transaction
from parcours.store.search import parse_search

__all__ = [
    "IDNPS_SYSTEM",
    "RPPS_SYSTEM",
    "OidcClient",
    "OidcError",
    "OidcIdentity",
    "find_practitioner",
]

IDNPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
RPPS_SYSTEM = "https://rpps.esante.gouv.fr"
STATE_SECONDS = 600
# Signature algorithms accepted from a provider; never "none", never HMAC (the client secret
# is not a key we want the provider's tokens to depend on).
_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384")
_DISCOVERY_SECONDS = 3600
_LEEWAY = 60


class OidcError(Exception):
    """The login through the provider failed; ``reason`` for the audit, ``message`` in French."""

    def __init__(self, reason: str, message: str, *, subject: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.subject = subject


@dataclass(frozen=True, slots=True)
class OidcIdentity:
    subject: str  # the provider's sub
    idnps: str | None
    given_name: str
    family_name: str
    preferred_username: str
    return_to: str
    claims: Mapping[str, Any] = field(default_factory=dict)

    @property
    def display(self) -> str:
        return " ".join(p for p in (self.given_name, self.family_name) if p) or (
            self.preferred_username or self.subject
        )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


class OidcClient:
    """The relying party of one provider (``settings.oidc_issuer``)."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        clock: Callable[[], float] = time.time,
        http: Callable[[], httpx.Client] | None = None,
    ) -> None:
        if not settings.oidc_issuer or not settings.oidc_client_id:
            raise ValueError("PARCOURS_OIDC_ISSUER and PARCOURS_OIDC_CLIENT_ID are required")
        self.store = store
        self.settings = settings
        self.issuer = settings.oidc_issuer.rstrip("/")
        self.client_id = settings.oidc_client_id
        self.clock = clock
        self._http = http or (lambda: httpx.Client(timeout=10, follow_redirects=False))
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._jwks: KeySet | None = None

    # ---- provider metadata -----------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        with self._lock:
            if self._metadata is None or time.monotonic() - self._metadata_at > _DISCOVERY_SECONDS:
                url = f"{self.issuer}/.well-known/openid-configuration"
                try:
                    with self._http() as client:
                        response = client.get(url)
                    response.raise_for_status()
                    data = response.json()
                except (httpx.HTTPError, ValueError) as exc:
                    raise OidcError(
                        "provider-unreachable",
                        "Le fournisseur d'identité ne répond pas ; réessayez plus tard.",
                    ) from exc
                if not isinstance(data, dict) or data.get("issuer", "").rstrip("/") != self.issuer:
                    # OpenID Connect Discovery §4.3: the issuer must be the one we asked.
                    raise OidcError(
                        "provider-misconfigured",
                        "La configuration du fournisseur d'identité est incohérente.",
                    )
                self._metadata, self._metadata_at = data, time.monotonic()
            return self._metadata

    def _keys(self, refresh: bool = False) -> KeySet:
        with self._lock:
            jwks = self._jwks
        if jwks is None or refresh:
            uri = self.metadata()["jwks_uri"]
            try:
                with self._http() as client:
                    response = client.get(uri)
                response.raise_for_status()
                jwks = KeySet.import_key_set(response.json())
            except (httpx.HTTPError, ValueError, JoseError) as exc:
                raise OidcError(
                    "provider-unreachable",
                    "Les clés du fournisseur d'identité sont inaccessibles.",
                ) from exc
            with self._lock:
                self._jwks = jwks
        return jwks

    # ---- the flow --------------------------------------------------------------------------

    def begin(self, redirect_uri: str, return_to: str = "/") -> str:
        """Record a login under way and return the provider's authorisation URL."""
        meta = self.metadata()
        state = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(48)
        nonce = secrets.token_urlsafe(24)
        now = int(self.clock() * 1000)
        with self.store.begin() as tx:
            tx.conn.execute(delete(auth_oidc_state).where(auth_oidc_state.c.expires_at < now))
            tx.conn.execute(
                insert(auth_oidc_state).values(
                    state_hash=_hash(state),
                    code_verifier=verifier,
                    nonce=nonce,
                    redirect_uri=redirect_uri,
                    return_to=return_to,
                    expires_at=now + STATE_SECONDS * 1000,
                )
            )
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": self.settings.oidc_scopes,
            "state": state,
            "nonce": nonce,
            "code_challenge": _b64(hashlib.sha256(verifier.encode("ascii")).digest()),
            "code_challenge_method": "S256",
        }
        endpoint = meta["authorization_endpoint"]
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(query)}"

    def _take_state(self, state: str) -> Any:
        now = int(self.clock() * 1000)
        with self.store.begin() as tx:
            row = tx.conn.execute(
                delete(auth_oidc_state)
                .where(auth_oidc_state.c.state_hash == _hash(state))
                .returning(*auth_oidc_state.c)
            ).first()
        if row is None or row.expires_at < now:
            raise OidcError(
                "bad-state",
                "Cette connexion n'a pas été demandée ici ou a expiré ; recommencez.",
            )
        return row

    def complete(self, params: Mapping[str, str]) -> OidcIdentity:
        """Finish a login from the callback's query parameters (``code``, ``state``...)."""
        state = params.get("state", "")
        if not state:
            raise OidcError("bad-state", "Paramètre state absent ; recommencez la connexion.")
        pending = self._take_state(state)
        if "error" in params:
            raise OidcError(
                f"provider-error:{params['error'][:40]}",
                "Le fournisseur d'identité a refusé la connexion.",
            )
        code = params.get("code", "")
        if not code:
            raise OidcError("no-code", "Réponse du fournisseur d'identité incomplète.")
        tokens = self._exchange(code, pending.redirect_uri, pending.code_verifier)
        id_claims = self._verify_id_token(tokens.get("id_token"), pending.nonce)
        subject = str(id_claims["sub"])
        claims: dict[str, Any] = dict(id_claims)
        access = tokens.get("access_token")
        if isinstance(access, str) and self.metadata().get("userinfo_endpoint"):
            userinfo = self._userinfo(access)
            if str(userinfo.get("sub", "")) != subject:
                # OpenID Connect Core §5.3.2: a userinfo about someone else is a substitution.
                raise OidcError(
                    "userinfo-mismatch", "Réponse du fournisseur d'identité incohérente."
                )
            claims.update(userinfo)
        idnps = claims.get("SubjectNameID")
        return OidcIdentity(
            subject=subject,
            idnps=str(idnps) if idnps else None,
            given_name=str(claims.get("given_name", "")),
            family_name=str(claims.get("family_name", "")),
            preferred_username=str(claims.get("preferred_username", "")),
            return_to=pending.return_to,
            claims=claims,
        )

    def _exchange(self, code: str, redirect_uri: str, verifier: str) -> dict[str, Any]:
        meta = self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        auth: httpx.BasicAuth | None = None
        methods = meta.get("token_endpoint_auth_methods_supported", ["client_secret_basic"])
        secret = self.settings.oidc_client_secret
        if secret and "client_secret_basic" in methods:
            auth = httpx.BasicAuth(self.client_id, secret)
        else:
            form["client_id"] = self.client_id
            if secret:
                form["client_secret"] = secret
        try:
            with self._http() as client:
                response = client.post(
                    meta["token_endpoint"],
                    data=form,
                    auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT,
                    headers={"Accept": "application/json"},
                )
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OidcError(
                "provider-unreachable", "Le fournisseur d'identité ne répond pas."
            ) from exc
        if response.status_code != 200 or not isinstance(body, dict):
            error = body.get("error", "") if isinstance(body, dict) else ""
            raise OidcError(
                f"token-refused:{str(error)[:40]}",
                "Le fournisseur d'identité a refusé l'échange du code d'autorisation.",
            )
        return body

    def _decode(self, token: str) -> dict[str, Any]:
        allowed = [
            a
            for a in self.metadata().get("id_token_signing_alg_values_supported", ["RS256"])
            if a in _ALGORITHMS
        ]
        for refresh in (False, True):
            try:
                # An unknown kid may be a key the provider just rotated in: fetch once more.
                return dict(jwt.decode(token, self._keys(refresh), algorithms=allowed).claims)
            except JoseError as exc:
                if refresh:
                    raise OidcError(
                        "bad-id-token", "Jeton d'identité invalide (signature)."
                    ) from exc
        raise AssertionError("unreachable")

    def _verify_id_token(self, token: object, nonce: str) -> dict[str, Any]:
        if not isinstance(token, str):
            raise OidcError("bad-id-token", "Le fournisseur d'identité n'a pas donné d'identité.")
        claims = self._decode(token)
        now = self.clock()
        exp, iat = claims.get("exp"), claims.get("iat")
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        problems = [
            ("iss", str(claims.get("iss", "")).rstrip("/") != self.issuer),
            ("aud", self.client_id not in audiences),
            ("azp", len(audiences) > 1 and claims.get("azp") != self.client_id),
            ("exp", not isinstance(exp, int | float) or exp + _LEEWAY < now),
            ("iat", isinstance(iat, int | float) and iat - _LEEWAY > now),
            (
                "nonce",
                not hmac.compare_digest(str(claims.get("nonce", "")).encode(), nonce.encode()),
            ),
            ("sub", not claims.get("sub")),
        ]
        bad = [name for name, failed in problems if failed]
        if bad:
            raise OidcError(f"bad-id-token:{','.join(bad)}", "Jeton d'identité invalide ou expiré.")
        return claims

    def _userinfo(self, access_token: str) -> dict[str, Any]:
        try:
            with self._http() as client:
                response = client.get(
                    self.metadata()["userinfo_endpoint"],
                    headers={"Authorization": f"Bearer {access_token}"},
                )
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise OidcError(
                "userinfo-failed", "Le fournisseur d'identité ne donne pas le profil."
            ) from exc
        content_type = response.headers.get("content-type", "").split(";")[0].strip()
        if content_type == "application/jwt":
            return self._decode(response.text.strip())
        try:
            data = response.json()
        except ValueError as exc:
            raise OidcError("userinfo-failed", "Profil du fournisseur illisible.") from exc
        if not isinstance(data, dict):
            raise OidcError("userinfo-failed", "Profil du fournisseur illisible.")
        return data


def find_practitioner(tx: Transaction, idnps: str) -> list[str]:
    """The active Practitioners carrying this IDNPS, or the RPPS it contains ("8" + RPPS)."""
    registry = tx.store.registry
    if registry is None:
        return []
    searches = [f"{IDNPS_SYSTEM}|{idnps}"]
    if idnps.startswith("8") and len(idnps) == 12:
        searches.append(f"{RPPS_SYSTEM}|{idnps[1:]}")
    found: list[str] = []
    for token in searches:
        request = parse_search("Practitioner", [("identifier", token), ("_count", "3")], registry)
        for match in tx.search(request).matches:
            ref = f"Practitioner/{match['id']}"
            if match.get("active", True) is not False and ref not in found:
                found.append(ref)
        if found:
            break
    return found
