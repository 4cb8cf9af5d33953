"""Load the demo region into an empty Parcours database, through the repository."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass

from sqlalchemy import select

from parcours.config import Settings
from parcours.errors import Conflict
from parcours.store.bulk import MAX_RESOURCES, create_new
from parcours.store.repository import Store
from parcours.store.schema import resource

from .generator import build_region
from .prevalidation import prevalidated

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
    store: Store,
    *,
    seed: int = 2024,
    patients: int = 300,
    batch_size: int = BATCH_SIZE,
    bulk: bool = True,
    prevalidate: Settings | None = None,
) -> DemoSummary:
    """Write the demo region (``generate_region(seed, patients)``) into an empty database.

    Resources keep their ids (update-as-create, PUT semantics) and are written in
    transactions of ``batch_size`` resources, organisations first. Raises
    :class:`DemoDatabaseNotEmpty` if the database already holds any resource.

    With ``bulk`` (the default) each transaction stores its resources through
    :func:`parcours.store.bulk.create_new`, which leaves the database as ``tx.update`` one
    resource at a time does (same validation, index rows, hooks, events and audit; compared
    table by table in tests/demo) in far fewer statements: the region's ids are new, and each
    resource comes after the ones it refers to. ``bulk=False`` is that per-resource path.

    ``prevalidate``, the ``Settings`` the store was built from (``build_platform``), has a
    second process validate the next batches while this one writes (bulk only; see
    :mod:`parcours.demo.prevalidation`): for regional scale on a machine with a spare core.
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
    batches = [
        region.resources[start : start + batch_size]
        for start in range(0, len(region.resources), batch_size)
    ]
    counts: Counter[str] = Counter()
    with ExitStack() as stack:
        ahead = (
            stack.enter_context(prevalidated(prevalidate, batches, store.validator))
            if bulk and prevalidate is not None
            else None
        )
        for index, batch in enumerate(batches):
            with store.begin() as tx:
                if bulk:
                    validator = ahead(index) if ahead else None
                    for part in range(0, len(batch), MAX_RESOURCES):
                        chunk = batch[part : part + MAX_RESOURCES]
                        create_new(tx, chunk, validator=validator)
                else:
                    for res in batch:
                        tx.update(res)
            counts.update(str(res["resourceType"]) for res in batch)
    transactions = len(batches)
    return DemoSummary(
        counts=dict(sorted(counts.items())),
        near_duplicates=len(region.near_duplicates),
        transactions=transactions,
        seed=seed,
        patients=counts["Patient"],
    )
