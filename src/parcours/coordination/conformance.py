"""Install the Questionnaire and CodeSystems of coordination requests in the store."""

from __future__ import annotations

from parcours.store import Store

from .questionnaire import conformance_resources

__all__ = ["install_conformance"]


def install_conformance(store: Store) -> list[str]:
    """Write (idempotently: unchanged content keeps its version) the intake Questionnaire and
    the CodeSystems, as the platform's own work; returns "Type/id" of each."""
    written = []
    with store.begin() as tx:
        for res in conformance_resources():
            tx.update(res)
            written.append(f"{res['resourceType']}/{res['id']}")
    return written
