"""SearchRequest filters as SQL predicates over the index tables (SQLAlchemy Core).

Every filter becomes ``resource.pk IN (SELECT resource_pk FROM idx_… WHERE res_type = … AND
param = … AND <value test>)`` (or NOT IN for ``:missing=true`` and ``:not``). That shape lets
both databases start from the composite index (res_type, param, value…) of the index table
instead of scanning resources; PostgreSQL plans it as a semi-join. Chains join the reference
rows to the target ``resource`` row by (type, id); ``_has`` does the same in reverse. Nothing
is filtered in Python, so counts and pages are exact. When a caller's few visible patients
hold fewer rows than a filter matches, SQLite is better off starting from those patients: the
filters are then written as EXISTS on each row's own index rows (``correlated``, decided in
``parcours.store.search.driving``).

Semantics (FHIR R4 §3.1.1), where the specification leaves a choice:

- A resource matches when **any** of its values for the parameter matches (``ne`` included:
  a resource with two dates matches ``ne`` if one of them does).
- date: the stored value and the searched value are both inclusive ranges in epoch ms (a date
  without time zone is UTC; an open Period end is unbounded). eq = stored range inside the
  searched one; ne = not eq; gt = stored range ends after it; lt = starts before it; ge = gt
  or eq; le = lt or eq; sa = starts after its end; eb = ends before its start; ap = overlaps
  it widened by 10 % of its distance to now (at least one day).
- number and quantity: the stored value is compared as a point; eq / ne use the implicit
  precision of the searched value ("5.4" is [5.35, 5.45)); gt, lt, ge, le, sa, eb compare with
  the value itself; ap is within 10 %. ``number|system|code`` requires that system and code;
  ``number||code`` matches code or unit.
- token: exact and case-sensitive; ``:not`` also returns resources with no value; ``:text``
  is a case- and accent-insensitive word-prefix match on display / CodeableConcept.text.
- string: folded prefix by default; ``:contains`` folded substring; ``:exact`` as written.
- reference: ``Type/id``, a bare id (typed when the parameter has one target), absolute URLs
  under a configured base (``registry.base_urls``) or not, canonical ``url`` (any version) or
  ``url|version``; ``:identifier`` looks at Reference.identifier.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    and_,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    union_all,
)

from parcours.errors import InvalidInput
from parcours.store.clock import now_ms
from parcours.store.schema import (
    idx_date,
    idx_number,
    idx_quantity,
    idx_reference,
    idx_string,
    idx_token,
    idx_uri,
    resource,
)
from parcours.store.search.registry import SearchParam, SearchParameterRegistry
from parcours.store.search.request import Filter, SearchValue, split_escaped, unescape
from parcours.store.search.values import date_range, decimal_range, fold, parse_decimal

__all__ = ["FilterCompiler", "PatientList", "RowScope"]

Predicate = ColumnElement[bool]


class PatientList(Protocol):
    """A caller's visible patients, when the policy lists them."""

    @property
    def row_counts(self) -> dict[str, tuple[int, float]]:
        """Scratch space kept as long as the list: what the search planner learnt of these
        patients' rows (``parcours.store.search.driving``)."""
        ...

    def test(self, column: Any) -> Predicate: ...


class RowScope(Protocol):
    """What the store needs of an access policy: a row filter on a ``resource`` alias (None:
    every row), for one type, or for any type when ``res_type`` is None; and, when that filter
    is "the row's patient is one of these", the list (None otherwise)."""

    def condition(self, alias: FromClause, res_type: str | None) -> Predicate | None: ...

    def listed(self, res_type: str) -> PatientList | None: ...


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass
class FilterCompiler:
    """Turns filters into predicates on a ``resource`` table (or alias) ``res``."""

    registry: SearchParameterRegistry
    is_postgres: bool
    # The access policy's row filter (``Access.condition``): applied to the resources a chain
    # or a _has reaches too, so a criterion never tests what the caller may not see.
    scope: RowScope | None = None
    _matched: dict[tuple[str, Filter], tuple[Any, Select[Any]]] = field(
        default_factory=dict, init=False, repr=False
    )

    def _scoped(self, alias: FromClause, res_type: str) -> list[Predicate]:
        if self.scope is None:
            return []
        test = self.scope.condition(alias, res_type)
        return [] if test is None else [test]

    def where(
        self,
        res: FromClause,
        res_type: str,
        filters: tuple[Filter, ...],
        *,
        correlated: bool = False,
    ) -> list[Predicate]:
        """One predicate per filter. ``correlated``: index filters test each row's own index
        rows (EXISTS ... WHERE resource_pk = row), so the database cannot start from them and
        starts from the other conditions (``driving``); otherwise they are IN lists it may
        start from."""
        return [self.predicate(res, res_type, f, correlated=correlated) for f in filters]

    def index_rows(self, res_type: str, f: Filter) -> Select[Any] | None:
        """The index rows (``resource_pk``) a plain filter matches, or None for ``_id``,
        ``_lastUpdated``, chains, ``_has`` and the negative ones (``:not``, ``:missing=true``),
        which are not tested against index rows of their own."""
        if f.code in ("_has", "_id", "_lastUpdated") or f.chain is not None:
            return None
        if f.modifier == "not" or (f.modifier == "missing" and f.values[0].value == "true"):
            return None
        return self._matching(res_type, f)[1]

    def _matching(self, res_type: str, f: Filter) -> tuple[Any, Select[Any]]:
        """The index table and the rows a filter's values match (for ``:missing``, every row
        of the parameter), built once: planning (``driving``) and the statement share them,
        and building SQLAlchemy expressions costs more than running a small indexed count."""
        key = (res_type, f)
        found = self._matched.get(key)
        if found is None:
            param = self.registry.get(res_type, f.code)
            if param is None:
                raise InvalidInput(f"unknown search parameter {f.key()!r} for {res_type}")
            if f.modifier == "missing":
                table = idx_table(param.type)
                found = (table, self._rows(param, res_type, param.code, table, true()))
            else:
                table, param_name, tests = self._value_tests(param, f)
                found = (table, self._rows(param, res_type, param_name, table, or_(*tests)))
            self._matched[key] = found
        return found

    def predicate(
        self, res: FromClause, res_type: str, f: Filter, *, correlated: bool = False
    ) -> Predicate:
        if f.code == "_has":
            return self._has(res, res_type, f)
        if f.chain is not None:
            return self._chain(res, res_type, f)
        if f.code == "_id":
            ids = [unescape(v.value) for v in f.values]
            if f.modifier == "missing":
                return false() if f.values[0].value == "true" else true()
            test = res.c.id.in_(ids)
            return not_(test) if f.modifier == "not" else test
        if f.code == "_lastUpdated":
            column = res.c.last_updated
            return or_(*(_date_test(v, column, column, f.code) for v in f.values))
        table, rows = self._matching(res_type, f)
        found = _has_rows(res, table, rows, correlated)
        if f.modifier == "missing":
            return not_(found) if f.values[0].value == "true" else found
        return not_(found) if f.modifier == "not" else found

    def _rows(
        self, param: SearchParam, res_type: str, param_name: str, table: Any, test: Predicate
    ) -> Select[Any]:
        return select(table.c.resource_pk).where(
            table.c.res_type == res_type, table.c.param == param_name, test
        )

    def _value_tests(self, param: SearchParam, f: Filter) -> tuple[Any, str, list[Predicate]]:
        kind = param.type
        if kind == "string":
            return idx_string, param.code, [self._string(v, f.modifier) for v in f.values]
        if kind == "token":
            if f.modifier == "text":
                return idx_token, param.code, [_token_text(v) for v in f.values]
            if f.modifier == "of-type":
                return idx_token, param.code + ":of-type", [_of_type(v, f) for v in f.values]
            return idx_token, param.code, [_token(v) for v in f.values]
        if kind == "date":
            return (
                idx_date,
                param.code,
                [_date_test(v, idx_date.c.low, idx_date.c.high, f.code) for v in f.values],
            )
        if kind == "number":
            return idx_number, param.code, [_number(v, idx_number.c.value) for v in f.values]
        if kind == "quantity":
            return idx_quantity, param.code, [_quantity(v) for v in f.values]
        if kind == "uri":
            return idx_uri, param.code, [_uri(v, f.modifier) for v in f.values]
        if kind == "reference":
            if f.modifier == "identifier":
                return idx_token, param.code + ":identifier", [_token(v) for v in f.values]
            return (
                idx_reference,
                param.code,
                [self._reference(param, v, f.modifier) for v in f.values],
            )
        raise InvalidInput(f"search parameter {f.code!r}: type {kind} is not supported")

    # ---- per type ----------------------------------------------------------------------------

    def _string(self, v: SearchValue, modifier: str | None) -> Predicate:
        text = unescape(v.value)
        if modifier == "exact":
            return idx_string.c.value_exact == text
        folded = fold(text)
        if modifier == "contains":
            return idx_string.c.value_norm.like(f"%{_like_escape(folded)}%", escape="\\")
        test: Predicate = idx_string.c.value_norm.like(f"{_like_escape(folded)}%", escape="\\")
        if not self.is_postgres:
            # SQLite compares text bytewise: the range lets it use the (…, value_norm) index,
            # which its LIKE (case-insensitive for ASCII) cannot.
            test = and_(
                idx_string.c.value_norm >= folded,
                idx_string.c.value_norm < folded + "\U0010ffff",
                test,
            )
        return test

    def _reference(self, param: SearchParam, v: SearchValue, modifier: str | None) -> Predicate:
        text = unescape(v.value)
        c = idx_reference.c
        if modifier:  # a type modifier: subject:Patient=123
            return and_(
                c.target_type == modifier,
                c.target_id == text.split("/")[-1],
                c.target_url.is_(None),
            )
        if "://" in text or text.startswith("urn:"):
            parsed = self.registry.parse_reference(text)
            if parsed is not None and parsed[2] is None:
                return and_(
                    c.target_type == parsed[0], c.target_id == parsed[1], c.target_url.is_(None)
                )
            if "|" in text:  # canonical with a version: exact
                return c.target_url == text
            # A canonical without version matches every version of it.
            return or_(
                c.target_url == text,
                func.substr(c.target_url, 1, len(text) + 1) == text + "|",
            )
        parts = text.split("/")
        if len(parts) >= 2 and self.registry.is_resource_type(parts[-2]):
            return and_(
                c.target_type == parts[-2], c.target_id == parts[-1], c.target_url.is_(None)
            )
        test = and_(c.target_id == text, c.target_url.is_(None))
        if len(param.target) == 1:
            test = and_(test, c.target_type == param.target[0])
        return test

    # ---- chains and _has ---------------------------------------------------------------------

    def _chain(self, res: FromClause, res_type: str, f: Filter) -> Predicate:
        assert f.chain is not None
        param = self.registry.get(res_type, f.code)
        if param is None or param.type != "reference":
            raise InvalidInput(f"search parameter {f.key()!r}: {f.code!r} is not a reference")
        if f.modifier:
            targets = [f.modifier]
        else:
            targets = list(param.target) or sorted(self.registry.resource_types())
        inner_code = f.chain.code
        usable = [t for t in targets if inner_code == "_has" or self.registry.get(t, inner_code)]
        if not usable:
            raise InvalidInput(f"search parameter {f.key()!r}: no target has {inner_code!r}")
        # One SELECT per target type, united: with the type fixed, the pointing rows are reached
        # through the (target_type, target_id, res_type, param) index from the ids of the
        # targets that pass the inner predicate, which is the selective side of a chain.
        selects = []
        for t in usable:
            target = resource.alias()
            ref = idx_reference.alias()
            target_ids = select(target.c.id).where(
                target.c.type == t,
                target.c.deleted.is_(False),
                self.predicate(target, t, f.chain),
                *self._scoped(target, t),
            )
            selects.append(
                select(ref.c.resource_pk).where(
                    ref.c.target_type == t,
                    ref.c.target_id.in_(target_ids),
                    ref.c.res_type == res_type,
                    ref.c.param == param.code,
                    ref.c.target_url.is_(None),
                )
            )
        rows = selects[0] if len(selects) == 1 else union_all(*selects)
        return res.c.pk.in_(rows)

    def _has(self, res: FromClause, res_type: str, f: Filter) -> Predicate:
        assert f.chain is not None and f.has_type is not None and f.has_param is not None
        source = resource.alias()
        ref = idx_reference.alias()
        rows = (
            select(ref.c.target_id)
            .join(source, source.c.pk == ref.c.resource_pk)
            .where(
                ref.c.res_type == f.has_type,
                ref.c.param == f.has_param,
                ref.c.target_type == res_type,
                ref.c.target_url.is_(None),
                source.c.deleted.is_(False),
                self.predicate(source, f.has_type, f.chain),
                *self._scoped(source, f.has_type),
            )
        )
        return res.c.id.in_(rows)


def _has_rows(res: FromClause, table: Any, rows: Select[Any], correlated: bool) -> Predicate:
    """``res``'s row has one of ``rows`` (index rows of ``table``)."""
    if not correlated:
        return res.c.pk.in_(rows)
    return rows.where(table.c.resource_pk == res.c.pk).exists()


def idx_table(kind: str) -> Any:
    return {
        "token": idx_token,
        "string": idx_string,
        "date": idx_date,
        "number": idx_number,
        "quantity": idx_quantity,
        "reference": idx_reference,
        "uri": idx_uri,
    }[kind]


def _token(v: SearchValue) -> Predicate:
    parts = split_escaped(v.value, "|")
    c = idx_token.c
    if len(parts) == 1:
        return c.code == unescape(parts[0])
    system, code = unescape(parts[0]), unescape(parts[1])
    if not system:
        return and_(c.system.is_(None), c.code == code)
    if not code:
        return c.system == system
    return and_(c.system == system, c.code == code)


def _of_type(v: SearchValue, f: Filter) -> Predicate:
    # identifier:of-type=type-system|type-code|value
    parts = split_escaped(v.value, "|")
    if len(parts) != 3:
        raise InvalidInput(f"search parameter {f.key()!r}: :of-type takes system|code|value")
    system, code, value = (unescape(p) for p in parts)
    return and_(idx_token.c.system == system, idx_token.c.code == code, idx_token.c.text == value)


def _token_text(v: SearchValue) -> Predicate:
    # Word-prefix match on the folded display / text.
    folded = _like_escape(fold(unescape(v.value)))
    return or_(
        idx_token.c.text.like(folded + "%", escape="\\"),
        idx_token.c.text.like("% " + folded + "%", escape="\\"),
    )


def _date_test(
    v: SearchValue, low: ColumnElement[Any], high: ColumnElement[Any], name: str
) -> Predicate:
    bounds = date_range(unescape(v.value))
    if bounds is None:
        raise InvalidInput(f"search parameter {name!r}: {v.value[:40]!r} is not a date")
    sl, sh = bounds
    contained = and_(low >= sl, high <= sh)
    prefix = v.prefix or "eq"
    if prefix == "eq":
        return contained
    if prefix == "ne":
        return or_(low < sl, high > sh)
    if prefix == "gt":
        return high > sh
    if prefix == "lt":
        return low < sl
    if prefix == "ge":
        return or_(high > sh, contained)
    if prefix == "le":
        return or_(low < sl, contained)
    if prefix == "sa":
        return low > sh
    if prefix == "eb":
        return high < sl
    # ap: overlaps the search range widened by 10 % of its distance to now (at least a day).
    margin = max(abs(now_ms() - sl) // 10, 86_400_000)
    return and_(low <= sh + margin, high >= sl - margin)


def number_bounds(v: SearchValue) -> tuple[Decimal, Decimal, Decimal]:
    number = parse_decimal(unescape(split_escaped(v.value, "|")[0]))
    assert number is not None  # checked by parse_search
    low, high = decimal_range(number)
    return number, low, high


def _number(v: SearchValue, column: ColumnElement[Any]) -> Predicate:
    number, low, high = number_bounds(v)
    value = float(number)
    prefix = v.prefix or "eq"
    if prefix == "eq":
        return and_(column >= float(low), column < float(high))
    if prefix == "ne":
        return or_(column < float(low), column >= float(high))
    if prefix in ("gt", "sa"):
        return column > value
    if prefix in ("lt", "eb"):
        return column < value
    if prefix == "ge":
        return column >= value
    if prefix == "le":
        return column <= value
    margin = abs(number) / 10  # ap: within 10 %
    return and_(column >= float(number - margin), column <= float(number + margin))


def _quantity(v: SearchValue) -> Predicate:
    test = _number(v, idx_quantity.c.value)
    parts = split_escaped(v.value, "|")
    if len(parts) == 3:
        system, code = unescape(parts[1]), unescape(parts[2])
        c = idx_quantity.c
        if system:
            test = and_(test, c.system == system)
            if code:
                test = and_(test, c.code == code)
        elif code:
            test = and_(test, or_(c.code == code, c.unit == code))
    return test


def _uri(v: SearchValue, modifier: str | None) -> Predicate:
    text = unescape(v.value)
    c = idx_uri.c
    # URIs are case-sensitive and SQLite's LIKE is not: prefixes are compared with substr.
    if modifier == "below":
        return func.substr(c.value, 1, len(text)) == text
    if modifier == "above":
        # The stored URI is a prefix of the searched one.
        return func.substr(literal(text), 1, func.length(c.value)) == c.value
    return c.value == text
