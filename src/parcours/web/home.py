"""« Ma file active »: my patients, my unread notifications, my tasks due, my requests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from starlette.responses import Response

from parcours.web.people import patient_name, split_entries
from parcours.web.rendering import render
from parcours.web.sections import Section, section
from parcours.web.session import View
from parcours.web.workspace import my_inbox, my_refs

__all__ = ["OPEN_TASK_STATUSES", "home"]

OPEN_TASK_STATUSES = "requested,received,accepted,ready,in-progress,on-hold"
MY_PATIENTS = 20
# Pages read per search to find enough active circles or consents among ended ones.
MAX_PAGES = 10


@dataclass(frozen=True, slots=True)
class MyPatient:
    id: str
    name: str
    birth_date: str
    since: str


@dataclass(frozen=True, slots=True)
class MyTask:
    id: str
    title: str
    status: str
    due: str
    patient_id: str | None
    patient: str


TASK_STATUS = {
    "draft": "Brouillon",
    "requested": "Demandée",
    "received": "Reçue",
    "accepted": "Acceptée",
    "rejected": "Refusée",
    "ready": "Prête",
    "cancelled": "Annulée",
    "in-progress": "En cours",
    "on-hold": "En attente",
    "failed": "Échouée",
    "completed": "Terminée",
    "entered-in-error": "Saisie erronée",
}


def search_each(
    view: View,
    res_type: str,
    name: str,
    refs: tuple[str, ...],
    params: list[tuple[str, str]],
    keep: Callable[[dict[str, Any]], bool] | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """One search per reference, merged newest first: the bundle entries and whether any had
    more. (A comma-separated list of references is an OR the SQLite planner answers by scanning
    every resource of the type; one reference at a time is an index look-up each.)

    ``keep`` filters the matches here instead of a search parameter (``is_active``), reading
    further pages until ``_count`` are kept."""
    matches: list[dict[str, Any]] = []
    included: list[dict[str, Any]] = []
    more = False
    count = next((int(v) for k, v in params if k == "_count"), 20)
    for ref in refs:
        # With ``keep``, "more" may be said of a reference whose next page holds only
        # resources it would drop: reading on to be sure costs a search per page.
        kept, extra, after = kept_pages(view, res_type, [(name, ref), *params], keep, count)
        matches += kept
        included += extra
        more = more or after
    unique = {e["resource"]["id"]: e for e in matches}
    ordered = sorted(
        unique.values(),
        key=lambda e: e["resource"].get("meta", {}).get("lastUpdated", ""),
        reverse=True,
    )
    more = more or len(ordered) > count
    return ordered[:count] + included, more


def kept_pages(
    view: View,
    res_type: str,
    query: list[tuple[str, str]],
    keep: Callable[[dict[str, Any]], bool] | None,
    wanted: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool]:
    """The match entries ``keep`` accepts (all without it), reading further pages until
    ``wanted`` are kept or MAX_PAGES are read; the included entries; whether a page remains."""
    matches: list[dict[str, Any]] = []
    included: list[dict[str, Any]] = []
    for _page in range(MAX_PAGES):
        bundle = view.fhir.search_bundle(res_type, query)
        for entry in bundle.get("entry") or []:
            if entry.get("search", {}).get("mode", "match") != "match":
                included.append(entry)
            elif keep is None or keep(entry["resource"]):
                matches.append(entry)
        links = bundle.get("link") or []
        after = next((str(k["url"]) for k in links if k.get("relation") == "next"), None)
        if after is None or len(matches) >= wanted:
            return matches, included, after is not None
        query = parse_qsl(urlsplit(after).query)
    return matches, included, True


def is_active(res: dict[str, Any]) -> bool:
    """A CareTeam or Consent in force, tested here rather than by a ``status=active``
    parameter: true of nearly every such resource of the region, SQLite answers it by listing
    all of them for each search (50 ms at 100 k patients)."""
    return res.get("status") == "active"


def _subjects(view: View, teams: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The teams' patients by "Patient/id", in one search by ``_id``: what
    ``_include=CareTeam:subject`` would bring, without its statement, which SQLite runs by
    walking every CareTeam's subject index row (about 60 ms per search at 100 k patients)."""
    ids = sorted(
        {
            ref.split("/", 1)[1]
            for team in teams
            if (ref := str(team.get("subject", {}).get("reference", ""))).startswith("Patient/")
        }
    )
    if not ids:
        return {}
    # Sorted by _id: in the default order (creation) SQLite walks every Patient to find them.
    query = [("_id", ",".join(ids)), ("_sort", "_id"), ("_count", str(len(ids)))]
    patients = view.fhir.search("Patient", query)
    return {f"Patient/{p['id']}": p for p in patients}


def _patients(view: View, members: tuple[str, ...]) -> tuple[list[MyPatient], bool]:
    if not members:
        return [], False
    # No _total: counting every circle of a busy GP costs more than the page.
    entries, more = search_each(
        view,
        "CareTeam",
        "participant",
        members,
        [("_sort", "-_lastUpdated"), ("_count", str(MY_PATIENTS))],
        keep=is_active,
    )
    matches, _none = split_entries(entries)
    included = _subjects(view, matches)
    out = []
    for team in matches:
        ref = str(team.get("subject", {}).get("reference", ""))
        patient = included.get(ref)
        if patient is None:
            continue
        out.append(
            MyPatient(
                id=str(patient["id"]),
                name=patient_name(patient),
                birth_date=str(patient.get("birthDate") or ""),
                since=str(team.get("period", {}).get("start") or ""),
            )
        )
    return out, more


def task_rows(entries: list[dict[str, Any]]) -> list[MyTask]:
    matches, included = split_entries(entries)
    rows = []
    for task in matches:
        ref = str(task.get("for", {}).get("reference", ""))
        patient = included.get(ref)
        title = str(
            task.get("description")
            or task.get("code", {}).get("text")
            or (task.get("code", {}).get("coding") or [{}])[0].get("display")
            or "Tâche"
        )
        rows.append(
            MyTask(
                id=str(task["id"]),
                title=title,
                status=TASK_STATUS.get(str(task.get("status")), str(task.get("status"))),
                due=str(task.get("restriction", {}).get("period", {}).get("end") or ""),
                patient_id=ref.split("/", 1)[1] if patient is not None else None,
                patient=patient_name(patient) if patient is not None else "",
            )
        )
    return rows


def _tasks(view: View, owners: tuple[str, ...]) -> list[MyTask]:
    if not owners:
        return []
    entries, _more = search_each(
        view,
        "Task",
        "owner",
        owners,
        [
            ("status", OPEN_TASK_STATUSES),
            ("_include", "Task:patient"),
            ("_sort", "-_lastUpdated"),
            ("_count", "20"),
        ],
    )
    return task_rows(entries)


def home(view: View) -> Response:
    store = view.web.engine.ctx.store
    refs = my_refs(store, view.user)
    clinical = bool(view.user.roles & {"professional", "coordinator", "admin"})
    patients: Section[tuple[list[MyPatient], bool]] = (
        section(lambda: _patients(view, refs.members)) if clinical else Section(([], False))
    )
    tasks: Section[list[MyTask]] = (
        section(lambda: _tasks(view, refs.all)) if clinical else Section([])
    )
    inbox = my_inbox(store, view.user, limit=5)
    extra: dict[str, Any] = {}
    for hook in view.web.home_hooks:
        extra.update(hook(view, refs))
    return render(
        view.request,
        "home.html",
        {
            "title": "Ma file active",
            "active": "home",
            "patients": patients,
            "tasks": tasks,
            "inbox": inbox,
            "clinical": clinical,
            **extra,
        },
    )
