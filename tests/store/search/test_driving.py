"""Where SQLite starts the search of a caller whose visible patients are listed
(``parcours.store.search.driving``): from those patients' rows when they hold fewer rows than
every filter matches, from the filters otherwise; the same results either way."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from parcours.store import Store
from parcours.store.search import driving, parse_search
from parcours.store.search.sql import FilterCompiler

from .helpers import ListedPatients, create, parse_qs, search

PATIENTS = 12
COMMON, RARE = "http://loinc.org|8867-4", "http://loinc.org|2339-0"


@pytest.fixture
def region(store: Store) -> Store:
    """Twelve patients with four Observations of a common code each; one rare code."""
    for n in range(PATIENTS):
        create(store, resourceType="Patient", id=f"p{n}", name=[{"family": f"Nom{n}"}])
        for k in range(4):
            create(store, **_observation(f"p{n}", COMMON, f"2025-0{k + 1}-15"))
    create(store, **_observation("p0", RARE, "2025-06-01"))
    return store


def _observation(patient: str, code: str, when: str) -> dict[str, Any]:
    system, _, value = code.partition("|")
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": system, "code": value}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": when,
    }


def _from_patients(store: Store, res_type: str, query: str, listed: ListedPatients) -> bool:
    assert store.registry is not None
    request = parse_search(res_type, parse_qs(query), store.registry)
    compiler = FilterCompiler(store.registry, store.dialect.is_postgres, listed)
    with store.begin(readonly=True) as tx:
        return driving.patients_first(tx, compiler, listed, res_type, request.filters)


def test_few_patients_and_a_common_code_start_from_the_patients(region: Store) -> None:
    # 2 patients hold 8 Observations; the code matches 48.
    assert _from_patients(region, "Observation", f"code={COMMON}", ListedPatients(_two()))


def test_a_filter_rarer_than_the_patients_rows_starts_from_the_filter(region: Store) -> None:
    listed = ListedPatients(_two())
    assert not _from_patients(region, "Observation", f"code={RARE}", listed)
    assert not _from_patients(region, "Observation", f"code={COMMON}&code={RARE}", listed)
    assert not _from_patients(region, "Patient", "family=Nom11", listed)


def test_patients_with_too_many_rows_start_from_the_filters(
    region: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(driving, "PATIENT_ROWS_MAX", 7)
    assert not _from_patients(region, "Observation", f"code={COMMON}", ListedPatients(_two()))


@pytest.mark.parametrize(
    "query",
    ["_id=x", "subject:Patient.family=Nom1", "_lastUpdated=ge2020-01-01"],
)
def test_filters_that_go_straight_to_their_rows_are_left_to_start(
    region: Store, query: str
) -> None:
    assert not _from_patients(region, "Observation", query, ListedPatients(_two()))


def test_negative_filters_and_no_filter_leave_the_patients_the_narrower_side(
    region: Store,
) -> None:
    listed = ListedPatients(_two())
    assert _from_patients(region, "Observation", f"code:not={RARE}", listed)
    assert _from_patients(region, "Observation", "subject:missing=true", listed)
    assert _from_patients(region, "Observation", "", listed)


def test_the_patients_rows_are_counted_again_after_a_while(
    region: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed = ListedPatients(_two())
    assert _from_patients(region, "Observation", f"code={COMMON}", listed)
    assert listed.row_counts["Observation"][0] == 8
    for _ in range(50):
        create(region, **_observation("p1", "http://loinc.org|other", "2025-07-01"))
    # Within COUNT_SECONDS the count kept steers the plan; then the new rows count.
    assert _from_patients(region, "Observation", f"code={COMMON}", listed)
    monkeypatch.setattr(driving, "COUNT_SECONDS", 0.0)
    assert not _from_patients(region, "Observation", f"code={COMMON}", listed)
    assert listed.row_counts["Observation"][0] == 58


def test_the_statement_starts_from_the_patients_on_sqlite_only(region: Store) -> None:
    statements = _statements(region)
    result = search(region, "Observation", f"code={COMMON}&_total=accurate", ListedPatients(_two()))
    assert len(result.matches) == 8 and result.total == 8
    assert {r["subject"]["reference"] for r in result.matches} == {"Patient/p1", "Patient/p2"}
    page = [s for s in statements if s.startswith("SELECT resource.pk, resource.content")]
    assert len(page) == 1
    assert ("EXISTS" in page[0]) is (not region.dialect.is_postgres), page[0]


@pytest.mark.parametrize("from_patients", [True, False])
def test_pages_are_the_same_from_either_side(
    region: Store, monkeypatch: pytest.MonkeyPatch, from_patients: bool
) -> None:
    monkeypatch.setattr(driving, "patients_first", lambda *_: from_patients)
    listed = ListedPatients(frozenset({"p0", "p3", "p5"}))
    for order in ("", "&_sort=-date"):
        whole = search(region, "Observation", f"code={COMMON}&_count=100{order}", listed)
        assert len(whole.matches) == 12
        pages: list[list[str]] = []
        params: list[tuple[str, str]] | None = parse_qs(f"code={COMMON}&_count=5{order}")
        while params is not None:
            result = search(region, "Observation", params, listed)
            pages.append([r["id"] for r in result.matches])
            params = result.next_params
        assert [len(p) for p in pages] == [5, 5, 2]
        assert [rid for page in pages for rid in page] == [r["id"] for r in whole.matches]
        if order:
            dates = [r["effectiveDateTime"] for r in whole.matches]
            assert dates == sorted(dates, reverse=True)


def _two() -> frozenset[str]:
    return frozenset({"p1", "p2"})


def _statements(store: Store) -> list[str]:
    seen: list[str] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def _seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    return seen
