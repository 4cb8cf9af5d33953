"""The FHIR resource store: resources, versions, search index and outbox, on SQLAlchemy Core."""

from parcours.store.engine import Dialect, make_engine, normalise_url
from parcours.store.repository import (
    HistoryEntry,
    Indexer,
    Resource,
    Store,
    Transaction,
    Validator,
    WriteHook,
    WriteResult,
)

__all__ = [
    "Dialect",
    "HistoryEntry",
    "Indexer",
    "Resource",
    "Store",
    "Transaction",
    "Validator",
    "WriteHook",
    "WriteResult",
    "make_engine",
    "normalise_url",
]
