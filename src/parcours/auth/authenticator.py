"""Who is calling: the one object every entry point asks.

``Authenticator.authenticate`` reads the ``Authorization`` header (the admin token, or a JWT
signed by the platform); ``session_principal`` reads a web session. Logins (local password +
TOTP, OpenID Connect, client credentials) go through here too, and each attempt, successful
or not, is told to ``login_listeners`` (the audit trail subscribes).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy import insert, select, update

from parcours.auth.accounts import (
    Account,
    AccountService,
    LoginRefused,
    scope_allowed,
)
from parcours.auth.oidc import OidcClient, OidcError, find_practitioner
from parcours.auth.tables import auth_session
from parcours.auth.tokens import TokenService
from parcours.config import Settings
from parcours.errors import Unauthenticated
from parcours.security.principal import ADMIN, Principal
from parcours.store import Store

__all__ = ["SESSION_COOKIE", "Authenticator", "ClientToken", "LoginEvent", "Session"]

SESSION_COOKIE = "parcours_session"
CLIENT_TOKEN_SECONDS = 3600
# last_seen is written at most this often per session: a page view is not worth a write.
_TOUCH_MS = 60_000


@dataclass(frozen=True, slots=True)
class LoginEvent:
    """One login attempt, for the audit trail."""

    # What the caller claimed to be: username, client id, or the provider's subject/IDNPS.
    username: str
    # The principal logged in, or None when the attempt failed.
    principal: Principal | None
    method: str  # local | oidc | client-credentials
    outcome: str  # success | failure
    source: str | None  # client address
    # Why it failed (bad-password, bad-totp, totp-replay, locked, rate-limited, unknown-user,
    # unknown-professional, invalid-scope...), or "" on success.
    reason: str
    at: float  # seconds since the epoch


@dataclass(frozen=True, slots=True)
class Session:
    token: str  # the cookie value: secret, never stored
    principal: Principal
    expires_at: float  # seconds since the epoch


@dataclass(frozen=True, slots=True)
class ClientToken:
    access_token: str
    expires_in: int
    scopes: frozenset[str]
    principal: Principal


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Authenticator:
    """Authentication of one platform (store + settings); one per process is enough."""

    def __init__(
        self, store: Store, settings: Settings, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.tokens = TokenService(store, settings, clock)
        self.accounts = AccountService(store, settings, clock)
        # Listeners run in the login's thread; an exception propagates and fails the login:
        # a login the audit trail could not record does not happen.
        self.login_listeners: list[Callable[[LoginEvent], None]] = []
        self._oidc: OidcClient | None = None

    # ---- requests --------------------------------------------------------------------------

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """The caller of a request whose (lower-case) headers are given, or ``Unauthenticated``."""
        raw = headers.get("authorization")
        if raw is None:
            raise Unauthenticated("this request needs an Authorization: Bearer <token> header")
        scheme, _, token = raw.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("the Authorization header must use the Bearer scheme")
        expected = self.settings.admin_token
        # compare_digest on bytes: constant time whatever the (possibly non-ASCII) input.
        if expected and hmac.compare_digest(token.encode("utf-8"), expected.encode("utf-8")):
            return ADMIN
        if token.count(".") != 2:
            raise Unauthenticated("the bearer token is not valid")
        return self.tokens.verify(token)

    def session_principal(self, session_token: str) -> Principal:
        """The principal of a web session, or ``Unauthenticated`` (unknown, expired, revoked)."""
        if not session_token:
            raise Unauthenticated("no session: log in first")
        now = int(self.clock() * 1000)
        with self.store.begin(readonly=True) as tx:
            row = tx.conn.execute(
                select(auth_session).where(auth_session.c.id_hash == _hash(session_token))
            ).first()
        if row is None:
            raise Unauthenticated("the session is unknown; log in again")
        if row.revoked_at is not None:
            raise Unauthenticated("the session was closed; log in again")
        if row.expires_at <= now:
            raise Unauthenticated("the session has expired; log in again")
        if now - row.last_seen_at > _TOUCH_MS:
            with self.store.begin() as tx:
                tx.conn.execute(
                    update(auth_session)
                    .where(auth_session.c.id_hash == row.id_hash)
                    .values(last_seen_at=now)
                )
        return Principal(
            subject=row.subject,
            roles=frozenset(row.roles.split()),
            practitioner=row.practitioner,
            display=row.display,
            method="session",
            session=row.sid,
        )

    def session_expiry(self, session_token: str) -> float | None:
        with self.store.begin(readonly=True) as tx:
            expires = tx.conn.execute(
                select(auth_session.c.expires_at).where(
                    auth_session.c.id_hash == _hash(session_token)
                )
            ).scalar()
        return expires / 1000 if expires is not None else None

    # ---- sessions --------------------------------------------------------------------------

    def open_session(self, principal: Principal, account: Account | None, method: str) -> Session:
        token = secrets.token_urlsafe(32)
        sid = secrets.token_hex(12)
        now = int(self.clock() * 1000)
        expires = now + self.settings.session_seconds * 1000
        with self.store.begin() as tx:
            tx.conn.execute(
                insert(auth_session).values(
                    id_hash=_hash(token),
                    sid=sid,
                    account_pk=account.pk if account else None,
                    subject=principal.subject,
                    roles=" ".join(sorted(principal.roles)),
                    practitioner=principal.practitioner,
                    display=principal.display,
                    method=method,
                    created_at=now,
                    expires_at=expires,
                    last_seen_at=now,
                )
            )
        return Session(
            token,
            Principal(
                subject=principal.subject,
                roles=principal.roles,
                practitioner=principal.practitioner,
                display=principal.display,
                method="session",
                session=sid,
            ),
            expires / 1000,
        )

    def logout(self, session_token: str) -> bool:
        """Revoke a session; False when it was unknown or already closed."""
        now = int(self.clock() * 1000)
        try:
            principal: Principal | None = self.session_principal(session_token)
        except Unauthenticated:
            principal = None
        with self.store.begin() as tx:
            done = tx.conn.execute(
                update(auth_session)
                .where(
                    auth_session.c.id_hash == _hash(session_token),
                    auth_session.c.revoked_at.is_(None),
                )
                .values(revoked_at=now)
            ).rowcount
        if done and principal is not None:
            self.emit(principal.subject, principal, "logout", None)
        return bool(done)

    # ---- logins ----------------------------------------------------------------------------

    def emit(
        self,
        username: str,
        principal: Principal | None,
        method: str,
        source: str | None,
        reason: str = "",
    ) -> None:
        event = LoginEvent(
            username=username,
            principal=principal,
            method=method,
            outcome="success" if principal is not None else "failure",
            source=source,
            reason=reason,
            at=self.clock(),
        )
        for listener in list(self.login_listeners):
            listener(event)

    def login_local(
        self, username: str, password: str, totp_code: str | None, source: str | None
    ) -> Session:
        """Password + TOTP login opening a session, or ``LoginRefused`` (French message)."""
        try:
            self.accounts.note_attempt(source or "unknown")
            account = self.accounts.check_login(username, password, totp_code)
        except LoginRefused as refused:
            self.emit(username, None, "local", source, refused.reason)
            raise
        session = self.open_session(account.principal("session"), account, "local")
        self.emit(username, session.principal, "local", source)
        return session

    def client_credentials(
        self, client_id: str, secret: str, scope: str | None, source: str | None
    ) -> ClientToken:
        """OAuth2 client credentials: a token limited to the requested (granted) scopes.

        ``LoginRefused.reason`` is "invalid-scope" when a requested scope is not granted.
        """
        try:
            self.accounts.note_attempt(source or "unknown")
            client = self.accounts.check_client(client_id, secret)
            requested = frozenset(scope.split()) if scope else client.scopes
            if not all(scope_allowed(s, client.scopes) for s in requested):
                raise LoginRefused(
                    "invalid-scope",
                    "the requested scope exceeds the scopes granted to this client",
                    username=client_id,
                )
        except LoginRefused as refused:
            self.emit(client_id, None, "client-credentials", source, refused.reason)
            raise
        ttl = min(CLIENT_TOKEN_SECONDS, self.settings.token_max_seconds)
        principal = Principal(
            subject=f"client/{client.client_id}",
            roles=client.roles,
            scopes=requested,
            display=client.display,
            method="client-credentials",
        )
        token = self.tokens.issue(principal, ttl)
        self.emit(client_id, principal, "client-credentials", source)
        return ClientToken(token, ttl, requested, principal)

    # ---- OpenID Connect --------------------------------------------------------------------

    @property
    def oidc(self) -> OidcClient | None:
        """The relying party of the configured provider, or None (no OIDC login)."""
        if self._oidc is None and self.settings.oidc_issuer and self.settings.oidc_client_id:
            self._oidc = OidcClient(self.store, self.settings, self.clock)
        return self._oidc

    def login_oidc(self, params: Mapping[str, str], source: str | None) -> tuple[Session, str]:
        """Finish an OIDC login (callback query parameters): the session and where to go next.

        ``OidcError`` when the provider's answer does not hold, or when the professional is
        not known to the platform (no Practitioner with that IDNPS/RPPS): no account is made.
        """
        client = self.oidc
        if client is None:
            raise OidcError(
                "not-configured", "La connexion Pro Santé Connect n'est pas configurée."
            )
        try:
            self.accounts.note_attempt(source or "unknown")
            identity = client.complete(params)
        except LoginRefused as refused:
            self.emit("", None, "oidc", source, refused.reason)
            raise OidcError(refused.reason, refused.message) from None
        except OidcError as error:
            self.emit(error.subject, None, "oidc", source, error.reason)
            raise
        who = identity.idnps or identity.subject
        try:
            if not identity.idnps:
                raise OidcError(
                    "no-idnps",
                    "Le fournisseur d'identité ne donne pas d'identifiant national (IDNPS).",
                    subject=who,
                )
            with self.store.begin(readonly=True) as tx:
                found = find_practitioner(tx, identity.idnps)
            if len(found) != 1:
                raise OidcError(
                    "unknown-professional" if not found else "ambiguous-professional",
                    "Votre identifiant national de professionnel de santé (IDNPS "
                    f"{identity.idnps}) n'est pas connu de la plateforme Parcours : "
                    "demandez à votre structure de coordination de vous y inscrire.",
                    subject=who,
                )
            account = self.accounts.oidc_account(
                identity.idnps, found[0], identity.display, identity.preferred_username
            )
            if not account.active:
                raise OidcError("inactive", "Ce compte est désactivé.", subject=who)
        except OidcError as error:
            self.emit(who, None, "oidc", source, error.reason)
            raise
        session = self.open_session(account.principal("session"), account, "oidc")
        self.emit(who, session.principal, "oidc", source)
        return session, identity.return_to
