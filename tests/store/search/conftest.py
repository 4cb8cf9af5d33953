"""A store with the search registry, built by the migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from parcours.store import Store, make_engine
from parcours.store.schema_version import ensure_schema
from parcours.store.search import SearchParameterRegistry


@pytest.fixture
def registry() -> SearchParameterRegistry:
    # A fresh one per test: custom SearchParameters change it.
    return SearchParameterRegistry.load_default(base_urls=("https://parcours.example/fhir",))


@pytest.fixture
def store(database_url: str, registry: SearchParameterRegistry) -> Iterator[Store]:
    engine = make_engine(database_url)
    ensure_schema(engine)
    yield Store(engine, registry=registry)
    engine.dispose()
