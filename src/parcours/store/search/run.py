"""Executing a SearchRequest: matches, total, next page, then _include / _revinclude."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, func, select

from parcours.errors import InvalidInput
from parcours.store.schema import idx_reference, resource
from parcours.store.search import driving
from parcours.store.search.paging import keyset_after, order_columns
from parcours.store.search.registry import SearchParameterRegistry
from parcours.store.search.request import (
    Include,
    SearchRequest,
    decode_cursor,
    encode_cursor,
    format_search,
)
from parcours.store.search.sql import FilterCompiler, RowScope

if TYPE_CHECKING:
    from parcours.store.repository import Transaction

__all__ = ["MAX_INCLUDED", "SearchResult", "run_search"]

# Bounds on included resources and on :iterate rounds, so one query cannot load the database.
MAX_INCLUDED = 1000
MAX_ITERATE = 4


@dataclass(frozen=True, slots=True)
class SearchResult:
    matches: list[dict[str, Any]]
    included: list[dict[str, Any]]
    total: int | None
    # Query parameters of the next page, or None on the last page.
    next_params: list[tuple[str, str]] | None


def _registry(tx: Transaction) -> SearchParameterRegistry:
    registry = getattr(tx.store, "registry", None)
    if registry is None:
        raise InvalidInput("this store was built without search parameters")
    assert isinstance(registry, SearchParameterRegistry)
    return registry


def run_search(
    tx: Transaction, request: SearchRequest, scope: RowScope | None = None
) -> SearchResult:
    """Run ``request`` inside ``tx``; deleted resources never match.

    ``scope`` (the caller's access policy) filters the matches, the count, the resources that
    chains and ``_has`` test, and the included resources, all in SQL: a total or an include
    never reveals what the caller may not see.

    ``_total``: ``accurate`` and ``estimate`` both count exactly (an estimate from the planner
    is a later optimisation), ``none`` skips the count; when absent, the total is given only
    when it costs nothing (a first page that holds every match): counting millions of rows on
    every page of a coordinator's list is the classic FHIR-server slowdown.
    """
    registry = _registry(tx)
    compiler = FilterCompiler(registry, tx.store.dialect.is_postgres, scope)
    res = resource
    from_patients = _from_patients(tx, compiler, request, scope)
    conditions = [
        (driving.unindexed(res.c.type) if from_patients else res.c.type) == request.resource_type,
        res.c.deleted.is_(False),
        *compiler.where(res, request.resource_type, request.filters, correlated=from_patients),
        *_scoped(scope, res, request.resource_type),
    ]
    total: int | None = None
    counted = request.summary == "count" or request.count == 0
    if counted or request.total in ("accurate", "estimate"):
        total = int(
            tx.conn.execute(select(func.count()).select_from(res).where(*conditions)).scalar_one()
        )
    if request.summary == "count" or request.count == 0:
        return SearchResult([], [], total, None)

    columns = order_columns(res, request.resource_type, request.sort, registry)
    page_conditions = list(conditions)
    if request.cursor is not None:
        page_conditions.append(keyset_after(columns, decode_cursor(request.cursor)))
    stmt = (
        select(res.c.pk, res.c.content, *(c.expression for c in columns))
        .where(*page_conditions)
        .order_by(*(c.expression.desc() if c.descending else c.expression for c in columns))
        .limit(request.count + 1)
    )
    if request.offset:
        stmt = stmt.offset(request.offset)
    rows = tx.conn.execute(stmt).all()
    has_more = len(rows) > request.count
    rows = rows[: request.count]
    next_params = None
    if has_more:
        if request.offset is not None:
            next_request = _with_offset(request, request.offset + request.count)
        else:
            last = rows[-1]
            key = [_plain(v) for v in last[2:]]
            next_request = request.with_cursor(encode_cursor(key))
        next_params = format_search(next_request)
    first_page = request.cursor is None and not request.offset
    if total is None and request.total is None and first_page and not has_more:
        total = len(rows)
    matches = [row.content for row in rows]
    included = _includes(tx, request, {row.pk: row.content for row in rows}, scope)
    return SearchResult(matches, included, total, next_params)


def _from_patients(
    tx: Transaction, compiler: FilterCompiler, request: SearchRequest, scope: RowScope | None
) -> bool:
    """Whether SQLite should start from the caller's listed patients (``driving``)."""
    if scope is None or tx.store.dialect.is_postgres:
        return False
    listed = scope.listed(request.resource_type)
    if listed is None:
        return False
    return driving.patients_first(tx, compiler, listed, request.resource_type, request.filters)


def _scoped(scope: RowScope | None, alias: Any, res_type: str | None) -> list[Any]:
    test = None if scope is None else scope.condition(alias, res_type)
    return [] if test is None else [test]


def _with_offset(request: SearchRequest, offset: int) -> SearchRequest:
    from dataclasses import replace

    return replace(request, offset=offset)


def _plain(value: Any) -> Any:
    # Cursor values go through JSON: keep ints, floats and strings as they are.
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float | str) or value is None:
        return value
    return float(value)


def _includes(
    tx: Transaction,
    request: SearchRequest,
    matches: dict[int, dict[str, Any]],
    scope: RowScope | None,
) -> list[dict[str, Any]]:
    if not matches or not (request.includes or request.revincludes):
        return []
    seen: set[int] = set(matches)
    included: dict[int, dict[str, Any]] = {}
    # First round: every include on the matches; later rounds: only :iterate ones on what the
    # previous round added.
    frontier = dict(matches)
    rounds = 0
    while frontier and len(included) < MAX_INCLUDED and rounds <= MAX_ITERATE:
        found: dict[int, dict[str, Any]] = {}
        for inc in request.includes:
            if rounds == 0 or inc.iterate:
                found.update(_forward(tx, inc, list(frontier), scope))
        for inc in request.revincludes:
            if rounds == 0 or inc.iterate:
                found.update(_reverse(tx, inc, list(frontier), scope))
        frontier = {pk: content for pk, content in found.items() if pk not in seen}
        for pk, content in frontier.items():
            if len(included) >= MAX_INCLUDED:
                break
            seen.add(pk)
            included[pk] = content
        rounds += 1
    return list(included.values())


def _source_conditions(inc: Include) -> list[ColumnElement[bool]]:
    """Which reference rows an include follows: ``Type:param`` (``*`` for any)."""
    if inc.source_type == "*":
        return []
    conds = [idx_reference.c.res_type == inc.source_type]
    if inc.param != "*":
        conds.append(idx_reference.c.param == inc.param)
    return conds


def _forward(
    tx: Transaction, inc: Include, pks: list[int], scope: RowScope | None
) -> dict[int, dict[str, Any]]:
    ref = idx_reference
    target = resource.alias()
    conds: list[ColumnElement[bool]] = [
        ref.c.resource_pk.in_(pks),
        ref.c.target_url.is_(None),
        target.c.deleted.is_(False),
        *_scoped(scope, target, inc.target_type or None),
    ]
    conds += _source_conditions(inc)
    if inc.target_type:
        conds.append(ref.c.target_type == inc.target_type)
    stmt = (
        select(target.c.pk, target.c.content)
        .join(ref, and_(target.c.type == ref.c.target_type, target.c.id == ref.c.target_id))
        .where(*conds)
        .limit(MAX_INCLUDED)
    )
    return {row.pk: row.content for row in tx.conn.execute(stmt)}


def _reverse(
    tx: Transaction, inc: Include, pks: list[int], scope: RowScope | None
) -> dict[int, dict[str, Any]]:
    ref = idx_reference
    source = resource.alias()
    matched = resource.alias()
    conds: list[ColumnElement[bool]] = [
        matched.c.pk.in_(pks),
        ref.c.target_url.is_(None),
        source.c.deleted.is_(False),
        *_scoped(scope, source, None if inc.source_type == "*" else inc.source_type),
    ]
    conds += _source_conditions(inc)
    if inc.target_type:
        conds.append(matched.c.type == inc.target_type)
    stmt = (
        select(source.c.pk, source.c.content)
        .select_from(ref)
        .join(source, source.c.pk == ref.c.resource_pk)
        .join(matched, and_(matched.c.type == ref.c.target_type, matched.c.id == ref.c.target_id))
        .where(*conds)
        .limit(MAX_INCLUDED)
    )
    return {row.pk: row.content for row in tx.conn.execute(stmt)}
