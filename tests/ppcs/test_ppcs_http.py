"""The PPCS over real HTTP, on both databases: a draft written by the coordinator, its PDF
checked section by section, sign-off, read-only signed versions, new versions, sharing with
the care circle (and only with it), the signed document and its NdE DOC event."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from parcours.audit.tables import audit_event
from parcours.notify.emitter import declaration_id
from parcours.ppcs.model import EXT_SIGNATURE, SYSTEM_PPCS
from parcours.ppcs.signing import document_id
from parcours.store.outbox import Dispatcher

from .support import Circle, create, pdf_bytes_text, pdf_text, ppcs_draft

SIGN_BODY = {"resourceType": "Parameters"}


def _sections(c: Circle) -> dict[str, list[str]]:
    """What each HAS section of the draft must show, from what the draft and circle hold."""
    draft = ppcs_draft(c)
    return {
        "header": [draft["title"], f"Jeanne DURAND{c.tag}", "Né(e) le 12 avril 1938"],
        "situation": [draft["description"], draft["note"][0]["text"]],
        "needs": [f"Chutes répétées à domicile {c.tag}", draft["addresses"][1]["display"]],
        "objectives": [
            f"Rester vivre à domicile en sécurité {c.tag}",
            "Échéance : 31 décembre 2026",
            draft["goal"][1]["display"],
        ],
        "actions": [
            draft["activity"][0]["detail"]["description"],
            f"Inès SOIN{c.tag}, Infirmière libérale, Cabinet infirmier {c.tag}",
            "du 1er février 2026 au 31 mars 2026",
            draft["activity"][1]["detail"]["description"],
            draft["activity"][1]["detail"]["performer"][0]["display"],
            draft["activity"][1]["detail"]["scheduledString"],
        ],
        "coordinator": [
            "Coordonnateur (référent du parcours)",
            f"Dr Claire COORDO{c.tag}",
            "Cercle de soins",
        ],
        "review": ["Date de la prochaine réévaluation : 15 juillet 2026"],
        "agreement": ["Accord recueilli, le 20 janvier 2026"],
    }


def _assert_sections(text: str, c: Circle) -> None:
    for section, expected in _sections(c).items():
        for piece in expected:
            assert " ".join(piece.split()) in text, f"section {section}: {piece!r} not in PDF"


def _sign(client: httpx.Client, plan: str, **headers: str) -> httpx.Response:
    return client.post(f"/CarePlan/{plan}/$ppcs-sign", json=SIGN_BODY, headers=headers)


def _diagnostics(response: httpx.Response) -> str:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    return " ".join(str(i.get("diagnostics", "")) for i in body["issue"])


def test_draft_pdf_shows_every_section(circle: Circle) -> None:
    with circle.coordinator_client() as coord:
        plan = create(coord, ppcs_draft(circle))
        response = coord.get(f"/CarePlan/{plan}/$ppcs-pdf")
        assert response.status_code == 200, response.text
        text = pdf_text(response.json())
    _assert_sections(text, circle)
    assert "Ce plan n'est pas validé : c'est un brouillon." in text
    assert "Plan validé par" not in text


def test_html_is_french_accessible_markup(circle: Circle) -> None:
    with circle.coordinator_client() as coord:
        plan = create(coord, ppcs_draft(circle))
        response = coord.get(f"/CarePlan/{plan}/$ppcs-html")
    assert response.status_code == 200, response.text
    binary = response.json()
    assert binary["resourceType"] == "Binary"
    assert binary["contentType"].startswith("text/html")
    html = base64.b64decode(binary["data"]).decode("utf-8")
    assert '<html lang="fr">' in html
    assert html.count("<h2 ") == 8
    assert '<th scope="col">Intervenant(s)</th>' in html
    assert "<caption>" in html
    # Text from the record is escaped, never markup.
    with circle.coordinator_client() as coord:
        evil = create(coord, ppcs_draft(circle, description="<script>alert(1)</script>"))
        html = base64.b64decode(coord.get(f"/CarePlan/{evil}/$ppcs-html").json()["data"]).decode()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_sign_off_versions_and_read_only_signed_versions(circle: Circle) -> None:
    with circle.coordinator_client() as coord:
        plan = create(coord, ppcs_draft(circle))
        signed = _sign(coord, plan, **{"If-Match": 'W/"1"'})
        assert signed.status_code == 200, signed.text
        body = signed.json()
        assert body["status"] == "active" and body["meta"]["versionId"] == "2"
        assert signed.headers["ETag"] == 'W/"2"'
        (ext,) = [e for e in body["extension"] if e["url"] == EXT_SIGNATURE]
        parts = {p["url"]: p for p in ext["extension"]}
        assert parts["signataire"]["valueReference"]["reference"] == (
            f"Practitioner/{circle.coordinator}"
        )
        assert parts["date"]["valueDateTime"].startswith("20")

        text = pdf_text(coord.get(f"/CarePlan/{plan}/$ppcs-pdf").json())
        _assert_sections(text, circle)
        assert f"Plan validé par Dr Claire COORDO{circle.tag} le" in text
        assert "Statut Validé" in text and "brouillon" not in text

        # A signed version is not edited in place, nor deleted; its status alone may move on.
        changed = {**body, "description": "autre situation"}
        refused = coord.put(f"/CarePlan/{plan}", json=changed)
        assert refused.status_code == 409, refused.text
        assert "cannot be changed in place" in _diagnostics(refused)
        assert coord.delete(f"/CarePlan/{plan}").status_code == 409
        patch = [{"op": "replace", "path": "/description", "value": "modifiée"}]
        patched = coord.patch(
            f"/CarePlan/{plan}",
            content=json.dumps(patch),
            headers={"Content-Type": "application/json-patch+json"},
        )
        assert patched.status_code == 409, patched.text
        # Signed plans due for review by a date: a plain search.
        due = coord.get(
            "/CarePlan",
            params={
                "category": f"{SYSTEM_PPCS}|ppcs",
                "status": "active",
                "subject": f"Patient/{circle.patient}",
                "date": "le2026-07-15",
            },
        ).json()
        assert [e["resource"]["id"] for e in due.get("entry", [])] == [plan]
        still_signed = {**body, "status": "draft"}
        refused = coord.put(f"/CarePlan/{plan}", json=still_signed)
        assert refused.status_code == 422, refused.text
        assert "a draft is not signed" in _diagnostics(refused)
        assert coord.get(f"/CarePlan/{plan}").json()["meta"]["versionId"] == "2"

        # The next version is a draft again, signed again.
        new_text = f"Situation réévaluée {circle.tag} : entrée en EHPAD envisagée."
        revision = {
            **body,
            "status": "draft",
            "description": new_text,
            "extension": [e for e in body["extension"] if e["url"] != EXT_SIGNATURE],
        }
        put = coord.put(f"/CarePlan/{plan}", json=revision)
        assert put.status_code == 200, put.text
        assert put.json()["meta"]["versionId"] == "3"
        draft_text = pdf_text(coord.get(f"/CarePlan/{plan}/$ppcs-pdf").json())
        assert new_text in draft_text and "brouillon" in draft_text
        # Each version keeps its own document: version 2 is the signed first plan.
        old = pdf_text(coord.get(f"/CarePlan/{plan}/_history/2/$ppcs-pdf").json())
        assert ppcs_draft(circle)["description"] in old and new_text not in old
        assert "Plan validé par" in old

        assert _sign(coord, plan, **{"If-Match": 'W/"2"'}).status_code == 412
        resigned = _sign(coord, plan)
        assert resigned.status_code == 200, resigned.text
        assert resigned.json()["meta"]["versionId"] == "4"
        again = _sign(coord, plan)
        assert again.status_code == 409 and "already signed" in _diagnostics(again)

        history = coord.get(f"/CarePlan/{plan}/_history").json()
        statuses = {
            e["resource"]["meta"]["versionId"]: e["resource"]["status"] for e in history["entry"]
        }
        assert statuses == {"1": "draft", "2": "active", "3": "draft", "4": "active"}

        # Closing a signed plan changes nothing but its status.
        current = coord.get(f"/CarePlan/{plan}").json()
        closed = coord.put(f"/CarePlan/{plan}", json={**current, "status": "completed"})
        assert closed.status_code == 200, closed.text


def test_signed_documents_and_provenance_are_shared_with_the_circle(circle: Circle) -> None:
    server = circle.server
    with circle.coordinator_client() as coord:
        plan = create(coord, ppcs_draft(circle))
        assert _sign(coord, plan).status_code == 200
        first = coord.get(f"/CarePlan/{plan}").json()
        revision = {
            **first,
            "status": "draft",
            "description": f"Deuxième version {circle.tag}",
            "extension": [e for e in first["extension"] if e["url"] != EXT_SIGNATURE],
        }
        assert coord.put(f"/CarePlan/{plan}", json=revision).status_code == 200
        assert _sign(coord, plan).status_code == 200

    with circle.nurse_client() as nurse:
        # The nurse, in the circle through her role, reads the plan, its documents and PDFs.
        assert nurse.get(f"/CarePlan/{plan}").status_code == 200
        assert nurse.get(f"/CarePlan/{plan}/$ppcs-pdf").status_code == 200
        found = nurse.get(
            "/DocumentReference", params={"subject": f"Patient/{circle.patient}"}
        ).json()
        docs = {e["resource"]["id"]: e["resource"] for e in found.get("entry", [])}
    v2, v4 = document_id(plan, 2), document_id(plan, 4)
    assert set(docs) == {v2, v4}
    assert docs[v2]["status"] == "superseded" and docs[v4]["status"] == "current"
    assert docs[v4]["relatesTo"] == [
        {"code": "replaces", "target": {"reference": f"DocumentReference/{v2}"}}
    ]
    assert docs[v4]["context"]["related"] == [{"reference": f"CarePlan/{plan}/_history/4"}]
    attachment = docs[v4]["content"][0]["attachment"]
    assert attachment["contentType"] == "application/pdf"
    frozen = pdf_bytes_text(base64.b64decode(attachment["data"]))
    assert f"Deuxième version {circle.tag}" in frozen and "Plan validé par" in frozen
    assert f"Deuxième version {circle.tag}" not in pdf_bytes_text(
        base64.b64decode(docs[v2]["content"][0]["attachment"]["data"])
    )

    with server.admin() as admin:
        found = admin.get("/Provenance", params={"target": f"CarePlan/{plan}"}).json()
        provenances = {
            p["target"][0]["reference"]: p for p in (e["resource"] for e in found["entry"])
        }
    assert set(provenances) == {f"CarePlan/{plan}/_history/{v}" for v in (2, 4)}
    provenance = provenances[f"CarePlan/{plan}/_history/4"]
    assert provenance["signature"][0]["who"]["reference"] == f"Practitioner/{circle.coordinator}"
    assert provenance["signature"][0]["when"] == provenance["recorded"]

    # The signed document is an NdE DOC event for the patient's circle.
    Dispatcher(server.platform.store, server.platform.handlers).drain()
    with server.platform.store.begin(readonly=True) as tx:
        declaration = tx.read(
            "CommunicationRequest", declaration_id(f"DocumentReference/{v4}", "DOC")
        )
    assert declaration["subject"] == {"reference": f"Patient/{circle.patient}"}


def test_outside_the_circle_no_document(circle: Circle) -> None:
    with circle.coordinator_client() as coord:
        plan = create(coord, ppcs_draft(circle))
    with circle.outsider_client() as outsider:
        for operation in ("$ppcs-pdf", "$ppcs-html"):
            response = outsider.get(f"/CarePlan/{plan}/{operation}")
            assert response.status_code == 403, response.text
        assert _sign(outsider, plan).status_code == 403
    with circle.coordinator_client() as coord:
        assert coord.get(f"/CarePlan/{plan}").json()["status"] == "draft"


def test_only_sign_off_validates_a_plan(circle: Circle) -> None:
    with circle.coordinator_client() as coord:
        direct = coord.post("/CarePlan", json=ppcs_draft(circle, status="active"))
        assert direct.status_code == 422, direct.text
        assert "$ppcs-sign" in _diagnostics(direct)
        plan = create(coord, ppcs_draft(circle))
        current = coord.get(f"/CarePlan/{plan}").json()
        response = coord.put(f"/CarePlan/{plan}", json={**current, "status": "active"})
        assert response.status_code == 422, response.text
        # Nor inside a transaction Bundle: nothing of it is written.
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": {**current, "status": "active"},
                    "request": {"method": "PUT", "url": f"CarePlan/{plan}"},
                },
                {
                    "resource": {
                        "resourceType": "Basic",
                        "code": {"text": f"témoin {circle.tag}"},
                        "subject": {"reference": f"Patient/{circle.patient}"},
                    },
                    "request": {"method": "POST", "url": "Basic"},
                },
            ],
        }
        assert coord.post("", json=bundle).status_code == 422
        assert coord.get(f"/CarePlan/{plan}").json()["meta"]["versionId"] == "1"
        witnesses = coord.get("/Basic", params={"subject": f"Patient/{circle.patient}"})
        assert witnesses.status_code == 200 and witnesses.json()["total"] == 0


def test_sign_off_needs_every_section_and_a_professional(circle: Circle) -> None:
    with circle.coordinator_client() as coord:
        incomplete = ppcs_draft(circle)
        for key in ("goal", "period", "author"):
            incomplete.pop(key)
        plan = create(coord, incomplete)
        response = _sign(coord, plan)
        assert response.status_code == 422, response.text
        locations = {
            loc for issue in response.json()["issue"] for loc in issue.get("expression", [])
        }
        assert locations == {"CarePlan.goal", "CarePlan.period.end", "CarePlan.author"}
        assert "objective" in _diagnostics(response)
        assert coord.get(f"/CarePlan/{plan}").json()["status"] == "draft"
        complete = create(coord, ppcs_draft(circle))
    with circle.server.admin() as admin:
        response = _sign(admin, complete)
        assert response.status_code == 403
        assert "Practitioner" in _diagnostics(response)


@pytest.mark.parametrize("operation", ["$ppcs-pdf", "$ppcs-html"])
def test_documents_of_what_is_not_a_ppcs(circle: Circle, operation: str) -> None:
    with circle.coordinator_client() as coord:
        other: dict[str, Any] = {
            "resourceType": "CarePlan",
            "status": "active",
            "intent": "plan",
            "subject": {"reference": f"Patient/{circle.patient}"},
        }
        plan = create(coord, other)
        response = coord.get(f"/CarePlan/{plan}/{operation}")
        assert response.status_code == 422 and "not a PPCS" in _diagnostics(response)
        assert coord.get(f"/CarePlan/no-such-plan/{operation}").status_code == 404
        assert coord.get(f"/CarePlan/{plan}/_history/9/{operation}").status_code == 404
        # An ordinary CarePlan keeps ordinary rules: it may be edited while active.
        put = coord.put(f"/CarePlan/{plan}", json={**other, "id": plan, "description": "x"})
        assert put.status_code == 200, put.text


def test_each_request_is_in_the_audit_trail(circle: Circle) -> None:
    engine = circle.server.platform.store.engine
    with engine.connect() as conn:
        before = conn.execute(select(audit_event.c.seq).order_by(audit_event.c.seq.desc())).first()
    mark = int(before[0]) if before else 0
    with circle.coordinator_client() as coord:
        plan = create(coord, ppcs_draft(circle))
        assert coord.get(f"/CarePlan/{plan}/$ppcs-pdf").status_code == 200
        assert _sign(coord, plan).status_code == 200
        signed = coord.get(f"/CarePlan/{plan}").json()
        edited = {**signed, "description": "modifiée"}
        assert coord.put(f"/CarePlan/{plan}", json=edited).status_code == 409
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_event.c.interaction, audit_event.c.outcome)
            .where(audit_event.c.seq > mark, audit_event.c.agent != "platform")
            .order_by(audit_event.c.seq)
        ).all()
    assert [(r.interaction, int(r.outcome)) for r in rows] == [
        ("create", 0),
        ("operation", 0),
        ("operation", 0),
        ("read", 0),
        ("update", 4),
    ]
