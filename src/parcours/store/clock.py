"""Time in storage: integer milliseconds since the epoch, UTC; FHIR instants on the wire."""

from __future__ import annotations

import time
from datetime import UTC, datetime

__all__ = ["instant", "now_ms", "parse_instant_ms"]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def instant(ms: int) -> str:
    """A FHIR ``instant`` with millisecond precision, always in UTC (``Z``)."""
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_instant_ms(value: str) -> int:
    """Milliseconds of an ISO instant; a value without offset is taken as UTC."""
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)
