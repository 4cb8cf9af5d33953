"""Helpers shared by the store tests: run a query string, collect ids, write resources."""

from __future__ import annotations

from typing import Any

from parcours.store import Store
from parcours.store.search import SearchResult, parse_search


def search(store: Store, res_type: str, query: str | list[tuple[str, str]]) -> SearchResult:
    """Parse and run ``query`` (``a=1&b=2``, unescaped) on ``res_type``."""
    params = query if isinstance(query, list) else parse_qs(query)
    assert store.registry is not None
    request = parse_search(res_type, params, store.registry)
    with store.begin(readonly=True) as tx:
        return tx.search(request)


def parse_qs(query: str) -> list[tuple[str, str]]:
    out = []
    for pair in query.split("&"):
        if pair:
            name, _, value = pair.partition("=")
            out.append((name, value))
    return out


def ids(result: SearchResult) -> set[str]:
    return {r["id"] for r in result.matches}


def create(store: Store, **res: Any) -> dict[str, Any]:
    with store.begin() as tx:
        if "id" in res:
            return tx.update(res).resource
        return tx.create(res)
