"""FHIR search: parameter registry and indexer, request parsing, SQL execution, paging.

``SearchParameterRegistry.load_default()`` knows the R4 and French-guide parameters and is the
Store's indexer (``Store(engine, registry=registry)``); ``parse_search`` turns query
parameters into a ``SearchRequest``; ``run_search`` (or ``Transaction.search``) executes it.
"""

from parcours.store.search.registry import SearchParam, SearchParameterRegistry
from parcours.store.search.request import SearchRequest, format_search, parse_search
from parcours.store.search.run import SearchResult, run_search

__all__ = [
    "SearchParam",
    "SearchParameterRegistry",
    "SearchRequest",
    "SearchResult",
    "format_search",
    "parse_search",
    "run_search",
]
