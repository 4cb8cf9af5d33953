"""Bad search input is an InvalidInput that names the parameter."""

from __future__ import annotations

import pytest

from parcours.errors import InvalidInput
from parcours.store.search import SearchParameterRegistry, parse_search


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("nope=1", "nope"),
        ("name:nope=x", "name:nope"),
        ("birthdate=1952-13", "birthdate"),
        ("birthdate=yesterday", "birthdate"),
        ("birthdate:exact=1952", "birthdate:exact"),
        ("family:missing=maybe", "family:missing"),
        ("family=", "family"),
        ("gender=a,,b", "gender"),
        ("identifier=a|b|c", "identifier"),
        ("_count=-1", "_count"),
        ("_count=lots", "_count"),
        ("_sort=nope", "_sort"),
        ("_total=maybe", "_total"),
        ("_summary=short", "_summary"),
        ("_include=Observation:code", "_include"),
        ("_include=Nope:subject", "_include"),
        ("_revinclude=Observation", "_revinclude"),
        ("general-practitioner.nope=x", "general-practitioner.nope"),
        ("gender.name=x", "gender.name"),
        ("general-practitioner:Observation.code=x", "general-practitioner:Observation.code"),
        ("_has:Observation:code:status=final", "_has:Observation:code:status"),
        ("_has:Observation:patient=x", "_has:Observation:patient"),
        ("_has:Observation:patient:nope=x", "_has:Observation:patient:nope"),
        ("_cursor=%%%", "_cursor"),
        ("_text=x", "_text"),
        ("_content=x", "_content"),
        ("_filter=x", "_filter"),
    ],
)
def test_bad_input_names_the_parameter(query: str, name: str) -> None:
    registry = SearchParameterRegistry.load_default()
    key, _, value = query.partition("=")
    with pytest.raises(InvalidInput) as caught:
        parse_search("Patient", [(key, value)], registry)
    assert name in str(caught.value)


def test_unknown_resource_type_and_duplicates() -> None:
    registry = SearchParameterRegistry.load_default()
    with pytest.raises(InvalidInput, match="Nope"):
        parse_search("Nope", [], registry)
    with pytest.raises(InvalidInput, match="_count"):
        parse_search("Patient", [("_count", "1"), ("_count", "2")], registry)


def test_format_and_pretty_are_ignored() -> None:
    registry = SearchParameterRegistry.load_default()
    request = parse_search("Patient", [("_format", "json"), ("_pretty", "true")], registry)
    assert request.filters == ()


def test_count_is_capped() -> None:
    registry = SearchParameterRegistry.load_default()
    assert parse_search("Patient", [("_count", "5000")], registry, max_count=100).count == 100
    assert parse_search("Patient", [], registry, default_count=7).count == 7
