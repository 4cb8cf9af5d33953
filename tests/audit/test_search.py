"""FHIR search of the trail (``GET AuditEvent?…``), read, the per-patient access report and
the break-glass review. These tests only read: one filled database per module and kind."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from parcours.audit import AuditTrail
from parcours.errors import InvalidInput, NotFound
from parcours.platform import Platform

from .conftest import CLIENT, DAY, DOCTOR, HOUR, NURSE, T0, entry, open_platform


@pytest.fixture(scope="module")
def platform(module_database_url: str) -> Iterator[Platform]:
    platform = open_platform(module_database_url)
    try:
        yield platform
    finally:
        platform.close()


@pytest.fixture(scope="module")
def filled(platform: Platform) -> AuditTrail:
    """Seven entries over three days (T0 = 2025-01-07T09:30Z), ids 1..7 in this order."""
    trail = AuditTrail(platform.store)
    trail.record([entry("read", at=T0, patients=("p1",))])  # 1
    trail.record(
        [
            entry(
                "search-type",
                at=T0 + HOUR,
                agent=NURSE,
                patients=("p1", "p2"),
                query="subject=Patient/p1,Patient/p2",
                resource_type="Observation",
            )
        ]
    )  # 2
    trail.record(
        [
            entry(
                "create",
                at=T0 + DAY,
                agent=CLIENT,
                patients=("p2",),
                entities=("Observation/o1/_history/1",),
            )
        ]
    )  # 3
    trail.record(
        [
            entry(
                "read",
                at=T0 + DAY + HOUR,
                agent=NURSE,
                patients=("p3",),
                outcome=4,
                outcome_text="forbidden",
            )
        ]
    )  # 4
    trail.record(
        [
            entry(
                "break-glass",
                at=T0 + 2 * DAY,
                agent=NURSE,
                patients=("p3",),
                reason="urgence vitale",
            )
        ]
    )  # 5
    trail.record(
        [
            entry(
                "read",
                at=T0 + 2 * DAY + 1,
                agent=NURSE,
                patients=("p3",),
                purpose="BTG",
                reason="urgence vitale",
            )
        ]
    )  # 6
    trail.record([entry("login", at=T0 + 2 * DAY + HOUR, patients=(), action="E")])  # 7
    return trail


def _ids(
    platform: Platform, trail: AuditTrail, params: Sequence[tuple[str, str]], count: int = 50
) -> list[int]:
    with platform.store.begin(readonly=True) as tx:
        found, _, _ = trail.search(tx.conn, params, count, None)
    return [int(r["id"]) for r in found]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ([], [7, 6, 5, 4, 3, 2, 1]),
        ([("patient", "Patient/p1")], [2, 1]),
        ([("patient", "p2")], [3, 2]),  # p2 is the second patient of entry 2
        ([("patient", "p1,p3")], [6, 5, 4, 2, 1]),
        ([("patient", "http://example.org/fhir/Patient/p2")], [3, 2]),
        ([("agent", "Practitioner/34")], [6, 5, 4, 2]),
        ([("agent", "account/jdupont")], [7, 1]),
        ([("agent", "client/hopital-a")], [3]),
        ([("altid", "account/bmartin")], [6, 5, 4, 2]),
        ([("date", "2025-01-07")], [2, 1]),
        ([("date", "eq2025-01-08")], [4, 3]),
        ([("date", "ge2025-01-08")], [7, 6, 5, 4, 3]),
        ([("date", "gt2025-01-08")], [7, 6, 5]),
        ([("date", "lt2025-01-08")], [2, 1]),
        ([("date", "le2025-01-08")], [4, 3, 2, 1]),
        ([("date", "ne2025-01-08")], [7, 6, 5, 2, 1]),
        (
            [("period-start", "ge2025-01-07T10:30:00Z"), ("period-start", "lt2025-01-08T10:30Z")],
            [3, 2],
        ),
        ([("date", "gt2025-01-07T10:30:00+01:00")], [7, 6, 5, 4, 3, 2]),  # 09:30Z
        ([("date", "2025-01-07T09:30:00.000Z")], [1]),
        ([("date", "sa2025-01-08"), ("date", "eb2025-01-09T10:00Z")], [6, 5]),
        ([("date", "2025-01"), ("patient", "p3")], [6, 5, 4]),
        ([("date", "2024")], []),
        ([("action", "C")], [3]),
        ([("action", "R,C")], [6, 4, 3, 1]),
        ([("outcome", "4")], [4]),
        ([("subtype", "read")], [6, 4, 1]),
        ([("subtype", "http://hl7.org/fhir/restful-interaction|search-type")], [2]),
        ([("subtype", "110127")], [5]),
        ([("subtype", "login")], [7]),
        ([("purpose", "BTG")], [6, 5]),
        ([("_id", "3,5,x")], [5, 3]),
        ([("patient", "p3"), ("agent", "Practitioner/34"), ("outcome", "0")], [6, 5]),
        ([("_format", "json"), ("_sort", "-date")], [7, 6, 5, 4, 3, 2, 1]),
    ],
)
def test_search(
    platform: Platform, filled: AuditTrail, params: list[tuple[str, str]], expected: list[int]
) -> None:
    assert _ids(platform, filled, params) == expected


def test_paging_newest_first(platform: Platform, filled: AuditTrail) -> None:
    pages: list[list[int]] = []
    cursor: str | None = None
    totals: list[int | None] = []
    with platform.store.begin(readonly=True) as tx:
        while True:
            found, cursor, total = filled.search(tx.conn, [("_total", "accurate")], 3, cursor)
            pages.append([int(r["id"]) for r in found])
            totals.append(total)
            if cursor is None:
                break
        assert pages == [[7, 6, 5], [4, 3, 2], [1]]
        assert totals == [7, 7, 7]
        # Without _total, only a first page that holds everything gives it.
        assert filled.search(tx.conn, [], 3, None)[2] is None
        assert filled.search(tx.conn, [("patient", "p1")], 3, None)[2] == 2
        # _count and _cursor may also come as parameters.
        found, nxt, _ = filled.search(tx.conn, [("_count", "2"), ("_cursor", "6")], 50, None)
        assert [r["id"] for r in found] == ["5", "4"] and nxt == "4"


def test_results_are_auditevents_with_ids(platform: Platform, filled: AuditTrail) -> None:
    with platform.store.begin(readonly=True) as tx:
        (event,), _, _ = filled.search(tx.conn, [("_id", "2")], 10, None)
        assert event["resourceType"] == "AuditEvent" and event["id"] == "2"
        assert event["agent"][0]["who"]["reference"] == "Practitioner/34"
        assert filled.read(tx.conn, "2") == event
        for bad in ("99", "abc", "-1", "1" * 40):
            with pytest.raises(NotFound):
                filled.read(tx.conn, bad)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ([("name", "x")], "unknown search parameter 'name'"),
        ([("patient:missing", "true")], "modifiers"),
        ([("date", "ap2025-01-07")], "prefix 'ap'"),
        ([("date", "07/01/2025")], "not a FHIR date"),
        ([("date", "2025-02-30")], "not a valid date"),
        ([("action", "X")], "action"),
        ([("outcome", "3")], "outcome"),
        ([("patient", "Observation/1")], "Patient/<id>"),
        ([("_count", "-1")], "_count"),
        ([("_cursor", "abc")], "_cursor"),
        ([("_sort", "date")], "newest first"),
        ([("_total", "maybe")], "_total"),
        ([("_include", "AuditEvent:agent")], "unknown search parameter"),
    ],
)
def test_bad_searches_are_refused(
    platform: Platform, filled: AuditTrail, params: list[tuple[str, str]], message: str
) -> None:
    with platform.store.begin(readonly=True) as tx, pytest.raises(InvalidInput, match=message):
        filled.search(tx.conn, params, 10, None)


def test_access_report(platform: Platform, filled: AuditTrail) -> None:
    with platform.store.begin(readonly=True) as tx:
        report = filled.access_report(tx.conn, "Patient/p3")
        assert len(report) == 1
        (line,) = report
        assert line == {
            "agent": "account/bmartin",
            "practitioner": "Practitioner/34",
            "display": "Bruno Martin",
            "first": "2025-01-08T10:30:00.000Z",
            "last": "2025-01-09T09:30:00.001Z",
            "count": 3,
            "failed": 1,
            "break_glass": True,
            "interactions": {"break-glass": 1, "read": 2},
        }
        p1: list[dict[str, Any]] = filled.access_report(tx.conn, "p1")
        assert [(x["agent"], x["count"], x["break_glass"]) for x in p1] == [
            ("account/bmartin", 1, False),  # latest access first
            ("account/jdupont", 1, False),
        ]
        assert p1[0]["interactions"] == {"search-type": 1}
        assert filled.access_report(tx.conn, "p1", since_ms=T0 + 1) == p1[:1]
        assert filled.access_report(tx.conn, "nobody") == []


def test_break_glass_review(platform: Platform, filled: AuditTrail) -> None:
    with platform.store.begin(readonly=True) as tx:
        events = filled.break_glass(tx.conn)
        assert [(e["id"], e["interaction"], e["patients"], e["reason"]) for e in events] == [
            ("6", "read", ["p3"], "urgence vitale"),
            ("5", "break-glass", ["p3"], "urgence vitale"),
        ]
        assert events[0]["display"] == "Bruno Martin"
        assert filled.break_glass(tx.conn, since_ms=T0 + 3 * DAY) == []


def test_search_needs_no_write_transaction(platform: Platform, filled: AuditTrail) -> None:
    # Reads run on the read-only (autocommit on PostgreSQL) connections of the API.
    with platform.store.begin(readonly=True) as tx:
        assert filled.search(tx.conn, [("patient", "p1")], 1, None)[1] == "2"
    assert DOCTOR.practitioner == "Practitioner/12"
