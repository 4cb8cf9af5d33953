"""What the PPCS document shows, in French, from a CarePlan and what it references.

Referenced resources (Goal, Condition, Practitioner, CareTeam…) are read in the caller's
transaction and only when the access policy lets the caller read them; otherwise, or when
they are gone, the reference's own ``display`` is shown, else a neutral placeholder. They are
read as they are now: a signed version's frozen rendering is the PDF of its DocumentReference.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from parcours.errors import Forbidden, Gone, InvalidInput, NotFound
from parcours.ppcs.access import check_read
from parcours.ppcs.model import AGREEMENT_CODES, agreement, signature
from parcours.store import Transaction

__all__ = ["Action", "PpcsView", "build_view", "french_date", "human_name"]

_PARIS: Final = ZoneInfo("Europe/Paris")
_MONTHS: Final = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
_PLAN_STATUS: Final = {
    "draft": "Brouillon (non validé)",
    "active": "Validé",
    "completed": "Terminé",
    "revoked": "Révoqué",
    "entered-in-error": "Saisi par erreur",
}
_ACTION_STATUS: Final = {
    "not-started": "Non commencée",
    "scheduled": "Programmée",
    "in-progress": "En cours",
    "on-hold": "Suspendue",
    "completed": "Réalisée",
    "cancelled": "Annulée",
    "stopped": "Arrêtée",
    "unknown": "Inconnu",
    "entered-in-error": "Saisie par erreur",
}
_GOAL_STATUS: Final = {
    "proposed": "Proposé",
    "planned": "Planifié",
    "accepted": "Accepté",
    "active": "En cours",
    "on-hold": "Suspendu",
    "completed": "Atteint",
    "cancelled": "Abandonné",
    "entered-in-error": "Saisi par erreur",
    "rejected": "Refusé",
}
_GENDER: Final = {"male": "homme", "female": "femme", "other": "autre", "unknown": "inconnu"}
_UNKNOWN: Final = "(non précisé)"


def _day(day: int) -> str:
    return "1er" if day == 1 else str(day)


def french_date(value: str | None) -> str:
    """A FHIR date or dateTime as read in France: ``12 mars 2026``, ``… à 14 h 05``."""
    if not value:
        return ""
    try:
        if len(value) == 4:
            return value
        if len(value) == 7:
            year, month = value.split("-")
            return f"{_MONTHS[int(month) - 1]} {year}"
        if len(value) == 10:
            day = datetime.strptime(value, "%Y-%m-%d")
            return f"{_day(day.day)} {_MONTHS[day.month - 1]} {day.year}"
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(_PARIS)
    return (
        f"{_day(moment.day)} {_MONTHS[moment.month - 1]} {moment.year} "
        f"à {moment.hour} h {moment.minute:02d}"
    )


@dataclass(frozen=True)
class Item:
    """A need or an objective: its text and what is known about it."""

    text: str
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class Action:
    what: str
    who: tuple[str, ...]
    when: str
    status: str


@dataclass
class PpcsView:
    """Everything the template shows, already in French."""

    reference: str
    version: str
    title: str
    status_code: str
    status: str
    last_updated: str
    patient: str
    patient_details: tuple[str, ...]
    situation: str
    notes: tuple[str, ...]
    needs: tuple[Item, ...]
    objectives: tuple[Item, ...]
    actions: tuple[Action, ...]
    coordinator: str
    contributors: tuple[str, ...]
    circle: tuple[str, ...]
    review_date: str
    start_date: str
    agreement: str
    agreement_date: str
    signer: str = ""
    signed_on: str = ""

    @property
    def signed(self) -> bool:
        return bool(self.signer)


def human_name(name_list: Any) -> str:
    for name in name_list or []:
        if not isinstance(name, dict):
            continue
        if name.get("text"):
            return str(name["text"])
        given = " ".join(str(g) for g in name.get("given") or [])
        family = str(name.get("family") or "").upper()
        prefix = " ".join(str(p) for p in name.get("prefix") or [])
        full = " ".join(part for part in (prefix, given, family) if part)
        if full:
            return full
    return ""


def _concept(concept: Any) -> str:
    if not isinstance(concept, dict):
        return ""
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding") or []:
        if isinstance(coding, dict) and (coding.get("display") or coding.get("code")):
            return str(coding.get("display") or coding.get("code"))
    return ""


class _Resolver:
    """Reads local references once each, within what the caller may read."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx
        self.seen: dict[str, dict[str, Any] | None] = {}

    def __call__(self, ref: Any) -> dict[str, Any] | None:
        raw = ref.get("reference") if isinstance(ref, dict) else None
        if not isinstance(raw, str) or raw.startswith("#"):
            return None
        parts = raw.split("/_history/", 1)[0].split("/")
        if len(parts) < 2:
            return None
        key = f"{parts[-2]}/{parts[-1]}"
        if key not in self.seen:
            self.seen[key] = self._read(parts[-2], parts[-1])
        return self.seen[key]

    def _read(self, res_type: str, res_id: str) -> dict[str, Any] | None:
        try:
            check_read(self.tx, res_type, res_id)
            found: dict[str, Any] = self.tx.read(res_type, res_id)
        except (Forbidden, NotFound, Gone, InvalidInput):
            return None
        return found

    def name(self, ref: Any) -> str:
        """Who a reference designates: a person, a role, an organisation, a team."""
        target = self(ref)
        fallback = str(ref.get("display") or "") if isinstance(ref, dict) else ""
        if target is None:
            return fallback or _UNKNOWN
        kind = target.get("resourceType")
        if kind in ("Practitioner", "Patient", "RelatedPerson"):
            found = human_name(target.get("name"))
            if kind == "RelatedPerson" and found:
                relation = ", ".join(
                    filter(None, (_concept(r) for r in target.get("relationship") or []))
                )
                found = f"{found} ({relation})" if relation else found
            return found or fallback or _UNKNOWN
        if kind == "PractitionerRole":
            who = self.name(target["practitioner"]) if target.get("practitioner") else ""
            roles = ", ".join(filter(None, (_concept(c) for c in target.get("code") or [])))
            org = self.name(target["organization"]) if target.get("organization") else ""
            label = ", ".join(filter(None, (who if who != _UNKNOWN else "", roles, org)))
            return label or fallback or _UNKNOWN
        if kind in ("Organization", "CareTeam", "HealthcareService"):
            return str(target.get("name") or fallback or _UNKNOWN)
        return fallback or _UNKNOWN


def _need(resolve: _Resolver, ref: Any) -> Item:
    target = resolve(ref)
    display = str(ref.get("display") or "") if isinstance(ref, dict) else ""
    if target is None:
        return Item(display or _UNKNOWN)
    text = _concept(target.get("code")) or display or _UNKNOWN
    details = tuple(
        str(note.get("text")) for note in target.get("note") or [] if isinstance(note, dict)
    )
    return Item(text, details)


def _objective(resolve: _Resolver, ref: Any) -> Item:
    target = resolve(ref)
    display = str(ref.get("display") or "") if isinstance(ref, dict) else ""
    if target is None or target.get("resourceType") != "Goal":
        return Item(display or _UNKNOWN)
    details: list[str] = []
    for aim in target.get("target") or []:
        measure = _concept((aim or {}).get("measure"))
        due = (aim or {}).get("dueDate")
        if measure:
            details.append(f"Indicateur : {measure}")
        if due:
            details.append(f"Échéance : {french_date(due)}")
    status = _GOAL_STATUS.get(str(target.get("lifecycleStatus")))
    if status:
        details.append(f"Statut : {status}")
    return Item(_concept(target.get("description")) or display or _UNKNOWN, tuple(details))


def _when(detail: dict[str, Any]) -> str:
    if detail.get("scheduledString"):
        return str(detail["scheduledString"])
    period = detail.get("scheduledPeriod")
    if isinstance(period, dict):
        start, end = french_date(period.get("start")), french_date(period.get("end"))
        if start and end:
            return f"du {start} au {end}"
        if start:
            return f"à partir du {start}"
        if end:
            return f"au plus tard le {end}"
    timing = detail.get("scheduledTiming")
    if isinstance(timing, dict):
        text = _concept(timing.get("code"))
        events = [french_date(e) for e in timing.get("event") or []]
        repeat = timing.get("repeat") or {}
        bounds = repeat.get("boundsPeriod") or {}
        pieces = [text, ", ".join(events)]
        if repeat.get("frequency") and repeat.get("period") and repeat.get("periodUnit"):
            unit = {"d": "jour", "wk": "semaine", "mo": "mois", "a": "an", "h": "heure"}.get(
                str(repeat["periodUnit"]), str(repeat["periodUnit"])
            )
            per = repeat["period"]
            every = unit if per == 1 else f"{per} {unit}"
            pieces.append(f"{repeat['frequency']} fois par {every}")
        if bounds.get("start") or bounds.get("end"):
            pieces.append(
                " ".join(
                    filter(
                        None,
                        (
                            f"du {french_date(bounds.get('start'))}" if bounds.get("start") else "",
                            f"au {french_date(bounds.get('end'))}" if bounds.get("end") else "",
                        ),
                    )
                )
            )
        return "; ".join(p for p in pieces if p) or _UNKNOWN
    return _UNKNOWN


def _action(resolve: _Resolver, activity: dict[str, Any]) -> Action:
    detail = activity.get("detail") or {}
    reference = activity.get("reference")
    what = str(detail.get("description") or _concept(detail.get("code")) or "")
    if not what and reference:
        what = str(reference.get("display") or "")
    who = tuple(resolve.name(p) for p in detail.get("performer") or []) or (_UNKNOWN,)
    status = _ACTION_STATUS.get(str(detail.get("status")), "")
    return Action(what or _UNKNOWN, who, _when(detail), status)


def _circle(resolve: _Resolver, careplan: dict[str, Any]) -> tuple[str, ...]:
    members: list[str] = []
    for ref in careplan.get("careTeam") or []:
        team = resolve(ref)
        if team is None:
            members.append(resolve.name(ref))
            continue
        for participant in team.get("participant") or []:
            if not isinstance(participant, dict) or not participant.get("member"):
                continue
            if (participant.get("period") or {}).get("end"):
                continue  # no longer in the circle
            who = resolve.name(participant["member"])
            roles = ", ".join(filter(None, (_concept(r) for r in participant.get("role") or [])))
            members.append(f"{who} — {roles}" if roles else who)
    return tuple(dict.fromkeys(members))


def build_view(tx: Transaction, careplan: dict[str, Any]) -> PpcsView:
    resolve = _Resolver(tx)
    meta = careplan.get("meta") or {}
    patient = resolve(careplan.get("subject"))
    patient_name = resolve.name(careplan.get("subject") or {})
    details: list[str] = []
    if patient is not None and patient.get("resourceType") == "Patient":
        if patient.get("birthDate"):
            details.append(f"Né(e) le {french_date(patient['birthDate'])}")
        if patient.get("gender") in _GENDER:
            details.append(f"Sexe : {_GENDER[patient['gender']]}")
    agreed = agreement(careplan) or {}
    signed = signature(careplan) or {}
    signer = resolve.name(signed["signer"]) if signed.get("signer") else ""
    period = careplan.get("period") or {}
    status_code = str(careplan.get("status") or "")
    return PpcsView(
        reference=f"CarePlan/{careplan.get('id')}",
        version=str(meta.get("versionId") or ""),
        title=str(careplan.get("title") or "Plan personnalisé de coordination en santé"),
        status_code=status_code,
        status=_PLAN_STATUS.get(status_code, status_code),
        last_updated=french_date(meta.get("lastUpdated")),
        patient=patient_name,
        patient_details=tuple(details),
        situation=str(careplan.get("description") or ""),
        notes=tuple(str(n.get("text")) for n in careplan.get("note") or [] if isinstance(n, dict)),
        needs=tuple(_need(resolve, ref) for ref in careplan.get("addresses") or []),
        objectives=tuple(_objective(resolve, ref) for ref in careplan.get("goal") or []),
        actions=tuple(
            _action(resolve, a) for a in careplan.get("activity") or [] if isinstance(a, dict)
        ),
        coordinator=resolve.name(careplan["author"]) if careplan.get("author") else "",
        contributors=tuple(resolve.name(ref) for ref in careplan.get("contributor") or []),
        circle=_circle(resolve, careplan),
        review_date=french_date(period.get("end")),
        start_date=french_date(period.get("start") or careplan.get("created")),
        agreement=AGREEMENT_CODES.get(str(agreed.get("code")), "Non renseigné"),
        agreement_date=french_date(agreed.get("date")),
        signer=signer,
        signed_on=french_date(signed.get("date")),
    )
