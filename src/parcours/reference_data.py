"""The platform's reference data: shipped with the package, stored in every database.

The pathway library (decision D21) and the coordination intake form with its code systems
are resources the migrations cannot write through the repository, so they are stored after
them, idempotently (an unchanged resource keeps its version): at ``parcours db upgrade``,
at every ``parcours serve`` start and after ``parcours demo``. A newer package is the upgrade.
"""

from __future__ import annotations

from parcours.store import Store

__all__ = ["REFERENCE_TYPES", "load_reference_data"]

# What reference data writes: a database holding only these is still empty for the demo.
REFERENCE_TYPES = frozenset({"PlanDefinition", "ActivityDefinition", "Questionnaire", "CodeSystem"})


def load_reference_data(store: Store) -> list[str]:
    """Store what is new or changed; returns a line per pathway version newly stored."""
    from parcours.coordination import install_conformance
    from parcours.pathways import load_library

    install_conformance(store)
    return [
        f"pathway {pathway} {version}: {outcome}"
        for pathway, version, outcome in load_library(store)
        if outcome != "unchanged"
    ]
