"""The audit trail: append (hash-chained), verify, search, and the per-patient access report.

Each entry's hash is SHA-256 over its seq, the previous entry's hash, its indexed columns and
the canonical JSON of its AuditEvent (sorted keys), so changing any column, removing or
inserting an entry breaks the chain from that entry on; ``audit_head`` remembers the last
entry so that removing the newest ones is seen as well. Appenders are serialised by locking
the head row (PostgreSQL) or by SQLite's single writer, and append as the last step of the
caller's transaction so the lock is held for a few statements only.

The hash is not keyed: it shows any change made without recomputing the chain. Someone able
to rewrite the database *and* recompute the hashes from the altered entry on would defeat
it, which is why ``verify`` accepts anchors (a seq and the hash it had, noted elsewhere).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any, Final

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    bindparam,
    false,
    func,
    insert,
    not_,
    or_,
    select,
    union_all,
    update,
)

from parcours.errors import InvalidInput, NotFound
from parcours.store import Store
from parcours.store.clock import instant

from .entry import ACTIONS, OUTCOMES, SUBTYPE_INTERACTIONS, AuditEntry, build_audit_event
from .entry import patients_of as _patients_of
from .tables import GENESIS_HASH, audit_event, audit_head, audit_patient

__all__ = ["AuditTrail", "VerifyResult", "parse_date_range"]

_MAX_COUNT: Final = 1000
# Parameters about the response, not criteria (the FHIR layer may pass them through).
_IGNORED: Final = frozenset({"_format", "_pretty"})
_SORTS: Final = frozenset({"-date", "-period-start", "-_id"})
_SEARCH_PARAMS: Final = (
    "_id, patient, agent, altid, address, date, period-start, action, outcome, subtype, "
    "purpose, _count, _cursor, _total, _sort"
)
# Columns covered by the hash, in hash order.
_HASHED: Final = (
    "recorded",
    "action",
    "interaction",
    "outcome",
    "agent",
    "practitioner",
    "patient_id",
    "purpose",
    "source_address",
)
_LENGTHS: Final = {
    "agent": 255,
    "practitioner": 255,
    "patient_id": 64,
    "purpose": 16,
    "source_address": 64,
}


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of ``AuditTrail.verify``: the first broken entry, if any, and why."""

    ok: bool
    checked: int
    first_broken: int | None
    problem: str
    # The chain's last entry according to audit_head (worth noting elsewhere, as an anchor).
    head_seq: int
    head_hash: str


@dataclass(frozen=True, slots=True)
class _Prepared:
    row: dict[str, Any]
    canonical: bytes
    more_patients: tuple[str, ...]


def _clip(name: str, value: str | None) -> str | None:
    return value[: _LENGTHS[name]] if value is not None else None


def _digest(seq: int, prev_hash: str, row: dict[str, Any], canonical: bytes) -> str:
    # A JSON array header cannot run into the content: its end is unambiguous.
    header = orjson.dumps([seq, prev_hash, *(row[name] for name in _HASHED)])
    return hashlib.sha256(header + b"\n" + canonical).hexdigest()


def _canonical(content: Any) -> bytes:
    return orjson.dumps(content, option=orjson.OPT_SORT_KEYS)


def _prepare(entry: AuditEntry) -> _Prepared:
    content = build_audit_event(entry)
    patients = tuple(dict.fromkeys(p[:64] for p in entry.patients))
    row: dict[str, Any] = {
        "recorded": entry.recorded_ms,
        "action": entry.action,
        "interaction": entry.interaction,
        "outcome": entry.outcome,
        "agent": _clip("agent", entry.agent.subject),
        "practitioner": _clip("practitioner", entry.agent.practitioner),
        "patient_id": patients[0] if patients else None,
        "purpose": _clip("purpose", entry.purpose),
        "source_address": _clip("source_address", entry.source_address),
        "content": content,
    }
    return _Prepared(row, _canonical(content), patients[1:])


_HEAD = select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
_HEAD_LOCKED = _HEAD.with_for_update()
_INSERT_EVENT = insert(audit_event)
_INSERT_PATIENT = insert(audit_patient)
_UPDATE_HEAD = update(audit_head).where(audit_head.c.id == 1)
_PG_APPEND_ONE = (
    update(audit_head)
    .where(audit_head.c.id == 1)
    .values(seq=bindparam("e_seq"), hash=bindparam("e_hash"))
    .add_cte(
        insert(audit_event)
        .values({c.name: bindparam(f"e_{c.name}", type_=c.type) for c in audit_event.c})
        .cte("new_event")
    )
)


class AuditTrail:
    """The TdE "Gestionnaire": stores, verifies and searches the platform's AuditEvents."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # ---- writing ---------------------------------------------------------------------

    def append(self, conn: Connection, entries: Sequence[AuditEntry]) -> None:
        """Chain ``entries`` onto the trail inside the caller's open write transaction.

        Call it last before the commit: on PostgreSQL it locks the chain head until then.
        """
        if not entries:
            return
        # Everything that does not need the head (building and serialising) happens before
        # taking the lock, so concurrent requests wait on hashing only.
        prepared = [_prepare(entry) for entry in entries]
        head = conn.execute(_HEAD_LOCKED if self.store.dialect.is_postgres else _HEAD).first()
        seq, prev = (int(head.seq), str(head.hash)) if head else self._create_head(conn)
        rows: list[dict[str, Any]] = []
        extra: list[dict[str, Any]] = []
        for item in prepared:
            seq += 1
            digest = _digest(seq, prev, item.row, item.canonical)
            rows.append({**item.row, "seq": seq, "prev_hash": prev, "hash": digest})
            extra.extend({"patient_id": pid, "seq": seq} for pid in item.more_patients)
            prev = digest
        if self.store.dialect.is_postgres and len(rows) == 1 and not extra:
            # The common case in one round trip: the row and the head in one statement.
            conn.execute(_PG_APPEND_ONE, {f"e_{k}": v for k, v in rows[0].items()})
            return
        conn.execute(_INSERT_EVENT, rows)
        if extra:
            conn.execute(_INSERT_PATIENT, extra)
        conn.execute(_UPDATE_HEAD, {"seq": seq, "hash": prev})

    def _create_head(self, conn: Connection) -> tuple[int, str]:
        # Migration 0006 inserts the head; a schema made by metadata.create_all (some tests)
        # has none. Two first appenders racing here: the loser's insert fails its request.
        conn.execute(insert(audit_head), {"id": 1, "seq": 0, "hash": GENESIS_HASH})
        conn.execute(_HEAD_LOCKED if self.store.dialect.is_postgres else _HEAD)
        return 0, GENESIS_HASH

    def record(self, entries: Sequence[AuditEntry]) -> None:
        """Append in a short transaction of its own (for actions whose transaction is
        read-only, such as reads and searches)."""
        if entries:
            with self.store.begin() as tx:
                self.append(tx.conn, entries)

    # ---- verifying -------------------------------------------------------------------

    @contextmanager
    def _snapshot(self) -> Iterator[Connection]:
        """One consistent view of the whole trail, however long the verification runs."""
        if self.store.dialect.is_postgres:
            with self.store.engine.connect() as conn:
                conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    yield conn
        else:
            # A deferred SQLite transaction in WAL mode reads one snapshot.
            with self.store.begin(readonly=True) as tx:
                yield tx.conn

    def verify(self, batch: int = 5000, anchors: Sequence[tuple[int, str]] = ()) -> VerifyResult:
        """Walk the chain in seq order; stop at the first entry that is not as appended.

        ``anchors``: (seq, hash) pairs noted outside the database; an entry whose hash
        differs means the chain was rewritten from there on.
        """
        expected_anchor = dict(anchors)
        with self._snapshot() as conn:
            head = conn.execute(_HEAD).first()
            head_seq = int(head.seq) if head is not None else 0
            head_hash = str(head.hash) if head is not None else GENESIS_HASH

            def result(first: int | None, problem: str, checked: int) -> VerifyResult:
                return VerifyResult(first is None, checked, first, problem, head_seq, head_hash)

            if head is None:
                return result(1, "the chain head (audit_head id=1) is missing", 0)
            last_seq, last_hash, checked = 0, GENESIS_HASH, 0
            while True:
                rows = conn.execute(
                    select(audit_event)
                    .where(audit_event.c.seq > last_seq)
                    .order_by(audit_event.c.seq)
                    .limit(batch)
                ).all()
                if not rows:
                    break
                extra = self._extra_patients(conn, last_seq, int(rows[-1].seq))
                for row in rows:
                    seq = int(row.seq)
                    expected = last_seq + 1
                    if seq != expected:
                        return result(
                            expected,
                            f"entry missing (the next entry found is seq={seq})",
                            checked,
                        )
                    if row.prev_hash != last_hash:
                        return result(
                            seq,
                            f"prev_hash does not match the hash of seq={last_seq}: an entry "
                            "was inserted, removed or rewritten before it",
                            checked,
                        )
                    values = {name: row._mapping[name] for name in _HASHED}
                    if _digest(seq, last_hash, values, _canonical(row.content)) != row.hash:
                        return result(seq, "hash mismatch: the entry was altered", checked)
                    wanted = _patients_of(row.content)
                    if [p[:64] for p in wanted[:1]] != ([row.patient_id] if row.patient_id else []):
                        return result(seq, "patient_id does not match the AuditEvent", checked)
                    more = {p[:64] for p in wanted[1:]}
                    if extra.pop(seq, set()) != more:
                        return result(
                            seq,
                            "audit_patient rows do not match the patients of the AuditEvent",
                            checked,
                        )
                    if seq in expected_anchor and expected_anchor.pop(seq) != row.hash:
                        return result(
                            seq, "hash differs from the anchor: the chain was rewritten", checked
                        )
                    checked += 1
                    last_seq, last_hash = seq, str(row.hash)
                if extra:
                    orphan = min(extra)
                    return result(orphan, "audit_patient rows without their entry", checked)
            if last_seq < head_seq:
                return result(
                    last_seq + 1,
                    f"entries missing at the end: the head says the chain ends at seq={head_seq}",
                    checked,
                )
            if last_seq > head_seq:
                return result(
                    head_seq + 1, f"entry after the head (seq={head_seq}): inserted", checked
                )
            if last_hash != head_hash:
                return result(last_seq, "the last entry's hash differs from the head's", checked)
            stray = conn.execute(
                select(func.min(audit_patient.c.seq)).where(audit_patient.c.seq > last_seq)
            ).scalar()
            if stray is not None:
                return result(int(stray), "audit_patient rows without their entry", checked)
            if expected_anchor:
                seq = min(expected_anchor)
                return result(seq, "anchored entry not found in the chain", checked)
            return result(None, "", checked)

    @staticmethod
    def _extra_patients(conn: Connection, after: int, upto: int) -> dict[int, set[str]]:
        extra: dict[int, set[str]] = {}
        for seq, pid in conn.execute(
            select(audit_patient.c.seq, audit_patient.c.patient_id).where(
                audit_patient.c.seq > after, audit_patient.c.seq <= upto
            )
        ):
            extra.setdefault(int(seq), set()).add(pid)
        return extra

    # ---- reading ---------------------------------------------------------------------

    def read(self, conn: Connection, event_id: str) -> dict[str, Any]:
        """The AuditEvent whose id (its seq) is ``event_id``."""
        if not event_id.isdigit() or len(event_id) > 18:
            raise NotFound(f"AuditEvent/{event_id[:40]} does not exist")
        row = conn.execute(
            select(audit_event.c.seq, audit_event.c.content).where(
                audit_event.c.seq == int(event_id)
            )
        ).first()
        if row is None:
            raise NotFound(f"AuditEvent/{event_id} does not exist")
        return _resource(row.seq, row.content)

    def search(
        self,
        conn: Connection,
        params: Sequence[tuple[str, str]],
        count: int,
        cursor: str | None,
    ) -> tuple[list[dict[str, Any]], str | None, int | None]:
        """``GET AuditEvent?…``: matches newest first, the next page's cursor, the total
        (when asked with ``_total=accurate``, or when the first page holds everything)."""
        conditions: list[ColumnElement[bool]] = []
        want_total = False
        for name, value in params:
            if name in _IGNORED:
                continue
            if name == "_count":
                count = _integer(name, value, 0, _MAX_COUNT)
            elif name == "_cursor":
                cursor = value
            elif name == "_total":
                if value not in ("none", "estimate", "accurate"):
                    raise InvalidInput(
                        f"_total={value[:20]!r}: expected none, estimate or accurate"
                    )
                want_total = value != "none"
            elif name == "_sort":
                if value not in _SORTS:
                    raise InvalidInput(
                        f"_sort={value[:40]!r}: AuditEvents are only sorted newest first (-date)"
                    )
            else:
                conditions.append(_condition(name, value))
        page = list(conditions)
        if cursor:
            page.append(audit_event.c.seq < _integer("_cursor", cursor, 1, 2**62))
        rows = conn.execute(
            select(audit_event.c.seq, audit_event.c.content)
            .where(*page)
            .order_by(audit_event.c.seq.desc())
            .limit(count + 1)
        ).all()
        more = len(rows) > count
        rows = rows[:count]
        next_cursor = str(rows[-1].seq) if more and rows else None
        total: int | None = None
        if want_total:
            total = int(
                conn.execute(
                    select(func.count()).select_from(audit_event).where(*conditions)
                ).scalar_one()
            )
        elif not cursor and not more:
            total = len(rows)
        return [_resource(row.seq, row.content) for row in rows], next_cursor, total

    def access_report(
        self, conn: Connection, patient_id: str, since_ms: int | None = None
    ) -> list[dict[str, Any]]:
        """Who accessed this patient's record: one line per agent, latest access first."""
        patient_id = _patient_id(patient_id)
        where: list[ColumnElement[bool]] = [audit_event.c.seq.in_(_patient_seqs([patient_id]))]
        if since_ms is not None:
            where.append(audit_event.c.recorded >= since_ms)
        c = audit_event.c
        rows = conn.execute(
            select(
                c.agent,
                c.practitioner,
                c.interaction,
                c.purpose,
                c.outcome,
                func.count(),
                func.min(c.recorded),
                func.max(c.recorded),
                func.max(c.seq),
            )
            .where(*where)
            .group_by(c.agent, c.practitioner, c.interaction, c.purpose, c.outcome)
        ).all()
        agents: dict[tuple[str, str | None], dict[str, Any]] = {}
        for agent, practitioner, interaction, purpose, outcome, n, first, last, top in rows:
            line = agents.setdefault(
                (agent, practitioner),
                {
                    "agent": agent,
                    "practitioner": practitioner,
                    "display": "",
                    "first": first,
                    "last": last,
                    "count": 0,
                    "failed": 0,
                    "break_glass": False,
                    "interactions": {},
                    "_top": top,
                },
            )
            line["first"] = min(line["first"], first)
            line["last"] = max(line["last"], last)
            line["_top"] = max(line["_top"], top)
            line["count"] += n
            if outcome != 0:
                line["failed"] += n
            if purpose == "BTG" or interaction == "break-glass":
                line["break_glass"] = True
            line["interactions"][interaction] = line["interactions"].get(interaction, 0) + n
        # The display name as the latest entry of each agent recorded it.
        tops = {line["_top"]: line for line in agents.values()}
        if tops:
            for seq, content in conn.execute(select(c.seq, c.content).where(c.seq.in_(list(tops)))):
                tops[seq]["display"] = (content.get("agent") or [{}])[0].get("name", "")
        report = sorted(agents.values(), key=lambda line: line["last"], reverse=True)
        for line in report:
            del line["_top"]
            line["first"] = instant(line["first"])
            line["last"] = instant(line["last"])
            line["interactions"] = dict(sorted(line["interactions"].items()))
        return report

    def break_glass(
        self, conn: Connection, since_ms: int | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Accesses under break-the-glass, newest first: who, which patients, why, when."""
        c = audit_event.c
        where: list[ColumnElement[bool]] = [c.purpose == "BTG"]
        if since_ms is not None:
            where.append(c.recorded >= since_ms)
        rows = conn.execute(
            select(c.seq, c.recorded, c.agent, c.practitioner, c.interaction, c.outcome, c.content)
            .where(*where)
            .order_by(c.seq.desc())
            .limit(limit)
        ).all()
        out: list[dict[str, Any]] = []
        for row in rows:
            content = row.content
            purpose = (content.get("purposeOfEvent") or [{}])[0]
            out.append(
                {
                    "id": str(row.seq),
                    "when": instant(row.recorded),
                    "agent": row.agent,
                    "practitioner": row.practitioner,
                    "display": (content.get("agent") or [{}])[0].get("name", ""),
                    "patients": _patients_of(content),
                    "interaction": row.interaction,
                    "outcome": row.outcome,
                    "reason": purpose.get("text", ""),
                }
            )
        return out


# ---- helpers ---------------------------------------------------------------------------


def _resource(seq: int, content: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "AuditEvent", "id": str(seq), **content}


def _integer(name: str, value: str, low: int, high: int) -> int:
    if not value.isdigit() or not (low <= int(value) <= high):
        raise InvalidInput(f"{name}={value[:40]!r}: expected an integer from {low} to {high}")
    return int(value)


def _patient_id(value: str) -> str:
    value = value.strip()
    if "/" in value:
        head, _, tail = value.rpartition("/")
        if not (head == "Patient" or head.endswith("/Patient")) or not tail:
            raise InvalidInput(f"patient={value[:80]!r}: expected Patient/<id> or <id>")
        value = tail
    return value[:64]


def _patient_seqs(ids: Sequence[str]) -> Select[Any]:
    # A UNION rather than an OR: each branch uses its own index on PostgreSQL.
    return (
        union_all(
            select(audit_event.c.seq).where(audit_event.c.patient_id.in_(ids)),
            select(audit_patient.c.seq).where(audit_patient.c.patient_id.in_(ids)),
        )
        .subquery()
        .select()
    )


def _token_codes(value: str) -> list[str]:
    return [v.rpartition("|")[2] for v in value.split(",") if v.rpartition("|")[2]]


def _condition(name: str, value: str) -> ColumnElement[bool]:
    c = audit_event.c
    if ":" in name:
        raise InvalidInput(
            f"search parameter {name[:60]!r}: modifiers are not supported on AuditEvent"
        )
    values = [v for v in value.split(",") if v]
    if not values:
        raise InvalidInput(f"search parameter {name!r} has no value")
    if name == "_id":
        seqs = [int(v) for v in values if v.isdigit() and len(v) <= 18]
        return c.seq.in_(seqs) if seqs else false()
    if name == "patient":
        return c.seq.in_(_patient_seqs([_patient_id(v) for v in values]))
    if name == "agent":
        return or_(c.agent.in_(values), c.practitioner.in_(values))
    if name == "altid":
        return c.agent.in_(values)
    if name == "address":
        return c.source_address.in_(values)
    if name in ("date", "period-start", "TDE_AuditEvent_period-start"):
        return or_(*(_date_condition(name, v) for v in values))
    if name == "action":
        if not set(values) <= ACTIONS:
            raise InvalidInput(f"action={value[:40]!r}: expected C, R, U, D or E")
        return c.action.in_(values)
    if name == "outcome":
        outcomes = [int(v) for v in values if v.isdigit() and int(v) in OUTCOMES]
        if len(outcomes) != len(values):
            raise InvalidInput(f"outcome={value[:40]!r}: expected 0, 4, 8 or 12")
        return c.outcome.in_(outcomes)
    if name == "subtype":
        interactions: set[str] = set()
        for code in _token_codes(value):
            interactions |= SUBTYPE_INTERACTIONS.get(code, {code})
        return c.interaction.in_(sorted(interactions))
    if name == "purpose":
        return c.purpose.in_(_token_codes(value))
    raise InvalidInput(
        f"unknown search parameter {name[:60]!r} for AuditEvent; supported: {_SEARCH_PARAMS}"
    )


_DATE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d{1,9}))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
_PREFIXES: Final = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")


def parse_date_range(value: str) -> tuple[int, int]:
    """The [start, end) milliseconds a FHIR date or dateTime stands for (UTC when no offset:
    storage is UTC, and a date-only value has no offset to go by)."""
    match = _DATE.match(value.strip())
    if match is None:
        raise InvalidInput(
            f"date {value[:40]!r} is not a FHIR date (2025-01-07, 2025-01, 2025-01-07T09:30:00Z…)"
        )
    g = match.groupdict()
    try:
        tz: tzinfo = UTC
        if g["tz"] and g["tz"] != "Z":
            sign = 1 if g["tz"][0] == "+" else -1
            hours, minutes = g["tz"][1:].split(":")
            tz = timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))
        start = datetime(
            int(g["y"]),
            int(g["m"] or 1),
            int(g["d"] or 1),
            int(g["H"] or 0),
            int(g["M"] or 0),
            int(g["S"] or 0),
            int((g["f"] or "0")[:6].ljust(6, "0")),
            tzinfo=tz,
        )
    except ValueError as exc:
        raise InvalidInput(f"date {value[:40]!r} is not a valid date: {exc}") from None
    if g["f"]:
        end = start + timedelta(milliseconds=1)
    elif g["S"]:
        end = start + timedelta(seconds=1)
    elif g["M"]:
        end = start + timedelta(minutes=1)
    elif g["d"]:
        end = start + timedelta(days=1)
    elif g["m"]:
        end = start.replace(year=start.year + (start.month == 12), month=start.month % 12 + 1)
    else:
        end = start.replace(year=start.year + 1)
    start_ms = int(start.timestamp() * 1000)
    return start_ms, max(int(end.timestamp() * 1000), start_ms + 1)


def _date_condition(name: str, value: str) -> ColumnElement[bool]:
    prefix = value[:2] if value[:2].isalpha() else "eq"
    if value[:2].isalpha() and prefix not in _PREFIXES:
        raise InvalidInput(
            f"{name}={value[:40]!r}: prefix {prefix!r} is not supported "
            f"(use {', '.join(_PREFIXES)})"
        )
    low, high = parse_date_range(value[2:] if value[:2].isalpha() else value)
    t = audit_event.c.recorded
    if prefix == "eq":
        return and_(t >= low, t < high)
    if prefix == "ne":
        return not_(and_(t >= low, t < high))
    if prefix in ("gt", "sa"):
        return t >= high
    if prefix == "ge":
        return t >= low
    if prefix in ("lt", "eb"):
        return t < low
    return t < high  # le
