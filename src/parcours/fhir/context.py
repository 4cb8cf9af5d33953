"""What every interaction needs besides the request: the store, the search registry, settings.

A structural protocol rather than ``parcours.platform.Platform`` itself, because the platform
module imports ``parcours.fhir.validation`` and the arrow must not point back.
"""

from __future__ import annotations

from typing import Protocol

from parcours.config import Settings
from parcours.store import Store
from parcours.store.search import SearchParameterRegistry

__all__ = ["FhirContext"]


class FhirContext(Protocol):
    @property
    def settings(self) -> Settings: ...

    @property
    def store(self) -> Store: ...

    @property
    def registry(self) -> SearchParameterRegistry: ...
