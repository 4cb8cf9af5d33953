"""Engines for SQLite (embedded default) and PostgreSQL (production), and their differences.

Services never test which database they run on: what differs lives here, in ``Dialect``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event

__all__ = ["Dialect", "make_engine", "normalise_url"]


def normalise_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever spelling the operator used."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between the two databases, named once."""

    name: str

    @property
    def is_postgres(self) -> bool:
        return self.name == "postgresql"

    @property
    def supports_skip_locked(self) -> bool:
        return self.is_postgres


def make_engine(url: str, *, sqlite_synchronous: str = "FULL", pool_size: int = 10) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1].split("?", 1)[0]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            json_serializer=_json_dumps,
            json_deserializer=orjson.loads,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size,
            max_overflow=pool_size,
        )
        _configure_sqlite(engine, sqlite_synchronous)
        return engine
    return create_engine(
        url,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        pool_size=pool_size,
        max_overflow=pool_size,
        # No pre-ping: it costs a round trip per request. A connection broken by a database
        # restart fails one request with 503 (retryable) and SQLAlchemy then invalidates the
        # whole pool; pool_recycle bounds the life of idle connections behind proxies.
        pool_recycle=1800,
    )


def _configure_sqlite(engine: Engine, synchronous: str) -> None:
    # pysqlite's own transaction handling starts transactions lazily and as DEFERRED, which
    # lets two writers deadlock on lock upgrade; we issue BEGIN ourselves (IMMEDIATE unless
    # the connection was marked read-only), as the SQLAlchemy documentation recommends.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = "DEFERRED" if conn.info.get("readonly") else "IMMEDIATE"
        conn.exec_driver_sql(f"BEGIN {mode}")
