"""The workspace's pages over real HTTP (the whole app under uvicorn, a real database):
sessions, CSRF, the access policy and the audit trail seen from the UI, and the RNIV search
rules. The browser tests (test_workspace_browser.py) cover the same pages in chromium."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import pytest
import uvicorn

from parcours.app import create_app
from parcours.config import Settings
from parcours.demo import DEMO_USERS, load_demo
from parcours.platform import Platform, build_platform
from parcours.store.schema_version import ensure_schema
from parcours.store.search import parse_search
from parcours.web import DEMO_PASSWORD, ensure_demo_accounts
from parcours.web.patient_search import compact, hit_of, parse_criteria

GP = next(u for u in DEMO_USERS if u.username == "medecin")


@pytest.fixture(scope="module")
def platform(module_database_url: str) -> Iterator[Platform]:
    settings = Settings(database_url=module_database_url, admin_token="t" * 32)
    built = build_platform(settings)
    ensure_schema(built.store.engine)
    load_demo(built.store, patients=60)
    ensure_demo_accounts(built.store, settings)
    yield built
    built.close()


@pytest.fixture(scope="module")
def base(platform: Platform) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = create_app(platform, dispatch=False)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def client(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, follow_redirects=False, timeout=30) as http:
        yield http


def log_in(client: httpx.Client, username: str) -> None:
    answer = client.post(
        "/connexion", data={"identifiant": username, "mot_de_passe": DEMO_PASSWORD, "suivant": "/"}
    )
    assert answer.status_code == 303, answer.text


def csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert found is not None
    return found.group(1)


def circles(platform: Platform, member: str | None = None) -> list[dict[str, Any]]:
    params = [("status", "active"), ("_count", "500")]
    if member:
        params.append(("participant", member))
    with platform.store.begin(readonly=True) as tx:
        return list(tx.search(parse_search("CareTeam", params, platform.registry)).matches)


def gp_patient(platform: Platform) -> str:
    team = circles(platform, f"PractitionerRole/{GP.practitioner_role_id}")[0]
    return str(team["subject"]["reference"].split("/", 1)[1])


def stranger_patient(platform: Platform) -> str:
    """A patient in whose circle the demo GP has no part (her organisations neither)."""
    mine = {t["subject"]["reference"] for t in circles(platform, GP.practitioner)}
    mine |= {
        t["subject"]["reference"]
        for t in circles(platform, f"PractitionerRole/{GP.practitioner_role_id}")
    }
    for team in circles(platform):
        refs = {p["member"]["reference"] for p in team["participant"]}
        if team["subject"]["reference"] not in mine and not any("demo-role-000" in r for r in refs):
            return str(team["subject"]["reference"].split("/", 1)[1])
    raise AssertionError("no patient outside the GP's circles")


def test_pages_need_a_session(client: httpx.Client) -> None:
    answer = client.get("/patients/x")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/connexion?suivant=%2Fpatients%2Fx"
    htmx = client.get("/patients", headers={"HX-Request": "true"})
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"].startswith("/connexion")


def test_a_refused_login_says_why_on_the_page(client: httpx.Client) -> None:
    answer = client.post(
        "/connexion", data={"identifiant": "medecin", "mot_de_passe": "faux-mot-de-passe"}
    )
    assert answer.status_code == 401
    assert 'role="alert"' in answer.text and 'value="medecin"' in answer.text
    assert "parcours_session" not in answer.cookies


def test_a_post_without_its_csrf_token_changes_nothing(
    client: httpx.Client, platform: Platform
) -> None:
    log_in(client, "medecin")
    patient = gp_patient(platform)
    before = circles(platform)
    answer = client.post(
        f"/patients/{patient}/cercle/ajouter", data={"membre": "PractitionerRole/demo-role-0003"}
    )
    assert answer.status_code == 403
    assert circles(platform) == before
    page = client.get(f"/patients/{patient}").text
    forged = client.post(
        f"/patients/{patient}/cercle/ajouter",
        data={"membre": "PractitionerRole/demo-role-0003", "csrf": "0" * 32},
    )
    assert forged.status_code == 403 and csrf(page) != "0" * 32


def _report(platform: Platform, patient_id: str) -> list[dict[str, Any]]:
    with platform.store.begin(readonly=True) as tx:
        return platform.audit.access_report(tx.conn, patient_id)


def test_the_patient_page_is_audited_like_the_api(client: httpx.Client, platform: Platform) -> None:
    patient = gp_patient(platform)
    log_in(client, "medecin")
    page = client.get(f"/patients/{patient}")
    assert page.status_code == 200
    assert "Cercle de soins" in page.text
    line = next(r for r in _report(platform, patient) if r["practitioner"] == GP.practitioner)
    # The Patient read, and the section searches that returned this patient's resources
    # (the care circle), each its own FHIR interaction as through the API.
    assert line["interactions"].get("read", 0) >= 1
    assert line["interactions"].get("search-type", 0) >= 1
    # The access history is for referents: the GP's attempt is refused (and audited).
    assert "consultable par les référents" in page.text


def test_a_patient_outside_the_circle_is_refused_and_recorded(
    client: httpx.Client, platform: Platform
) -> None:
    patient = stranger_patient(platform)
    log_in(client, "medecin")
    page = client.get(f"/patients/{patient}")
    assert page.status_code == 403
    assert "Accès refusé" in page.text
    line = next(r for r in _report(platform, patient) if r["practitioner"] == GP.practitioner)
    assert line["failed"] >= 1


def test_search_finds_only_what_the_user_may_see(client: httpx.Client, platform: Platform) -> None:
    with platform.store.begin(readonly=True) as tx:
        stranger = tx.read("Patient", stranger_patient(platform))
    log_in(client, "medecin")
    page = client.get("/patients", params={"date_naissance": stranger["birthDate"]})
    assert page.status_code == 200
    assert f"/patients/{stranger['id']}" not in page.text
    log_in(client, "identitovigilance")  # every identity
    page = client.get("/patients", params={"date_naissance": stranger["birthDate"]})
    assert f"/patients/{stranger['id']}" in page.text


def test_search_fragment_for_htmx(client: httpx.Client, platform: Platform) -> None:
    with platform.store.begin(readonly=True) as tx:
        patient = tx.read("Patient", gp_patient(platform))
    log_in(client, "medecin")
    params = {"date_naissance": patient["birthDate"]}
    fragment = client.get("/patients", params=params, headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and f"/patients/{patient['id']}" in fragment.text
    bad = client.get("/patients", params={"date_naissance": "31/02/2000"})
    assert bad.status_code == 400 and "jj/mm/aaaa" in bad.text


def test_the_identity_queue_is_for_referents(client: httpx.Client) -> None:
    log_in(client, "medecin")
    assert client.get("/identitovigilance").status_code == 403
    log_in(client, "identitovigilance")
    assert client.get("/identitovigilance").status_code == 200


def test_home_lists_the_gps_patients(client: httpx.Client, platform: Platform) -> None:
    log_in(client, "medecin")
    home = client.get("/")
    assert home.status_code == 200
    assert home.headers["server-timing"].startswith("app;dur=")
    assert f"/patients/{gp_patient(platform)}" in home.text


# ---- RNIV search rules ----------------------------------------------------------------


def _patient(birth: str, used: str | None = None, given: str = "MARIE") -> dict[str, Any]:
    names = [{"use": "official", "family": birth, "given": [given]}]
    if used:
        names.append({"use": "usual", "family": used, "given": [given]})
    return {"resourceType": "Patient", "id": "p1", "name": names, "birthDate": "1950-03-07"}


@pytest.mark.parametrize(
    ("typed", "stored", "found"),
    [
        ("darras", "D'ARRAS", True),
        ("d arras", "D'ARRAS", True),
        ("D’Arras", "D'ARRAS", True),
        ("jean pierre", "JEAN-PIERRE", True),
        ("Ménétrier", "MENETRIER", True),
        ("arras", "D'ARRAS", True),  # a word of the name
        ("rras", "D'ARRAS", False),  # not from the start of a word
        ("martin", "MARTINEZ", True),  # a prefix
        ("martinez", "MARTIN", False),
    ],
)
def test_names_compare_as_the_rniv_says(typed: str, stored: str, found: bool) -> None:
    criteria, errors = parse_criteria("", typed, "")
    assert not errors
    assert (hit_of(_patient(stored), criteria) is not None) is found


def test_the_used_name_is_searched_and_marked() -> None:
    criteria, _ = parse_criteria("07/03/1950", "dupont", "mar")
    hit = hit_of(_patient("MARTIN", used="DUPONT"), criteria)
    assert hit is not None
    assert hit.used_name is not None and str(hit.used_name.html) == "<mark>DUPONT</mark>"
    assert not hit.birth_name.matched
    assert str(hit.given.html) == "<mark>MAR</mark>IE"
    assert criteria.birth_date == date(1950, 3, 7)


def test_criteria_errors_are_per_field() -> None:
    assert "date_naissance" in parse_criteria("1950-13-01", "x", "")[1]
    assert "nom" in parse_criteria("", "a", "")[1]
    assert parse_criteria("1950-03-07", "", "")[1] == {}
    assert compact("D'Ar-ras  x") == "DARRASX"
