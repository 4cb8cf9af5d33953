"""Where SQLite starts the search of a caller whose visible patients are listed.

Such a search is "type = T AND <filters> AND patient_id IN (visible patients)", in ``pk``
order. SQLite's planner knows neither the length of the list nor how common one code is, so it
starts from a filter's index rows in ``pk`` order and tests each row's patient. That suits the
admin (the first 21 rows fill a page), but a general practitioner who sees 50 of 2,000 patients
tests some 800 rows for one page of a common code, and at regional scale every row of that
code. Starting from the patients' own rows (the (patient_id, type) index) costs what they hold,
whatever the code.

So SQLite is told what it cannot see. How many rows of T the listed patients hold is counted
in that index, and each filter's index rows up to that number; both counts are bounded and
kept a while (they steer the plan, never the result). When every filter matches more, the
search starts from the patients: filters become EXISTS on the row's own index rows and the
type test is hidden from the indexes. Otherwise, or when a filter goes straight to a few rows
(``_id``, ``_lastUpdated``, chains, ``_has``), the statement is left as it is.

PostgreSQL is not concerned: its statistics (most common values, histograms, and the list
written into the statement) already lead it to the cheaper side.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, Select, String, func, literal, select
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import UnaryExpression

from parcours.store.schema import resource
from parcours.store.search.request import Filter
from parcours.store.search.sql import FilterCompiler, PatientList

if TYPE_CHECKING:
    from parcours.store.repository import Transaction

__all__ = ["PATIENT_ROWS_MAX", "patients_first", "unindexed"]

# Beyond this many rows the patients' side is not worth it: EXISTS tests on every one of them
# would cost more than a filter's list, however long.
PATIENT_ROWS_MAX = 2_000
# How long a count of rows steers the plans before it is taken again.
COUNT_SECONDS = 30.0
# Filters whose counts are kept per process; emptied when full.
MAX_COUNTS = 10_000
_CACHE = "search.matched"


def patients_first(
    tx: Transaction,
    compiler: FilterCompiler,
    listed: PatientList,
    res_type: str,
    filters: tuple[Filter, ...],
) -> bool:
    """Whether the search of ``res_type`` with ``filters`` should start from the rows of the
    ``listed`` patients rather than from the filters' index rows."""
    if any(f.chain is not None or f.code in ("_id", "_lastUpdated", "_has") for f in filters):
        return False
    held = patient_rows(tx.conn, listed, res_type)
    if held > PATIENT_ROWS_MAX:
        return False
    return all(_matches_more(tx, compiler, res_type, f, held) for f in filters)


def patient_rows(conn: Connection, listed: PatientList, res_type: str) -> int:
    """Rows of ``res_type`` held by the ``listed`` patients (at most ``PATIENT_ROWS_MAX`` + 1),
    counted in the (patient_id, type) index, or as counted less than ``COUNT_SECONDS`` ago."""
    now = time.monotonic()
    kept = listed.row_counts.get(res_type)
    if kept is not None and now - kept[1] < COUNT_SECONDS:
        return kept[0]
    rows = select(resource.c.pk).where(
        resource.c.type == res_type, listed.test(resource.c.patient_id)
    )
    held = _count(conn, rows, PATIENT_ROWS_MAX + 1)
    listed.row_counts[res_type] = (held, now)
    return held


@dataclass(frozen=True, slots=True)
class _Matched:
    """A filter's index rows: ``count`` exactly, or at least ``count`` when not ``exact``."""

    count: int
    exact: bool
    at: float


def _matches_more(
    tx: Transaction, compiler: FilterCompiler, res_type: str, f: Filter, held: int
) -> bool:
    """Whether ``f`` matches more than ``held`` index rows. Counts are kept per process for
    ``COUNT_SECONDS``: the same searches come back (a practitioner's pages, their codes), and
    building the count costs more than running it."""
    counts: dict[tuple[str, Filter], _Matched] = tx.store.caches.setdefault(_CACHE, {})
    now = time.monotonic()
    kept = counts.get((res_type, f))
    if kept is not None and now - kept.at < COUNT_SECONDS:
        if kept.count > held:
            return True
        if kept.exact:
            return False
    rows = compiler.index_rows(res_type, f)
    if rows is None:  # a negative filter: it leaves most rows
        return True
    count = _count(tx.conn, rows, held + 1)
    if len(counts) >= MAX_COUNTS:
        counts.clear()
    counts[(res_type, f)] = _Matched(count, count <= held, now)
    return count > held


def unindexed(column: Any) -> ColumnElement[Any]:
    """``+column``: the same value, which SQLite will not look up through an index, so that
    the plan starts from another condition."""
    return UnaryExpression(column, operator=operators.custom_op("+"), type_=String())


def _count(conn: Connection, rows: Select[Any], limit: int) -> int:
    # Selecting a constant lets SQLite count in the index alone, without the table's rows.
    bounded = rows.with_only_columns(literal(1)).limit(limit).subquery()
    return int(conn.execute(select(func.count()).select_from(bounded)).scalar_one())
