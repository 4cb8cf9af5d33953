"""The movement state is a FHIR search away: "who is in the ER of hospital Y right now"."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from parcours.store import Store, make_engine
from parcours.store.schema_version import ensure_schema

from .conftest import MllpClient, ServerThread, fhir_validator
from .db import resources
from .messages import Pam


@pytest.fixture
def indexed_store(database_url: str) -> Iterator[Store]:
    search = pytest.importorskip("parcours.store.search")
    engine = make_engine(database_url)
    ensure_schema(engine)
    registry = search.SearchParameterRegistry.load_default()
    yield Store(engine, validator=fhir_validator, registry=registry)
    engine.dispose()


def _patient(store: Store, ipp: str) -> dict[str, Any]:
    return next(
        p for p in resources(store, "Patient") if any(i["value"] == ipp for i in p["identifier"])
    )


def test_er_presence_by_search(indexed_store: Store) -> None:
    from parcours.store.search import parse_search

    srv = ServerThread(indexed_store)
    try:
        with MllpClient(srv.port) as c:
            er = Pam(
                "A04",
                "S1",
                patient_class="E",
                visit="ER1",
                movement="M1",
                movement_date="20250301100500",
            )
            assert c.send(er.render()).code == "AA"
            inpatient = Pam("A01", "S2", ipp="999", visit="IN1", movement="M2")
            assert c.send(inpatient.render()).code == "AA"
    finally:
        srv.stop()
    patient = _patient(indexed_store, "700123")
    registry = indexed_store.registry
    assert registry is not None
    request = parse_search(
        "Encounter",
        [("class", "EMER"), ("status", "in-progress"), ("subject", f"Patient/{patient['id']}")],
        registry,
    )
    with indexed_store.begin(readonly=True) as tx:
        matches = tx.search(request).matches
    assert [m["identifier"][0]["value"] for m in matches] == ["ER1"]
    assert matches[0]["period"]["start"] == "2025-03-01T09:05:00Z"
    with indexed_store.begin(readonly=True) as tx:
        by_ipp = tx.search(parse_search("Patient", [("identifier", "999")], registry)).matches
    assert len(by_ipp) == 1
