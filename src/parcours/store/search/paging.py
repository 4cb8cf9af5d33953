"""Sort keys and keyset paging.

Why a keyset cursor and not OFFSET: with OFFSET, a resource inserted (or deleted) before the
current position between two page fetches shifts every later row by one, so a result is shown
twice or never. The cursor instead records the sort key of the last row returned plus its
primary key, and the next page asks for rows strictly after that key. Each sort rule becomes
two ORDER BY columns, a "missing" flag (so resources without a value come last in both
directions) and the value with NULL replaced by a constant, then ``resource.pk`` ascending
breaks ties, which makes the order total and the cursor exact.

Guarantees: in the default order (``pk``, i.e. creation order) and with ``_sort=-_lastUpdated``
or ``_sort=_lastUpdated``, inserts between page fetches never make an earlier-matched resource
disappear or repeat (new rows land after the cursor, or before it and are not shown); a
resource whose sort value changes between fetches (an update under ``_sort=_lastUpdated``) can
move across the cursor, which no paging scheme without snapshots prevents. ``_offset`` is still
accepted for clients that ask for it, without those guarantees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, FromClause, and_, case, func, literal, or_, select

from parcours.errors import InvalidInput
from parcours.store.search.registry import SearchParameterRegistry
from parcours.store.search.request import SortRule
from parcours.store.search.sql import idx_table

__all__ = ["OrderColumn", "keyset_after", "order_columns"]

_VALUE_COLUMN = {
    "string": ("value_norm", ""),
    "token": ("code", ""),
    "date": (None, 0),
    "number": ("value", 0.0),
    "quantity": ("value", 0.0),
    "reference": ("target_id", ""),
    "uri": ("value", ""),
}


@dataclass(frozen=True, slots=True)
class OrderColumn:
    expression: ColumnElement[Any]
    descending: bool


def order_columns(
    res: FromClause, res_type: str, rules: Sequence[SortRule], registry: SearchParameterRegistry
) -> list[OrderColumn]:
    """ORDER BY columns for the sort rules, ending with ``pk`` (the stable tie-breaker)."""
    columns: list[OrderColumn] = []
    for rule in rules:
        if rule.code == "_id":
            columns.append(OrderColumn(res.c.id, rule.descending))
            continue
        if rule.code == "_lastUpdated":
            columns.append(OrderColumn(res.c.last_updated, rule.descending))
            continue
        param = registry.get(res_type, rule.code)
        if param is None or param.type not in _VALUE_COLUMN:
            raise InvalidInput(f"search parameter '_sort': cannot sort on {rule.code!r}")
        table = idx_table(param.type)
        name, empty = _VALUE_COLUMN[param.type]
        if param.type == "date":
            # Ascending: earliest start first; descending: latest end first.
            value = table.c.high if rule.descending else table.c.low
        else:
            value = table.c[name]
        aggregate = func.max(value) if rule.descending else func.min(value)
        scalar = (
            select(aggregate)
            .where(table.c.resource_pk == res.c.pk, table.c.param == param.code)
            .scalar_subquery()
        )
        columns.append(OrderColumn(case((scalar.is_(None), 1), else_=0), False))
        columns.append(OrderColumn(func.coalesce(scalar, literal(empty)), rule.descending))
    columns.append(OrderColumn(res.c.pk, False))
    return columns


def keyset_after(columns: Sequence[OrderColumn], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in the order of ``columns`` (lexicographic)."""
    if len(values) != len(columns):
        raise InvalidInput("_cursor does not belong to this search (the sort changed)")
    alternatives = []
    for i, column in enumerate(columns):
        equal = [columns[j].expression == values[j] for j in range(i)]
        after = (
            column.expression < values[i] if column.descending else column.expression > values[i]
        )
        alternatives.append(and_(*equal, after))
    return or_(*alternatives)
