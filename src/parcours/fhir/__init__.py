"""The FHIR R4 REST API: interactions as plain functions, one ASGI app to mount at ``/fhir``."""

from parcours.fhir.api import FhirApp, create_fhir_app, fhir_routes
from parcours.fhir.request import FhirRequest, FhirResponse
from parcours.fhir.router import FhirEngine

__all__ = ["FhirApp", "FhirEngine", "FhirRequest", "FhirResponse", "create_fhir_app", "fhir_routes"]
