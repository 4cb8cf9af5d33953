"""Changing a care circle from the patient page: add or remove a member, record or lift the
patient's opposition. Every change is a FHIR write (CareTeam update with If-Match, Consent
create/update) through the engine, so the policy decides and the trail records it.

A member is never deleted from the CareTeam: their participation gets an end instant, so the
circle keeps its history and access ends the next millisecond (``parcours.security.circle``).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from starlette.responses import RedirectResponse, Response

from parcours.web.gateway import UiError
from parcours.web.patients import error_page, load_circle, patient_context
from parcours.web.rendering import render
from parcours.web.session import View

__all__ = ["add_member", "lift_opposition", "record_opposition", "remove_member"]

_ROLE_CLASS = "https://mos.esante.gouv.fr/NOS/TRE_R260-HL7RoleClass/FHIR/TRE-R260-HL7RoleClass"
_PROV = {"system": _ROLE_CLASS, "code": "PROV", "display": "Professionnel de santé"}
_MEMBER_KINDS = ("Practitioner/", "PractitionerRole/", "Organization/", "RelatedPerson/")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _back(view: View, message: str | None = None, error: str | None = None) -> Response:
    """After a change: the patient page (htmx and no-JS alike, Post/Redirect/Get on success)."""
    patient_id = view.request.path_params["patient_id"]
    if error is None:
        url = str(view.request.app.url_path_for("patient_page", patient_id=patient_id))
        return RedirectResponse(f"{url}?fait={message or ''}#cercle", 303)
    try:
        context = patient_context(view, patient_id)
    except UiError as failure:
        return error_page(view, failure)
    return render(view.request, "patient.html", {**context, "circle_error": error}, 409)


def _team(view: View) -> dict[str, Any]:
    patient_id = view.request.path_params["patient_id"]
    circle = load_circle(view, patient_id)
    if circle.team is not None:
        return circle.team
    # No circle yet: the first member creates it.
    return {
        "resourceType": "CareTeam",
        "status": "active",
        "name": "Cercle de soins",
        "subject": {"reference": f"Patient/{patient_id}"},
        "period": {"start": _now()[:10]},
        "participant": [],
    }


def _save(view: View, team: dict[str, Any]) -> None:
    if "id" in team:
        version = team.get("meta", {}).get("versionId")
        view.fhir.update(team, if_match=f'W/"{version}"' if version else None)
    else:
        view.fhir.create(team)


def add_member(view: View) -> Response:
    member = view.field("membre")
    if not member.startswith(_MEMBER_KINDS) or len(member) > 200:
        return _back(view, error="Choisissez le professionnel à ajouter dans la liste.")
    try:
        team = copy.deepcopy(_team(view))
        current = [
            p
            for p in team.get("participant") or []
            if p.get("member", {}).get("reference") == member and not p.get("period", {}).get("end")
        ]
        if current:
            return _back(view, error="Ce professionnel fait déjà partie du cercle de soins.")
        team.setdefault("participant", []).append(
            {
                "role": [{"coding": [dict(_PROV)]}],
                "member": {"reference": member},
                "period": {"start": _now()},
            }
        )
        _save(view, team)
    except UiError as error:
        return _back(view, error=f"L’ajout n’a pas été enregistré : {error.message}")
    return _back(view, "membre-ajoute")


def remove_member(view: View) -> Response:
    reference = view.field("reference")
    try:
        index = int(view.field("membre"))
    except ValueError:
        return _back(view, error="Membre du cercle non précisé.")
    try:
        team = copy.deepcopy(_team(view))
        participants = team.get("participant") or []
        # The index and the reference must agree: the circle may have changed meanwhile.
        if not 0 <= index < len(participants) or (
            participants[index].get("member", {}).get("reference") != reference
        ):
            return _back(view, error="Le cercle a changé entre-temps : vérifiez puis recommencez.")
        participants[index].setdefault("period", {})["end"] = _now()
        _save(view, team)
    except UiError as error:
        return _back(view, error=f"Le retrait n’a pas été enregistré : {error.message}")
    return _back(view, "membre-retire")


def record_opposition(view: View) -> Response:
    patient_id = view.request.path_params["patient_id"]
    actor = view.field("acteur")
    if not actor.startswith(_MEMBER_KINDS):
        return _back(view, error="Professionnel non précisé.")
    consent = {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [{"text": "Opposition au partage avec un membre du cercle de soins"}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "dateTime": _now(),
        "provision": {
            "type": "deny",
            "period": {"start": _now()},
            "actor": [
                {
                    "role": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                "code": "PRCP",
                            }
                        ]
                    },
                    "reference": {"reference": actor},
                }
            ],
        },
    }
    try:
        view.fhir.create(consent)
    except UiError as error:
        return _back(view, error=f"L’opposition n’a pas été enregistrée : {error.message}")
    return _back(view, "opposition-enregistree")


def lift_opposition(view: View) -> Response:
    patient_id = view.request.path_params["patient_id"]
    consent_id = view.field("consentement")
    try:
        consent = view.fhir.read("Consent", consent_id)
        if consent.get("patient", {}).get("reference") != f"Patient/{patient_id}":
            return _back(view, error="Cette opposition ne concerne pas ce patient.")
        consent = {**consent, "status": "inactive"}
        version = consent.get("meta", {}).get("versionId")
        view.fhir.update(consent, if_match=f'W/"{version}"' if version else None)
    except UiError as error:
        return _back(view, error=f"L’opposition n’a pas été levée : {error.message}")
    return _back(view, "opposition-levee")
