"""Loading the demo region into a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import inspect
from collections import Counter
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from parcours.demo import DemoDatabaseNotEmpty, build_region, load_demo
from parcours.errors import Conflict, InvalidResource, NotFound
from parcours.store.engine import make_engine
from parcours.store.repository import Store
from parcours.store.schema_version import ensure_schema


def _r4b_validator(resource: dict[str, Any]) -> None:
    try:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    except Exception as exc:  # any parse failure is an invalid resource
        raise InvalidResource(f"not valid R4: {exc}".splitlines()[0]) from exc


def _store(url: str) -> Store:
    engine = make_engine(url)
    ensure_schema(engine)
    # Store's constructor is changing (registry=); pass the validator where it is accepted.
    params = inspect.signature(Store).parameters
    kwargs: dict[str, Any] = {"validator": _r4b_validator} if "validator" in params else {}
    return Store(engine, **kwargs)


def test_load_demo_into_an_empty_database(database_url: str) -> None:
    store = _store(database_url)
    try:
        summary = load_demo(store, seed=2024, patients=120)
        expected = build_region(2024, 120)
        assert summary.counts == dict(
            sorted(Counter(r["resourceType"] for r in expected.resources).items())
        )
        assert summary.total == len(expected.resources)
        assert summary.patients == 120
        assert summary.near_duplicates == len(expected.near_duplicates) == 8
        assert summary.transactions == -(-len(expected.resources) // 100)
        # ids are kept (PUT semantics) and the content round-trips
        for res in (expected.resources[0], expected.resources[-1]):
            stored = store.read(res["resourceType"], res["id"])
            assert stored["meta"]["versionId"] == "1"
            assert {k: v for k, v in stored.items() if k != "meta"} == {
                k: v for k, v in res.items() if k != "meta"
            }
        dup = expected.near_duplicates[0]
        assert store.read("Patient", dup.duplicate)["id"] == dup.duplicate

        # a second load is refused, with the remedy, and writes nothing
        with pytest.raises(DemoDatabaseNotEmpty, match="empty database") as refused:
            load_demo(store, seed=2024, patients=120)
        assert isinstance(refused.value, Conflict)
        assert store.read("Patient", dup.duplicate)["meta"]["versionId"] == "1"
    finally:
        store.engine.dispose()


def test_refuses_a_database_with_any_resource(database_url: str) -> None:
    store = _store(database_url)
    try:
        store.update({"resourceType": "Organization", "id": "mine", "name": "Déjà là"})
        with pytest.raises(DemoDatabaseNotEmpty, match="PARCOURS_DATABASE_URL"):
            load_demo(store)
        assert store.read("Organization", "mine")["name"] == "Déjà là"
        with pytest.raises(NotFound):
            store.read("Organization", "demo-org-001")
    finally:
        store.engine.dispose()


def test_full_default_region_loads(database_url: str) -> None:
    store = _store(database_url)
    try:
        summary = load_demo(store)
        assert summary.counts["Patient"] == 300
        assert summary.total == len(build_region().resources)
    finally:
        store.engine.dispose()


def test_loads_into_a_database_holding_only_the_reference_data(database_url: str) -> None:
    """`parcours serve` stores the pathway library before anyone runs `parcours demo`."""
    from parcours.config import Settings
    from parcours.platform import build_platform
    from parcours.reference_data import load_reference_data

    platform = build_platform(Settings(database_url=database_url))
    try:
        ensure_schema(platform.store.engine)
        load_reference_data(platform.store)
        summary = load_demo(platform.store, seed=2024, patients=20)
        assert summary.patients == 20
        assert platform.store.read("PlanDefinition", "vigilans-1.0.0")["status"] == "active"
        # The reference data is loaded again, idempotently, after the demo.
        assert load_reference_data(platform.store) == []
    finally:
        platform.close()
