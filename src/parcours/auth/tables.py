"""Tables of authentication, on the store's metadata (created by migration 0005).

Everything a login needs lives in the database, not in a process: the signing keys (so the
CLI, several API processes and a restarted server sign and verify with the same keys), the
failure counters and lockouts, the per-address attempts of the rate limit, the sessions and
the pending OpenID Connect logins. Times are milliseconds since the epoch, UTC, like the store.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, String, Table, Text

from parcours.store.schema import metadata

__all__ = [
    "auth_account",
    "auth_attempt",
    "auth_client",
    "auth_oidc_state",
    "auth_session",
    "auth_signing_key",
]

# SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")

auth_signing_key = Table(
    "auth_signing_key",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("algorithm", String(16), nullable=False),
    # The private JWK as JSON. Whoever reads the database can mint tokens: the database is
    # already the platform's most sensitive asset, and sharing it is what makes keys common.
    Column("private_jwk", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # No new token is signed with the key after this instant (rotation).
    Column("sign_until", BigInteger, nullable=False),
    # Tokens signed by the key are accepted until this instant (sign_until + longest token).
    Column("verify_until", BigInteger, nullable=False),
    # Set to withdraw a key at once (compromise); its tokens are refused from then on.
    Column("retired_at", BigInteger, nullable=True),
    Index("ix_auth_signing_key_until", "sign_until"),
)

auth_account = Table(
    "auth_account",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("username", String(255), nullable=False),
    # "Practitioner/123": the professional this account is, if any.
    Column("practitioner", String(128), nullable=True),
    # Space-separated platform roles.
    Column("roles", Text, nullable=False),
    Column("display", String(255), nullable=False),
    # argon2id hash; None for accounts that only log in through OpenID Connect.
    Column("password_hash", Text, nullable=True),
    # Base32 TOTP secret (RFC 6238); None: no second factor (OIDC-only accounts).
    Column("totp_secret", String(64), nullable=True),
    # Last accepted TOTP time step: a code is refused in a step already used (replay).
    Column("totp_last_step", BigInteger, nullable=True),
    Column("failed_count", Integer, nullable=False),
    Column("locked_until", BigInteger, nullable=True),
    # The IDNPS of Pro Santé Connect (or the subject of another provider) once mapped.
    Column("idnps", String(64), nullable=True),
    Column("active", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("last_login_at", BigInteger, nullable=True),
    Index("ux_auth_account_username", "username", unique=True),
    Index("ix_auth_account_idnps", "idnps"),
    Index("ix_auth_account_practitioner", "practitioner"),
)

auth_session = Table(
    "auth_session",
    metadata,
    # SHA-256 (hex) of the cookie value: a database dump does not give live sessions away.
    Column("id_hash", String(64), primary_key=True),
    # A public identifier of the session for audit entries (the cookie value is secret).
    Column("sid", String(32), nullable=False),
    Column("account_pk", BigId, nullable=True),
    # The principal, frozen at login: a role change takes effect at the next login.
    Column("subject", String(255), nullable=False),
    Column("roles", Text, nullable=False),
    Column("practitioner", String(128), nullable=True),
    Column("display", String(255), nullable=False),
    # local | oidc
    Column("method", String(32), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("last_seen_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
    Index("ix_auth_session_expires", "expires_at"),
    Index("ix_auth_session_account", "account_pk"),
)

auth_client = Table(
    "auth_client",
    metadata,
    Column("client_id", String(128), primary_key=True),
    # argon2id hash of the secret, which is shown once at creation.
    Column("secret_hash", Text, nullable=False),
    # Space-separated SMART scopes the client may ask for ("system/*.read").
    Column("scopes", Text, nullable=False),
    Column("roles", Text, nullable=False),
    Column("display", String(255), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

# One row per login attempt (any method), for the per-address rate limit; pruned as it goes.
auth_attempt = Table(
    "auth_attempt",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("source", String(64), nullable=False),
    Column("at", BigInteger, nullable=False),
    Index("ix_auth_attempt_source_at", "source", "at"),
    Index("ix_auth_attempt_at", "at"),
)

# OpenID Connect logins under way: state -> PKCE verifier and nonce, used once.
auth_oidc_state = Table(
    "auth_oidc_state",
    metadata,
    # SHA-256 (hex) of the state parameter.
    Column("state_hash", String(64), primary_key=True),
    Column("code_verifier", String(128), nullable=False),
    Column("nonce", String(128), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    # Where to send the browser after the login (a local path).
    Column("return_to", Text, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_auth_oidc_state_expires", "expires_at"),
)
