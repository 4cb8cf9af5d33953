"""Shared by the ops tests: an ASGI client with real HTTP semantics and a store on each database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from parcours.store import Store, make_engine
from parcours.store.schema_version import ensure_schema


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    engine = make_engine(database_url)
    ensure_schema(engine)
    yield Store(engine)
    engine.dispose()
