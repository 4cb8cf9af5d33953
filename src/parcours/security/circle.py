"""Care circles and oppositions, kept as rows the policy's SQL can join.

A store hook (``on_write``) rewrites the rows of a CareTeam or a Consent in the transaction
that writes it, so a membership starts or ends exactly when its resource changes, whatever the
entry point. Only an ``active`` CareTeam grants access; each participant's access runs over
the intersection of the team's period and the participant's. A PractitionerRole member also
records its organisation, so a coordinator of that organisation sees the patient.

An opposition is an active Consent whose provision is ``deny``: its actors (or, with none,
every professional) lose access to the patient over the provision's period.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, delete, insert, select

from parcours.security.tables import care_member, care_opposition
from parcours.security.visibility import changed
from parcours.store.search.values import date_range

if TYPE_CHECKING:
    from parcours.store import Transaction

__all__ = ["MEMBER_TYPES", "on_write", "reference_key"]

MEMBER_TYPES = frozenset({"Practitioner", "PractitionerRole", "Organization", "RelatedPerson"})


def reference_key(tx: Transaction, value: Any) -> str | None:
    """ "Type/id" of a local reference element (``{"reference": ...}``), else None."""
    if not isinstance(value, dict):
        return None
    ref = value.get("reference")
    registry = tx.store.registry
    if not isinstance(ref, str) or registry is None:
        return None
    parsed = registry.parse_reference(ref)
    if parsed is None or parsed[2] is not None or parsed[0] is None:
        return None
    return f"{parsed[0]}/{parsed[1]}"


def _period(value: Any) -> tuple[int | None, int | None]:
    if not isinstance(value, dict):
        return None, None
    start = date_range(value["start"]) if isinstance(value.get("start"), str) else None
    end = date_range(value["end"]) if isinstance(value.get("end"), str) else None
    # An end date includes its whole day: access ends after its last millisecond.
    return (start[0] if start else None), (end[1] + 1 if end else None)


def _intersect(
    a: tuple[int | None, int | None], b: tuple[int | None, int | None]
) -> tuple[int | None, int | None]:
    starts = [s for s in (a[0], b[0]) if s is not None]
    ends = [e for e in (a[1], b[1]) if e is not None]
    return (max(starts) if starts else None), (min(ends) if ends else None)


def _role_organization(tx: Transaction, role_id: str) -> str | None:
    from parcours.errors import Gone, NotFound

    try:
        role = tx.read("PractitionerRole", role_id)
    except (NotFound, Gone):
        return None
    return reference_key(tx, role.get("organization"))


def _careteam_rows(tx: Transaction, team: dict[str, Any]) -> list[dict[str, Any]]:
    if team.get("status") != "active":
        return []
    patient = reference_key(tx, team.get("subject"))
    if patient is None or not patient.startswith("Patient/"):
        return []
    patient_id = patient.split("/", 1)[1]
    team_period = _period(team.get("period"))
    rows: list[dict[str, Any]] = []
    for participant in team.get("participant") or []:
        if not isinstance(participant, dict):
            continue
        member = reference_key(tx, participant.get("member"))
        if member is None or member.split("/", 1)[0] not in MEMBER_TYPES:
            continue
        start, end = _intersect(team_period, _period(participant.get("period")))
        org = None
        if member.startswith("PractitionerRole/"):
            org = _role_organization(tx, member.split("/", 1)[1])
        rows.append(
            {
                "patient_id": patient_id,
                "member": member,
                "member_org": org,
                "via": "member",
                "start_ms": start,
                "end_ms": end,
            }
        )
    for managing in team.get("managingOrganization") or []:
        org = reference_key(tx, managing)
        if org is not None and org.startswith("Organization/"):
            start, end = team_period
            rows.append(
                {
                    "patient_id": patient_id,
                    "member": org,
                    "member_org": org,
                    "via": "managing",
                    "start_ms": start,
                    "end_ms": end,
                }
            )
    return rows


def _opposition_rows(tx: Transaction, consent: dict[str, Any]) -> list[dict[str, Any]]:
    if consent.get("status") != "active":
        return []
    provision = consent.get("provision")
    if not isinstance(provision, dict) or provision.get("type") != "deny":
        return []
    patient = reference_key(tx, consent.get("patient"))
    if patient is None or not patient.startswith("Patient/"):
        return []
    start, end = _period(provision.get("period"))
    actors = [
        key
        for actor in provision.get("actor") or []
        if isinstance(actor, dict)
        and (key := reference_key(tx, actor.get("reference"))) is not None
    ]
    return [
        {
            "patient_id": patient.split("/", 1)[1],
            "actor": actor,
            "start_ms": start,
            "end_ms": end,
        }
        for actor in actors or ["*"]
    ]


def on_write(tx: Transaction, new: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
    current = new or old
    if current is None:
        return
    kind = current.get("resourceType")
    res_id = current.get("id")
    if kind == "CareTeam":
        rows = _careteam_rows(tx, new) if new is not None else []
        _replace(tx, care_member, care_member.c.careteam_id, res_id, rows, "careteam_id")
    elif kind == "PractitionerRole":
        from parcours.security.policy import forget_keys

        forget_keys(tx)
    elif kind == "Consent":
        rows = _opposition_rows(tx, new) if new is not None else []
        _replace(tx, care_opposition, care_opposition.c.consent_id, res_id, rows, "consent_id")


def _replace(
    tx: Transaction, table: Table, owner: Any, owner_id: Any, rows: list[dict[str, Any]], key: str
) -> None:
    """Make ``rows`` the rows of ``owner_id``; when they differ from the stored ones, the
    visible patients of someone change (``visibility.changed``)."""
    wanted = [{**r, key: owner_id} for r in rows]
    columns = [c for c in table.c if c.name != "pk"]
    stored = tx.conn.execute(select(*columns).where(owner == owner_id)).mappings().all()
    if _as_set(stored) == _as_set(wanted):
        return
    tx.conn.execute(delete(table).where(owner == owner_id))
    if wanted:
        tx.conn.execute(insert(table), wanted)
    changed(tx)


def _as_set(rows: Sequence[Mapping[Any, Any]]) -> frozenset[tuple[tuple[str, Any], ...]]:
    return frozenset(tuple(sorted(row.items())) for row in rows)
