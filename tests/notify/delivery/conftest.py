"""Fixtures of the delivery tests: a platform per database (SQLite, PostgreSQL), its delivery
handler driven by a synchronous Dispatcher with a settable clock, and a recording receiver."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from parcours.config import Settings
from parcours.notify.delivery import DeliveryHandler
from parcours.platform import Platform, build_platform
from parcours.store.outbox import Dispatcher, RetryPolicy
from parcours.store.schema_version import ensure_schema

from .support import Clock, Receiver

ADMIN_TOKEN = "admin-token-0123456789abcdef"


@pytest.fixture
def make_platform(database_url: str) -> Iterator[Callable[..., Platform]]:
    built: list[Platform] = []

    def make(**settings: object) -> Platform:
        settings.setdefault("admin_token", ADMIN_TOKEN)
        settings.setdefault("rest_hook_timeout_seconds", 2.0)
        platform = build_platform(Settings(database_url=database_url, **settings))  # type: ignore[arg-type]
        ensure_schema(platform.store.engine)
        built.append(platform)
        return platform

    yield make
    for platform in built:
        platform.close()


@pytest.fixture
def platform(make_platform: Callable[..., Platform]) -> Platform:
    return make_platform()


def delivery_handler(platform: Platform) -> DeliveryHandler:
    return next(h for h in platform.handlers if isinstance(h, DeliveryHandler))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def dispatcher_for(clock: Clock) -> Callable[..., Dispatcher]:
    """Only the delivery handler: the tests create notification requests themselves, as the
    manager would, and nothing else must react to their declarations."""

    def make(platform: Platform, retry: RetryPolicy | None = None) -> Dispatcher:
        return Dispatcher(platform.store, [delivery_handler(platform)], retry=retry, clock=clock)

    return make


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()
