"""Load the demo region into an empty Parcours database, through the repository."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select

from parcours.errors import Conflict
from parcours.store.repository import Store
from parcours.store.schema import resource

from .generator import build_region

__all__ = ["DemoDatabaseNotEmpty", "DemoSummary", "load_demo"]

BATCH_SIZE = 100


class DemoDatabaseNotEmpty(Conflict):
    """The demo region is only ever loaded into an empty database."""


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What ``load_demo`` wrote: resources by type, and the deliberate near-duplicates."""

    counts: Mapping[str, int]
    near_duplicates: int
    transactions: int
    seed: int
    patients: int = 0

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _is_empty(store: Store) -> bool:
    from parcours.reference_data import REFERENCE_TYPES

    with store.begin(readonly=True) as tx:
        # Any row counts, deleted resources included: their history is not ours to mix with.
        # The reference data every database holds (pathways, forms) does not.
        query = select(resource.c.pk).where(resource.c.type.not_in(sorted(REFERENCE_TYPES)))
        return tx.conn.execute(query.limit(1)).first() is None


def load_demo(
    store: Store, *, seed: int = 2024, patients: int = 300, batch_size: int = BATCH_SIZE
) -> DemoSummary:
    """Write the demo region (``generate_region(seed, patients)``) into an empty database.

    Resources keep their ids (update-as-create, PUT semantics) and are written in
    transactions of ``batch_size`` resources, organisations first. Raises
    :class:`DemoDatabaseNotEmpty` if the database already holds any resource.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    if not _is_empty(store):
        raise DemoDatabaseNotEmpty(
            "the database already holds resources; the demo region is only loaded into an "
            "empty database. Point PARCOURS_DATABASE_URL at a new, empty database (or drop "
            "and recreate this one if it is a throw-away demo database), then load again"
        )
    region = build_region(seed, patients)
    counts: Counter[str] = Counter()
    transactions = 0
    for start in range(0, len(region.resources), batch_size):
        with store.begin() as tx:
            for res in region.resources[start : start + batch_size]:
                tx.update(res)
                counts[str(res["resourceType"])] += 1
        transactions += 1
    return DemoSummary(
        counts=dict(sorted(counts.items())),
        near_duplicates=len(region.near_duplicates),
        transactions=transactions,
        seed=seed,
        patients=counts["Patient"],
    )
