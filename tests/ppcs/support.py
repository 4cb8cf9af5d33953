"""Helpers of the PPCS tests: the server handle, clients as a given professional, a care
circle around one patient (coordinator, nurse through her role, outsider), a full PPCS draft."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Any

import httpx
from pypdf import PdfReader

from fhir_server import Server


def create(client: httpx.Client, resource: dict[str, Any]) -> str:
    response = client.post(f"/{resource['resourceType']}", json=resource)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def ref(kind: str, res_id: str, display: str | None = None) -> dict[str, str]:
    out = {"reference": f"{kind}/{res_id}"}
    if display:
        out["display"] = display
    return out


@dataclass
class Circle:
    """One patient's care circle, with unique names so that texts found in a PDF are ours."""

    server: Server
    tag: str
    patient: str
    team: str
    coordinator: str
    nurse: str
    nurse_role: str
    outsider: str
    condition: str
    goal: str

    def coordinator_client(self) -> httpx.Client:
        return self.server.as_(self.coordinator, display="Dr Coordinatrice")

    def nurse_client(self) -> httpx.Client:
        return self.server.as_(self.nurse, display="Infirmière")

    def outsider_client(self) -> httpx.Client:
        return self.server.as_(self.outsider, display="Dr Ailleurs")


def ppcs_draft(c: Circle, **changes: Any) -> dict[str, Any]:
    """A complete PPCS draft: every HAS section filled with text unique to this circle."""
    from parcours.ppcs.model import CATEGORY, EXT_AGREEMENT, SYSTEM_PPCS

    body: dict[str, Any] = {
        "resourceType": "CarePlan",
        "status": "draft",
        "intent": "plan",
        "category": [CATEGORY],
        "title": f"PPCS de coordination {c.tag}",
        "subject": ref("Patient", c.patient),
        "period": {"start": "2026-01-15", "end": "2026-07-15"},
        "created": "2026-01-15",
        "description": f"Situation {c.tag} : vit seule, aidante épuisée, deux chutes en 2025.",
        "note": [{"text": f"Remarque de l'évaluation {c.tag}"}],
        "addresses": [
            ref("Condition", c.condition),
            {"display": f"Besoin d'aide au repas {c.tag}"},
        ],
        "goal": [ref("Goal", c.goal), {"display": f"Soulager l'aidante {c.tag}"}],
        "activity": [
            {
                "detail": {
                    "status": "scheduled",
                    "description": f"Passage infirmier quotidien {c.tag}",
                    "performer": [ref("PractitionerRole", c.nurse_role)],
                    "scheduledPeriod": {"start": "2026-02-01", "end": "2026-03-31"},
                }
            },
            {
                "detail": {
                    "status": "not-started",
                    "description": f"Demande de portage de repas {c.tag}",
                    "performer": [{"display": f"CCAS de Dijon {c.tag}"}],
                    "scheduledString": f"avant fin février {c.tag}",
                }
            },
        ],
        "author": ref("Practitioner", c.coordinator),
        "careTeam": [ref("CareTeam", c.team)],
        "extension": [
            {
                "url": EXT_AGREEMENT,
                "extension": [
                    {
                        "url": "statut",
                        "valueCoding": {"system": SYSTEM_PPCS, "code": "accord-recueilli"},
                    },
                    {"url": "date", "valueDate": "2026-01-20"},
                ],
            }
        ],
    }
    body.update(changes)
    return body


def pdf_text(binary: dict[str, Any]) -> str:
    """The text of a PDF served as a FHIR Binary, whitespace runs made single spaces."""
    assert binary["resourceType"] == "Binary", binary
    assert binary["contentType"] == "application/pdf"
    data = base64.b64decode(binary["data"])
    return pdf_bytes_text(data)


def pdf_bytes_text(data: bytes) -> str:
    assert data.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(data))
    text = "\n".join(page.extract_text() or "" for page in reader.pages)
    return " ".join(text.split())
