"""Helpers shared by the store tests: run a query string, collect ids, write resources."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, FromClause

from parcours.store import Store
from parcours.store.search import SearchResult, parse_search
from parcours.store.search.sql import RowScope


def search(
    store: Store,
    res_type: str,
    query: str | list[tuple[str, str]],
    scope: RowScope | None = None,
) -> SearchResult:
    """Parse and run ``query`` (``a=1&b=2``, unescaped) on ``res_type``."""
    params = query if isinstance(query, list) else parse_qs(query)
    assert store.registry is not None
    request = parse_search(res_type, params, store.registry)
    with store.begin(readonly=True) as tx:
        return tx.search(request, scope)


@dataclass
class ListedPatients:
    """A row scope that lets through the rows of these patients, as the access policy does for
    a professional (``parcours.security.policy.Access``), without the care circles behind."""

    ids: frozenset[str]
    row_counts: dict[str, tuple[int, float]] = field(default_factory=dict)

    def test(self, column: Any) -> ColumnElement[bool]:
        listed: ColumnElement[bool] = column.in_(sorted(self.ids))
        return listed

    def condition(self, alias: FromClause, res_type: str | None) -> ColumnElement[bool]:
        return self.test(alias.c.patient_id)

    def listed(self, res_type: str) -> ListedPatients:
        return self


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
