"""The shipped definitions, and index extraction (fast path against fhirpathpy)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from parcours.store.search import SearchParameterRegistry
from parcours.store.search.registry import SearchParam


def _rows(index: dict[str, list[dict[str, Any]]]) -> set[tuple[str, str]]:
    return {(kind, json.dumps(row, sort_keys=True)) for kind, rows in index.items() for row in rows}


def test_default_registry_has_r4_and_french_parameters() -> None:
    registry = SearchParameterRegistry.load_default()
    assert len(registry.resource_types()) == 147
    patient = registry.for_type("Patient")
    assert {"identifier", "family", "birthdate", "_id", "_lastUpdated", "_tag"} <= set(patient)
    assert patient["birthplace"].url.startswith("https://interop.esante.gouv.fr/ig/fhir/cds/")
    assert registry.get("CommunicationRequest", "event-type") is not None  # NdE
    assert registry.get("AuditEvent", "period-start") is not None  # TdE
    assert registry.get("Observation", "subject").target  # type: ignore[union-attr]
    assert registry.get("Patient", "nope") is None


def test_add_and_remove_custom_parameter() -> None:
    registry = SearchParameterRegistry.load_default()
    param = registry.add(
        {
            "resourceType": "SearchParameter",
            "url": "urn:test:sp",
            "code": "nickname",
            "base": ["Patient"],
            "type": "string",
            "expression": "Patient.name.where(use='nickname').given",
            "status": "active",
        }
    )
    assert isinstance(param, SearchParam) and param.custom
    rows = registry.index(
        {"resourceType": "Patient", "name": [{"use": "nickname", "given": ["Zou"]}]}
    )
    assert {"value_norm": "zou", "value_exact": "Zou", "param": "nickname"} in rows["string"]
    assert registry.remove("urn:test:sp") is param
    assert registry.get("Patient", "nickname") is None


def test_extraction_shapes() -> None:
    registry = SearchParameterRegistry.load_default()
    rows = registry.index(
        {
            "resourceType": "Patient",
            "name": [
                {
                    "family": "Lefèvre",
                    "given": ["Anne"],
                    "prefix": ["Dr"],
                    "text": "Dr Anne LEFÈVRE",
                }
            ],
            "address": [
                {"line": ["1 rue A"], "city": "Dole", "postalCode": "39100", "country": "FR"}
            ],
            "telecom": [{"system": "email", "value": "a@b.fr"}],
            "birthDate": "1970-02",
            "deceasedDateTime": "2020-01-01T10:00:00+01:00",
        }
    )
    names = {r["value_norm"] for r in rows["string"] if r["param"] == "name"}
    assert names == {"lefevre", "anne", "dr", "dr anne lefevre"}
    address = {r["value_norm"] for r in rows["string"] if r["param"] == "address"}
    assert address == {"1 rue a", "dole", "39100", "fr"}
    assert {"system": "email", "code": "a@b.fr", "text": None, "param": "email"} in rows["token"]
    death = [r for r in rows["date"] if r["param"] == "death-date"]
    assert death == [{"low": 1577869200000, "high": 1577869200999, "param": "death-date"}]
    # A choice element: only the parameter whose expression names that type gets it.
    obs = registry.index(
        {
            "resourceType": "Observation",
            "valueCodeableConcept": {"coding": [{"system": "urn:s", "code": "pos"}]},
            "effectivePeriod": {"start": "2024-01-01"},
        }
    )
    assert [r["param"] for r in obs.get("quantity", [])] == []
    assert {r["param"] for r in obs["token"]} >= {"value-concept", "combo-value-concept"}
    assert next(r for r in obs["date"] if r["param"] == "date")["high"] == 253402300799999


def test_fast_path_finds_everything_fhirpathpy_finds(corpus: Path) -> None:
    fast = SearchParameterRegistry.load_default()
    slow = SearchParameterRegistry(fast.resource_types(), fast_path=False)
    for param in fast._params.values():
        slow._put(param)
    resources = []
    for path in sorted(corpus.glob("fhir/**/*.json")):
        res = json.loads(path.read_text("utf-8"))
        resources.append(res)
        if res.get("resourceType") == "Bundle":
            resources += [e["resource"] for e in res.get("entry", []) if "resource" in e]
    assert len(resources) > 50
    for res in resources:
        # fhirpathpy lacks resolve() and reads Resource.meta paths only with a type model
        # match, so the fast path may find more, never less.
        missing = _rows(slow.index(res)) - _rows(fast.index(res))
        assert not missing, (res.get("resourceType"), res.get("id"), sorted(missing)[:3])
