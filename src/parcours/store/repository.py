"""The repository: the only way resources are read and written.

``Store`` owns the engine and the plug-ins (validator, indexer); ``store.begin()`` opens a
``Transaction`` that carries every primitive (create, read, vread, update, delete, history,
search) on one database transaction, so a FHIR transaction Bundle, an HL7 message or a merge is
all-or-nothing. Every write stores a new version, rewrites the resource's index rows and appends
an outbox event in that same transaction.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError

from parcours.errors import Conflict, Gone, InvalidResource, NotFound, Unavailable, VersionConflict
from parcours.store.clock import instant, now_ms
from parcours.store.compartment import patient_of
from parcours.store.engine import Dialect
from parcours.store.schema import INDEX_TABLES, outbox, resource, resource_version

if TYPE_CHECKING:
    from parcours.store.search import SearchParameterRegistry, SearchRequest, SearchResult
    from parcours.store.search.registry import SearchParam
    from parcours.store.search.sql import RowScope

__all__ = [
    "HistoryEntry",
    "Indexer",
    "Resource",
    "Store",
    "Transaction",
    "Validator",
    "WriteHook",
    "WriteResult",
    "as_version",
    "resource_type",
]

Resource = dict[str, Any]
# Index rows per parameter type ("token", "string", ...); each row maps column -> value,
# without resource_pk / res_type, which the repository fills in.
IndexRows = Mapping[str, Sequence[Mapping[str, Any]]]

_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.")


# Raises ``InvalidResource`` (with located issues) if the resource is not acceptable.
Validator = Callable[[Resource], None]
# Every searchable value of the resource, by parameter type.
Indexer = Callable[[Resource], IndexRows]


class AuditSink(Protocol):
    """Where audit entries go: inside a write transaction, or in one of their own."""

    def append(self, conn: Connection, entries: Sequence[Any]) -> None: ...

    def record(self, entries: Sequence[Any]) -> None: ...


# Called inside the transaction after each write with (tx, new content or None for a delete,
# previous content or None for a create): a domain rule that must hold for every entry point
# (REST, HL7, UI) writes its own rows here, or raises a ParcoursError to refuse the write.
WriteHook = Callable[["Transaction", Resource | None, Resource | None], None]


def _no_index(_resource: Resource) -> IndexRows:
    return {}


def _no_validation(_resource: Resource) -> None:
    return None


def check_id(logical_id: str) -> None:
    if not (1 <= len(logical_id) <= 64) or not set(logical_id) <= _ID_CHARS:
        raise InvalidResource(
            f"id {logical_id[:80]!r} is not a valid FHIR id "
            "(1 to 64 characters among A-Z a-z 0-9 - .)"
        )


@dataclass(frozen=True, slots=True)
class WriteResult:
    resource: Resource
    created: bool


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    type: str
    id: str
    version_id: int
    last_updated: int
    method: str
    resource: Resource | None


class Store:
    """The database plus the plug-ins every write goes through."""

    def __init__(
        self,
        engine: Engine,
        *,
        validator: Validator = _no_validation,
        indexer: Indexer | None = None,
        registry: SearchParameterRegistry | None = None,
    ) -> None:
        self.engine = engine
        self.dialect = Dialect(engine.dialect.name)
        self.validator = validator
        # The registry is the search engine's view of the parameters; unless an indexer is
        # given explicitly, it is also the indexer, so what is indexed is what is searchable.
        self.registry = registry
        if indexer is None:
            indexer = registry.index if registry is not None else _no_index
        self.indexer = indexer
        # Domain rules run inside every write's transaction (identity matching on Patients).
        self.write_hooks: list[WriteHook] = []
        # Hooks that keep derived tables (care-circle memberships…) in step with resources:
        # they run after the write hooks and again for every resource `reindex` rebuilds.
        self.derived_hooks: list[WriteHook] = []
        # The audit trail (parcours.audit), and how to describe writes that no entry point
        # described (the platform's own work: HL7 intake, merges, imports).
        self.audit: AuditSink | None = None
        # Per-store caches of derived data, owned and invalidated by the modules that fill them
        # (the access policy's keys).
        self.caches: dict[str, Any] = {}
        self.audit_writes: Callable[[Transaction], list[Any]] | None = None
        # SQLite has one writer at a time and its busy handler is not fair: under load a
        # waiting writer can starve past the busy timeout. Queueing this process's writers on
        # a lock first leaves the busy handler only the (rare) writers of other processes.
        self._write_lock: AbstractContextManager[object] = (
            threading.Lock() if self.dialect.name == "sqlite" else nullcontext()
        )

    @contextmanager
    def begin(self, *, readonly: bool = False) -> Iterator[Transaction]:
        """One database transaction; committed when the block exits without an exception."""
        with nullcontext() if readonly else self._write_lock:
            try:
                conn = self.engine.connect()
            except OperationalError as exc:
                raise Unavailable("the database cannot be reached; retry later") from exc
            try:
                conn.info["readonly"] = readonly
                if readonly and self.dialect.is_postgres:
                    # Reads need no BEGIN/COMMIT round trips; each statement sees committed data.
                    conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                with conn.begin():
                    tx = Transaction(self, conn)
                    yield tx
                    self._audit(tx, readonly)
                    for last in tx.before_commit.values():
                        last(tx)
                    tx.flush()
            except OperationalError as exc:
                raise Unavailable(f"database error, nothing was written: {exc.orig}") from exc
            finally:
                conn.close()
        for after in tx.after_commit:
            after()

    def _audit(self, tx: Transaction, readonly: bool) -> None:
        """The transaction's audit entries: with its writes (same commit), or just after a
        read-only one (whose connection cannot write): no answer leaves without its trace."""
        if self.audit is None:
            return
        entries = tx.audit_entries
        if not entries and tx.written and self.audit_writes is not None:
            entries = self.audit_writes(tx)
        if not entries:
            return
        if readonly:
            sink = self.audit
            tx.after_commit.append(lambda: sink.record(entries))
        else:
            self.audit.append(tx.conn, entries)

    # Convenience for single-call use; each opens and commits its own transaction.
    def create(self, res: Resource) -> Resource:
        with self.begin() as tx:
            return tx.create(res)

    def read(self, res_type: str, res_id: str) -> Resource:
        with self.begin(readonly=True) as tx:
            return tx.read(res_type, res_id)

    def update(self, res: Resource, *, if_match: int | None = None) -> WriteResult:
        with self.begin() as tx:
            return tx.update(res, if_match=if_match)

    def delete(self, res_type: str, res_id: str) -> int | None:
        with self.begin() as tx:
            deleted: int | None = tx.delete(res_type, res_id)
        return deleted


class Transaction:
    """The repository primitives, bound to one open database transaction."""

    def __init__(self, store: Store, conn: Connection) -> None:
        self.store = store
        self._conn = conn
        # Version, index and outbox rows wait here and go in one executemany per statement at
        # the next read that could see them (any use of ``conn``) or at commit: a Bundle of
        # 100 resources costs a few dozen statements instead of about a thousand.
        self._pending: dict[Any, list[dict[str, Any]]] = {}
        # Run by Store.begin once this transaction has committed (never after a rollback).
        self.after_commit: list[Callable[[], None]] = []
        # Run by Store.begin last before the commit, after the audit entries: for writes that
        # lock a shared row (it stays locked the shortest time), keyed so each runs once.
        self.before_commit: dict[str, Callable[[Transaction], None]] = {}
        # Custom SearchParameters written in this transaction, not yet in the registry.
        self.pending_params: dict[str, SearchParam] = {}
        # The caller's ``parcours.security.policy.Access``, set by the entry point that opened
        # the transaction for someone (FHIR API, workspace); None for the platform's own work
        # (HL7 intake, identity matching, workers), which the policy does not restrict.
        self.access: Any = None
        # Every resource version this transaction wrote: (type, id, version, method, patient),
        # for the audit trail.
        self.written: list[tuple[str, str, int, str, str | None]] = []
        # Audit entries of this transaction's interactions, written before it commits.
        self.audit_entries: list[Any] = []

    @property
    def conn(self) -> Connection:
        """The open connection, with every queued write applied (so reads see them)."""
        self.flush()
        return self._conn

    def flush(self) -> None:
        pending, self._pending = self._pending, {}
        for stmt, rows in pending.items():
            self._conn.execute(stmt, rows)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction: on an exception, the block's writes, queued rows and
        after-commit callbacks are all undone and the exception propagates."""
        conn = self.conn  # flushes: the savepoint must not swallow earlier queued rows
        mark = len(self.after_commit)
        written = len(self.written)
        audited = len(self.audit_entries)
        params = dict(self.pending_params)
        nested = conn.begin_nested()
        try:
            yield
            self.flush()
        except BaseException:
            self._pending = {}
            del self.after_commit[mark:]
            del self.written[written:]
            del self.audit_entries[audited:]
            self.pending_params = params
            nested.rollback()
            raise
        nested.commit()

    def lock_key(self, key: str) -> None:
        """Serialise, until this transaction ends, every transaction that locks the same key.

        For check-then-write sequences the search index cannot make atomic, such as a
        conditional create: two clients creating "the Patient with this INS" at once must not
        both create it. SQLite write transactions are already serialised.
        """
        if self.store.dialect.is_postgres:
            digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
            self._conn.execute(_ADVISORY_LOCK, {"k": int.from_bytes(digest, "big", signed=True)})

    def _queue(self, stmt: Any, rows: list[dict[str, Any]]) -> None:
        self._pending.setdefault(stmt, []).extend(rows)

    # ---- reads -------------------------------------------------------------------------

    def _current(self, res_type: str, res_id: str, *, lock: bool = False) -> Any:
        locked = lock and self.store.dialect.is_postgres
        stmt = _SELECT_CURRENT_LOCKED if locked else _SELECT_CURRENT
        return self._conn.execute(stmt, {"t": res_type, "i": res_id}).first()

    def read(self, res_type: str, res_id: str) -> Resource:
        row = self._current(res_type, res_id)
        if row is None:
            raise NotFound(f"{res_type}/{res_id[:64]} is not known")
        if row.deleted:
            raise Gone(f"{res_type}/{res_id[:64]} was deleted (version {row.version_id})")
        content: Resource = row.content
        return content

    def exists(self, res_type: str, res_id: str) -> bool:
        row = self._current(res_type, res_id)
        return row is not None and not row.deleted

    def vread(self, res_type: str, res_id: str, version_id: int) -> Resource:
        row = self.conn.execute(
            select(resource_version.c.deleted, resource_version.c.content).where(
                resource_version.c.type == res_type,
                resource_version.c.id == res_id,
                resource_version.c.version_id == version_id,
            )
        ).first()
        if row is None:
            raise NotFound(f"{res_type}/{res_id[:64]} has no version {version_id}")
        if row.deleted:
            raise Gone(f"version {version_id} of {res_type}/{res_id[:64]} is a deletion")
        content: Resource = row.content
        return content

    def history(
        self,
        res_type: str | None = None,
        res_id: str | None = None,
        *,
        since_ms: int | None = None,
        at_most_ms: int | None = None,
        offset: int = 0,
        count: int = 20,
        scope: RowScope | None = None,
    ) -> tuple[list[HistoryEntry], int]:
        """Versions, newest first, and their total count (of those ``scope`` lets through)."""
        conds: list[ColumnElement[bool]] = []
        if scope is not None and (test := scope.condition(resource, res_type)) is not None:
            # The policy judges a version by its resource's current patient and type.
            conds.append(resource_version.c.resource_pk.in_(select(resource.c.pk).where(test)))
        if res_type is not None:
            conds.append(resource_version.c.type == res_type)
        if res_id is not None:
            conds.append(resource_version.c.id == res_id)
        if since_ms is not None:
            conds.append(resource_version.c.last_updated >= since_ms)
        if at_most_ms is not None:
            conds.append(resource_version.c.last_updated <= at_most_ms)
        where = and_(True, *conds)
        total = self.conn.execute(select(func.count()).select_from(resource_version).where(where))
        rows = self.conn.execute(
            select(resource_version)
            .where(where)
            .order_by(
                resource_version.c.last_updated.desc(),
                resource_version.c.resource_pk.desc(),
                resource_version.c.version_id.desc(),
            )
            .offset(offset)
            .limit(count)
        )
        entries = [
            HistoryEntry(r.type, r.id, r.version_id, r.last_updated, r.method, r.content)
            for r in rows
        ]
        return entries, int(total.scalar_one())

    def search(self, request: SearchRequest, scope: RowScope | None = None) -> SearchResult:
        """Run a parsed search (see ``parcours.store.search``) in this transaction, limited to
        what ``scope`` (the caller's access policy) lets through."""
        from parcours.store.search import run_search

        return run_search(self, request, scope)

    def compartment(self, res_type: str, res_id: str) -> str | None:
        """The patient the resource belongs to (``resource.patient_id``), deleted or not."""
        row = self.conn.execute(
            select(resource.c.patient_id).where(
                resource.c.type == res_type, resource.c.id == res_id
            )
        ).first()
        return None if row is None else row.patient_id

    # ---- writes ------------------------------------------------------------------------

    def create(
        self, res: Resource, *, res_id: str | None = None, _known_absent: bool = False
    ) -> Resource:
        """Store a new resource under a server-assigned id (or ``res_id`` for update-as-create)."""
        res_type = resource_type(res)
        new_id = res_id or str(uuid.uuid4())
        check_id(new_id)
        # A fresh UUID needs no look-up: the unique index still guards against the impossible.
        known_absent = _known_absent or res_id is None
        if not known_absent and self._current(res_type, new_id) is not None:
            raise Conflict(f"{res_type}/{new_id} already exists")
        body = self._prepare(res, res_type, new_id, 1)
        try:
            pk = self._conn.execute(
                _INSERT_RESOURCE,
                {
                    "type": res_type,
                    "id": new_id,
                    "version_id": 1,
                    "last_updated": body.last_updated,
                    "deleted": False,
                    "content": body.content,
                    "patient_id": body.patient_id,
                },
            ).inserted_primary_key[0]  # type: ignore[index]
        except IntegrityError as exc:
            raise Conflict(f"{res_type}/{new_id} was created concurrently") from exc
        self._write_version(pk, body, "create")
        return body.content

    def update(self, res: Resource, *, if_match: int | None = None) -> WriteResult:
        """Store a new version; creates the resource when the id is unknown (update-as-create)."""
        res_type = resource_type(res)
        res_id = res.get("id")
        if not isinstance(res_id, str):
            raise InvalidResource("an update needs the resource's id in its body", [])
        check_id(res_id)
        row = self._current(res_type, res_id, lock=True)
        if row is None:
            if if_match is not None:
                raise VersionConflict(
                    f"If-Match asks for version {if_match} of {res_type}/{res_id}, "
                    "which does not exist"
                )
            created = self.create(res, res_id=res_id, _known_absent=True)
            return WriteResult(created, created=True)
        if if_match is not None and if_match != row.version_id:
            raise VersionConflict(
                f"{res_type}/{res_id} is at version {row.version_id}, not {if_match}: "
                "read it again and reapply your change"
            )
        if not row.deleted and _same_content(row.content, res):
            # No-op update: FHIR servers may keep the version; we do, to avoid empty events.
            return WriteResult(row.content, created=False)
        version = row.version_id + 1
        body = self._prepare(res, res_type, res_id, version)
        result = self._conn.execute(
            _UPDATE_RESOURCE,
            {
                "b_pk": row.pk,
                "b_old": row.version_id,
                "b_version": version,
                "b_updated": body.last_updated,
                "b_deleted": False,
                "b_content": body.content,
                "b_patient": body.patient_id,
            },
        )
        if result.rowcount != 1:
            raise VersionConflict(f"{res_type}/{res_id} was changed concurrently; retry")
        self._write_version(row.pk, body, "update", None if row.deleted else row.content)
        return WriteResult(body.content, created=bool(row.deleted))

    def delete(self, res_type: str, res_id: str) -> int | None:
        """Logical delete; returns the deletion's version, or None if nothing was there."""
        row = self._current(res_type, res_id, lock=True)
        if row is None or row.deleted:
            return None
        version: int = row.version_id + 1
        stamp = now_ms()
        result = self.conn.execute(
            update(resource)
            .where(resource.c.pk == row.pk, resource.c.version_id == row.version_id)
            .values(version_id=version, last_updated=stamp, deleted=True, content=None)
        )
        if result.rowcount != 1:
            raise VersionConflict(f"{res_type}/{res_id} was changed concurrently; retry")
        self.conn.execute(
            insert(resource_version).values(
                resource_pk=row.pk,
                version_id=version,
                type=res_type,
                id=res_id,
                last_updated=stamp,
                deleted=True,
                method="delete",
                content=None,
            )
        )
        self._clear_index(row.pk)
        if res_type == "SearchParameter" and self.store.registry is not None:
            from parcours.store.search.custom import on_searchparameter_delete

            on_searchparameter_delete(self, self.store.registry, row.content)
        self._append_event(res_type, res_id, version, "delete", stamp)
        self.written.append((res_type, res_id, version, "delete", row.patient_id))
        for hook in (*self.store.write_hooks, *self.store.derived_hooks):
            hook(self, None, row.content)
        return version

    def reindex(self, res_type: str, res_id: str) -> None:
        """Rebuild the index rows of one resource from its stored JSON."""
        row = self._current(res_type, res_id, lock=True)
        if row is None or row.deleted:
            return
        self._clear_index(row.pk)
        index = self._index(row.content)
        self._write_index(row.pk, res_type, index)
        self._conn.execute(
            update(resource)
            .where(resource.c.pk == row.pk)
            .values(patient_id=patient_of(res_type, res_id, index))
        )
        for hook in self.store.derived_hooks:
            hook(self, row.content, row.content)

    # ---- internals ---------------------------------------------------------------------

    def _prepare(self, res: Resource, res_type: str, res_id: str, version: int) -> _Body:
        stamp = now_ms()
        content = as_version(res, res_id, version, stamp)
        self.store.validator(content)
        index = self._index(content)
        owner = patient_of(res_type, res_id, index)
        return _Body(res_type, res_id, version, stamp, content, index, owner)

    def _write_version(
        self, pk: int, body: _Body, method: str, previous: Resource | None = None
    ) -> None:
        if body.res_type == "SearchParameter" and self.store.registry is not None:
            from parcours.store.search.custom import on_searchparameter_write

            on_searchparameter_write(self, self.store.registry, body.content)
        self._queue(
            _INSERT_VERSION,
            [
                {
                    "resource_pk": pk,
                    "version_id": body.version,
                    "type": body.res_type,
                    "id": body.res_id,
                    "last_updated": body.last_updated,
                    "deleted": False,
                    "method": method,
                    "content": body.content,
                }
            ],
        )
        if method != "create":
            self._clear_index(pk)
        self._write_index(pk, body.res_type, body.index)
        self._append_event(body.res_type, body.res_id, body.version, method, body.last_updated)
        self.written.append((body.res_type, body.res_id, body.version, method, body.patient_id))
        for hook in (*self.store.write_hooks, *self.store.derived_hooks):
            hook(self, body.content, previous)

    def _index(self, content: Resource) -> IndexRows:
        index: dict[str, Sequence[Mapping[str, Any]]] = dict(self.store.indexer(content))
        if self.pending_params and self.store.registry is not None:
            from parcours.store.search.custom import pending_rows

            for kind, extra in pending_rows(self, self.store.registry, content).items():
                index[kind] = [*index.get(kind, ()), *extra]
        return index

    def _write_index(self, pk: int, res_type: str, index: IndexRows) -> None:
        for kind, kind_rows in index.items():
            if kind_rows:
                self._queue(
                    _INSERT_INDEX[kind],
                    [{**r, "resource_pk": pk, "res_type": res_type} for r in kind_rows],
                )

    def _clear_index(self, pk: int) -> None:
        for stmt in _DELETE_INDEX:
            self.conn.execute(stmt, {"pk": pk})

    def _append_event(self, res_type: str, res_id: str, version: int, action: str, at: int) -> None:
        self._queue(
            _INSERT_EVENT,
            [
                {
                    "res_type": res_type,
                    "res_id": res_id,
                    "version_id": version,
                    "action": action,
                    "created_at": at,
                    "attempts": 0,
                }
            ],
        )


# Statements of the write path, built once: constructing a Core statement per call costs more
# than executing it (SQLAlchemy caches the compiled SQL by the statement's memoised key).
_SELECT_CURRENT = select(
    resource.c.pk,
    resource.c.version_id,
    resource.c.deleted,
    resource.c.content,
    resource.c.patient_id,
).where(resource.c.type == bindparam("t"), resource.c.id == bindparam("i"))
_SELECT_CURRENT_LOCKED = _SELECT_CURRENT.with_for_update()
_INSERT_RESOURCE = insert(resource)
_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(:k)")
_UPDATE_RESOURCE = (
    update(resource)
    .where(resource.c.pk == bindparam("b_pk"), resource.c.version_id == bindparam("b_old"))
    .values(
        version_id=bindparam("b_version"),
        last_updated=bindparam("b_updated"),
        deleted=bindparam("b_deleted"),
        content=bindparam("b_content"),
        patient_id=bindparam("b_patient"),
    )
)
_INSERT_VERSION = insert(resource_version)
_INSERT_EVENT = insert(outbox)
_INSERT_INDEX = {kind: insert(table) for kind, table in INDEX_TABLES.items()}
_DELETE_INDEX = [
    delete(table).where(table.c.resource_pk == bindparam("pk")) for table in INDEX_TABLES.values()
]


@dataclass(frozen=True, slots=True)
class _Body:
    res_type: str
    res_id: str
    version: int
    last_updated: int
    content: Resource
    index: IndexRows
    patient_id: str | None


def resource_type(res: Mapping[str, Any]) -> str:
    res_type = res.get("resourceType")
    if not isinstance(res_type, str) or not res_type:
        raise InvalidResource("the resource has no resourceType")
    return res_type


def as_version(res: Resource, res_id: str, version: int, stamp: int) -> Resource:
    """The content stored for ``res`` as version ``version`` of ``res_id``, last updated at
    ``stamp`` (ms since the epoch), before validation."""
    content = dict(res)
    content["id"] = res_id
    meta = dict(content.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = instant(stamp)
    content["meta"] = meta
    return content


def _same_content(stored: Resource, incoming: Mapping[str, Any]) -> bool:
    def strip(r: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(r)
        meta = dict(out.pop("meta", None) or {})
        meta.pop("versionId", None)
        meta.pop("lastUpdated", None)
        if meta:
            out["meta"] = meta
        return out

    return strip(stored) == strip(incoming)
