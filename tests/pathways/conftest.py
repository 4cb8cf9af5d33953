"""A platform on a real database (SQLite and PostgreSQL) and a clock the test moves."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from parcours.config import Settings
from parcours.platform import Platform, build_platform
from parcours.store.schema_version import ensure_schema

DAY_MS = 86_400_000


class SimClock:
    """Simulated time: starts on a fixed date and only moves when told."""

    def __init__(self, start: str = "2026-01-05T09:00:00+00:00") -> None:
        self.ms = int(datetime.fromisoformat(start).astimezone(UTC).timestamp() * 1000)

    def __call__(self) -> int:
        return self.ms

    def advance(self, days: float = 0, hours: float = 0) -> int:
        self.ms += int(days * DAY_MS + hours * 3_600_000)
        return self.ms


@pytest.fixture
def clock() -> SimClock:
    return SimClock()


@pytest.fixture
def platform(database_url: str) -> Iterator[Platform]:
    built = build_platform(Settings(database_url=database_url, admin_token="pathway-test-token"))
    ensure_schema(built.store.engine)
    yield built
    built.close()


def new_patient(platform: Platform, birth_date: str = "1980-04-02", gender: str = "female") -> str:
    with platform.store.begin() as tx:
        patient = tx.create(
            {
                "resourceType": "Patient",
                "name": [{"family": "Essai", "given": ["Camille"]}],
                "gender": gender,
                "birthDate": birth_date,
            }
        )
    return str(patient["id"])
