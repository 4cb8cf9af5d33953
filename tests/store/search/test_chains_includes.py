"""Chained parameters, reverse chaining (_has), _include and _revinclude."""

from __future__ import annotations

from typing import Any

import pytest

from parcours.store import Store

from .helpers import create, ids, search

INS = "urn:oid:1.2.250.1.213.1.4.8"


@pytest.fixture
def world(store: Store) -> dict[str, dict[str, Any]]:
    org = create(
        store,
        resourceType="Organization",
        name="CH Dijon",
        identifier=[{"system": "urn:oid:1.2.250.1.71.4.2.2", "value": "210780581"}],
    )
    gp = create(store, resourceType="Practitioner", name=[{"family": "Médecin"}])
    alice = create(
        store,
        resourceType="Patient",
        name=[{"family": "Alice"}],
        identifier=[{"system": INS, "value": "1"}],
        managingOrganization={"reference": f"Organization/{org['id']}"},
        generalPractitioner=[{"reference": f"Practitioner/{gp['id']}"}],
    )
    bob = create(
        store,
        resourceType="Patient",
        name=[{"family": "Bob"}],
        identifier=[{"system": INS, "value": "2"}],
    )
    enc = create(
        store,
        resourceType="Encounter",
        status="in-progress",
        subject={"reference": f"Patient/{alice['id']}"},
        serviceProvider={"reference": f"Organization/{org['id']}"},
    )
    glucose = create(
        store,
        resourceType="Observation",
        status="final",
        subject={"reference": f"Patient/{alice['id']}"},
        encounter={"reference": f"Encounter/{enc['id']}"},
        code={"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
    )
    weight = create(
        store,
        resourceType="Observation",
        status="final",
        subject={"reference": f"Patient/{bob['id']}"},
        code={"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
    )
    prov = create(
        store,
        resourceType="Provenance",
        target=[{"reference": f"Observation/{glucose['id']}"}],
        recorded="2024-01-01T00:00:00Z",
        agent=[{"who": {"reference": f"Practitioner/{gp['id']}"}}],
    )
    task = create(
        store,
        resourceType="Task",
        status="requested",
        intent="order",
        **{"for": {"reference": f"Patient/{alice['id']}"}},
        owner={"reference": f"Organization/{org['id']}"},
    )
    return {
        "org": org,
        "gp": gp,
        "alice": alice,
        "bob": bob,
        "enc": enc,
        "glucose": glucose,
        "weight": weight,
        "prov": prov,
        "task": task,
    }


def _id(world: dict[str, dict[str, Any]], *keys: str) -> set[str]:
    return {world[k]["id"] for k in keys}


def test_chains(store: Store, world: dict[str, Any]) -> None:
    assert ids(search(store, "Observation", f"subject.identifier={INS}|1")) == _id(world, "glucose")
    assert ids(search(store, "Observation", "subject:Patient.name=bob")) == _id(world, "weight")
    assert ids(search(store, "Observation", "patient.family=ali,bo")) == _id(
        world, "glucose", "weight"
    )
    # Two levels: Observation -> Patient -> Organization.
    assert ids(search(store, "Observation", "subject:Patient.organization.name=ch dij")) == _id(
        world, "glucose"
    )
    assert ids(
        search(store, "Observation", "encounter.service-provider.identifier=210780581")
    ) == _id(world, "glucose")
    assert ids(
        search(store, "Observation", "subject:Patient.general-practitioner.name=medecin")
    ) == _id(world, "glucose")
    assert ids(search(store, "Observation", "subject.identifier=nobody")) == set()


def test_chain_to_deleted_target_does_not_match(store: Store, world: dict[str, Any]) -> None:
    with store.begin() as tx:
        tx.delete("Patient", world["bob"]["id"])
    assert ids(search(store, "Observation", "subject:Patient.name=bob")) == set()


def test_has(store: Store, world: dict[str, Any]) -> None:
    assert ids(search(store, "Patient", "_has:Observation:patient:code=2345-7")) == _id(
        world, "alice"
    )
    assert ids(
        search(store, "Patient", "_has:Observation:subject:code=http://loinc.org|29463-7")
    ) == _id(world, "bob")
    assert ids(search(store, "Patient", "_has:Task:patient:status=requested")) == _id(
        world, "alice"
    )
    assert ids(search(store, "Patient", "_has:Task:patient:status=completed")) == set()
    # Nested: patients with an observation that has a provenance recorded by the GP.
    gp = world["gp"]["id"]
    assert ids(
        search(
            store,
            "Patient",
            f"_has:Observation:patient:_has:Provenance:target:agent=Practitioner/{gp}",
        )
    ) == _id(world, "alice")
    # _has combined with a chain inside.
    assert ids(
        search(store, "Organization", "_has:Encounter:service-provider:subject.name=alice")
    ) == _id(world, "org")


def test_include(store: Store, world: dict[str, Any]) -> None:
    r = search(store, "Observation", "code=2345-7&_include=Observation:subject")
    assert ids(r) == _id(world, "glucose")
    assert {x["id"] for x in r.included} == _id(world, "alice")
    r = search(store, "Observation", "code=2345-7&_include=Observation:subject:Group")
    assert r.included == []
    r = search(store, "Observation", "code=2345-7&_include=*")
    assert {x["id"] for x in r.included} == _id(world, "alice", "enc")
    # :iterate follows the included patient to its organization and practitioner.
    r = search(
        store,
        "Observation",
        "code=2345-7&_include=Observation:subject&_include:iterate=Patient:organization"
        "&_include:iterate=Patient:general-practitioner",
    )
    assert {x["id"] for x in r.included} == _id(world, "alice", "org", "gp")
    r = search(
        store,
        "Observation",
        "code=2345-7&_include=Observation:subject&_include=Patient:organization",
    )
    assert {x["id"] for x in r.included} == _id(world, "alice")  # not iterated


def test_revinclude(store: Store, world: dict[str, Any]) -> None:
    r = search(store, "Patient", f"identifier={INS}|1&_revinclude=Observation:subject")
    assert {x["id"] for x in r.included} == _id(world, "glucose")
    r = search(
        store,
        "Patient",
        f"identifier={INS}|1&_revinclude=Observation:subject&_revinclude:iterate=Provenance:target",
    )
    assert {x["id"] for x in r.included} == _id(world, "glucose", "prov")
    r = search(store, "Patient", f"identifier={INS}|1&_revinclude=Task:*")
    assert {x["id"] for x in r.included} == _id(world, "task")
    # An included resource already among the matches is not repeated.
    r = search(store, "Patient", "_revinclude=Observation:subject&_include=Patient:organization")
    assert ids(r) == _id(world, "alice", "bob")
    assert {x["id"] for x in r.included} == _id(world, "glucose", "weight", "org")


def test_coordination_queries(store: Store, world: dict[str, Any]) -> None:
    alice, org = world["alice"]["id"], world["org"]["id"]
    assert ids(
        search(store, "Task", f"patient=Patient/{alice}&status=requested,in-progress")
    ) == _id(world, "task")
    assert ids(
        search(store, "Encounter", f"status=in-progress&service-provider=Organization/{org}")
    ) == _id(world, "enc")
    assert ids(search(store, "Patient", "family=alice&birthdate:missing=true")) == _id(
        world, "alice"
    )
