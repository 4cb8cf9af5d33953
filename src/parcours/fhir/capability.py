"""The CapabilityStatement: built from the registry and the route table, so it tells the truth."""

from __future__ import annotations

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
_OPERATIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "Patient": (
        ("match", "http://hl7.org/fhir/OperationDefinition/Patient-match"),
        # R4 defines no merge operation; R5's Patient-merge parameters are the ones we take.
        ("merge", "http://hl7.org/fhir/OperationDefinition/Patient-merge"),
        ("unmerge", "https://parcours.example.org/fhir/OperationDefinition/Patient-unmerge"),
    ),
}


def capability_statement(ctx: FhirContext, base_url: str, date: str) -> dict[str, Any]:
    registry = ctx.registry
    resources = []
    for res_type in sorted(registry.resource_types()):
        params = registry.for_type(res_type)
        operations = [
            {"name": name, "definition": definition}
            for name, definition in _OPERATIONS.get(res_type, ())
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
                **({"operation": operations} if operations else {}),
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
