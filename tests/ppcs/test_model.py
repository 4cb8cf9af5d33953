"""The shipped CodeSystem, the French dates, the sign-off checklist, and the Python API the web
workspace calls (``render_html`` / ``render_pdf`` in its own transaction)."""

from __future__ import annotations

import pytest

from parcours.errors import Forbidden
from parcours.fhir.validation import structure_issues
from parcours.ppcs import code_system, completeness_issues, render_html, render_pdf
from parcours.ppcs.model import AGREEMENT_CODES, CATEGORY, SYSTEM_PPCS
from parcours.ppcs.view import french_date
from parcours.security.policy import access_for
from parcours.security.principal import Principal

from .support import Circle, create, pdf_bytes_text, ppcs_draft


def _codes(concepts: list[dict[str, object]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for concept in concepts:
        out[str(concept["code"])] = str(concept["display"])
        out.update(_codes(concept.get("concept", [])))  # type: ignore[arg-type]
    return out


def test_code_system_is_valid_and_holds_the_codes_used() -> None:
    system = code_system()
    assert structure_issues(system) == []
    assert system["url"] == SYSTEM_PPCS
    codes = _codes(system["concept"])
    assert system["count"] == len(codes)
    category = CATEGORY["coding"][0]
    assert codes[category["code"]] == category["display"]
    for code, display in AGREEMENT_CODES.items():
        assert codes[code] == display


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("2026-03-01", "1er mars 2026"),
        ("2026-12-31", "31 décembre 2026"),
        ("2026-08", "août 2026"),
        ("2026", "2026"),
        # Stored in UTC, shown in Paris time (summer: UTC+2; winter: UTC+1).
        ("2026-07-14T22:30:00Z", "15 juillet 2026 à 0 h 30"),
        ("2026-01-10T08:05:00+00:00", "10 janvier 2026 à 9 h 05"),
        ("not a date", "not a date"),
        (None, ""),
    ],
)
def test_french_dates(value: str | None, shown: str) -> None:
    assert french_date(value) == shown


def test_completeness_names_each_missing_section() -> None:
    assert {i.location for i in completeness_issues({"resourceType": "CarePlan"})} == {
        "CarePlan.subject",
        "CarePlan.description",
        "CarePlan.addresses",
        "CarePlan.goal",
        "CarePlan.activity",
        "CarePlan.author",
        "CarePlan.period.end",
        "CarePlan.extension",
    }
    action_without_who_or_when = {
        "detail": {"description": "visite", "status": "scheduled"},
    }
    issues = completeness_issues(
        {"resourceType": "CarePlan", "activity": [action_without_who_or_when]}
    )
    locations = {i.location for i in issues}
    assert "CarePlan.activity[0].detail.performer" in locations
    assert "CarePlan.activity[0].detail.scheduled[x]" in locations
    assert "CarePlan.activity[0].detail.description" not in locations


def test_python_api_renders_for_the_circle_only(circle: Circle) -> None:
    with circle.coordinator_client() as coord:
        plan = create(coord, ppcs_draft(circle))
    store = circle.server.platform.store

    def as_(practitioner: str) -> Principal:
        return Principal(
            f"Practitioner/{practitioner}",
            frozenset({"professional"}),
            practitioner=f"Practitioner/{practitioner}",
        )

    with store.begin(readonly=True) as tx:
        tx.access = access_for(tx, as_(circle.nurse))
        html = render_html(tx, plan)
        pdf = render_pdf(tx, plan, version=1)
    assert ppcs_draft(circle)["description"] in html
    assert ppcs_draft(circle)["description"] in pdf_bytes_text(pdf)
    with store.begin(readonly=True) as tx:
        tx.access = access_for(tx, as_(circle.outsider))
        with pytest.raises(Forbidden):
            render_html(tx, plan)
