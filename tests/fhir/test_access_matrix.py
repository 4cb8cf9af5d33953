"""The access-control matrix over real HTTP: role × relationship to the patient × interaction.

Every cell of the product is generated and asserted against an oracle written here from the
rules of the issue (not from the policy module): who may see patient X's data, and how a
refusal looks (403 with an OperationOutcome; a search that silently leaves X out, its total
included; pseudonymised data for an analyst).

The world: patient X with one active care circle managed by the DAC organisation, whose
participants are a practitioner (``direct``), a PractitionerRole (``role``), an organisation
(``org``), a participation that ended last year (``ended``) and a practitioner the patient
opposed (``opposed``, Consent deny); patient Y, with no circle. Each relationship has its own
practitioner working for its own organisation, so that only the intended link can apply.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from fhir_server import Server
from parcours.auth import issue_token
from parcours.security import policy
from parcours.security.principal import Principal
from parcours.store.search import driving

ROLES = (
    "professional",
    "coordinator",
    "identity-referent",
    "analyst",
    "system-read",
    "system-write",
    "admin",
)
RELATIONS = ("direct", "role", "org", "managing", "ended", "opposed", "glass", "none")
CLINICAL = ("professional", "coordinator")
CODE = "http://loinc.org|29463-7"
X_FAMILY = "MATRIXFAMILY"


@dataclass
class World:
    server: Server
    x: str
    y: str
    obs_x: str
    obs_y: str
    practitioners: dict[str, str]
    tokens: dict[tuple[str, str], str]


def _post(http: httpx.Client, resource: dict[str, Any]) -> str:
    response = http.post(f"/{resource['resourceType']}", json=resource)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _ref(kind: str, res_id: str) -> dict[str, str]:
    return {"reference": f"{kind}/{res_id}"}


def _observation(patient: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "subject": _ref("Patient", patient),
        "valueQuantity": {"value": 72, "unit": "kg"},
    }


def _principal(role: str, practitioner: str) -> Principal:
    if role == "system-read":
        return Principal(
            "client/matrix-read", frozenset({"system"}), scopes=frozenset({"system/*.read"})
        )
    if role == "system-write":
        return Principal(
            "client/matrix-write", frozenset({"system"}), scopes=frozenset({"system/*.*"})
        )
    return Principal(
        f"Practitioner/{practitioner}",
        frozenset({role}),
        practitioner=f"Practitioner/{practitioner}",
        display=f"{role} {practitioner}",
    )


def _build(server: Server) -> World:
    with server.client() as http:
        orgs = {
            name: _post(http, {"resourceType": "Organization", "name": f"Org {name}"})
            for name in RELATIONS
        }
        practitioners = {
            rel: _post(
                http,
                {"resourceType": "Practitioner", "name": [{"family": f"Pro{rel}", "given": ["A"]}]},
            )
            for rel in RELATIONS
        }
        roles = {
            rel: _post(
                http,
                {
                    "resourceType": "PractitionerRole",
                    "active": True,
                    "practitioner": _ref("Practitioner", practitioners[rel]),
                    "organization": _ref("Organization", orgs[rel]),
                },
            )
            for rel in RELATIONS
        }
        x = _post(
            http,
            {
                "resourceType": "Patient",
                "name": [{"family": X_FAMILY, "given": ["Xavier"]}],
                "gender": "male",
                "birthDate": "1950-02-03",
                "address": [{"postalCode": "21000", "city": "Dijon"}],
            },
        )
        y = _post(
            http,
            {"resourceType": "Patient", "name": [{"family": "OTHERFAMILY"}], "gender": "female"},
        )

        def member(kind: str, res_id: str, **period: str) -> dict[str, Any]:
            entry: dict[str, Any] = {"member": _ref(kind, res_id)}
            entry["period"] = {"start": "2020-01-01", **period}
            return entry

        _post(
            http,
            {
                "resourceType": "CareTeam",
                "status": "active",
                "name": "Cercle de soins de X",
                "subject": _ref("Patient", x),
                "period": {"start": "2020-01-01"},
                "managingOrganization": [_ref("Organization", orgs["managing"])],
                "participant": [
                    member("Practitioner", practitioners["direct"]),
                    member("PractitionerRole", roles["role"]),
                    member("Organization", orgs["org"]),
                    member("Practitioner", practitioners["ended"], end="2021-06-30"),
                    member("Practitioner", practitioners["opposed"]),
                ],
            },
        )
        _post(
            http,
            {
                "resourceType": "Consent",
                "status": "active",
                "scope": {"coding": [{"code": "patient-privacy"}]},
                "category": [{"coding": [{"code": "INFA"}]}],
                "patient": _ref("Patient", x),
                "provision": {
                    "type": "deny",
                    "actor": [
                        {
                            "role": {"coding": [{"code": "PRCP"}]},
                            "reference": _ref("Practitioner", practitioners["opposed"]),
                        }
                    ],
                },
            },
        )
        obs_x = _post(http, _observation(x))
        obs_y = _post(http, _observation(y))
    store = server.platform.store
    settings = server.platform.settings
    tokens = {
        (role, rel): issue_token(
            store, _principal(role, practitioners[rel]), 3600, settings=settings
        )
        for role, rel in itertools.product(ROLES, RELATIONS)
    }
    world = World(server, x, y, obs_x, obs_y, practitioners, tokens)
    for role in CLINICAL:
        response = _client(world, role, "glass").post(
            f"/Patient/{x}/$break-glass",
            json={
                "resourceType": "Parameters",
                "parameter": [
                    {"name": "reason", "valueString": "urgence vitale, patient inconscient"}
                ],
            },
        )
        assert response.status_code == 200, response.text
    return world


def _client(world: World, role: str, rel: str) -> httpx.Client:
    token = world.tokens[(role, rel)]
    return httpx.Client(
        base_url=world.server.base, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


@pytest.fixture(scope="module")
def world(server: Server) -> World:
    return _build(server)


# ---- the oracle -----------------------------------------------------------------------------


def sees_x(role: str, rel: str) -> bool:
    """May this caller see patient X's clinical data (issue 5, "Access policy")?"""
    if role in ("admin", "system-read", "system-write"):
        return True
    if role == "professional":
        return rel in ("direct", "role", "org", "glass")
    if role == "coordinator":
        return rel in ("direct", "role", "org", "glass", "managing")
    return False


def may_write(role: str, rel: str) -> bool:
    if role in ("admin", "system-write"):
        return True
    return role in CLINICAL and sees_x(role, rel)


# An interaction: (name, kind, request builder, what X's presence looks like in the answer).
# kind "single": one resource of X (allowed → 200, refused → 403);
#      "search": a Bundle where X's data is present or absent (never a 403 for clinical roles);
#      "write": allowed → 2xx, refused → 403.
@dataclass(frozen=True)
class Interaction:
    name: str
    kind: str
    # Resource type the request is about (for the type rules of referents and analysts).
    res_type: str
    call: Callable[[httpx.Client, World], httpx.Response]
    # Whether X's data shows in a 200 answer.
    shows_x: Callable[[dict[str, Any], World], bool]
    # The parameters that an analyst may not use (singling out a person).
    identifying: bool = False


def _ids(body: dict[str, Any]) -> set[str]:
    return {
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in body.get("entry", [])
        if "resource" in e
    }


def _has_x_obs(body: dict[str, Any], world: World) -> bool:
    return f"Observation/{world.obs_x}" in _ids(body) or (
        body.get("resourceType") == "Observation" and body.get("id") == world.obs_x
    )


def _has_x_patient(body: dict[str, Any], world: World) -> bool:
    return f"Patient/{world.x}" in _ids(body) or (
        body.get("resourceType") == "Patient" and body.get("id") == world.x
    )


def _history_has_x(body: dict[str, Any], world: World) -> bool:
    urls = [e.get("fullUrl", "") for e in body.get("entry", [])]
    return any(u.endswith(f"Observation/{world.obs_x}") for u in urls)


def _new_obs(world: World) -> str:
    with world.server.client() as admin:
        return _post(admin, _observation(world.x))


INTERACTIONS = (
    Interaction(
        "read Patient", "single", "Patient", lambda c, w: c.get(f"/Patient/{w.x}"), _has_x_patient
    ),
    Interaction(
        "read Observation",
        "single",
        "Observation",
        lambda c, w: c.get(f"/Observation/{w.obs_x}"),
        _has_x_obs,
    ),
    Interaction(
        "vread Observation",
        "single",
        "Observation",
        lambda c, w: c.get(f"/Observation/{w.obs_x}/_history/1"),
        _has_x_obs,
    ),
    Interaction(
        "instance history",
        "single",
        "Observation",
        lambda c, w: c.get(f"/Observation/{w.obs_x}/_history"),
        _history_has_x,
    ),
    Interaction(
        "$everything",
        "single",
        "Patient",
        lambda c, w: c.get(f"/Patient/{w.x}/$everything"),
        _has_x_patient,
        identifying=True,
    ),
    Interaction(
        "search by subject",
        "search",
        "Observation",
        lambda c, w: c.get("/Observation", params={"subject": f"Patient/{w.x}"}),
        _has_x_obs,
        identifying=True,
    ),
    Interaction(
        "search all, total",
        "search",
        "Observation",
        lambda c, w: c.get("/Observation", params={"_total": "accurate", "_count": "1000"}),
        _has_x_obs,
    ),
    Interaction(
        "search _include",
        "search",
        "Observation",
        lambda c, w: c.get(
            "/Observation", params={"code": CODE, "_include": "Observation:subject"}
        ),
        _has_x_obs,
    ),
    Interaction(
        "search _revinclude",
        "search",
        "Patient",
        lambda c, w: c.get("/Patient", params={"_id": w.x, "_revinclude": "Observation:subject"}),
        _has_x_patient,
        identifying=True,
    ),
    Interaction(
        "chained search",
        "search",
        "Observation",
        lambda c, w: c.get("/Observation", params={"subject:Patient.family": X_FAMILY}),
        _has_x_obs,
        identifying=True,
    ),
    Interaction(
        "_has search",
        "search",
        "Patient",
        lambda c, w: c.get("/Patient", params={"_has:Observation:subject:code": CODE}),
        _has_x_patient,
        identifying=True,
    ),
    Interaction(
        "type history",
        "search",
        "Observation",
        lambda c, w: c.get("/Observation/_history", params={"_count": "1000"}),
        _history_has_x,
    ),
    Interaction(
        "search CareTeam",
        "search",
        "CareTeam",
        lambda c, w: c.get("/CareTeam", params={"patient": f"Patient/{w.x}"}),
        lambda b, w: bool(b.get("entry")),
        identifying=True,
    ),
    Interaction(
        "create Observation",
        "write",
        "Observation",
        lambda c, w: c.post("/Observation", json=_observation(w.x)),
        lambda b, w: True,
    ),
    Interaction(
        "update Observation",
        "write",
        "Observation",
        lambda c, w: c.put(f"/Observation/{w.obs_x}", json={**_observation(w.x), "id": w.obs_x}),
        lambda b, w: True,
    ),
    Interaction(
        "delete Observation",
        "write",
        "Observation",
        lambda c, w: c.delete(f"/Observation/{_new_obs(w)}"),
        lambda b, w: True,
    ),
)


def expected(role: str, rel: str, interaction: Interaction) -> tuple[str, bool | None]:
    """(outcome, X shown?): outcome is "ok" or "forbidden"."""
    kind, res_type = interaction.kind, interaction.res_type
    if role == "identity-referent":
        if kind == "write" or res_type != "Patient":
            return "forbidden", None
        if interaction.name == "_has search":
            return "ok", False  # the Observations it tests are out of sight
        return "ok", True
    if role == "analyst":
        if kind == "write" or interaction.identifying:
            return "forbidden", None
        return "ok", None  # pseudonymised: checked separately
    if role == "system-read" and kind == "write":
        return "forbidden", None
    if kind == "write":
        return ("ok", True) if may_write(role, rel) else ("forbidden", None)
    if kind == "single":
        return ("ok", True) if sees_x(role, rel) else ("forbidden", None)
    return "ok", sees_x(role, rel)


CELLS = list(itertools.product(ROLES, RELATIONS, INTERACTIONS))


def _outcome_is_forbidden(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "forbidden"


def _check_pseudonymised(response: httpx.Response, world: World) -> None:
    text = response.text
    assert world.x not in text and X_FAMILY not in text and "Xavier" not in text, text[:500]
    body = response.json()
    for resource in _resources(body):
        if resource["resourceType"] == "Patient":
            assert set(resource) <= {
                "resourceType",
                "id",
                "meta",
                "gender",
                "birthDate",
                "address",
                "deceasedBoolean",
            }
            assert len(resource.get("birthDate", "1950")) == 4


def _resources(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if body.get("resourceType") == "Bundle":
        for entry in body.get("entry", []):
            if "resource" in entry:
                yield entry["resource"]
    else:
        yield body


Cell = tuple[str, str, Interaction]


def _cells(cells: list[Cell]) -> pytest.MarkDecorator:
    """Parametrize a test by (role, relationship, interaction), one readable id per cell."""
    return pytest.mark.parametrize(
        ("role", "rel", "interaction"),
        cells,
        ids=[f"{r}-{rel}-{i.name.replace(' ', '_')}" for r, rel, i in cells],
    )


@_cells(CELLS)
def test_cell(world: World, role: str, rel: str, interaction: Interaction) -> None:
    _check_cell(world, role, rel, interaction)


# Professionals and coordinators again, with the membership tests the policy uses instead of the
# list of visible patients beyond ``VISIBLE_LIST_MAX`` (a structure's coordinator, at regional
# scale).
CLINICAL_CELLS = [cell for cell in CELLS if cell[0] in CLINICAL]


@_cells(CLINICAL_CELLS)
def test_cell_without_visible_list(
    world: World,
    role: str,
    rel: str,
    interaction: Interaction,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(policy, "VISIBLE_LIST_MAX", 0)
    _check_cell(world, role, rel, interaction)


# Their searches again, started from the rows of their visible patients (the plan SQLite takes
# when those patients hold fewer rows than a filter matches: ``store.search.driving``).
CLINICAL_SEARCHES = [cell for cell in CLINICAL_CELLS if cell[2].kind == "search"]


@_cells(CLINICAL_SEARCHES)
def test_search_cell_from_the_patients(
    world: World,
    role: str,
    rel: str,
    interaction: Interaction,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(driving, "patients_first", lambda *_: True)
    _check_cell(world, role, rel, interaction)


def _check_cell(world: World, role: str, rel: str, interaction: Interaction) -> None:
    outcome, shows = expected(role, rel, interaction)
    with _client(world, role, rel) as client:
        response = interaction.call(client, world)
    if outcome == "forbidden":
        _outcome_is_forbidden(response)
        return
    assert response.status_code in (200, 201, 204), response.text
    if role == "analyst":
        _check_pseudonymised(response, world)
        return
    if interaction.kind == "write":
        return
    body = response.json()
    assert interaction.shows_x(body, world) is shows, json.dumps(body)[:800]
    if interaction.name == "search all, total":
        # The count never includes what the caller may not see: Y has no circle.
        everyone = role in ("admin", "system-read", "system-write")
        assert body["total"] >= (2 if everyone else int(bool(shows)))
        if not everyone:
            assert body["total"] == len(body.get("entry", []))
            assert f"Observation/{world.obs_y}" not in _ids(body)


def test_directory_is_readable_by_every_role(world: World) -> None:
    for role, rel in itertools.product(ROLES, RELATIONS):
        with _client(world, role, rel) as client:
            response = client.get(f"/Practitioner/{world.practitioners['direct']}")
        assert response.status_code == 200, (role, rel, response.text)


def test_directory_is_written_by_operations_only(world: World) -> None:
    for role, rel in itertools.product(ROLES, RELATIONS):
        with _client(world, role, rel) as client:
            response = client.post(
                "/Organization", json={"resourceType": "Organization", "name": f"x-{uuid.uuid4()}"}
            )
        allowed = role in ("admin", "system-write")
        assert response.status_code == (201 if allowed else 403), (role, rel, response.text)
