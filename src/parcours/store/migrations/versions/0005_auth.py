"""Authentication: signing keys, accounts, sessions, system clients, attempts, OIDC states.

Revision ID: 0005
Revises: 0004

Frozen copy of ``parcours.auth.tables`` at this revision: later changes go in new
migrations, never here.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "auth_signing_key",
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("private_jwk", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("sign_until", sa.BigInteger(), nullable=False),
        sa.Column("verify_until", sa.BigInteger(), nullable=False),
        sa.Column("retired_at", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_auth_signing_key_until", "auth_signing_key", ["sign_until"])
    op.create_table(
        "auth_account",
        sa.Column("pk", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("practitioner", sa.String(128), nullable=True),
        sa.Column("roles", sa.Text(), nullable=False),
        sa.Column("display", sa.String(255), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("totp_secret", sa.String(64), nullable=True),
        sa.Column("totp_last_step", sa.BigInteger(), nullable=True),
        sa.Column("failed_count", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.BigInteger(), nullable=True),
        sa.Column("idnps", sa.String(64), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_login_at", sa.BigInteger(), nullable=True),
    )
    op.create_index("ux_auth_account_username", "auth_account", ["username"], unique=True)
    op.create_index("ix_auth_account_idnps", "auth_account", ["idnps"])
    op.create_index("ix_auth_account_practitioner", "auth_account", ["practitioner"])
    op.create_table(
        "auth_session",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("sid", sa.String(32), nullable=False),
        sa.Column("account_pk", _BIG_ID, nullable=True),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("roles", sa.Text(), nullable=False),
        sa.Column("practitioner", sa.String(128), nullable=True),
        sa.Column("display", sa.String(255), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_auth_session_expires", "auth_session", ["expires_at"])
    op.create_index("ix_auth_session_account", "auth_session", ["account_pk"])
    op.create_table(
        "auth_client",
        sa.Column("client_id", sa.String(128), primary_key=True),
        sa.Column("secret_hash", sa.Text(), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("roles", sa.Text(), nullable=False),
        sa.Column("display", sa.String(255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "auth_attempt",
        sa.Column("pk", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_auth_attempt_source_at", "auth_attempt", ["source", "at"])
    op.create_index("ix_auth_attempt_at", "auth_attempt", ["at"])
    op.create_table(
        "auth_oidc_state",
        sa.Column("state_hash", sa.String(64), primary_key=True),
        sa.Column("code_verifier", sa.String(128), nullable=False),
        sa.Column("nonce", sa.String(128), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("return_to", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_auth_oidc_state_expires", "auth_oidc_state", ["expires_at"])


def downgrade() -> None:
    op.drop_table("auth_oidc_state")
    op.drop_table("auth_attempt")
    op.drop_table("auth_client")
    op.drop_table("auth_session")
    op.drop_table("auth_account")
    op.drop_table("auth_signing_key")
