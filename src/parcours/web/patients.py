"""Patient search and the patient page (identity, care circle, stays, tasks, notifications,
who accessed the record)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.responses import Response

from parcours.identity.reliability import read_reliability
from parcours.identity.rniv import Status
from parcours.ppcs import is_ppcs
from parcours.web.gateway import UiError
from parcours.web.home import MyTask, is_active, kept_pages, task_rows
from parcours.web.patient_search import STATUS_LABELS, parse_criteria, search_patients
from parcours.web.people import display_name, member_label, patient_name, split_entries
from parcours.web.rendering import is_htmx, render
from parcours.web.sections import Section, section
from parcours.web.session import View
from parcours.web.workspace import my_inbox

__all__ = ["patient_page", "patient_search"]

INS_SYSTEMS = {
    "urn:oid:1.2.250.1.213.1.4.8": "INS-NIR",
    "urn:oid:1.2.250.1.213.1.4.9": "INS-NIA",
    "urn:oid:1.2.250.1.213.1.4.10": "INS-NIR de test",
    "urn:oid:1.2.250.1.213.1.4.11": "INS-NIA de test",
}
ENCOUNTER_CLASS = {
    "IMP": "Hospitalisation",
    "EMER": "Passage aux urgences",
    "AMB": "Consultation externe",
    "SS": "Hospitalisation de jour",
    "HH": "Hospitalisation à domicile",
}
CAREPLAN_STATUS = {
    "draft": "brouillon",
    "active": "en cours",
    "on-hold": "suspendu",
    "revoked": "arrêté",
    "completed": "terminé",
    "entered-in-error": "saisi par erreur",
}
ENCOUNTER_STATUS = {
    "planned": "Prévu",
    "arrived": "Arrivé",
    "in-progress": "En cours",
    "finished": "Terminé",
    "cancelled": "Annulé",
    "entered-in-error": "Erroné",
}


def patient_search(view: View) -> Response:
    query = view.request.query_params
    birth, name, given = (
        query.get("date_naissance", ""),
        query.get("nom", ""),
        query.get("prenom", ""),
    )
    criteria, errors = parse_criteria(birth, name, given)
    searched = any(v.strip() for v in (birth, name, given))
    hits: Section[list[Any]] = Section([])
    if searched and not errors:
        hits = section(lambda: search_patients(view.fhir, criteria))
    context = {
        "title": "Rechercher un patient",
        "active": "patient_search",
        "form": {"date_naissance": birth, "nom": name, "prenom": given},
        "errors": errors,
        "searched": searched,
        "hits": hits,
        "labels": STATUS_LABELS,
    }
    template = "search_results.html" if is_htmx(view.request) else "search.html"
    return render(
        view.request, template, context, 400 if errors and not is_htmx(view.request) else 200
    )


@dataclass(frozen=True, slots=True)
class Identity:
    id: str
    name: str
    birth_name: str
    used_name: str
    given: str
    birth_date: str
    gender: str
    birthplace: str
    status: Status
    ins: list[tuple[str, str]]
    active: bool
    replaced_by: str | None


@dataclass(frozen=True, slots=True)
class Member:
    index: int
    ref: str
    label: str
    role: str
    start: str
    end: str
    current: bool
    opposed: bool


@dataclass(frozen=True, slots=True)
class Circle:
    team: dict[str, Any] | None
    members: list[Member] = field(default_factory=list)
    oppositions: list[tuple[str, str, str]] = field(default_factory=list)  # (id, actor, label)


@dataclass(frozen=True, slots=True)
class Stay:
    kind: str
    status: str
    start: str
    end: str
    place: str


def _identity(patient: dict[str, Any]) -> Identity:
    birth = used = given = ""
    for name in patient.get("name") or []:
        if name.get("use") in ("official", None) and not birth:
            birth = str(name.get("family") or "")
            given = " ".join(name.get("given") or [])
        elif name.get("use") == "usual" and not used:
            used = str(name.get("family") or "")
    birthplace = ""
    for ext in patient.get("extension") or []:
        if ext.get("url", "").endswith("patient-birthPlace"):
            birthplace = str(ext.get("valueAddress", {}).get("city") or "")
    ins = [
        (INS_SYSTEMS[str(i.get("system"))], str(i.get("value")))
        for i in patient.get("identifier") or []
        if i.get("system") in INS_SYSTEMS
    ]
    replaced = next(
        (
            str(link.get("other", {}).get("reference", "")).split("/", 1)[-1]
            for link in patient.get("link") or []
            if link.get("type") == "replaced-by"
        ),
        None,
    )
    return Identity(
        id=str(patient["id"]),
        name=patient_name(patient),
        birth_name=birth,
        used_name=used,
        given=given,
        birth_date=str(patient.get("birthDate") or ""),
        gender={"female": "Féminin", "male": "Masculin"}.get(
            str(patient.get("gender")), "Indéterminé"
        ),
        birthplace=birthplace,
        status=read_reliability(patient).status,
        ins=ins,
        active=patient.get("active", True) is not False,
        replaced_by=replaced,
    )


def _role_label(participant: dict[str, Any]) -> str:
    for role in participant.get("role") or []:
        for coding in role.get("coding") or []:
            if coding.get("display"):
                return str(coding["display"])
        if role.get("text"):
            return str(role["text"])
    return ""


def _active(
    view: View, res_type: str, params: list[tuple[str, str]], wanted: int
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """The first ``wanted`` active matches of a search on one patient's resources (a handful),
    and its included resources by "Type/id"."""
    matches, included, _more = kept_pages(view, res_type, params, is_active, wanted)
    found, extra = split_entries(matches + included)
    return found[:wanted], extra


def _included_by(teams: list[dict[str, Any]], included: dict[str, Any]) -> dict[str, Any]:
    """What ``_include=CareTeam:participant`` and ``_include:iterate`` of the roles' practitioner
    and organization bring for ``teams`` only (the search also saw inactive teams)."""
    out: dict[str, Any] = {}
    for team in teams:
        for participant in team.get("participant") or []:
            ref = str(participant.get("member", {}).get("reference", ""))
            res = included.get(ref)
            if res is None:
                continue
            out[ref] = res
            if res.get("resourceType") == "PractitionerRole":
                for key in ("practitioner", "organization"):
                    target = str(res.get(key, {}).get("reference", ""))
                    if target in included:
                        out[target] = included[target]
    return out


def load_circle(view: View, patient_id: str) -> Circle:
    teams, included = _active(
        view,
        "CareTeam",
        [
            ("subject", f"Patient/{patient_id}"),
            ("_include", "CareTeam:participant"),
            ("_include:iterate", "PractitionerRole:practitioner"),
            ("_include:iterate", "PractitionerRole:organization"),
            ("_count", "5"),
        ],
        5,
    )
    included = _included_by(teams, included)
    consents, _none = _active(
        view, "Consent", [("patient", f"Patient/{patient_id}"), ("_count", "50")], 50
    )
    oppositions: list[tuple[str, str, str]] = []
    opposed: set[str] = set()
    for consent in consents:
        provision = consent.get("provision") or {}
        if provision.get("type") != "deny":
            continue
        actors = [
            str(a.get("reference", {}).get("reference", "")) for a in provision.get("actor") or []
        ]
        for actor in actors or ["*"]:
            opposed.add(actor)
            label = "tous les professionnels" if actor == "*" else member_label(actor, included)
            oppositions.append((str(consent["id"]), actor, label))
    if not teams:
        return Circle(None, [], oppositions)
    team = teams[0]
    members = []
    for index, participant in enumerate(team.get("participant") or []):
        ref = str(participant.get("member", {}).get("reference", ""))
        period = participant.get("period") or {}
        members.append(
            Member(
                index=index,
                ref=ref,
                label=member_label(ref, included),
                role=_role_label(participant),
                start=str(period.get("start") or ""),
                end=str(period.get("end") or ""),
                current=not period.get("end"),
                opposed=ref in opposed,
            )
        )
    members.sort(key=lambda m: (not m.current, m.label))
    return Circle(team, members, oppositions)


def _stays(view: View, patient_id: str) -> list[Stay]:
    encounters = view.fhir.search(
        "Encounter",
        [("subject", f"Patient/{patient_id}"), ("_sort", "-date"), ("_count", "20")],
    )
    stays = []
    for encounter in encounters:
        code = str(encounter.get("class", {}).get("code", ""))
        period = encounter.get("period") or {}
        place = ""
        for location in encounter.get("location") or []:
            place = str(location.get("location", {}).get("display") or "")
        provider = encounter.get("serviceProvider", {})
        place = place or str(provider.get("display") or provider.get("reference") or "")
        stays.append(
            Stay(
                kind=ENCOUNTER_CLASS.get(code, code or "Venue"),
                status=ENCOUNTER_STATUS.get(
                    str(encounter.get("status")), str(encounter.get("status"))
                ),
                start=str(period.get("start") or ""),
                end=str(period.get("end") or ""),
                place=place,
            )
        )
    return stays


def _tasks(view: View, patient_id: str) -> list[MyTask]:
    bundle = view.fhir.search_bundle(
        "Task",
        [("patient", f"Patient/{patient_id}"), ("_sort", "-_lastUpdated"), ("_count", "30")],
    )
    return task_rows(bundle.get("entry") or [])


def _careplans(view: View, patient_id: str) -> list[dict[str, Any]]:
    plans = view.fhir.search(
        "CarePlan",
        [("subject", f"Patient/{patient_id}"), ("_sort", "-_lastUpdated"), ("_count", "20")],
    )
    return [
        {
            "id": str(p["id"]),
            "title": str(p.get("title") or p.get("description") or "Plan de soins"),
            "status": CAREPLAN_STATUS.get(str(p.get("status")), str(p.get("status") or "")),
            "start": str((p.get("period") or {}).get("start") or ""),
            "ppcs": is_ppcs(p),
        }
        for p in plans
    ]


def _accesses(view: View, patient_id: str) -> list[dict[str, Any]]:
    access = view.fhir.tx.access if view.fhir.tx is not None else None
    if access is not None and access.rule("AuditEvent") != "all":
        # The policy keeps the trail for referents and administrators: asking would only
        # be refused (and leave a failed AuditEvent on every page view).
        raise UiError(403, "the access report needs the right to read every AuditEvent")
    report = view.fhir.operation(("Patient", patient_id, "$access-report"))
    lines = []
    for parameter in report.get("parameter") or []:
        values = {
            p["name"]: next(v for k, v in p.items() if k.startswith("value"))
            for p in parameter.get("part") or []
        }
        lines.append(values)
    return lines


def patient_context(view: View, patient_id: str) -> dict[str, Any]:
    patient = view.fhir.read("Patient", patient_id)
    identity = _identity(patient)
    store = view.web.engine.ctx.store
    extra: dict[str, Any] = {}
    for hook in view.web.patient_hooks:
        extra.update(hook(view, patient_id))
    return {
        "title": identity.name,
        "identity": identity,
        "labels": STATUS_LABELS,
        "circle": section(lambda: load_circle(view, patient_id)),
        "stays": section(lambda: _stays(view, patient_id)),
        "tasks": section(lambda: _tasks(view, patient_id)),
        "careplans": section(lambda: _careplans(view, patient_id)),
        "accesses": section(lambda: _accesses(view, patient_id)),
        "inbox": my_inbox(store, view.user, limit=10, patient=f"Patient/{patient_id}"),
        "display_name": display_name,
        **extra,
    }


DONE = {
    "membre-ajoute": "Le professionnel a été ajouté au cercle de soins.",
    "membre-retire": "Le professionnel a été retiré du cercle de soins.",
    "opposition-enregistree": "L’opposition du patient a été enregistrée.",
    "opposition-levee": "L’opposition du patient a été levée.",
    "inclusion": "Le patient a été inclus dans le parcours.",
}


def find_professionals(view: View, text: str) -> list[tuple[str, str]]:
    """Directory entries whose name starts with ``text``: (PractitionerRole ref, label)."""
    bundle = view.fhir.search_bundle(
        "Practitioner",
        [
            ("name", text),
            ("_revinclude", "PractitionerRole:practitioner"),
            ("_include:iterate", "PractitionerRole:organization"),
            ("_count", "10"),
        ],
    )
    resources = [e["resource"] for e in bundle.get("entry") or []]
    included = {f"{r['resourceType']}/{r['id']}": r for r in resources}
    out = []
    for res in resources:
        if res["resourceType"] == "PractitionerRole" and res.get("active", True):
            ref = f"PractitionerRole/{res['id']}"
            out.append((ref, member_label(ref, included)))
    return sorted(out, key=lambda pair: pair[1])[:20]


def patient_page(view: View) -> Response:
    patient_id = view.request.path_params["patient_id"]
    query = view.request.query_params
    try:
        context = patient_context(view, patient_id)
        pro = query.get("professionnel", "").strip()[:100]
        candidates = find_professionals(view, pro) if pro else []
    except UiError as error:
        return error_page(view, error)
    context.update(
        message=DONE.get(query.get("fait", "")),
        pro_query=pro,
        candidates=candidates,
        pathway_error=query.get("erreur_parcours"),
    )
    return render(view.request, "patient.html", context)


def error_page(view: View, error: UiError) -> Response:
    titles = {403: "Accès refusé", 404: "Dossier introuvable", 410: "Dossier supprimé"}
    title = titles.get(error.status, "La demande n’a pas abouti")
    return render(
        view.request,
        "error.html",
        {"title": title, "message": error.message, "status": error.status},
        error.status,
    )
