"""Identifier systems for what hospitals send: IPP, visit number, NDA, movement id, UF.

Scheme (docs/hl7-interface.md §Identifiers), following the rule sheet §3.4 "key local ids on
(HD.2 or HD.1, CX-1)":

* assigning authority with an ISO OID (``&1.2.250...&ISO``) -> ``urn:oid:<OID>``;
* otherwise ``https://parcours.example/fhir/sid/hl7v2/<kind>/<authority>`` where authority is
  HD.2 (FINESS or other universal id) or else HD.1 (namespace), percent-encoded; HD.3
  (M/N/L) is ignored because the ANS examples use M and N for the same FINESS;
* no assigning authority at all -> the authority is the sender, ``sender:<MSH-3>@<MSH-4>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from parcours.hl7v2.er7 import Value

__all__ = [
    "FINESS_SYSTEM",
    "NAMESPACE",
    "RPPS_SYSTEM",
    "Sender",
    "cx_system",
    "ei_system",
    "fhir_identifier",
]

NAMESPACE = "https://parcours.example/fhir/sid/hl7v2"
FINESS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.2"
RPPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")


@dataclass(frozen=True, slots=True)
class Sender:
    """MSH-3 / MSH-4 (their HD.1, or HD.2 when HD.1 is empty)."""

    application: str
    facility: str

    @property
    def key(self) -> str:
        return f"{self.application}@{self.facility}"


def _system(kind: str, namespace: str, universal: str, universal_type: str, sender: Sender) -> str:
    if universal and universal_type.upper() == "ISO" and _OID.fullmatch(universal):
        return f"urn:oid:{universal}"
    authority = universal or namespace or f"sender:{sender.key}"
    return f"{NAMESPACE}/{kind}/{quote(authority, safe='@:')}"


def cx_system(kind: str, cx: Value, sender: Sender) -> str:
    """System of a CX (PID-3, PID-18, PV1-19, MRG-1): authority in CX-4."""
    return _system(kind, cx.c(4, 1), cx.c(4, 2), cx.c(4, 3), sender)


def ei_system(kind: str, ei: Value, sender: Sender) -> str:
    """System of an EI (ZBE-1): namespace EI-2, universal id EI-3, its type EI-4."""
    return _system(kind, ei.c(2), ei.c(3), ei.c(4), sender)


def fhir_identifier(
    system: str, value: str, *, type_code: str | None = None, use: str | None = None
) -> dict[str, Any]:
    ident: dict[str, Any] = {}
    if use:
        ident["use"] = use
    if type_code:
        ident["type"] = {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": type_code}
            ]
        }
    ident["system"] = system
    ident["value"] = value
    return ident
