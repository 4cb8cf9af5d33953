"""Local accounts (argon2id + TOTP), system clients, lockout and the per-address rate limit.

All the state is in the database (failure counters, lockouts, last TOTP step, attempts), so
several API processes agree on it and a restart does not reset a lockout. Password hashes are
verified outside any write transaction: argon2 is slow on purpose and SQLite has one writer.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, insert, select, update

from parcours.auth.tables import auth_account, auth_attempt, auth_client
from parcours.config import Settings
from parcours.errors import Conflict, InvalidInput
from parcours.security.principal import ROLES, Principal
from parcours.store import Store

__all__ = [
    "Account",
    "AccountService",
    "Client",
    "LoginRefused",
    "NewAccount",
    "NewClient",
    "RateLimited",
    "parse_roles",
    "scope_allowed",
]

TOTP_STEP = 30
# Attempts per source address and minute (logins and client credentials together).
RATE_LIMIT = 20
RATE_WINDOW_MS = 60_000
ISSUER_NAME = "Parcours"

# argon2-cffi's defaults are RFC 9106's second recommended profile, argon2id.
_HASHER = PasswordHasher()
# Hashed when the username is unknown, so that answer takes as long as a wrong password.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


class LoginRefused(Exception):
    """A login that failed; ``reason`` is for the audit trail, ``message`` for the user."""

    def __init__(self, reason: str, message: str, *, username: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.username = username


class RateLimited(LoginRefused):
    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "rate-limited",
            "Trop de tentatives de connexion depuis cette adresse ; réessayez dans une minute.",
        )
        self.retry_after = retry_after


_BAD_CREDENTIALS = "Identifiant, mot de passe ou code à usage unique incorrect."


@dataclass(frozen=True, slots=True)
class Account:
    pk: int
    username: str
    practitioner: str | None
    roles: frozenset[str]
    display: str
    idnps: str | None
    active: bool

    def principal(self, method: str, session: str | None = None) -> Principal:
        # A professional is known by their Practitioner, whatever the login; others by account.
        subject = self.practitioner or f"account/{self.username}"
        return Principal(
            subject=subject,
            roles=self.roles,
            practitioner=self.practitioner,
            display=self.display or self.username,
            method=method,
            session=session,
        )


@dataclass(frozen=True, slots=True)
class NewAccount:
    account: Account
    password: str | None  # set when generated: shown once
    totp_secret: str | None
    provisioning_uri: str | None


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    scopes: frozenset[str]
    roles: frozenset[str]
    display: str


@dataclass(frozen=True, slots=True)
class NewClient:
    client: Client
    secret: str  # shown once


def parse_roles(roles: Iterable[str]) -> frozenset[str]:
    chosen = frozenset(r.strip() for r in roles if r.strip())
    unknown = chosen - ROLES
    if unknown:
        raise InvalidInput(
            f"unknown role(s) {', '.join(sorted(unknown))}; use {', '.join(sorted(ROLES))}"
        )
    return chosen


def _practitioner_ref(ref: str | None) -> str | None:
    if ref is None:
        return None
    kind, _, ident = ref.partition("/")
    if kind != "Practitioner" or not ident or "/" in ident:
        raise InvalidInput(f"{ref[:80]!r} is not a reference of the form Practitioner/ID")
    return ref


def _account(row: Any) -> Account:
    return Account(
        pk=int(row.pk),
        username=row.username,
        practitioner=row.practitioner,
        roles=frozenset(row.roles.split()),
        display=row.display,
        idnps=row.idnps,
        active=bool(row.active),
    )


def scope_allowed(requested: str, granted: Iterable[str]) -> bool:
    """Whether a SMART scope (``system/Patient.read``) is covered by granted ones
    (``system/*.read``, ``system/Patient.*``, ``system/*.*``)."""
    try:
        context, rest = requested.split("/", 1)
        res, access = rest.rsplit(".", 1)
    except ValueError:
        return requested in set(granted)
    for scope in granted:
        if scope == requested:
            return True
        try:
            g_context, g_rest = scope.split("/", 1)
            g_res, g_access = g_rest.rsplit(".", 1)
        except ValueError:
            continue
        if (
            g_context == context
            and g_res in ("*", res)
            and (g_access in ("*", access) or (g_access == "*" and access in ("read", "write")))
        ):
            return True
    return False


class AccountService:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        clock: Callable[[], float] = time.time,
        *,
        rate_limit: int = RATE_LIMIT,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.rate_limit = rate_limit

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    # ---- accounts --------------------------------------------------------------------------

    def create(
        self,
        username: str,
        roles: Iterable[str],
        *,
        practitioner: str | None = None,
        display: str = "",
        password: str | None = None,
        totp: bool = True,
        idnps: str | None = None,
    ) -> NewAccount:
        """Create an account; a password is generated when none is given (and returned)."""
        username = username.strip()
        if not username or len(username) > 255:
            raise InvalidInput("a username of 1 to 255 characters is required")
        role_set = parse_roles(roles)
        if not role_set:
            raise InvalidInput("an account needs at least one role")
        practitioner = _practitioner_ref(practitioner)
        generated = None
        if password is None and idnps is None:
            password = generated = secrets.token_urlsafe(15)
        if password is not None and len(password) < 12:
            raise InvalidInput("a password needs at least 12 characters")
        secret = pyotp.random_base32() if totp else None
        now = self._now_ms()
        with self.store.begin() as tx:
            exists = tx.conn.execute(
                select(auth_account.c.pk).where(auth_account.c.username == username)
            ).first()
            if exists is not None:
                raise Conflict(f"an account named {username!r} exists already")
            pk = tx.conn.execute(
                insert(auth_account)
                .values(
                    username=username,
                    practitioner=practitioner,
                    roles=" ".join(sorted(role_set)),
                    display=display,
                    password_hash=_HASHER.hash(password) if password is not None else None,
                    totp_secret=secret,
                    failed_count=0,
                    idnps=idnps,
                    active=True,
                    created_at=now,
                )
                .returning(auth_account.c.pk)
            ).scalar_one()
        account = Account(int(pk), username, practitioner, role_set, display, idnps, True)
        uri = (
            pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER_NAME)
            if secret
            else None
        )
        return NewAccount(account, generated, secret, uri)

    def get(self, username: str) -> Account | None:
        with self.store.begin(readonly=True) as tx:
            row = tx.conn.execute(
                select(auth_account).where(auth_account.c.username == username)
            ).first()
        return _account(row) if row is not None else None

    def find_for_practitioner(self, practitioner: str) -> Account | None:
        with self.store.begin(readonly=True) as tx:
            row = tx.conn.execute(
                select(auth_account)
                .where(auth_account.c.practitioner == practitioner, auth_account.c.active)
                .order_by(auth_account.c.pk)
                .limit(1)
            ).first()
        return _account(row) if row is not None else None

    def unlock(self, username: str) -> bool:
        with self.store.begin() as tx:
            done = tx.conn.execute(
                update(auth_account)
                .where(auth_account.c.username == username)
                .values(failed_count=0, locked_until=None)
            ).rowcount
        return bool(done)

    def set_active(self, username: str, active: bool) -> bool:
        with self.store.begin() as tx:
            done = tx.conn.execute(
                update(auth_account)
                .where(auth_account.c.username == username)
                .values(active=active)
            ).rowcount
        return bool(done)

    def oidc_account(
        self, idnps: str, practitioner: str, display: str, username_hint: str = ""
    ) -> Account:
        """The account of a professional logging in through OIDC, created on first login.

        An existing account for the same IDNPS or Practitioner keeps its roles (a coordinator
        stays a coordinator); otherwise the new account is a "professional".
        """
        now = self._now_ms()
        with self.store.begin() as tx:
            tx.lock_key(f"parcours.auth.idnps.{idnps}")
            row = tx.conn.execute(
                select(auth_account).where(auth_account.c.idnps == idnps).limit(1)
            ).first()
            if row is None:
                row = tx.conn.execute(
                    select(auth_account)
                    .where(auth_account.c.practitioner == practitioner)
                    .order_by(auth_account.c.pk)
                    .limit(1)
                ).first()
            if row is not None:
                values: dict[str, Any] = {"last_login_at": now, "idnps": idnps}
                if row.practitioner is None:
                    values["practitioner"] = practitioner
                if not row.display:
                    values["display"] = display
                tx.conn.execute(
                    update(auth_account).where(auth_account.c.pk == row.pk).values(**values)
                )
            else:
                username = f"idnps:{idnps}"
                tx.conn.execute(
                    insert(auth_account).values(
                        username=username,
                        practitioner=practitioner,
                        roles="professional",
                        display=display or username_hint,
                        failed_count=0,
                        idnps=idnps,
                        active=True,
                        created_at=now,
                        last_login_at=now,
                    )
                )
            row = tx.conn.execute(
                select(auth_account).where(auth_account.c.idnps == idnps).limit(1)
            ).one()
        return _account(row)

    # ---- rate limit ------------------------------------------------------------------------

    def note_attempt(self, source: str) -> None:
        """Count an attempt from ``source``; ``RateLimited`` when it is over the limit."""
        now = self._now_ms()
        source = source[:64]
        with self.store.begin() as tx:
            # Old rows only serve nobody; pruning as we go keeps the table at a minute's worth.
            tx.conn.execute(delete(auth_attempt).where(auth_attempt.c.at < now - RATE_WINDOW_MS))
            rows = tx.conn.execute(
                select(func.count(), func.min(auth_attempt.c.at)).where(
                    auth_attempt.c.source == source, auth_attempt.c.at >= now - RATE_WINDOW_MS
                )
            ).one()
            count, oldest = int(rows[0]), rows[1]
            if count >= self.rate_limit:
                retry = max(1, (int(oldest) + RATE_WINDOW_MS - now + 999) // 1000)
                raise RateLimited(retry)
            tx.conn.execute(insert(auth_attempt).values(source=source, at=now))

    # ---- password + TOTP -------------------------------------------------------------------

    def check_login(self, username: str, password: str, totp_code: str | None) -> Account:
        """The account whose credentials these are, or ``LoginRefused``.

        Every failure (bad password, bad or replayed code) counts towards the lockout; a
        locked account is refused even with the right password until ``locked_until``.
        """
        now = self._now_ms()
        with self.store.begin(readonly=True) as tx:
            row = tx.conn.execute(
                select(auth_account).where(auth_account.c.username == username)
            ).first()
        if row is None or row.password_hash is None:
            _verify(_DUMMY_HASH, password)
            raise LoginRefused("unknown-user", _BAD_CREDENTIALS, username=username)
        if not row.active:
            _verify(_DUMMY_HASH, password)
            raise LoginRefused("inactive", _BAD_CREDENTIALS, username=username)
        if row.locked_until is not None and row.locked_until > now:
            minutes = max(1, (row.locked_until - now + 59_999) // 60_000)
            raise LoginRefused(
                "locked",
                "Compte temporairement verrouillé après trop d'échecs ; "
                f"réessayez dans {minutes} minute{'s' if minutes > 1 else ''}.",
                username=username,
            )
        if not _verify(row.password_hash, password):
            self._failure(row.pk, now)
            raise LoginRefused("bad-password", _BAD_CREDENTIALS, username=username)
        step: int | None = None
        if row.totp_secret:
            if not totp_code or not totp_code.strip():
                self._failure(row.pk, now)
                raise LoginRefused(
                    "totp-missing",
                    "Le code à usage unique (application d'authentification) est requis.",
                    username=username,
                )
            step = _totp_step(row.totp_secret, totp_code.strip(), now)
            if step is None:
                self._failure(row.pk, now)
                raise LoginRefused("bad-totp", _BAD_CREDENTIALS, username=username)
        with self.store.begin() as tx:
            values: dict[str, Any] = {
                "failed_count": 0,
                "locked_until": None,
                "last_login_at": now,
            }
            if _HASHER.check_needs_rehash(row.password_hash):
                values["password_hash"] = _HASHER.hash(password)
            stmt = update(auth_account).where(auth_account.c.pk == row.pk)
            if step is not None:
                # The condition makes the replay check atomic: of two logins racing with the
                # same code, only one moves the step forward.
                stmt = stmt.where(
                    (auth_account.c.totp_last_step.is_(None))
                    | (auth_account.c.totp_last_step < step)
                )
                values["totp_last_step"] = step
            done = tx.conn.execute(stmt.values(**values)).rowcount
        if not done:
            self._failure(row.pk, now)
            raise LoginRefused(
                "totp-replay",
                "Ce code à usage unique a déjà servi ; attendez le suivant.",
                username=username,
            )
        return _account(row)

    def _failure(self, pk: int, now: int) -> None:
        with self.store.begin() as tx:
            tx.conn.execute(
                update(auth_account)
                .where(auth_account.c.pk == pk)
                .values(failed_count=auth_account.c.failed_count + 1)
            )
            count = tx.conn.execute(
                select(auth_account.c.failed_count).where(auth_account.c.pk == pk)
            ).scalar_one()
            if count >= self.settings.login_max_failures:
                tx.conn.execute(
                    update(auth_account)
                    .where(auth_account.c.pk == pk)
                    .values(failed_count=0, locked_until=now + self.settings.lockout_seconds * 1000)
                )

    def totp_now(self, username: str) -> str:
        """The current code of an account (tests and operations); "" without a second factor."""
        account = self.get(username)
        if account is None:
            raise InvalidInput(f"no account named {username!r}")
        with self.store.begin(readonly=True) as tx:
            secret = tx.conn.execute(
                select(auth_account.c.totp_secret).where(auth_account.c.pk == account.pk)
            ).scalar_one()
        return pyotp.TOTP(secret).at(int(self.clock())) if secret else ""

    # ---- system clients --------------------------------------------------------------------

    def create_client(
        self,
        client_id: str,
        scopes: Iterable[str],
        *,
        roles: Iterable[str] = ("system",),
        display: str = "",
    ) -> NewClient:
        client_id = client_id.strip()
        if not client_id or len(client_id) > 128 or ":" in client_id:
            raise InvalidInput("a client id of 1 to 128 characters, without ':', is required")
        scope_set = frozenset(s for scope in scopes for s in scope.split())
        if not scope_set:
            raise InvalidInput("a client needs at least one scope (e.g. system/*.read)")
        role_set = parse_roles(roles)
        secret = secrets.token_urlsafe(32)
        with self.store.begin() as tx:
            exists = tx.conn.execute(
                select(auth_client.c.client_id).where(auth_client.c.client_id == client_id)
            ).first()
            if exists is not None:
                raise Conflict(f"a client {client_id!r} exists already")
            tx.conn.execute(
                insert(auth_client).values(
                    client_id=client_id,
                    secret_hash=_HASHER.hash(secret),
                    scopes=" ".join(sorted(scope_set)),
                    roles=" ".join(sorted(role_set)),
                    display=display or client_id,
                    active=True,
                    created_at=self._now_ms(),
                )
            )
        return NewClient(Client(client_id, scope_set, role_set, display or client_id), secret)

    def check_client(self, client_id: str, secret: str) -> Client:
        with self.store.begin(readonly=True) as tx:
            row = tx.conn.execute(
                select(auth_client).where(auth_client.c.client_id == client_id)
            ).first()
        if row is None or not row.active:
            _verify(_DUMMY_HASH, secret)
            raise LoginRefused("unknown-client", "client authentication failed", username=client_id)
        if not _verify(row.secret_hash, secret):
            raise LoginRefused("bad-secret", "client authentication failed", username=client_id)
        return Client(
            row.client_id, frozenset(row.scopes.split()), frozenset(row.roles.split()), row.display
        )


def _verify(hashed: str, password: str) -> bool:
    try:
        return _HASHER.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def _totp_step(secret: str, code: str, now_ms: int) -> int | None:
    """The time step (±1 for clock drift) whose code this is, or None."""
    if not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, interval=TOTP_STEP)
    current = now_ms // 1000 // TOTP_STEP
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.at(step * TOTP_STEP), code):
            return step
    return None
