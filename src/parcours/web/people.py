"""Names of the people and organisations a page shows, from the FHIR resources it read."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["display_name", "member_label", "patient_name", "split_entries"]

Resource = dict[str, Any]


def split_entries(entries: Iterable[Resource]) -> tuple[list[Resource], dict[str, Resource]]:
    """A search Bundle's entries: the matches, and the included resources by "Type/id"."""
    matches: list[Resource] = []
    included: dict[str, Resource] = {}
    for entry in entries:
        res = entry["resource"]
        mode = entry.get("search", {}).get("mode", "match")
        if mode == "match":
            matches.append(res)
        elif mode == "include":
            included[f"{res['resourceType']}/{res['id']}"] = res
    return matches, included


def display_name(res: Resource | None) -> str:
    """A person's or an organisation's name as written on screen."""
    if not res:
        return ""
    if res.get("resourceType") == "Organization":
        return str(res.get("name") or res.get("id"))
    names = res.get("name") or []
    if not names:
        return str(res.get("id"))
    name = names[0]
    if name.get("text") and res.get("resourceType") != "Patient":
        return str(name["text"])
    prefix = " ".join(name.get("prefix") or [])
    given = " ".join(name.get("given") or [])
    return " ".join(p for p in (prefix, given, str(name.get("family") or "")) if p)


def patient_name(patient: Resource) -> str:
    """``NOM DE NAISSANCE (NOM UTILISÉ) Prénom`` as identity vigilance wants names shown."""
    birth = used = given = ""
    for name in patient.get("name") or []:
        if name.get("use") in ("official", None) and not birth:
            birth = str(name.get("family") or "")
            given = " ".join(name.get("given") or []) or given
        elif name.get("use") == "usual" and not used:
            used = str(name.get("family") or "")
            given = given or " ".join(name.get("given") or [])
    shown = birth or used or "SANS NOM"
    if used and used != birth:
        shown += f" ({used})"
    return f"{shown} {given.title()}".strip()


def member_label(ref: str, included: dict[str, Resource]) -> str:
    """The name behind a participant reference: a role shows its practitioner and place."""
    res = included.get(ref)
    if res is None:
        return ref
    if res.get("resourceType") == "PractitionerRole":
        who = display_name(included.get(str(res.get("practitioner", {}).get("reference"))))
        org = display_name(included.get(str(res.get("organization", {}).get("reference"))))
        # The function as written (``code.text``), else the specialty: the genre and mode of
        # activity codings (TRE_R22, TRE_R23) say nothing a colleague looks for.
        specialty = next((str(c["text"]) for c in res.get("code") or [] if c.get("text")), "")
        for code in res.get("specialty") or []:
            specialty = specialty or str((code.get("coding") or [{}])[0].get("display") or "")
        parts = [who or ref, specialty, org]
        return " — ".join(p for p in parts if p)
    return display_name(res)
