"""``GET|PUT Practitioner/{id}/$notification-preferences`` (and ``Organization/{id}/…``).

Parameters (in and out): ``channel`` (valueCode, repeated: ``inapp``, ``email``; none given
with ``default`` = false means no notification at all), ``opt-out`` (valueCode, repeated: event
codes not wanted), ``default`` (valueBoolean: true resets the channels to the default). Out
also: ``recipient`` (valueReference) and ``email`` (valueString, the address e-mails go to).
Allowed to the practitioner themselves, to a coordinator of the organisation, and to admins.
"""

from __future__ import annotations

from typing import Any

from parcours.errors import Forbidden, InvalidInput
from parcours.fhir.context import FhirContext
from parcours.fhir.request import FhirRequest, FhirResponse
from parcours.notify.preferences import Preference, preference_of, save_preference
from parcours.security.policy import Access
from parcours.store import Transaction

__all__ = ["get_preferences", "put_preferences"]


def _recipient(req: FhirRequest, tx: Transaction, p: dict[str, str]) -> str:
    res_type = req.path[0]
    recipient = f"{res_type}/{p['id']}"
    tx.read(res_type, p["id"])  # 404 / 410 for an unknown recipient
    access: Access | None = tx.access
    if access is None or access.unrestricted:
        return recipient
    principal = access.principal
    if res_type == "Practitioner" and principal.practitioner == recipient:
        return recipient
    coordinator = "coordinator" in principal.roles
    if res_type == "Organization" and coordinator and recipient in access.org_keys:
        return recipient
    raise Forbidden(f"only {recipient} (or an administrator) may manage its notifications")


def _out(preference: Preference) -> dict[str, Any]:
    parameter: list[dict[str, Any]] = [
        {"name": "recipient", "valueReference": {"reference": preference.recipient}},
        {"name": "default", "valueBoolean": preference.default},
        *({"name": "channel", "valueCode": c} for c in preference.channels),
        *({"name": "opt-out", "valueCode": c} for c in sorted(preference.opted_out)),
    ]
    if preference.email:
        parameter.append({"name": "email", "valueString": preference.email})
    return {"resourceType": "Parameters", "parameter": parameter}


def get_preferences(
    req: FhirRequest, tx: Transaction, ctx: FhirContext, p: dict[str, str]
) -> FhirResponse:
    return FhirResponse(200, _out(preference_of(tx, _recipient(req, tx, p))))


def put_preferences(
    req: FhirRequest, tx: Transaction, ctx: FhirContext, p: dict[str, str]
) -> FhirResponse:
    recipient = _recipient(req, tx, p)
    body = req.body
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise InvalidInput("$notification-preferences takes a Parameters resource as its body")
    channels: list[str] = []
    opted_out: list[str] = []
    default = False
    for param in body.get("parameter") or []:
        if not isinstance(param, dict):
            raise InvalidInput("Parameters.parameter must be a list of objects")
        name = param.get("name")
        if name == "channel" and isinstance(param.get("valueCode"), str):
            channels.append(param["valueCode"])
        elif name == "opt-out" and isinstance(param.get("valueCode"), str):
            opted_out.append(param["valueCode"])
        elif name == "default" and isinstance(param.get("valueBoolean"), bool):
            default = param["valueBoolean"]
        elif name not in ("recipient", "email"):
            raise InvalidInput(f"unknown or malformed parameter {str(name)[:40]!r}")
    saved = save_preference(tx, recipient, None if default else channels, opted_out)
    return FhirResponse(200, _out(saved))
