"""``GET /healthz``: readiness (is the database there, is its schema this version's), plus the
outbox lag for humans; and ``GET /livez``: liveness (the process answers).

Answer of ``/healthz``::

    {"status": "ok" | "degraded", "database": "ok" | "<error>", "schema": "<revision>" | null,
     "outbox": {"pending": n, "oldest_age_seconds": x, "dead_letters": n}}

- 503 (not ready: take the process out of the load balancer) when the database is unreachable,
  does not answer within ``timeout_seconds``, or its schema revision is not this code's head;
- 200 ``degraded`` when the database is fine but the outbox needs a look (dead letters, or the
  oldest pending event older than ``lag_warning_seconds``): the process can still serve;
- 200 ``ok`` otherwise.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from sqlalchemy import text
from starlette.types import ASGIApp, Receive, Scope, Send

from parcours.ops._responses import respond
from parcours.store.outbox import dead_letter_count, outbox_lag
from parcours.store.repository import Store
from parcours.store.schema_version import current_revision, head_revision

__all__ = ["HasStore", "HealthReport", "check_health", "health_app", "liveness_app"]


class HasStore(Protocol):
    """Anything that carries the store, such as ``parcours.platform.Platform``."""

    @property
    def store(self) -> Store: ...


@dataclass(frozen=True, slots=True)
class HealthReport:
    ready: bool
    body: dict[str, Any]

    @property
    def status_code(self) -> int:
        return 200 if self.ready else 503


def _error_text(exc: BaseException) -> str:
    # The first line only: driver messages name host and port, never the password.
    first = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}"[:300]


def check_health(store: Store, *, lag_warning_seconds: float = 300.0) -> HealthReport:
    """The blocking check behind ``/healthz`` (also usable from the CLI)."""
    try:
        with store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        revision = current_revision(store.engine)
        head = head_revision()
        if revision != head:
            return HealthReport(
                False,
                {
                    "status": "degraded",
                    "database": "ok",
                    "schema": revision,
                    "outbox": None,
                    "problem": f"schema is at {revision or 'nothing'}, this version needs {head}"
                    ": run `parcours db upgrade`",
                },
            )
        lag = outbox_lag(store)
        dead = dead_letter_count(store)
    except Exception as exc:  # any failure to reach the database means "not ready"
        return HealthReport(
            False,
            {"status": "degraded", "database": _error_text(exc), "schema": None, "outbox": None},
        )
    needs_look = dead > 0 or lag.oldest_age_seconds > lag_warning_seconds
    body = {
        "status": "degraded" if needs_look else "ok",
        "database": "ok",
        "schema": revision,
        "outbox": {
            "pending": lag.pending,
            "oldest_age_seconds": lag.oldest_age_seconds,
            "dead_letters": dead,
        },
    }
    return HealthReport(True, body)


class _HealthApp:
    # A class, not a closure: Starlette's ``Route`` treats a plain function as a request
    # handler, an object with ``__call__`` as an ASGI app.
    def __init__(self, store: Store, timeout_seconds: float, lag_warning_seconds: float) -> None:
        self.store = store
        self.timeout_seconds = timeout_seconds
        self.lag_warning_seconds = lag_warning_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http", "the health app serves HTTP only"
        if scope["method"] not in ("GET", "HEAD"):
            await respond(send, 405, b"method not allowed\n", "text/plain", [(b"allow", b"GET")])
            return
        try:
            report = await asyncio.wait_for(
                asyncio.to_thread(
                    check_health, self.store, lag_warning_seconds=self.lag_warning_seconds
                ),
                timeout=self.timeout_seconds,
            )
        except TimeoutError:
            report = HealthReport(
                False,
                {
                    "status": "degraded",
                    "database": f"no answer within {self.timeout_seconds:g} s",
                    "schema": None,
                    "outbox": None,
                },
            )
        await respond(
            send,
            report.status_code,
            orjson.dumps(report.body),
            "application/json",
            head=scope["method"] == "HEAD",
        )


def health_app(
    source: Store | HasStore, *, timeout_seconds: float = 5.0, lag_warning_seconds: float = 300.0
) -> ASGIApp:
    """The ``/healthz`` ASGI app over a ``Store`` or anything with a ``.store`` (a Platform)."""
    store = source if isinstance(source, Store) else source.store
    return _HealthApp(store, timeout_seconds, lag_warning_seconds)


class _LivenessApp:
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http", "the liveness app serves HTTP only"
        await respond(
            send, 200, b'{"status":"ok"}', "application/json", head=scope["method"] == "HEAD"
        )


def liveness_app() -> ASGIApp:
    """``/livez``: 200 while the process serves requests; never touches the database, so a
    database outage does not make an orchestrator restart every process."""
    return _LivenessApp()
