"""parse_search ∘ format_search is the identity on SearchRequests."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from parcours.store.search import (
    SearchParameterRegistry,
    SearchRequest,
    format_search,
    parse_search,
)
from parcours.store.search.request import Filter, Include, SearchValue, SortRule

REGISTRY = SearchParameterRegistry.load_default()


def test_parse_structure() -> None:
    request = parse_search(
        "Observation",
        [
            ("subject:Patient.organization.name", "CH"),
            ("_has:Provenance:target:agent", "Practitioner/1"),
            ("code", "http://loinc.org|1\\,2,3"),
            ("date", "ge2024-01-01"),
            ("date", "lt2025"),
            ("value-quantity", "ap5.4|http://unitsofmeasure.org|mg"),
            ("_sort", "-date,code"),
            ("_count", "10"),
            ("_include:iterate", "Observation:subject:Patient"),
            ("_revinclude", "Provenance:target"),
            ("_total", "accurate"),
            ("_elements", "id,code"),
            ("_format", "json"),
        ],
        REGISTRY,
    )
    assert request.filters[0] == Filter(
        "subject",
        "Patient",
        chain=Filter("organization", chain=Filter("name", values=(SearchValue("CH"),))),
    )
    assert request.filters[1].has_type == "Provenance" and request.filters[1].chain == Filter(
        "agent", values=(SearchValue("Practitioner/1"),)
    )
    assert request.filters[2].values == (SearchValue("http://loinc.org|1\\,2"), SearchValue("3"))
    assert request.filters[3].values == (SearchValue("2024-01-01", "ge"),)
    assert request.filters[5].values[0].prefix == "ap"
    assert request.sort == (SortRule("date", True), SortRule("code"))
    assert request.includes == (Include("Observation", "subject", "Patient", iterate=True),)
    assert request.revincludes == (Include("Provenance", "target"),)
    assert (
        request.count == 10 and request.total == "accurate" and request.elements == ("id", "code")
    )
    assert parse_search("Observation", format_search(request), REGISTRY) == request


_PARAMS = st.sampled_from(
    [
        ("family", ["", ":exact", ":contains", ":missing"]),
        ("identifier", ["", ":not", ":text", ":missing"]),
        ("birthdate", ["", ":missing"]),
        ("general-practitioner", ["", ":Practitioner", ":identifier", ":missing"]),
        ("_id", ["", ":not"]),
        ("_lastUpdated", [""]),
    ]
)
_TEXT = st.text(alphabet="abcé|,\\$ 0123456789:/-", min_size=1, max_size=8)
_DATES = st.sampled_from(
    ["1952", "1952-03", "1952-03-04", "2024-01-02T10:00:00Z", "2024-01-02T10:00+02:00"]
)
_PREFIX = st.sampled_from(["", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"])


@st.composite
def _filter(draw: st.DrawFn) -> tuple[str, str]:
    code, modifiers = draw(_PARAMS)
    modifier = draw(st.sampled_from(modifiers))
    if modifier == ":missing":
        return code + modifier, draw(st.sampled_from(["true", "false"]))
    if code in ("birthdate", "_lastUpdated"):
        values = draw(st.lists(st.tuples(_PREFIX, _DATES), min_size=1, max_size=3))
        return code + modifier, ",".join(p + d for p, d in values)
    raw = draw(_TEXT)
    # Keep only well-formed escapes and alternatives: parse must accept what we produce.
    texts = [v for v in raw.replace("\\", "\\\\").split(",") if v]
    if code == "identifier" and modifier != ":text":
        texts = [v if v.count("|") - v.count("\\|") <= 1 else v.replace("|", "\\|") for v in texts]
    return code + modifier, ",".join(texts or ["x"])


@settings(max_examples=150, deadline=None)
@given(
    filters=st.lists(_filter(), max_size=4),
    count=st.integers(0, 50),
    sort=st.sampled_from(["", "family", "-birthdate,_id", "-_lastUpdated"]),
    total=st.sampled_from(["", "none", "accurate", "estimate"]),
    summary=st.sampled_from(["", "count", "true", "data"]),
)
def test_parse_format_round_trip(
    filters: list[tuple[str, str]], count: int, sort: str, total: str, summary: str
) -> None:
    params = [*filters, ("_count", str(count))]
    params += [(n, v) for n, v in (("_sort", sort), ("_total", total), ("_summary", summary)) if v]
    request = parse_search("Patient", params, REGISTRY)
    assert isinstance(request, SearchRequest)
    assert parse_search("Patient", format_search(request), REGISTRY) == request
