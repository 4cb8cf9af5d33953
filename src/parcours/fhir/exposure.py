"""What leaves the platform through the FHIR API: only a QUAL identity exposes its INS.

RNIV EXI SI 08: an INS may be used in exchanges only once the identity is qualified. The store
keeps every INS it received (identity-vigilance needs them); the API removes, from every Patient
it returns (read, search, history, Bundle responses), the INS of an identity that is not QUAL.
A client that writes back what it read must not erase what it was not shown, so an update that
carries no INS keeps the stored, hidden ones.
"""

from __future__ import annotations

from typing import Any

from parcours.identity import exposable_identifiers, find_ins_slots

__all__ = ["keep_hidden_ins", "outgoing"]


def _expose(patient: dict[str, Any], allow_test_ins: bool) -> dict[str, Any]:
    identifiers = patient.get("identifier")
    if not isinstance(identifiers, list) or not find_ins_slots(patient, accept_untyped_nir=True):
        return patient
    shown = exposable_identifiers(patient, allow_test_ins=allow_test_ins)
    if len(shown) == len(identifiers):
        return patient
    out = dict(patient)
    if shown:
        out["identifier"] = shown
    else:
        out.pop("identifier", None)
    return out


def outgoing(body: dict[str, Any] | None, *, allow_test_ins: bool) -> dict[str, Any] | None:
    """``body`` as it may leave: Patients (alone or in a Bundle) without unexposable INS."""
    if not isinstance(body, dict):
        return body
    kind = body.get("resourceType")
    if kind == "Patient":
        return _expose(body, allow_test_ins)
    if kind != "Bundle" or not isinstance(body.get("entry"), list):
        return body
    entries = []
    changed = False
    for entry in body["entry"]:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        shown = outgoing(resource, allow_test_ins=allow_test_ins)
        if shown is not resource:
            entry = {**entry, "resource": shown}
            changed = True
        entries.append(entry)
    return {**body, "entry": entries} if changed else body


def keep_hidden_ins(
    stored: dict[str, Any], incoming: dict[str, Any], *, allow_test_ins: bool
) -> dict[str, Any]:
    """``incoming`` plus the stored INS its writer could not see, if it sent no INS itself."""
    if find_ins_slots(incoming, accept_untyped_nir=True):
        return incoming  # the writer states the INS: its version wins
    shown = exposable_identifiers(stored, allow_test_ins=allow_test_ins)
    hidden = [i for i in stored.get("identifier") or [] if i not in shown]
    hidden_ins = [i for i in hidden if find_ins_slots({"identifier": [i]}, accept_untyped_nir=True)]
    if not hidden_ins:
        return incoming
    return {**incoming, "identifier": [*(incoming.get("identifier") or []), *hidden_ins]}
