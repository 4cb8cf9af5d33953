"""Reading an operation's ``Parameters`` body, with the same errors for every operation."""

from __future__ import annotations

from typing import Any

from parcours.errors import InvalidInput, Issue
from parcours.fhir.request import FhirRequest

__all__ = ["one_parameter", "parameters_of"]


def parameters_of(req: FhirRequest, operation: str) -> list[dict[str, Any]]:
    """The ``parameter`` list of the request's Parameters body (400 when it is not one)."""
    body = req.body
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise InvalidInput(f"{operation} takes a Parameters resource as its body")
    parameters = body.get("parameter") or []
    if not isinstance(parameters, list) or not all(isinstance(p, dict) for p in parameters):
        raise InvalidInput("Parameters.parameter must be a list of objects")
    return parameters


def one_parameter(parameters: list[dict[str, Any]], name: str, *keys: str) -> tuple[str, Any]:
    """The (key, value) of the single parameter ``name`` under the first of ``keys`` it has;
    ("", None) when absent; 400 when repeated or of none of those kinds."""
    found = [p for p in parameters if p.get("name") == name]
    if len(found) > 1:
        raise InvalidInput(
            f"parameter {name} is given {len(found)} times", [Issue("repeated", name, "value")]
        )
    if not found:
        return "", None
    for key in keys:
        if key in found[0]:
            return key, found[0][key]
    raise InvalidInput(
        f"parameter {name} needs {' or '.join(keys)}",
        [Issue(f"expected {' or '.join(keys)}", name, code="value")],
    )
