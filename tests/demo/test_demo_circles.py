"""The demo care circles (CDS CareTeams) and the demo users."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from parcours.demo import DEMO_USERS, generate_region
from parcours.demo.circles import CARETEAM_PROFILE, RELATED_PERSON_PROFILE
from parcours.demo.generator import REFERENCE_DAY
from parcours.security.principal import ROLES

Resource = dict[str, Any]
DEFINITIONS = Path(__file__).resolve().parents[2].parent / "shared" / "definitions" / "cds"


@pytest.fixture(scope="module")
def region() -> list[Resource]:
    return generate_region()


def _index(region: list[Resource]) -> dict[str, Resource]:
    return {f"{r['resourceType']}/{r['id']}": r for r in region}


def _allowed_roles() -> set[tuple[str, str | None]]:
    """(system, code) pairs of the IG's careteam-roles-vs; code None = the whole system."""
    path = DEFINITIONS / "ValueSet-careteam-roles-vs.json"
    if not path.is_file():
        pytest.skip(f"CDS definitions not found at {path}")
    vs = json.loads(path.read_text(encoding="utf-8"))
    allowed: set[tuple[str, str | None]] = set()
    for include in vs["compose"]["include"]:
        concepts = include.get("concept")
        if concepts is None:
            allowed.add((include["system"], None))
        allowed.update((include["system"], c["code"]) for c in concepts or [])
    return allowed


def test_one_cds_care_circle_per_patient(region: list[Resource]) -> None:
    by_ref = _index(region)
    patients = [r for r in region if r["resourceType"] == "Patient"]
    teams = [r for r in region if r["resourceType"] == "CareTeam"]
    assert sorted(t["subject"]["reference"] for t in teams) == sorted(
        f"Patient/{p['id']}" for p in patients
    )
    allowed = _allowed_roles()
    ended = 0
    for team in teams:
        patient = by_ref[team["subject"]["reference"]]
        assert team["meta"]["profile"] == [CARETEAM_PROFILE]
        assert team["status"] == "active"
        assert team["identifier"][0]["value"]
        assert team["name"] == f"Cercle de soins de {patient['name'][0]['text']}"
        assert team["period"]["start"] < REFERENCE_DAY.isoformat()
        (manager,) = team["managingOrganization"]
        dac = by_ref[manager["reference"]]
        assert "Dispositif d'appui" in dac["name"]
        assert dac["address"][0]["district"] == patient["address"][0]["postalCode"][:2]
        members = [p["member"]["reference"] for p in team["participant"]]
        assert len(members) == len(set(members))
        assert all(m in by_ref for m in members)
        # The GP first, as médecin traitant, through one of the GP's PractitionerRoles.
        gp_role = by_ref[members[0]]
        assert gp_role["practitioner"] == patient["generalPractitioner"][0]
        assert team["participant"][0]["role"][0]["coding"][0]["code"] == "PCP"
        assert members[-1] == manager["reference"]
        for participant in team["participant"]:
            coding = participant["role"][0]["coding"][0]
            assert (coding["system"], coding["code"]) in allowed or (
                coding["system"],
                None,
            ) in allowed
            period = participant["period"]
            assert period["start"] >= team["period"]["start"]
            if "end" in period:
                ended += 1
                assert period["start"] < period["end"] < REFERENCE_DAY.isoformat()
                assert participant["member"]["reference"].startswith("PractitionerRole/")
        others = [m for m in members[1:-1] if m.startswith("PractitionerRole/")]
        # 0 to 3 professionals, plus the demo nurse and coordinator around the demo GP.
        limit = (
            5 if patient["generalPractitioner"][0]["reference"] == DEMO_USERS[0].practitioner else 3
        )
        assert len(others) <= limit
        for member in members:
            if member.startswith("RelatedPerson/"):
                carer = by_ref[member]
                assert carer["meta"]["profile"] == [RELATED_PERSON_PROFILE]
                assert carer["patient"] == team["subject"]
    assert 0 < ended < len(teams)
    sizes = Counter(len(t["participant"]) for t in teams)
    assert min(sizes) == 2 and max(sizes) >= 5


def test_circles_are_deterministic() -> None:
    def circles(seed: int) -> list[Resource]:
        return [r for r in generate_region(seed, 50) if r["resourceType"] == "CareTeam"]

    assert circles(3) == circles(3)
    assert circles(3) != circles(4)


def test_demo_users(region: list[Resource]) -> None:
    by_ref = _index(region)
    assert {role for user in DEMO_USERS for role in user.roles} == ROLES - {"admin", "system"}
    assert len({u.username for u in DEMO_USERS}) == len(DEMO_USERS)
    for user in DEMO_USERS:
        practitioner = by_ref[user.practitioner]
        role = by_ref[f"PractitionerRole/{user.practitioner_role_id}"]
        assert role["practitioner"]["reference"] == user.practitioner
        name = practitioner["name"][0]
        assert user.display.endswith(f"{name['given'][0]} {name['family']}")
    # The same ids whatever the seed and the size of the region.
    small = _index(generate_region(9, 20))
    assert all(user.practitioner in small for user in DEMO_USERS)

    gp, nurse, coordinator = DEMO_USERS[0], DEMO_USERS[1], DEMO_USERS[2]
    teams = [
        r
        for r in region
        if r["resourceType"] == "CareTeam"
        and by_ref[r["subject"]["reference"]]["generalPractitioner"][0]["reference"]
        == gp.practitioner
    ]
    assert teams, "the demo GP is the médecin traitant of some demo patients"
    for team in teams:
        members = {p["member"]["reference"] for p in team["participant"]}
        assert f"PractitionerRole/{gp.practitioner_role_id}" in members
        assert f"PractitionerRole/{nurse.practitioner_role_id}" in members
        assert f"PractitionerRole/{coordinator.practitioner_role_id}" in members
    dac_role = by_ref[f"PractitionerRole/{coordinator.practitioner_role_id}"]
    assert "Dispositif d'appui" in by_ref[dac_role["organization"]["reference"]]["name"]
