"""_sort, _count, _total, _summary and keyset paging, stable under concurrent inserts."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parcours.errors import InvalidInput
from parcours.store import Store
from parcours.store.search import format_search, parse_search

from .helpers import create, search


def _all_pages(
    store: Store, res_type: str, params: list[tuple[str, str]], between: Any = None
) -> list[str]:
    seen: list[str] = []
    page = 0
    while True:
        result = search(store, res_type, params)
        seen.extend(r["id"] for r in result.matches)
        if result.next_params is None:
            return seen
        if between is not None:
            between(page)
        page += 1
        params = result.next_params


def _family(r: dict[str, Any]) -> str:
    return str(r["name"][0]["family"]) if r.get("name") else ""


def test_sort_multiple_keys_and_missing_last(store: Store) -> None:
    rows = [
        ("Durand", "1980-01-01"),
        ("Dupont", "1952-03-04"),
        ("Dupont", "1990"),
        (None, "1970"),
        ("Émile", None),
    ]
    for family, birth in rows:
        res: dict[str, Any] = {"resourceType": "Patient"}
        if family:
            res["name"] = [{"family": family}]
        if birth:
            res["birthDate"] = birth
        create(store, **res)
    result = search(store, "Patient", "_sort=family,-birthdate")
    got = [(_family(r) or None, r.get("birthDate")) for r in result.matches]
    assert got == [
        ("Dupont", "1990"),
        ("Dupont", "1952-03-04"),
        ("Durand", "1980-01-01"),
        ("Émile", None),
        (None, "1970"),
    ]
    result = search(store, "Patient", "_sort=-family")
    assert [_family(r) for r in result.matches][:4] == ["Émile", "Durand", "Dupont", "Dupont"]
    assert [_family(r) for r in result.matches][4] == ""
    result = search(store, "Patient", "_sort=birthdate")
    assert [r.get("birthDate") for r in result.matches] == [
        "1952-03-04",
        "1970",
        "1980-01-01",
        "1990",
        None,
    ]
    result = search(store, "Patient", "_sort=gender,_id")
    assert len(result.matches) == 5


def test_count_total_summary(store: Store) -> None:
    for i in range(5):
        create(store, resourceType="Patient", gender="female" if i % 2 else "male")
    r = search(store, "Patient", "_count=2")
    # Without _total, a total is given only when it is free (every match on the first page).
    assert len(r.matches) == 2 and r.total is None and r.next_params is not None
    r = search(store, "Patient", "_count=2&_total=accurate")
    assert len(r.matches) == 2 and r.total == 5 and r.next_params is not None
    r = search(store, "Patient", "_count=10")
    assert len(r.matches) == 5 and r.total == 5 and r.next_params is None
    r = search(store, "Patient", "_count=0")
    assert r.matches == [] and r.total == 5 and r.next_params is None
    r = search(store, "Patient", "_summary=count&gender=male")
    assert r.matches == [] and r.total == 3
    r = search(store, "Patient", "_total=none")
    assert r.total is None and len(r.matches) == 5
    r = search(store, "Patient", "_total=estimate&gender=female")
    assert r.total == 2
    assert store.registry is not None
    request = parse_search("Patient", [("_elements", "id,name")], store.registry)
    assert request.elements == ("id", "name")


@pytest.mark.parametrize("sort", [None, "_lastUpdated", "-_lastUpdated", "family", "-birthdate"])
def test_paging_is_stable_under_inserts(store: Store, sort: str | None) -> None:
    initial = [
        create(
            store,
            resourceType="Patient",
            name=[{"family": f"F{i % 4}"}],
            birthDate=f"19{50 + i % 7}",
        )["id"]
        for i in range(23)
    ]
    params = [("_count", "5")] + ([("_sort", sort)] if sort else [])
    inserted: list[str] = []

    def insert(page: int) -> None:
        # Each page boundary: a new resource that sorts first, last and in the middle.
        for family in ("A", "Z", "F2"):
            inserted.append(
                create(store, resourceType="Patient", name=[{"family": family}], birthDate="1953")[
                    "id"
                ]
            )

    seen = _all_pages(store, "Patient", params, between=insert)
    assert len(seen) == len(set(seen)), "a resource was returned twice"
    assert set(initial) <= set(seen), "a resource present from the start was skipped"
    assert set(seen) <= set(initial) | set(inserted)


def test_offset_paging_and_cursor_round_trip(store: Store) -> None:
    for _ in range(7):
        create(store, resourceType="Patient")
    first = search(store, "Patient", "_count=3&_offset=0")
    assert first.next_params is not None and ("_offset", "3") in first.next_params
    seen = _all_pages(store, "Patient", [("_count", "3"), ("_offset", "0")])
    assert len(seen) == 7 == len(set(seen))
    cursor_page = search(store, "Patient", "_count=3")
    assert cursor_page.next_params is not None
    assert store.registry is not None
    request = parse_search("Patient", cursor_page.next_params, store.registry)
    assert request.cursor is not None
    assert parse_search("Patient", format_search(request), store.registry) == request


def test_cursor_from_another_sort_is_rejected(store: Store) -> None:
    for _ in range(3):
        create(store, resourceType="Patient", name=[{"family": "X"}])
    page = search(store, "Patient", "_count=1&_sort=family")
    assert page.next_params is not None
    cursor = dict(page.next_params)["_cursor"]
    with pytest.raises(InvalidInput, match="_cursor"):
        search(store, "Patient", [("_count", "1"), ("_cursor", cursor)])
    with pytest.raises(InvalidInput, match="_cursor"):
        search(store, "Patient", [("_cursor", "not-a-cursor!")])


_FAMILIES = st.sampled_from(["Dupont", "dupont", "Élise", "Eliot", "Zoé", "Martin"])
_BIRTHS = st.sampled_from(["1950", "1950-06", "1950-06-01", "1951", "1949-12-31"])
_SORTS = st.lists(
    st.sampled_from(["family", "-family", "birthdate", "-birthdate", "gender", "-_id"]),
    min_size=1,
    max_size=3,
    unique_by=lambda s: s.lstrip("-"),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_pages_concatenate_to_the_full_sorted_result(store: Store, data: st.DataObject) -> None:
    tag = uuid.uuid4().hex
    with store.begin() as tx:
        for _ in range(data.draw(st.integers(1, 9))):
            res: dict[str, Any] = {"resourceType": "Patient", "meta": {"tag": [{"code": tag}]}}
            family = data.draw(st.none() | _FAMILIES)
            if family:
                res["name"] = [{"family": family}]
            birth = data.draw(st.none() | _BIRTHS)
            if birth:
                res["birthDate"] = birth
            if data.draw(st.booleans()):
                res["gender"] = data.draw(st.sampled_from(["male", "female"]))
            tx.create(res)
    sort = ",".join(data.draw(_SORTS))
    base = [("_tag", tag), ("_sort", sort)]
    full = search(store, "Patient", [*base, ("_count", "1000")])
    size = data.draw(st.integers(1, 4))
    paged = _all_pages(store, "Patient", [*base, ("_count", str(size))])
    assert paged == [r["id"] for r in full.matches]
    # Resources without a value for the first key come last, whatever the direction.
    first = sort.split(",")[0].lstrip("-")
    if first in ("family", "birthdate"):
        key = "name" if first == "family" else "birthDate"
        present = [key in r for r in full.matches]
        assert present == sorted(present, reverse=True)
