"""Patient search as the RNIV asks for it (RNIV 1, search before creating an identity).

Three separate fields — birth date, name, first name — never one free-text box. The name is
looked for in the birth name *and* the used name; case, accents, hyphens and apostrophes never
decide (``D'ARTAGNAN``, ``d artagnan`` and ``Dartagnan`` are one name), and a field matches
from its start (a prefix), so a partly known name still finds the person. Each result shows its
RNIV identity status and marks what matched.

The candidates come from a FHIR search run by the engine with the user's rights (birth date,
then the name's first word as a FHIR string prefix), so the policy decides what can be found
and the search is audited; the RNIV comparison is then applied to that page of candidates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from markupsafe import Markup, escape

from parcours.identity.normalize import normalize_text
from parcours.identity.reliability import read_reliability
from parcours.identity.rniv import Status
from parcours.web.gateway import Gateway

__all__ = ["Criteria", "Hit", "NamePart", "parse_criteria", "search_patients", "status_badge"]

# Candidates fetched per search: a birth date narrows to a handful even at regional scale.
CANDIDATES = 200
_SEPARATORS = re.compile(r"[\s'\-]+")
_DDMMYYYY = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})$")

# RNIV statuses as the referential names them, with a DSFR badge colour.
STATUS_LABELS: dict[Status, tuple[str, str]] = {
    Status.PROV: ("Identité provisoire", "fr-badge--warning"),
    Status.RECUP: ("Identité récupérée", "fr-badge--info"),
    Status.VALI: ("Identité validée", "fr-badge--new"),
    Status.QUAL: ("Identité qualifiée", "fr-badge--success"),
}


def compact(text: str) -> str:
    """The comparison key: RNIV storage form without spaces, hyphens or apostrophes."""
    return _SEPARATORS.sub("", normalize_text(text))


@dataclass(frozen=True, slots=True)
class Criteria:
    birth_date: date | None = None
    name: str = ""
    given: str = ""

    @property
    def empty(self) -> bool:
        return self.birth_date is None and not compact(self.name) and not compact(self.given)


def parse_criteria(birth: str, name: str, given: str) -> tuple[Criteria, dict[str, str]]:
    """The criteria, and an error message per field that cannot be read."""
    errors: dict[str, str] = {}
    born: date | None = None
    birth = birth.strip()
    if birth:
        match = _DDMMYYYY.match(birth)
        try:
            if match:
                born = date(int(match[3]), int(match[2]), int(match[1]))
            else:
                born = date.fromisoformat(birth)
        except ValueError:
            errors["date_naissance"] = (
                "Date de naissance invalide : saisissez-la au format jj/mm/aaaa."
            )
    criteria = Criteria(born, name.strip()[:100], given.strip()[:100])
    if not errors and (name or given) and not born and len(compact(name) or compact(given)) < 2:
        errors["nom"] = "Sans date de naissance, saisissez au moins deux lettres du nom."
    return criteria, errors


@dataclass(frozen=True, slots=True)
class NamePart:
    """One displayed name, with the span that matched the criteria marked."""

    label: str
    value: str
    matched: bool = False
    html: Markup = field(default_factory=Markup)


def _mark(value: str, wanted: str) -> NamePart | None:
    """``value`` with the leading characters that spell ``wanted`` (compact form) marked;
    None unless ``value``, or one of its words, starts with ``wanted``."""
    key = compact(wanted)
    if not key:
        return None
    # The whole name first, then each word (a first name typed for a second given name).
    for start in [0, *(m.end() for m in _SEPARATORS.finditer(value))]:
        taken, end = "", start
        while end < len(value) and len(taken) < len(key):
            taken += compact(value[end])  # a separator adds nothing
            end += 1
        if taken[: len(key)] == key:
            html = escape(value[:start]) + Markup("<mark>") + escape(value[start:end])
            return NamePart("", value, True, html + Markup("</mark>") + escape(value[end:]))
    return None


def _part(label: str, value: str, wanted: str) -> NamePart:
    marked = _mark(value, wanted) if wanted else None
    if marked is None:
        return NamePart(label, value, False, escape(value))
    return NamePart(label, value, True, marked.html)


@dataclass(frozen=True, slots=True)
class Hit:
    id: str
    birth_name: NamePart
    used_name: NamePart | None
    given: NamePart
    birth_date: str
    birth_date_matched: bool
    gender: str
    status: Status
    active: bool

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status][0]


def _names(patient: dict[str, Any]) -> tuple[str, str, str]:
    """(birth name, used name, given names) as recorded."""
    birth = used = given = ""
    for name in patient.get("name") or []:
        use = name.get("use")
        family = str(name.get("family") or "")
        givens = " ".join(str(g) for g in name.get("given") or [])
        if use in ("official", None) and not birth:
            birth, given = family, givens or given
        elif use == "usual" and not used:
            used = family
            given = given or givens
    return birth, used, given


def hit_of(patient: dict[str, Any], criteria: Criteria) -> Hit | None:
    """The result line of ``patient``, or None when it does not meet the criteria."""
    birth, used, given = _names(patient)
    birth_part = _part("Nom de naissance", birth, criteria.name)
    used_part = _part("Nom utilisé", used, criteria.name) if used and used != birth else None
    given_part = _part("Prénom(s)", given, criteria.given)
    if compact(criteria.name) and not (birth_part.matched or (used_part and used_part.matched)):
        return None
    if compact(criteria.given) and not given_part.matched:
        return None
    born = str(patient.get("birthDate") or "")
    if criteria.birth_date is not None and born[:10] != criteria.birth_date.isoformat():
        return None
    return Hit(
        id=str(patient["id"]),
        birth_name=birth_part,
        used_name=used_part,
        given=given_part,
        birth_date=born,
        birth_date_matched=criteria.birth_date is not None,
        gender={"female": "Féminin", "male": "Masculin"}.get(
            str(patient.get("gender")), "Indéterminé"
        ),
        status=read_reliability(patient).status,
        active=patient.get("active", True) is not False,
    )


def _words(text: str) -> list[str]:
    return [w for w in _SEPARATORS.split(normalize_text(text)) if w]


def _name_queries(name: str) -> list[tuple[str, str]]:
    """FHIR ``family`` conditions whose union holds every name the RNIV comparison accepts
    (for a name typed without its birth date; with one, the date alone selects).

    The first typed word as a prefix; a one- or two-letter first word (``D'``, ``LE``) is too
    broad a prefix, so the longest word is looked for anywhere instead; and a single typed
    word may have lost its particle's apostrophe (``DARRAS`` for ``D'ARRAS``), so its tail
    after the first letter is looked for anywhere too.
    """
    words = _words(name)
    if not words:
        return []
    queries = []
    if len(words[0]) >= 3:
        queries.append(("family", words[0]))
    else:
        queries.append(("family:contains", max(words, key=len)))
    key = compact(name)
    if len(words) == 1 and len(key) >= 5:
        queries.append(("family:contains", key[1:]))
    return queries


def search_patients(fhir: Gateway, criteria: Criteria) -> list[Hit]:
    """Patients meeting ``criteria`` that the user may see, in name order."""
    if criteria.empty:
        return []
    base: list[tuple[str, str]] = [("_count", str(CANDIDATES))]
    queries: list[list[tuple[str, str]]]
    if criteria.birth_date is not None:
        queries = [[*base, ("birthdate", criteria.birth_date.isoformat())]]
    else:
        given = _words(criteria.given)
        if given:
            base.append(("given", given[0]))
        queries = [[*base, q] for q in _name_queries(criteria.name)] or [base]
    found: dict[str, Hit] = {}
    for params in queries:
        for patient in fhir.search("Patient", params):
            hit = hit_of(patient, criteria)
            if hit is not None:
                found[hit.id] = hit
    hits = list(found.values())
    hits.sort(key=lambda h: (not h.active, h.birth_name.value, h.given.value, h.birth_date))
    return hits


def status_badge(status: Status) -> Markup:
    label, colour = STATUS_LABELS[status]
    return Markup('<p class="fr-badge fr-badge--sm {}">{}</p>').format(colour, label)
