"""Settings, read once from ``PARCOURS_*`` environment variables into one typed object."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ConfigError", "Settings", "load_settings"]

DEFAULT_DATABASE_URL = "sqlite:///./var/parcours.db"


class ConfigError(ValueError):
    """A ``PARCOURS_*`` variable holds a value we cannot use; the message names it."""


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"{name}={raw!r} is not a valid boolean (use true or false)")


def _int(name: str, raw: str, minimum: int = 0) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be at least {minimum}")
    return value


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting of the platform. See docs/operations.md for the reference."""

    database_url: str = DEFAULT_DATABASE_URL
    admin_token: str | None = None
    base_url: str = "http://127.0.0.1:8000"
    production: bool = False
    log_level: str = "INFO"
    log_json: bool = True
    sqlite_synchronous: str = "FULL"
    page_size_default: int = 20
    page_size_max: int = 1000
    outbox_workers: int = 1
    outbox_poll_seconds: float = 0.2
    # Authentication and access (issue 5); see docs/authentication.md.
    session_seconds: int = 8 * 3600
    token_max_seconds: int = 12 * 3600
    login_max_failures: int = 5
    lockout_seconds: int = 15 * 60
    signing_key_days: int = 30
    break_glass_seconds: int = 4 * 3600
    # OpenID Connect provider (Pro Santé Connect or any other); empty issuer: no OIDC login.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_scopes: str = "openid scope_all"
    # Notification delivery (issue 6); see docs/notifications.md. No SMTP host: e-mail
    # notifications fail (and wait as dead letters) until one is configured.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "parcours@localhost"
    smtp_starttls: bool = False
    # Network timeout of one rest-hook POST or SMTP session: on SQLite the delivery runs inside
    # the dispatcher's write transaction, so a slow receiver must not hold the database long.
    rest_hook_timeout_seconds: float = 5.0
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def sqlite_path(self) -> Path | None:
        """The database file of a ``sqlite:///`` URL, or None for memory/PostgreSQL."""
        if not self.is_sqlite:
            return None
        path = self.database_url.split("///", 1)[-1].split("?", 1)[0]
        return None if path in {"", ":memory:"} else Path(path)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from the environment; a bad value stops with the variable's name."""
    env = os.environ if environ is None else environ

    def get(name: str) -> str | None:
        return env.get(f"PARCOURS_{name}")

    kwargs: dict[str, object] = {}
    if (url := get("DATABASE_URL")) is not None:
        if not url.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:", "postgres:")):
            raise ConfigError(
                f"PARCOURS_DATABASE_URL={url.split('@')[-1]!r} is not supported: "
                "use sqlite:///path/to/file.db or postgresql://user@host/db"
            )
        kwargs["database_url"] = url
    if (token := get("ADMIN_TOKEN")) is not None:
        if token and len(token) < 16:
            raise ConfigError("PARCOURS_ADMIN_TOKEN must be at least 16 characters long")
        kwargs["admin_token"] = token or None
    if (base := get("BASE_URL")) is not None:
        kwargs["base_url"] = base.rstrip("/")
    if (prod := get("PRODUCTION")) is not None:
        kwargs["production"] = _bool("PARCOURS_PRODUCTION", prod)
    if (level := get("LOG_LEVEL")) is not None:
        if level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ConfigError(f"PARCOURS_LOG_LEVEL={level!r}: use DEBUG, INFO, WARNING or ERROR")
        kwargs["log_level"] = level.upper()
    if (log_json := get("LOG_JSON")) is not None:
        kwargs["log_json"] = _bool("PARCOURS_LOG_JSON", log_json)
    if (sync := get("SQLITE_SYNCHRONOUS")) is not None:
        if sync.upper() not in {"FULL", "NORMAL", "EXTRA"}:
            raise ConfigError(f"PARCOURS_SQLITE_SYNCHRONOUS={sync!r}: use FULL, EXTRA or NORMAL")
        kwargs["sqlite_synchronous"] = sync.upper()
    if (size := get("PAGE_SIZE_DEFAULT")) is not None:
        kwargs["page_size_default"] = _int("PARCOURS_PAGE_SIZE_DEFAULT", size, 1)
    if (size := get("PAGE_SIZE_MAX")) is not None:
        kwargs["page_size_max"] = _int("PARCOURS_PAGE_SIZE_MAX", size, 1)
    if (workers := get("OUTBOX_WORKERS")) is not None:
        kwargs["outbox_workers"] = _int("PARCOURS_OUTBOX_WORKERS", workers, 0)
    for name, minimum in (
        ("SESSION_SECONDS", 60),
        ("TOKEN_MAX_SECONDS", 60),
        ("LOGIN_MAX_FAILURES", 1),
        ("LOCKOUT_SECONDS", 1),
        ("SIGNING_KEY_DAYS", 1),
        ("BREAK_GLASS_SECONDS", 60),
    ):
        if (raw := get(name)) is not None:
            kwargs[name.lower()] = _int(f"PARCOURS_{name}", raw, minimum)
    for name in ("OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET"):
        if (raw := get(name)) is not None:
            kwargs[name.lower()] = raw.rstrip("/") if name == "OIDC_ISSUER" else raw
    if (scopes := get("OIDC_SCOPES")) is not None:
        kwargs["oidc_scopes"] = scopes
    if (smtp_host := get("SMTP_HOST")) is not None:
        kwargs["smtp_host"] = smtp_host.strip() or None
    if (smtp_port := get("SMTP_PORT")) is not None:
        kwargs["smtp_port"] = _int("PARCOURS_SMTP_PORT", smtp_port, 1)
    if (smtp_from := get("SMTP_FROM")) is not None:
        if "@" not in smtp_from:
            raise ConfigError(f"PARCOURS_SMTP_FROM={smtp_from!r} is not an e-mail address")
        kwargs["smtp_from"] = smtp_from.strip()
    if (starttls := get("SMTP_STARTTLS")) is not None:
        kwargs["smtp_starttls"] = _bool("PARCOURS_SMTP_STARTTLS", starttls)
    if (hook_timeout := get("REST_HOOK_TIMEOUT_SECONDS")) is not None:
        try:
            seconds = float(hook_timeout)
        except ValueError:
            raise ConfigError(
                f"PARCOURS_REST_HOOK_TIMEOUT_SECONDS={hook_timeout!r} is not a number"
            ) from None
        if not 0 < seconds <= 60:
            raise ConfigError("PARCOURS_REST_HOOK_TIMEOUT_SECONDS must be in (0, 60]")
        kwargs["rest_hook_timeout_seconds"] = seconds
    return Settings(**kwargs)  # type: ignore[arg-type]
