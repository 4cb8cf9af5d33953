"""Custom SearchParameter resources become searchable without a restart."""

from __future__ import annotations

from typing import Any

import pytest

from parcours.errors import InvalidInput, InvalidResource
from parcours.store import Store
from parcours.store.search import SearchParameterRegistry

from .helpers import create, ids, search

EXT = "https://parcours.example/fhir/StructureDefinition/dac-level"


def _sp(**overrides: Any) -> dict[str, Any]:
    sp = {
        "resourceType": "SearchParameter",
        "url": "https://parcours.example/fhir/SearchParameter/patient-dac-level",
        "name": "DacLevel",
        "status": "active",
        "description": "Coordination level of a patient followed by a DAC",
        "code": "dac-level",
        "base": ["Patient"],
        "type": "token",
        "expression": f"Patient.extension('{EXT}').value",
    }
    sp.update(overrides)
    return sp


def _patient(store: Store, level: str) -> str:
    return str(
        create(
            store,
            resourceType="Patient",
            extension=[
                {
                    "url": EXT,
                    "valueCodeableConcept": {"coding": [{"system": "urn:dac", "code": level}]},
                }
            ],
        )["id"]
    )


def test_existing_and_new_resources_become_searchable(store: Store, database_url: str) -> None:
    before = _patient(store, "complex")
    other = _patient(store, "simple")
    with pytest.raises(InvalidInput, match="dac-level"):
        search(store, "Patient", "dac-level=complex")
    sp = create(store, **_sp())
    # Existing resources were reindexed in the SearchParameter's transaction.
    assert ids(search(store, "Patient", "dac-level=urn:dac|complex")) == {before}
    after = _patient(store, "complex")
    assert ids(search(store, "Patient", "dac-level=complex")) == {before, after}
    assert ids(search(store, "Patient", "dac-level:not=complex")) == {other}

    # A fresh registry (a restarted process) loads it from the database.
    fresh = SearchParameterRegistry.load_default()
    with store.begin(readonly=True) as tx:
        assert fresh.load_custom(tx) == 1
    assert fresh.get("Patient", "dac-level") is not None

    # Retiring it makes it unknown again.
    create(store, **{**sp, "status": "retired"})
    with pytest.raises(InvalidInput, match="dac-level"):
        search(store, "Patient", "dac-level=complex")


def test_resources_written_in_the_same_transaction_are_indexed(store: Store) -> None:
    with store.begin() as tx:
        tx.create(_sp())
        pid = tx.create(
            {
                "resourceType": "Patient",
                "extension": [
                    {"url": EXT, "valueCodeableConcept": {"coding": [{"code": "complex"}]}}
                ],
            }
        )["id"]
    assert ids(search(store, "Patient", "dac-level=complex")) == {pid}


def test_rolled_back_searchparameter_is_not_registered(store: Store) -> None:
    _patient(store, "complex")
    with pytest.raises(RuntimeError), store.begin() as tx:
        tx.create(_sp())
        raise RuntimeError("abort")
    assert store.registry is not None and store.registry.get("Patient", "dac-level") is None


def test_deleting_unregisters(store: Store) -> None:
    sp = create(store, **_sp(code="dac2"))
    assert store.registry is not None and store.registry.get("Patient", "dac2") is not None
    with store.begin() as tx:
        tx.delete("SearchParameter", sp["id"])
    assert store.registry.get("Patient", "dac2") is None


def test_bad_definitions_fail_the_write(store: Store) -> None:
    with pytest.raises(InvalidResource, match="base"):
        create(store, **_sp(base=["NotAType"]))
    with pytest.raises(InvalidResource, match="expression"):
        create(store, **_sp(expression="Patient.name.where("))
    with pytest.raises(InvalidResource, match="type"):
        create(store, **_sp(type="fuzzy"))
    with store.begin(readonly=True) as tx:
        assert tx.history("SearchParameter")[1] == 0


def test_string_parameter_on_several_bases(store: Store) -> None:
    create(
        store,
        **_sp(
            code="nick",
            type="string",
            base=["Patient", "Practitioner"],
            url="https://parcours.example/fhir/SearchParameter/nick",
            expression=(
                "Patient.name.where(use='nickname').given"
                " | Practitioner.name.where(use='nickname').given"
            ),
        ),
    )
    p = create(
        store,
        resourceType="Patient",
        name=[{"use": "nickname", "given": ["Titi"]}, {"given": ["Thierry"]}],
    )
    d = create(store, resourceType="Practitioner", name=[{"use": "nickname", "given": ["Toto"]}])
    assert ids(search(store, "Patient", "nick=ti")) == {p["id"]}
    assert ids(search(store, "Patient", "nick=thi")) == set()
    assert ids(search(store, "Practitioner", "nick=to")) == {d["id"]}
