"""The AuditEvents the trail stores: valid FHIR R4 and conformant to the ANS TdE profile
``tde-auditevent`` (its StructureDefinition is read from the shared definitions)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from parcours.audit import PROFILE, AuditEntry, action_for, build_audit_event, outcome_for_status
from parcours.audit.entry import INTERACTIONS, patients_of
from parcours.config import Settings
from parcours.errors import InvalidResource
from parcours.fhir.validation import make_validator

from .conftest import CLIENT, DOCTOR, T0, entry

DEFINITIONS = Path(__file__).resolve().parents[2].parent / "shared" / "definitions" / "tde"


def _profile() -> dict[str, Any]:
    path = DEFINITIONS / "StructureDefinition-tde-auditevent.json"
    if not path.is_file():
        pytest.skip(f"TdE definitions not found at {path}")
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def _get(resource: Any, path: str) -> list[Any]:
    """Values at a dotted element path (arrays flattened), like a tiny FHIRPath."""
    values = [resource]
    for part in path.split(".")[1:]:
        nxt: list[Any] = []
        for value in values:
            child = value.get(part) if isinstance(value, dict) else None
            if isinstance(child, list):
                nxt.extend(child)
            elif child is not None:
                nxt.append(child)
        values = nxt
    return values


def _check_profile(event: dict[str, Any]) -> None:
    """Every cardinality the profile's differential constrains, checked on the event."""
    profile = _profile()
    assert event["meta"]["profile"] == [profile["url"]] == [PROFILE]
    for element in profile["differential"]["element"]:
        path = element["path"]
        parent_path, _, _ = path.rpartition(".")
        parents = _get(event, parent_path) if "." in parent_path else [event]
        for parent in parents:
            found = _get(parent, "X." + path.rpartition(".")[2])
            if "min" in element:
                assert len(found) >= element["min"], f"{path} min {element['min']}"
            if element.get("max", "*") != "*":
                assert len(found) <= int(element["max"]), f"{path} max {element['max']}"
        for type_ in element.get("type", []):
            for ref in _get(event, path):
                # The observer is a Device here (the platform), one of the allowed targets.
                assert ref.get("type") in {t.rpartition("/")[2] for t in type_["targetProfile"]}


VALIDATE = make_validator(Settings(), profile_checks=[])


@pytest.mark.parametrize("interaction", sorted(INTERACTIONS))
def test_every_interaction_builds_a_valid_tde_auditevent(interaction: str) -> None:
    event = build_audit_event(
        entry(
            interaction,
            patients=("p1", "p2"),
            entities=("Observation/1/_history/2",),
            query="subject=Patient/p1&code=1234-5",
            resource_type="Observation",
            source_address="192.0.2.10",
            request_id="req-1",
            outcome_text="ok",
        )
    )
    VALIDATE(event)  # raises InvalidResource on any R4 structure problem
    _check_profile(event)
    assert event["period"]["start"] == event["recorded"] == "2025-01-07T09:30:00.000Z"
    assert len(event["subtype"]) == 1 and event["subtype"][0]["code"]
    assert event["action"] == action_for(interaction)


def test_the_validator_does_catch_a_broken_event() -> None:
    # Guard for the test above: the validator is not a no-op.
    event = build_audit_event(entry())
    event["agent"][0]["requestor"] = "yes"
    with pytest.raises(InvalidResource):
        VALIDATE(event)


def test_read_by_a_practitioner() -> None:
    event = build_audit_event(
        entry(
            "read",
            entities=("Patient/p1/_history/3",),
            source_address="192.0.2.10",
            request_id="req-42",
        )
    )
    assert event["type"]["code"] == "rest"
    assert event["subtype"] == [
        {"system": "http://hl7.org/fhir/restful-interaction", "code": "read", "display": "read"}
    ]
    (agent,) = event["agent"]
    assert agent["who"] == {"reference": "Practitioner/12", "display": "Dr Jeanne Dupont"}
    assert agent["altId"] == "account/jdupont"
    assert agent["requestor"] is True
    assert agent["network"] == {"address": "192.0.2.10", "type": "2"}
    assert agent["policy"] == ["sess-1"]
    assert event["outcome"] == "0"
    assert event["source"]["observer"] == {"type": "Device", "display": "Parcours"}
    refs = [e.get("what", {}).get("reference") for e in event["entity"]]
    assert refs[:2] == ["Patient/p1", "Patient/p1/_history/3"]
    assert event["entity"][0]["role"]["code"] == "1"  # Patient
    request = event["entity"][2]
    assert request["what"]["identifier"]["value"] == "req-42"
    assert patients_of(event) == ["p1"]


def test_system_client_is_identified_by_its_subject() -> None:
    event = build_audit_event(entry("create", agent=CLIENT, patients=()))
    who = event["agent"][0]["who"]
    assert who == {
        "identifier": {"value": "client/hopital-a"},
        "type": "Device",
        "display": "DPI Hôpital A",
    }
    assert "entity" not in event


def test_search_query_is_base64_and_not_named() -> None:
    event = build_audit_event(
        entry("search-type", query="name=DUPONT&birthdate=1950", resource_type="Patient")
    )
    (query,) = [e for e in event["entity"] if "query" in e]
    assert base64.b64decode(query["query"]).decode() == "name=DUPONT&birthdate=1950"
    assert query["role"]["code"] == "24"
    assert "name" not in query  # sev-1: name and query are exclusive
    assert event["action"] == "E"


def test_break_glass_carries_btg_and_the_reason() -> None:
    event = build_audit_event(entry("break-glass", reason="patient inconscient aux urgences"))
    assert event["type"]["code"] == "110113"
    assert event["subtype"][0]["code"] == "110127"
    (purpose,) = event["purposeOfEvent"]
    assert purpose["coding"][0]["code"] == "BTG"
    assert purpose["text"] == "patient inconscient aux urgences"
    assert event["agent"][0]["purposeOfUse"] == event["purposeOfEvent"]


def test_login_failure() -> None:
    event = build_audit_event(
        entry("login", patients=(), outcome=4, outcome_text="bad password", action="E")
    )
    assert event["type"]["code"] == "110114"
    assert event["subtype"][0]["code"] == "110122"
    assert event["outcome"] == "4" and event["outcomeDesc"] == "bad password"


def test_nul_characters_are_dropped_from_free_text() -> None:
    event = build_audit_event(entry(outcome=4, outcome_text="id 'a\x00b' invalid"))
    assert event["outcomeDesc"] == "id 'ab' invalid"


@pytest.mark.parametrize(
    ("field", "value"), [("action", "X"), ("interaction", "peek"), ("outcome", 3)]
)
def test_bad_codes_are_refused(field: str, value: Any) -> None:
    kwargs: dict[str, Any] = {
        "recorded_ms": T0,
        "action": "R",
        "interaction": "read",
        "outcome": 0,
        "agent": DOCTOR,
    }
    kwargs[field] = value
    with pytest.raises(ValueError, match=field):
        AuditEntry(**kwargs)


def test_helpers() -> None:
    assert [outcome_for_status(s) for s in (200, 201, 304, 403, 404, 500, 503)] == [
        0,
        0,
        0,
        4,
        4,
        8,
        8,
    ]
    assert action_for("create") == "C" and action_for("delete") == "D"
    assert action_for("search-type") == "E" and action_for("login") == "E"


def test_corpus_examples_have_the_shape_we_produce(corpus: Path) -> None:
    """The ANS examples and our events agree on the elements the profile constrains."""
    ours = build_audit_event(entry())
    for path in sorted((corpus / "fhir" / "tracabilite-evenements").glob("AuditEvent-*.json")):
        example = json.loads(path.read_text())
        VALIDATE(example)
        _check_profile_min(example)
        assert example["meta"]["profile"] == ours["meta"]["profile"]
        assert example["subtype"][0]["system"] == ours["subtype"][0]["system"]
        assert example["agent"][0]["requestor"] is ours["agent"][0]["requestor"] is True


def _check_profile_min(event: dict[str, Any]) -> None:
    assert event["period"]["start"]
    assert len(event["subtype"]) <= 1 and len(event["agent"]) <= 2
    assert all(agent["who"] for agent in event["agent"])
