"""SLA timers and the sweep, through the Python API with an injected clock, on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from parcours.config import Settings
from parcours.coordination import (
    EXT_OVERDUE,
    Coordination,
    Status,
    install_conformance,
    sla_state,
    sweep,
)
from parcours.platform import Platform, build_platform
from parcours.store.clock import parse_instant_ms
from parcours.store.schema_version import ensure_schema

from .support import form

HOUR = 3600 * 1000
T0 = parse_instant_ms("2025-06-02T08:00:00Z")


class Clock:
    def __init__(self, at: int) -> None:
        self.at = at

    def __call__(self) -> int:
        return self.at


@pytest.fixture
def platform(database_url: str) -> Iterator[Platform]:
    platform = build_platform(Settings(database_url=database_url))
    ensure_schema(platform.store.engine)
    install_conformance(platform.store)
    try:
        yield platform
    finally:
        platform.close()


def _world(platform: Platform) -> tuple[str, str, str]:
    with platform.store.begin() as tx:
        org = tx.create({"resourceType": "Organization", "name": "DAC 21"})["id"]
        gp = tx.create({"resourceType": "Practitioner", "name": [{"family": "Médecin"}]})["id"]
        patient = tx.create({"resourceType": "Patient", "name": [{"family": "Sla"}]})["id"]
    return org, gp, patient


def _flags(platform: Platform, task_id: str) -> list[str]:
    with platform.store.begin(readonly=True) as tx:
        task: dict[str, Any] = tx.read("Task", task_id)
    return [e["valueCode"] for e in task["extension"] if e["url"] == EXT_OVERDUE]


def test_timers_overdue_flags_and_sweep(platform: Platform) -> None:
    clock = Clock(T0)
    service = Coordination(clock=clock)
    org, gp, patient = _world(platform)
    with platform.store.begin() as tx:
        late = service.intake(
            tx,
            patient=f"Patient/{patient}",
            organization=org,
            response=form(),
            requester=f"Practitioner/{gp}",
        ).task
        urgent = service.intake(
            tx,
            patient=f"Patient/{patient}",
            organization=org,
            response=form(urgency="urgent"),
            requester=f"Practitioner/{gp}",
        ).task
    state = sla_state(late, T0)
    assert (state.first_contact_due_ms, state.decision_due_ms) == (T0 + 48 * HOUR, T0 + 168 * HOUR)
    assert state.overdue == ()
    # 30 hours later: the urgent request (24 h to first contact) is overdue, not the routine one.
    clock.at = T0 + 30 * HOUR
    result = sweep(platform.store, clock=clock)
    assert result.examined == 2
    assert result.changed == {f"Task/{urgent['id']}": ("first-contact",)}
    assert _flags(platform, urgent["id"]) == ["first-contact"]
    assert _flags(platform, late["id"]) == []
    # A second sweep at the same instant writes nothing.
    assert sweep(platform.store, clock=clock).changed == {}
    # The urgent one is called back: its first-contact flag goes at once.
    clock.at = T0 + 31 * HOUR
    with platform.store.begin() as tx:
        moved = service.transition(tx, urgent["id"], Status.UNDER_ANALYSIS)
    assert [e["valueCode"] for e in moved["extension"] if e["url"] == EXT_OVERDUE] == []
    state = sla_state(moved, clock.at)
    assert state.first_contact_ms == T0 + 31 * HOUR and state.first_contact_late
    # Four days in: the routine request missed its first contact, the urgent one its decision.
    clock.at = T0 + 96 * HOUR
    result = sweep(platform.store, clock=clock)
    assert result.changed == {
        f"Task/{late['id']}": ("first-contact",),
        f"Task/{urgent['id']}": ("decision",),
    }
    # Decided requests leave the sweep.
    with platform.store.begin() as tx:
        service.transition(tx, urgent["id"], Status.REFUSED, reason="hors territoire")
    clock.at = T0 + 200 * HOUR
    result = sweep(platform.store, clock=clock)
    assert result.examined == 1
    assert result.changed == {f"Task/{late['id']}": ("first-contact", "decision")}


def test_board_lists_a_structures_requests_by_status(platform: Platform) -> None:
    clock = Clock(T0)
    service = Coordination(clock=clock)
    org, gp, patient = _world(platform)
    ids = []
    with platform.store.begin() as tx:
        for n in range(3):
            clock.at = T0 + n * HOUR
            ids.append(
                service.intake(
                    tx,
                    patient=f"Patient/{patient}",
                    organization=org,
                    response=form(),
                    requester=f"Practitioner/{gp}",
                ).task["id"]
            )
        clock.at = T0 + 5 * HOUR
        service.transition(tx, ids[0], "under-analysis")
    with platform.store.begin(readonly=True) as tx:
        received = service.list_requests(tx, org, [Status.RECEIVED])
        analysing = service.list_requests(tx, org, ["under-analysis"])
        every = service.list_requests(tx, org)
        board = service.board(tx, org)
    assert [t["id"] for t in received] == [ids[2], ids[1]]  # newest first
    assert [t["id"] for t in analysing] == [ids[0]]
    assert sorted(t["id"] for t in every) == sorted(ids)
    assert [t["id"] for t in board[Status.RECEIVED]] == [ids[2], ids[1]]
    assert [t["id"] for t in board[Status.UNDER_ANALYSIS]] == [ids[0]]
    assert board[Status.ACCEPTED] == board[Status.CLOSED] == []
