"""The engine's own request and response types: the web framework stays in ``api.py``.

Every interaction is a plain function from a ``FhirRequest`` (and an open store transaction)
to a ``FhirResponse``; the HTTP glue and the Bundle processor build requests the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from parcours.security.principal import Principal

__all__ = ["FhirRequest", "FhirResponse"]


@dataclass(frozen=True, slots=True)
class FhirRequest:
    """One FHIR interaction, already authenticated and with its JSON body parsed."""

    method: str
    # Path segments after the FHIR base, e.g. ("Patient", "123", "_history", "2").
    path: tuple[str, ...]
    query: tuple[tuple[str, str], ...] = ()
    # Header names in lower case.
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    # Absolute base of the FHIR API (no trailing slash), for fullUrl, Location and links.
    base_url: str = ""
    principal: Principal | None = None
    # The client's network address, for the audit trail.
    client: str | None = None

    def param(self, name: str) -> str | None:
        """The last value of a query parameter (FHIR result parameters are single-valued)."""
        value = None
        for key, val in self.query:
            if key == name:
                value = val
        return value

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


@dataclass(slots=True)
class FhirResponse:
    """Status, optional JSON body (a resource or an OperationOutcome) and headers."""

    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
