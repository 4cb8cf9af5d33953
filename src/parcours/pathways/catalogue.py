"""Stored pathway versions: save, find, list, the shipped library, and the PlanDefinition check.

Each version is its own PlanDefinition (id ``<pathway>-<version>``, same ``url``): an enrolment
names the exact version it follows (``CarePlan.instantiatesCanonical`` = ``url|version``), so
publishing version 2 never changes a patient already on version 1. Saving an active version
retires the other active versions of the same pathway; a stored version is never changed in
place (a different content under the same version is refused: bump the version).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from parcours.errors import Conflict, InvalidInput, InvalidResource, Issue, NotFound
from parcours.pathways.codes import PATHWAY_ID_SYSTEM
from parcours.pathways.fhir_mapping import (
    canonical,
    from_fhir,
    is_pathway,
    plan_id,
    questionnaires,
    to_fhir,
)
from parcours.pathways.model import PathwayDefinition
from parcours.pathways.yaml_io import definition_problems, format_path, iter_library, load_yaml_file
from parcours.store import Store, Transaction
from parcours.store.search import parse_search

__all__ = [
    "PlanSummary",
    "SaveOutcome",
    "check_plan",
    "definition_of",
    "list_plans",
    "load_library",
    "resolve_plan",
    "save_definition",
    "search_all",
]

Resource = dict[str, Any]
_CACHE = "pathways.definitions"
_NAMES = "pathways.active-by-name"


def search_all(
    tx: Transaction, res_type: str, params: Sequence[tuple[str, str]], scope: Any = None
) -> list[Resource]:
    """Every match of a search (pages followed), within ``scope`` (an Access, or None)."""
    registry = tx.store.registry
    if registry is None:
        raise InvalidInput("this store was built without search parameters")
    query = [*params, ("_count", "1000")]
    out: list[Resource] = []
    while True:
        request = parse_search(res_type, query, registry, max_count=1000)
        result = tx.search(request, scope)
        out.extend(result.matches)
        if not result.next_params:
            return out
        query = result.next_params


def definition_of(tx: Transaction, plan: Resource) -> PathwayDefinition:
    """The definition a stored PlanDefinition carries, compiled once per version."""
    cache: dict[tuple[str, str], PathwayDefinition] = tx.store.caches.setdefault(_CACHE, {})
    key = (str(plan.get("id")), str((plan.get("meta") or {}).get("versionId")))
    found = cache.get(key)
    if found is None:
        found = from_fhir(plan)
        if len(cache) > 256:
            cache.clear()
        cache[key] = found
    return found


def resolve_plan(tx: Transaction, ref: str) -> Resource:
    """A PlanDefinition from ``PlanDefinition/<id>``, its id, ``url[|version]`` or a pathway
    id (its active version)."""
    ref = ref.strip()
    if ref.startswith("PlanDefinition/"):
        return tx.read("PlanDefinition", ref.removeprefix("PlanDefinition/"))
    if "://" in ref or ref.startswith("urn:"):
        url, _, version = ref.partition("|")
        params = [("url", url)] + ([("version", version)] if version else [("status", "active")])
        found = search_all(tx, "PlanDefinition", params)
        if not found:
            raise NotFound(f"no pathway PlanDefinition has the canonical {ref[:200]!r}")
        return _latest(found)
    if tx.exists("PlanDefinition", ref):
        return tx.read("PlanDefinition", ref)
    # Pathway id -> its active version's plan id; any PlanDefinition write empties this.
    names: dict[str, str] = tx.store.caches.setdefault(_NAMES, {})
    if ref in names and tx.exists("PlanDefinition", names[ref]):
        return tx.read("PlanDefinition", names[ref])
    found = search_all(
        tx,
        "PlanDefinition",
        [("identifier", f"{PATHWAY_ID_SYSTEM}|{ref}"), ("status", "active")],
    )
    if not found:
        raise NotFound(f"no active pathway {ref[:64]!r} (load it with `parcours pathways load`)")
    latest = _latest(found)
    names[ref] = str(latest["id"])
    return latest


def _version_key(plan: Resource) -> tuple[int, ...]:
    return tuple(int(p) for p in str(plan.get("version") or "0").split(".") if p.isdigit())


def _latest(plans: list[Resource]) -> Resource:
    return max(plans, key=_version_key)


class SaveOutcome:
    CREATED = "created"
    UNCHANGED = "unchanged"


def _same(a: PathwayDefinition, b: PathwayDefinition) -> bool:
    # Retiring a version changes its status only: it is still the same version.
    return a.model_copy(update={"status": "active"}) == b.model_copy(update={"status": "active"})


def save_definition(tx: Transaction, d: PathwayDefinition) -> str:
    """Store one version (PlanDefinition + its Questionnaires); returns created/unchanged."""
    pid = plan_id(d)
    if tx.exists("PlanDefinition", pid):
        stored = from_fhir(tx.read("PlanDefinition", pid))
        if not _same(stored, d):
            raise Conflict(
                f"version {d.version} of pathway {d.id!r} is already stored with another "
                "content: give the changed definition a new version"
            )
        return SaveOutcome.UNCHANGED
    tx.update(to_fhir(d))
    for questionnaire in questionnaires(d):
        tx.update(questionnaire)
    if d.status == "active":
        for other in search_all(
            tx, "PlanDefinition", [("url", canonical(d)), ("status", "active")]
        ):
            if other["id"] != pid:
                tx.update({**other, "status": "retired"})
    return SaveOutcome.CREATED


def check_plan(tx: Transaction, new: Resource | None, old: Resource | None) -> None:
    """Store write hook: a pathway PlanDefinition (PUT, POST, Bundle, CLI) must be usable."""
    if (new or old or {}).get("resourceType") == "PlanDefinition":
        # Another version may now be the active one (cleared for every process at restart;
        # other processes see a retired version until then, which still enrols correctly).
        tx.store.caches.pop(_NAMES, None)
    if new is None or new.get("resourceType") != "PlanDefinition" or not is_pathway(new):
        return
    definition = from_fhir(new)
    found = definition_problems(definition)
    if found:
        issues = [
            Issue(f"{format_path(path)}: {message}", location=format_path(path))
            for path, message in found
        ]
        raise InvalidResource(
            f"the pathway in PlanDefinition/{new.get('id')} has {len(issues)} problem(s): "
            + "; ".join(i.message for i in issues),
            issues,
        )


@dataclass(frozen=True, slots=True)
class PlanSummary:
    plan_id: str
    pathway: str
    version: str
    status: str
    title: str


def list_plans(tx: Transaction, *, include_retired: bool = False) -> list[PlanSummary]:
    plans = search_all(tx, "PlanDefinition", [])
    out = []
    for plan in plans:
        if not is_pathway(plan) or (plan.get("status") == "retired" and not include_retired):
            continue
        d = definition_of(tx, plan)
        out.append(PlanSummary(plan["id"], d.id, d.version, str(plan.get("status")), d.title))
    return sorted(out, key=lambda s: (s.pathway, _version_key({"version": s.version})))


def load_library(store: Store) -> list[tuple[str, str, str]]:
    """Store every shipped pathway version not stored yet: (pathway, version, outcome).

    Idempotent (an unchanged version is left alone), so every start and every
    ``parcours db upgrade`` may call it; a new version in the package is the upgrade.
    """
    definitions = [load_yaml_file(path) for path in iter_library()]
    out = []
    with store.begin() as tx:
        for d in definitions:
            out.append((d.id, d.version, save_definition(tx, d)))
    return out
