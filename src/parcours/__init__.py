"""Parcours: a regional e-parcours platform built on one FHIR R4 resource store."""

__version__ = "0.1.0"
__all__ = ["__version__"]
