"""The PPCS as a FHIR CarePlan: which elements hold which HAS section (decision D28).

| HAS section                                   | CarePlan element                               |
|-----------------------------------------------|------------------------------------------------|
| situation of the person, evaluation summary   | ``description`` (+ ``note``)                   |
| problems and needs (besoins)                  | ``addresses`` -> Condition, or a ``display``   |
| objectives (objectifs)                        | ``goal`` -> Goal, or a ``display``             |
| actions: what, who, when                      | ``activity.detail``: ``description``,          |
|                                               | ``performer``, ``scheduled[x]``, ``status``    |
| coordinator (coordonnateur / référent)        | ``author``                                     |
| the care circle                               | ``careTeam`` (and ``contributor``)             |
| date of the next review (réévaluation)        | ``period.end``                                 |
| agreement of the person                       | extension ``ppcs-accord-patient``              |
| sign-off (validation): who and when           | extension ``ppcs-signature`` + a Provenance    |

A CarePlan is a PPCS when its ``category`` has the code ``ppcs`` of the CodeSystem shipped
here (``CodeSystem-ppcs.json``).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, Final

__all__ = [
    "AGREEMENT_CODES",
    "CATEGORY",
    "EXT_AGREEMENT",
    "EXT_SIGNATURE",
    "SIGNED_STATUSES",
    "SYSTEM_PPCS",
    "agreement",
    "code_system",
    "is_ppcs",
    "signature",
]

SYSTEM_PPCS: Final = "https://parcours.sante.fr/fhir/CodeSystem/ppcs"
CODE_PPCS: Final = "ppcs"
CATEGORY: Final = {
    "coding": [
        {
            "system": SYSTEM_PPCS,
            "code": CODE_PPCS,
            "display": "Plan personnalisé de coordination en santé",
        }
    ]
}
_SD: Final = "https://parcours.sante.fr/fhir/StructureDefinition/"
# Complex extensions: "statut" (valueCoding from SYSTEM_PPCS) and "date" (valueDate).
EXT_AGREEMENT: Final = _SD + "ppcs-accord-patient"
# Complex extension: "signataire" (valueReference), "date" (valueDateTime) and "document"
# (valueReference to the DocumentReference holding the signed PDF).
EXT_SIGNATURE: Final = _SD + "ppcs-signature"
AGREEMENT_CODES: Final = {
    "accord-recueilli": "Accord recueilli",
    "accord-refuse": "Accord refusé",
    "accord-a-recueillir": "Accord à recueillir",
}
# A PPCS in one of these statuses was signed: it is a validated version, read-only.
SIGNED_STATUSES: Final = frozenset({"active", "completed", "revoked"})
# Verification signature (ISO/ASTM E1762-95), the type FHIR's Signature examples use.
SIGNATURE_TYPE: Final = {
    "system": "urn:iso-astm:E1762-95:2013",
    "code": "1.2.840.10065.1.12.1.5",
    "display": "Verification Signature",
}
# LOINC "Plan of care note": the type of the DocumentReference that shares the signed PDF.
DOCUMENT_TYPE: Final = {
    "coding": [{"system": "http://loinc.org", "code": "18776-5", "display": "Plan of care note"}],
    "text": "Plan personnalisé de coordination en santé",
}


@cache
def code_system() -> dict[str, Any]:
    """The shipped CodeSystem (to load into the store or publish)."""
    text = resources.files(__package__).joinpath("CodeSystem-ppcs.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def is_ppcs(resource: dict[str, Any] | None) -> bool:
    if not resource or resource.get("resourceType") != "CarePlan":
        return False
    for category in resource.get("category") or []:
        for coding in (category or {}).get("coding") or []:
            if coding.get("system") == SYSTEM_PPCS and coding.get("code") == CODE_PPCS:
                return True
    return False


def _extension(resource: dict[str, Any], url: str) -> dict[str, Any] | None:
    for ext in resource.get("extension") or []:
        if isinstance(ext, dict) and ext.get("url") == url:
            return ext
    return None


def _parts(ext: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        str(part.get("url")): part for part in ext.get("extension") or [] if isinstance(part, dict)
    }


def signature(resource: dict[str, Any]) -> dict[str, Any] | None:
    """``{"signer": Reference, "date": str, "document": Reference | None}`` or None."""
    ext = _extension(resource, EXT_SIGNATURE)
    if ext is None:
        return None
    parts = _parts(ext)
    return {
        "signer": (parts.get("signataire") or {}).get("valueReference") or {},
        "date": (parts.get("date") or {}).get("valueDateTime"),
        "document": (parts.get("document") or {}).get("valueReference"),
    }


def signature_extension(
    signer: dict[str, Any], date: str, document: dict[str, Any]
) -> dict[str, Any]:
    return {
        "url": EXT_SIGNATURE,
        "extension": [
            {"url": "signataire", "valueReference": signer},
            {"url": "date", "valueDateTime": date},
            {"url": "document", "valueReference": document},
        ],
    }


def agreement(resource: dict[str, Any]) -> dict[str, Any] | None:
    """``{"code": str | None, "date": str | None}`` or None when not recorded."""
    ext = _extension(resource, EXT_AGREEMENT)
    if ext is None:
        return None
    parts = _parts(ext)
    coding = (parts.get("statut") or {}).get("valueCoding") or {}
    return {
        "code": coding.get("code") if coding.get("system") == SYSTEM_PPCS else None,
        "date": (parts.get("date") or {}).get("valueDate"),
    }
