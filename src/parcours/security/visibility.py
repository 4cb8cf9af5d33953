"""The patients a caller may see now, as a list kept across requests while it cannot change.

The row filter of a professional's search is "the patient is one of these" (``Visible.test``):
cheaper for the database than membership subqueries repeated in the search, its count and
its includes. Reading the list costs more than the search itself for a coordinator with
hundreds of patients, so each process keeps it per caller, for as long as both hold:

- no commit changed a circle, an opposition, a grant or a role: every such commit, from any
  process, bumps ``circle_epoch`` (``changed``), which each request reads first (one
  primary-key look-up);
- no participation, opposition or grant of the caller starts or ends: the list is kept until
  the next such instant (``until_ms``), so an end date takes effect the millisecond it passes.

Above ``limit`` patients there is no list (``Visible.ids`` is None): the policy then tests
each row's patient against its memberships (``Access._in_circle``), which a long list, bound or
written into every statement, would not beat.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Select,
    String,
    and_,
    any_,
    bindparam,
    func,
    literal,
    literal_column,
    or_,
    select,
    union,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite

from parcours.security.tables import access_grant, care_member, care_opposition, circle_epoch

if TYPE_CHECKING:
    from parcours.store import Store, Transaction

__all__ = [
    "Caller",
    "Visible",
    "active",
    "changed",
    "memberships",
    "opposing",
    "visible_patients",
]

# Callers kept per process; the cache is emptied when it is full (a region has thousands of
# professionals, each list is at most ``limit`` ids).
MAX_CALLERS = 20_000
_CACHE = "security.visible"
_EPOCH_ID = 1


@dataclass(frozen=True, slots=True)
class Caller:
    """What decides a caller's list: their principal's subject and the keys their access
    goes through (practitioner, roles, organisations)."""

    subject: str
    member_keys: tuple[str, ...]
    org_keys: tuple[str, ...]
    coordinator: bool

    @property
    def keys(self) -> tuple[str, ...]:
        """What a participant may be to give this caller access: themselves, one of their
        roles, or an organisation they work for."""
        return (*self.member_keys, *self.org_keys)

    @property
    def actors(self) -> tuple[str, ...]:
        """Who an opposition may name to exclude this caller ("*": every professional)."""
        return (*self.keys, "*")

    @property
    def coordinates(self) -> bool:
        """Whether the patients of their organisations' circles are theirs too."""
        return self.coordinator and bool(self.org_keys)


@dataclass(frozen=True, slots=True)
class Visible:
    """A caller's visible patients between ``since_ms`` and ``until_ms`` at ``epoch``."""

    ids: frozenset[str] | None
    epoch: int
    since_ms: int
    until_ms: int | None
    # ``ids`` as one value, built once: an array on PostgreSQL, a JSON list on SQLite.
    _values: Any = None
    # What the search planner learnt of these patients' rows (``store.search.driving``).
    row_counts: dict[str, tuple[int, float]] = field(
        default_factory=dict, compare=False, hash=False
    )

    def holds(self, epoch: int, now: int) -> bool:
        return (
            epoch == self.epoch
            and self.since_ms <= now
            and (self.until_ms is None or now < self.until_ms)
        )

    def test(self, column: Any) -> ColumnElement[bool]:
        """``column`` is one of ``ids`` (not None), as ONE value: an expanded IN would render,
        bind and plan hundreds of parameters in each statement."""
        assert self.ids is not None
        if not self.ids:
            return literal(False)
        if not isinstance(self._values, Select):
            listed: ColumnElement[bool] = column == any_(self._values)
            return listed
        within: ColumnElement[bool] = column.in_(self._values)
        return within


def _values(ids: frozenset[str] | None, conn: Connection) -> Any:
    if not ids:
        return None
    ordered = sorted(ids)
    if conn.dialect.name == "postgresql":
        # Written into the statement as SQL text, once per list. Bound, the list got
        # PostgreSQL's generic plan once psycopg prepared the statement (its fifth run):
        # "= ANY($1)" guessed a short list and went through the patient index (12 ms for a
        # coordinator's search by code, against 1 ms). Rendered at each execution
        # (``literal_execute``), it cost 0.8 ms of Python per request for 500 patients. As
        # text, each caller's statements are compiled once (SQLAlchemy's cache), planned with
        # the real list, then prepared and reused while the list holds. Patient ids are FHIR
        # ids ([A-Za-z0-9.-]); quotes are doubled all the same.
        quoted = ",".join("'" + i.replace("'", "''") + "'" for i in ordered)
        return literal_column(f"ARRAY[{quoted}]::VARCHAR[]", type_=postgresql.ARRAY(String))
    items = func.json_each(bindparam(None, orjson.dumps(ordered).decode(), type_=String))
    return select(items.table_valued("value").c.value)


def visible_patients(
    store: Store, conn: Connection, caller: Caller, now: int, limit: int
) -> Visible:
    """``caller``'s visible patients at ``now`` (read-only transaction ``conn``), from this
    process's cache when nothing can have changed them."""
    cache: dict[tuple[Caller, int], Visible] = store.caches.setdefault(_CACHE, {})
    # The epoch first: a change committed between the two reads leaves a list newer than its
    # epoch, which the next request replaces; never an old list under a new epoch.
    epoch = conn.execute(_EPOCH).scalar() or 0
    key = (caller, limit)
    kept = cache.get(key)
    if kept is not None and kept.holds(epoch, now):
        return kept
    values = _parameters(caller, now)
    ids_statement = _ids_statement(bool(caller.keys), caller.coordinates)
    rows = conn.execute(ids_statement, {**values, "limit": limit + 1})
    listed = frozenset(row[0] for row in rows)
    ids = listed if len(listed) <= limit else None
    until = conn.execute(
        _boundary_statement(bool(caller.keys), caller.coordinates), values
    ).scalar()
    fresh = Visible(ids, epoch, now, until, _values(ids, conn))
    if len(cache) >= MAX_CALLERS:
        cache.clear()
    cache[key] = fresh
    return fresh


def changed(tx: Transaction) -> None:
    """Record that this transaction changes who may see which patient (bumped at commit)."""
    tx.before_commit.setdefault(_CACHE, _bump)


def _bump(tx: Transaction) -> None:
    dialect = postgresql if tx.store.dialect.is_postgres else sqlite
    upsert = dialect.insert(circle_epoch).values(id=_EPOCH_ID, value=1)
    upsert = upsert.on_conflict_do_update(
        index_elements=[circle_epoch.c.id], set_={"value": circle_epoch.c.value + 1}
    )
    tx.conn.execute(upsert)


def _parameters(caller: Caller, now: int) -> dict[str, Any]:
    values: dict[str, Any] = {
        "now": now,
        "subject": caller.subject,
        "actors": list(caller.actors),
    }
    if caller.keys:
        values["keys"] = list(caller.keys)
    if caller.coordinates:
        values["orgs"] = list(caller.org_keys)
    return values


_EPOCH = select(circle_epoch.c.value).where(circle_epoch.c.id == _EPOCH_ID)


def active(table: Any, now: int | BindParameter[int]) -> ColumnElement[bool]:
    """The rows of ``table`` (memberships, oppositions) in force at ``now``."""
    return and_(
        or_(table.c.start_ms.is_(None), table.c.start_ms <= now),
        or_(table.c.end_ms.is_(None), table.c.end_ms > now),
    )


def memberships(keys: Any, orgs: Any) -> ColumnElement[bool] | None:
    """The ``care_member`` rows that open a patient to a caller: a participant who is one of
    ``keys`` (themselves, a role, an organisation), or, for a coordinator, any participant of
    one of ``orgs``; None when neither is given. Values or bound parameters."""
    tests: list[ColumnElement[bool]] = []
    if keys is not None:
        tests.append(and_(care_member.c.member.in_(keys), care_member.c.via == "member"))
    if orgs is not None:
        tests.append(care_member.c.member_org.in_(orgs))
    return or_(*tests) if tests else None


def opposing(actors: Any) -> ColumnElement[bool]:
    """The ``care_opposition`` rows naming one of ``actors`` (values or a bound parameter)."""
    return care_opposition.c.actor.in_(actors)


def _memberships(by_keys: bool, coordinated: bool) -> ColumnElement[bool] | None:
    return memberships(
        bindparam("keys", expanding=True) if by_keys else None,
        bindparam("orgs", expanding=True) if coordinated else None,
    )


def _oppositions() -> ColumnElement[bool]:
    return opposing(bindparam("actors", expanding=True))


@functools.cache
def _ids_statement(by_keys: bool, coordinated: bool) -> Select[Any]:
    """The patients of the caller's active memberships and grants, minus active oppositions;
    at most ``limit`` + 1 rows. Built once per shape: building SQLAlchemy expressions costs
    more than running this indexed query."""
    now: BindParameter[int] = bindparam("now")
    grants = select(access_grant.c.patient_id).where(
        access_grant.c.subject == bindparam("subject"), access_grant.c.expires_ms > now
    )
    members = _memberships(by_keys, coordinated)
    reachable: Any = grants
    if members is not None:
        circle = select(care_member.c.patient_id).where(members, active(care_member, now))
        reachable = union(circle, grants)
    opposed = select(care_opposition.c.patient_id).where(
        _oppositions(), active(care_opposition, now)
    )
    patients = reachable.subquery()
    column = patients.c.patient_id
    return select(column).where(column.not_in(opposed)).limit(bindparam("limit"))


@functools.cache
def _boundary_statement(by_keys: bool, coordinated: bool) -> Select[Any]:
    """The next instant after ``now`` at which one of the caller's memberships, oppositions
    or grants starts or ends (NULL: none)."""
    now: BindParameter[int] = bindparam("now")
    instants: list[Select[Any]] = [
        select(access_grant.c.expires_ms.label("at")).where(
            access_grant.c.subject == bindparam("subject"), access_grant.c.expires_ms > now
        )
    ]
    members = _memberships(by_keys, coordinated)
    tables: list[tuple[Any, ColumnElement[bool]]] = [(care_opposition, _oppositions())]
    if members is not None:
        tables.append((care_member, members))
    for table, test in tables:
        instants.append(select(table.c.start_ms.label("at")).where(test, table.c.start_ms > now))
        instants.append(select(table.c.end_ms.label("at")).where(test, table.c.end_ms > now))
    every = union_all(*instants).subquery()
    return select(func.min(every.c.at))
