"""The CapabilityStatement: built from the registry and the route table, so it tells the truth."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from parcours.fhir.context import FhirContext

__all__ = ["capability_statement"]

_TYPE_INTERACTIONS = (
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
)
# Result and control parameters every search accepts (they are not SearchParameters).
_COMMON = (
    ("_count", "number"),
    ("_summary", "token"),
    ("_elements", "string"),
    ("_total", "token"),
    ("_sort", "string"),
    ("_include", "special"),
    ("_revinclude", "special"),
)


# Type-level operations, as routed in router.py (name, canonical of the definition).
# Operations with a canonical definition elsewhere; the others are Parcours' own.
_CANONICAL: dict[tuple[str, str], str] = {
    ("Patient", "match"): "http://hl7.org/fhir/OperationDefinition/Patient-match",
    # R4 defines no merge operation; R5's Patient-merge parameters are the ones we take.
    ("Patient", "merge"): "http://hl7.org/fhir/OperationDefinition/Patient-merge",
    ("Patient", "everything"): "http://hl7.org/fhir/OperationDefinition/Patient-everything",
    ("PlanDefinition", "apply"): "http://hl7.org/fhir/OperationDefinition/PlanDefinition-apply",
}
_OWN = "https://parcours.example.org/fhir/OperationDefinition"


def _operation(res_type: str, name: str) -> dict[str, str]:
    definition = _CANONICAL.get((res_type, name), f"{_OWN}/{res_type}-{name}")
    return {"name": name, "definition": definition}


def capability_statement(
    ctx: FhirContext,
    base_url: str,
    date: str,
    operations: Mapping[str, Iterable[str]] | None = None,
) -> dict[str, Any]:
    """``operations``: the operation names the router serves, per resource type."""
    registry = ctx.registry
    resources = []
    for res_type in sorted(registry.resource_types()):
        params = registry.for_type(res_type)
        declared = [
            _operation(res_type, name) for name in sorted(set((operations or {}).get(res_type, ())))
        ]
        resources.append(
            {
                "type": res_type,
                "interaction": [{"code": code} for code in _TYPE_INTERACTIONS],
                "versioning": "versioned-update",
                "readHistory": True,
                "updateCreate": True,
                "conditionalCreate": True,
                "conditionalRead": "not-supported",
                "conditionalUpdate": True,
                "conditionalDelete": "single",
                "referencePolicy": ["literal", "logical", "local"],
                "searchParam": [
                    {"name": p.code, "definition": p.url, "type": p.type}
                    for _, p in sorted(params.items())
                ],
                **({"operation": declared} if declared else {}),
            }
        )
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "publisher": "Parcours",
        "kind": "instance",
        "software": {"name": "Parcours"},
        "implementation": {"description": "Parcours FHIR R4 server", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["json", "application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "JSON only. Delete of a missing resource answers 200 with an "
                    "informational OperationOutcome. PATCH takes FHIRPath Patch (simple "
                    "paths; add, replace, delete) or JSON Patch."
                ),
                "security": {
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "OAuth",
                                }
                            ],
                            "text": "Bearer token",
                        }
                    ],
                },
                "resource": resources,
                "interaction": [
                    {"code": "transaction"},
                    {"code": "batch"},
                    {"code": "history-system"},
                ],
                "searchParam": [{"name": name, "type": kind} for name, kind in _COMMON],
            }
        ],
    }
