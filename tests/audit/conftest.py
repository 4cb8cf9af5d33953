"""Fixtures of the audit trail tests: a migrated database of each kind, its trail, and a way
to tamper with the trail the way an intruder with database access would."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import text

from parcours.audit import AuditEntry, AuditTrail
from parcours.config import Settings
from parcours.platform import Platform, build_platform
from parcours.security.principal import Principal
from parcours.store.schema_version import upgrade

# 2025-01-07T09:30:00Z
T0 = 1_736_242_200_000
HOUR = 3_600_000
DAY = 24 * HOUR

DOCTOR = Principal(
    "account/jdupont",
    frozenset({"professional"}),
    practitioner="Practitioner/12",
    display="Dr Jeanne Dupont",
    method="session",
    session="sess-1",
)
NURSE = Principal(
    "account/bmartin",
    frozenset({"professional"}),
    practitioner="Practitioner/34",
    display="Bruno Martin",
    method="jwt",
)
CLIENT = Principal(
    "client/hopital-a", frozenset({"system"}), display="DPI Hôpital A", method="client-credentials"
)

Tamper = Callable[..., None]


def entry(
    interaction: str = "read",
    *,
    at: int = T0,
    agent: Principal = DOCTOR,
    patients: tuple[str, ...] = ("p1",),
    action: str | None = None,
    outcome: int = 0,
    **kwargs: Any,
) -> AuditEntry:
    from parcours.audit import action_for

    return AuditEntry(
        recorded_ms=at,
        action=action or action_for(interaction),
        interaction=interaction,
        outcome=outcome,
        agent=agent,
        patients=patients,
        **kwargs,
    )


def open_platform(database_url: str) -> Platform:
    platform = build_platform(Settings(database_url=database_url))
    upgrade(platform.store.engine)
    return platform


@pytest.fixture
def platform(database_url: str) -> Iterator[Platform]:
    platform = open_platform(database_url)
    try:
        yield platform
    finally:
        platform.close()


@pytest.fixture
def trail(platform: Platform) -> AuditTrail:
    return AuditTrail(platform.store)


@pytest.fixture
def tamper(platform: Platform) -> Tamper:
    """Run SQL on the trail behind the application's back (as the table owner would)."""
    engine = platform.store.engine
    postgres = platform.store.dialect.is_postgres

    def run(sql: str, **params: Any) -> None:
        with engine.begin() as conn:
            if postgres:
                # The append-only triggers stop the application, not the table's owner.
                conn.execute(text("ALTER TABLE audit_event DISABLE TRIGGER USER"))
                conn.execute(text("ALTER TABLE audit_patient DISABLE TRIGGER USER"))
            conn.execute(text(sql), params)
            if postgres:
                conn.execute(text("ALTER TABLE audit_event ENABLE TRIGGER USER"))
                conn.execute(text("ALTER TABLE audit_patient ENABLE TRIGGER USER"))

    return run
