"""Small pure parts: reference rewriting, views, the public names."""

from __future__ import annotations

from typing import Any

import parcours.fhir
from parcours.fhir.interactions import parse_if_match
from parcours.fhir.references import conditional_references, rewrite
from parcours.fhir.render import elements_view, summary_view


def test_rewrite_copies_and_replaces_everywhere() -> None:
    original: dict[str, Any] = {
        "subject": {"reference": "urn:uuid:1"},
        "extension": [{"valueReference": {"reference": "urn:uuid:1"}}, {"valueUri": "urn:uuid:1"}],
        "text": {"div": "<div>urn:uuid:1</div>"},
        "note": [{"text": "urn:uuid:1 stays in free text"}],
    }
    out = rewrite(original, {"urn:uuid:1": "Patient/9"})
    assert out["subject"]["reference"] == "Patient/9"
    assert out["extension"][0]["valueReference"]["reference"] == "Patient/9"
    assert out["extension"][1]["valueUri"] == "Patient/9"
    assert out["text"]["div"] == "<div>Patient/9</div>"
    assert out["note"][0]["text"] == "urn:uuid:1 stays in free text"
    assert original["subject"]["reference"] == "urn:uuid:1"


def test_conditional_references() -> None:
    resource = {"a": {"reference": "Patient?identifier=x|1"}, "b": {"reference": "Patient/1"}}
    found = conditional_references(resource, {"Patient"}.__contains__)
    assert found == [("Patient?identifier=x|1", "Patient", "identifier=x|1")]


def test_if_match() -> None:
    assert parse_if_match('W/"3"') == 3
    assert parse_if_match('"3"') == 3
    assert parse_if_match(None) is None


def test_views_keep_mandatory_and_tag_subsetted() -> None:
    obs = {
        "resourceType": "Observation",
        "id": "o",
        "status": "final",
        "code": {"text": "x"},
        "note": [{"text": "n"}],
        "_status": {"id": "s"},
    }
    subset = elements_view(obs, ["note"])
    assert set(subset) == {"resourceType", "id", "meta", "status", "_status", "code", "note"}
    assert subset["meta"]["tag"][0]["code"] == "SUBSETTED"
    assert "note" not in summary_view(obs, "true")
    assert summary_view(obs, None) is obs


def test_public_names() -> None:
    assert sorted(parcours.fhir.__all__) == parcours.fhir.__all__
    for name in parcours.fhir.__all__:
        assert hasattr(parcours.fhir, name)
