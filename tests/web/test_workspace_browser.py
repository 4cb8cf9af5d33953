"""The coordinator's workspace in a real browser (Debian's chromium), against `parcours serve`.

Covered end to end: login, RNIV search of a demo patient, the patient page, adding a member to
the care circle, a live notification when a hospital admission arrives over MLLP, merging two
identities from the identity-vigilance queue; axe-core on every page visited (no serious or
critical violation); and every page read without JavaScript.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from browsing import TOKEN, Server, assert_accessible, log_in

from parcours.demo import DEMO_USERS
from parcours.demo.hospital import admission_message, send_mllp
from parcours.identity.reliability import read_reliability
from parcours.identity.rniv import Status
from parcours.store.search import parse_search

pytestmark = pytest.mark.slow

GP = next(u for u in DEMO_USERS if u.username == "medecin")


def _gp_patients(server: Server) -> list[dict[str, Any]]:
    """Patients whose care circle includes the demo GP, as stored."""
    platform = server.platform
    with platform.store.begin(readonly=True) as tx:
        query = parse_search(
            "CareTeam",
            [("participant", f"PractitionerRole/{GP.practitioner_role_id}"), ("status", "active")],
            platform.registry,
        )
        refs = [t["subject"]["reference"].split("/", 1)[1] for t in tx.search(query).matches]
        return [tx.read("Patient", ref) for ref in refs]


def _official(patient: dict[str, Any]) -> tuple[str, str]:
    name = next(n for n in patient["name"] if n.get("use") == "official")
    return str(name["family"]), str(name["given"][0])


@pytest.fixture
def page(browser: Any) -> Any:
    context = browser.new_context(locale="fr-FR")
    page = context.new_page()
    yield page
    context.close()


def test_login_search_open_patient_and_add_a_circle_member(server: Server, page: Any) -> None:
    page.goto(f"{server.base}/")
    assert "/connexion" in page.url  # no session: the login page
    assert_accessible(page)
    log_in(page, server.base, "medecin")
    assert page.get_by_role("heading", name="Ma file active").is_visible()
    assert_accessible(page)

    patient = _gp_patients(server)[0]
    family, _given = _official(patient)
    day, month, year = (
        patient["birthDate"][8:10],
        patient["birthDate"][5:7],
        patient["birthDate"][:4],
    )
    page.get_by_role("link", name="Patients", exact=True).first.click()
    page.get_by_label("Date de naissance").fill(f"{day}/{month}/{year}")
    # Lower case and the first letters only: the RNIV search is a prefix, case-insensitive.
    page.get_by_label("Nom", exact=False).first.fill(family[:3].lower())
    page.get_by_role("button", name="Rechercher").click()
    results = page.locator("#resultats table")
    results.wait_for()
    row = results.locator("tbody tr", has=page.locator(f"a[href='/patients/{patient['id']}']"))
    assert row.count() == 1
    assert row.locator("mark").first.inner_text() == family[:3]
    assert "identité" in row.inner_text().lower()
    assert_accessible(page)

    row.get_by_role("link").click()
    page.wait_for_url(f"{server.base}/patients/{patient['id']}")
    assert page.get_by_role("heading", level=1).inner_text().startswith(family)
    assert_accessible(page)

    # A professional of the directory who is not in this circle yet.
    page.get_by_label("Nom du professionnel").fill("Lambert")
    page.get_by_role("button", name="Chercher dans l’annuaire").click()
    choices = page.locator("#choix-professionnel input[type=radio]")
    choices.first.wait_for()
    members = page.locator("#membres").inner_text()
    chosen = None
    for index in range(choices.count()):
        label = page.locator(f"label[for='{choices.nth(index).get_attribute('id')}']").inner_text()
        if label.split(" — ")[0] not in members:
            chosen = (choices.nth(index), label)
            break
    if chosen is None:  # every Lambert is in the circle already: take someone else
        page.get_by_label("Nom du professionnel").fill("Martin")
        page.get_by_role("button", name="Chercher dans l’annuaire").click()
        choices = page.locator("#choix-professionnel input[type=radio]")
        chosen = (choices.first, page.locator("#choix-professionnel label").first.inner_text())
    page.locator(f"label[for='{chosen[0].get_attribute('id')}']").click()
    page.get_by_role("button", name="Ajouter au cercle de soins").click()
    page.get_by_text("Le professionnel a été ajouté au cercle de soins.").wait_for()
    assert chosen[1].split(" — ")[0] in page.locator("#membres").inner_text()
    assert_accessible(page)

    # The write went through the FHIR API's rules: the CareTeam has a new version with them.
    with server.platform.store.begin(readonly=True) as tx:
        query = parse_search(
            "CareTeam", [("subject", f"Patient/{patient['id']}")], server.platform.registry
        )
        team = tx.search(query).matches[0]
    assert team["meta"]["versionId"] != "1"
    assert any(
        p["member"]["reference"].startswith("PractitionerRole/")
        and "end" not in p.get("period", {})
        for p in team["participant"][-1:]
    )


def test_enrol_a_patient_in_a_pathway(server: Server, page: Any) -> None:
    patient = _gp_patients(server)[4]
    log_in(page, server.base, "medecin", f"/patients/{patient['id']}")
    page.get_by_label("Inclure dans un parcours").select_option("dac-coordination-1.0.0")
    page.locator("label[for='consentement']").click()
    page.get_by_role("button", name="Inclure le patient").click()
    page.get_by_text("Le patient a été inclus dans le parcours.").wait_for()
    assert "DAC" in page.locator("#plans").inner_text()
    # The pathway's first tasks are on the timeline.
    assert page.locator(".parcours-timeline li").count() >= 1
    assert_accessible(page)
    # Enrolling twice in the same pathway is refused by the engine, and said so.
    page.get_by_label("Inclure dans un parcours").select_option("dac-coordination-1.0.0")
    page.get_by_role("button", name="Inclure le patient").click()
    page.get_by_text("L’inclusion n’a pas été enregistrée").wait_for()


def test_a_hospital_admission_appears_live_in_the_inbox(server: Server, page: Any) -> None:
    log_in(page, server.base, "medecin", "/notifications")
    assert_accessible(page)
    # A patient with a qualified INS: the hospital's message is matched to it with certainty.
    patient = next(p for p in _gp_patients(server) if read_reliability(p).status is Status.QUAL)
    # The SSE stream is connected once the page's scripts ran.
    page.wait_for_function("() => window.htmx !== undefined")
    time.sleep(1.0)
    at = time.strftime("%Y%m%d%H%M%S")
    ack = send_mllp(
        "127.0.0.1", server.mllp_port, admission_message(patient, "admission", f"WEB{at}", at)
    )
    assert "MSA|AA" in ack or "MSA|CA" in ack, ack
    live = page.locator("#notifications-live li").first
    try:
        live.wait_for(timeout=30_000)
    except Exception:
        inbox = page.request.get(f"{server.base}/notify/inbox").text()
        raise AssertionError(f"no live item; inbox says {inbox[:500]}") from None
    text = live.inner_text()
    assert re.search(r"(?i)admi|hospitalis|entrée", text), text
    # No reload happened: the item arrived over the live stream.
    assert page.evaluate("() => performance.getEntriesByType('navigation').length") == 1
    assert_accessible(page)


def _duplicate_of(patient: dict[str, Any]) -> dict[str, Any]:
    """A second record of the same person as a hospital would send it: no INS, provisional."""
    copy = {
        "resourceType": "Patient",
        "name": [
            {"use": "official", "family": n["family"], "given": n["given"]}
            for n in patient["name"]
            if n.get("use") == "official"
        ],
        "gender": patient["gender"],
        "birthDate": patient["birthDate"],
    }
    return copy


def test_merge_two_identities_from_the_queue(server: Server, page: Any) -> None:
    import httpx

    patient = _gp_patients(server)[2]
    created = httpx.post(
        f"{server.base}/fhir/Patient",
        json=_duplicate_of(patient),
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    duplicate = created.json()["id"]

    log_in(page, server.base, "identitovigilance", "/identitovigilance")
    assert_accessible(page)
    row = page.locator("tbody tr", has_text=_official(patient)[0]).first
    row.get_by_role("link", name=re.compile("Comparer")).click()
    page.locator("#comparaison").wait_for()
    assert_accessible(page)
    # The INS differs (the hospital's record has none): flagged as a difference.
    ins_row = page.locator("#comparaison tr", has_text="INS").first
    assert "différent" in ins_row.inner_text().lower()
    # DSFR radios are styled labels: a person clicks the label.
    page.locator("label", has_text=f"({patient['id']},").click()
    page.get_by_role("button", name="Fusionner les deux identités").click()
    page.get_by_text("Les deux identités ont été fusionnées").wait_for()
    assert_accessible(page)
    with server.platform.store.begin(readonly=True) as tx:
        merged = tx.read("Patient", duplicate)
    assert merged["active"] is False
    assert merged["link"][0]["other"]["reference"] == f"Patient/{patient['id']}"

    # And undone from the same page.
    page.locator("tbody tr", has_text=duplicate).get_by_role(
        "button", name=re.compile("Annuler la fusion")
    ).click()
    page.get_by_text("La fusion a été annulée").wait_for()
    with server.platform.store.begin(readonly=True) as tx:
        assert tx.read("Patient", duplicate).get("active", True) is not False


def test_every_page_reads_without_javascript(server: Server, browser: Any) -> None:
    context = browser.new_context(java_script_enabled=False, locale="fr-FR")
    page = context.new_page()
    try:
        log_in(page, server.base, "medecin")
        assert page.locator("#titre-patients").is_visible()
        patient = _gp_patients(server)[0]
        family, _given = _official(patient)
        page.goto(f"{server.base}/patients?nom={family}&date_naissance={patient['birthDate']}")
        assert page.locator("#resultats tbody tr").count() >= 1
        page.goto(f"{server.base}/patients/{patient['id']}")
        assert family in page.locator("h1").inner_text()
        assert page.locator("#membres li").count() >= 1
        page.goto(f"{server.base}/notifications")
        assert page.get_by_role("heading", name="Mes notifications").is_visible()
        page.get_by_role("button", name="Se déconnecter").click()
        page.wait_for_url(re.compile(r"/connexion"))
        log_in(page, server.base, "identitovigilance", "/identitovigilance")
        assert page.get_by_role("heading", name="File d’identitovigilance").is_visible()
    finally:
        context.close()


def test_a_coordinator_takes_in_and_triages_a_coordination_request(
    server: Server, page: Any
) -> None:
    patient = _gp_patients(server)[3]
    log_in(page, server.base, "coordinatrice", f"/patients/{patient['id']}")
    page.get_by_role("link", name="Faire une demande d’appui à la coordination").click()
    page.get_by_role("heading", name="Nouvelle demande d’appui à la coordination").wait_for()
    assert_accessible(page)
    page.locator("label[for='demandeur-type-professionnel']").click()
    page.locator("label[for='motif-maintien-domicile']").click()
    page.get_by_label("Description de la situation").fill("Chutes répétées, vit seule.")
    page.locator("label[for='patient-informe-oui']").click()
    page.get_by_role("button", name="Envoyer la demande").click()
    page.get_by_text("La demande a été enregistrée.").wait_for()
    assert_accessible(page)

    card = page.locator("#colonne-received-liste article", has_text=_official(patient)[0]).first
    task_id = str(card.get_attribute("id")).removeprefix("demande-")
    # Triage: the priority, then the status, each with the card's own buttons.
    card.get_by_label("Priorité").select_option("urgent")
    card.get_by_role("button", name=re.compile("^Trier")).click()
    page.get_by_text("La priorité a été enregistrée.").wait_for()
    card = page.locator(f"#demande-{task_id}")
    card.get_by_label("Nouveau statut").select_option("under-analysis")
    card.get_by_role("button", name=re.compile("^Changer le statut")).click()
    page.get_by_text("Le statut de la demande a été changé.").wait_for()
    assert page.locator(f"#colonne-under-analysis-liste #demande-{task_id}").count() == 1
    # A refusal needs a reason: the state machine's answer is shown, nothing changes.
    card = page.locator(f"#demande-{task_id}")
    card.get_by_label("Nouveau statut").select_option("refused")
    card.get_by_role("button", name=re.compile("^Changer le statut")).click()
    page.get_by_text("La modification a été refusée").wait_for()
    assert_accessible(page)

    with server.platform.store.begin(readonly=True) as tx:
        task = tx.read("Task", task_id)
    assert task["priority"] == "urgent"
    assert task["businessStatus"]["coding"][0]["code"] == "under-analysis"
