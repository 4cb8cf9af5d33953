"""Prometheus metrics: HTTP traffic (middleware), outbox state (read at scrape time) and outbox
dispatch outcomes (a ``DispatchObserver``), in one ``CollectorRegistry`` per ``Metrics``.

Series:

- ``parcours_http_requests_total{method,route,status}`` and
  ``parcours_http_request_duration_seconds{method,route}`` (histogram). ``route`` is the route
  TEMPLATE (``/fhir/Patient/{id}``), never the raw path, so ids do not explode cardinality;
  an unrouted request is ``<unmatched>``.
- ``parcours_outbox_pending``, ``parcours_outbox_oldest_pending_age_seconds``,
  ``parcours_outbox_dead_letters``, ``parcours_database_up``: queried from the database at each
  scrape, so any process sees the whole outbox.
- ``parcours_outbox_dispatched_total{res_type}``, ``parcours_outbox_failures_total{handler,dead}``:
  counted by the dispatchers of THIS process (worker processes expose their own, see
  ``start_metrics_server``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from parcours.ops._responses import respond
from parcours.store.outbox import OutboxEvent, dead_letter_count, outbox_lag
from parcours.store.repository import Store

__all__ = ["Metrics", "MetricsMiddleware", "metrics_app", "route_template", "start_metrics_server"]

log = logging.getLogger("parcours.ops")

UNMATCHED = "<unmatched>"
# Key an inner ASGI app (e.g. the FHIR glue, which dispatches from its own table) may set in
# the scope to name the full route template of the request it served.
ROUTE_SCOPE_KEY = "parcours.route"


class _OutboxCollector:
    """Outbox gauges computed at scrape time; a database failure yields database_up 0."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "parcours_database_up", "1 if the database answered the last scrape's queries"
        )
        try:
            lag = outbox_lag(self.store)
            dead = dead_letter_count(self.store)
        except Exception as exc:  # a scrape must answer even when the database does not
            log.warning("metrics scrape: database unavailable: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily(
            "parcours_outbox_pending", "Outbox events waiting for delivery", value=lag.pending
        )
        yield GaugeMetricFamily(
            "parcours_outbox_oldest_pending_age_seconds",
            "Age of the oldest event waiting for delivery (0 when none)",
            value=lag.oldest_age_seconds,
        )
        yield GaugeMetricFamily(
            "parcours_outbox_dead_letters",
            "Outbox events parked after too many failures",
            value=dead,
        )


class Metrics:
    """The instruments of one application; pass it to the middleware, the app and dispatchers.

    ``store`` adds the outbox gauges. Tests build one per app, so registries never collide.
    """

    def __init__(self, store: Store | None = None, registry: CollectorRegistry | None = None):
        self.registry = registry if registry is not None else CollectorRegistry()
        self.http_requests = Counter(
            "parcours_http_requests",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "parcours_http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["method", "route"],
            registry=self.registry,
        )
        self.outbox_dispatched = Counter(
            "parcours_outbox_dispatched",
            "Outbox events processed by this process's dispatchers",
            ["res_type"],
            registry=self.registry,
        )
        self.outbox_failures = Counter(
            "parcours_outbox_failures",
            "Outbox handler failures in this process (dead: the failure parked the event)",
            ["handler", "dead"],
            registry=self.registry,
        )
        if store is not None:
            self.registry.register(_OutboxCollector(store))

    # DispatchObserver
    def dispatched(self, event: OutboxEvent, seconds: float) -> None:
        self.outbox_dispatched.labels(event.res_type).inc()

    def failed(self, event: OutboxEvent, handler: str, dead: bool) -> None:
        self.outbox_failures.labels(handler, str(dead).lower()).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _match(routes: Sequence[BaseRoute], scope: Scope) -> str | None:
    """Starlette's own choice: the first full match, else the first partial one (405)."""
    partial: tuple[BaseRoute, Scope] | None = None
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.FULL:
            return _path_of(route, {**scope, **child})
        if match is Match.PARTIAL and partial is None:
            partial = (route, {**scope, **child})
    return _path_of(*partial) if partial is not None else None


def _path_of(route: BaseRoute, child: Scope) -> str | None:
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return None
    if isinstance(route, Mount):
        inner = _match(route.routes, child)
        return path + (inner if inner is not None else "/{path}")
    return path


def route_template(original: Scope, served: Scope) -> str:
    """The template of the route that served the request (see the module docstring).

    ``original`` is the scope as it came in, ``served`` the same dict after the app ran (routers
    add ``app``, ``route``, ...). An explicit ``scope["parcours.route"]`` wins; otherwise the
    application's routes are matched again, through mounts.
    """
    explicit = served.get(ROUTE_SCOPE_KEY)
    if isinstance(explicit, str):
        return explicit
    routes = getattr(served.get("app"), "routes", None)
    if routes:
        found = _match(routes, original)
        if found is not None:
            return found
    return UNMATCHED


class MetricsMiddleware:
    """Counts and times every HTTP request by method, route template and status (pure ASGI)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        original = dict(scope)
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = route_template(original, scope) if status != 404 else UNMATCHED
            method = scope["method"]
            self.metrics.http_requests.labels(method, route, str(status)).inc()
            self.metrics.http_latency.labels(method, route).observe(time.perf_counter() - started)


class _MetricsApp:
    # A class, not a closure: Starlette's ``Route`` treats a plain function as a request
    # handler, an object with ``__call__`` as an ASGI app.
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http", "the metrics app serves HTTP only"
        if scope["method"] not in ("GET", "HEAD"):
            await respond(send, 405, b"method not allowed\n", "text/plain", [(b"allow", b"GET")])
            return
        # Scraping queries the database (outbox gauges): keep it off the event loop.
        body = await asyncio.to_thread(self.metrics.exposition)
        await respond(send, 200, body, CONTENT_TYPE_LATEST, head=scope["method"] == "HEAD")


def metrics_app(metrics: Metrics) -> ASGIApp:
    """``GET /metrics``: the Prometheus text exposition of ``metrics.registry``."""
    return _MetricsApp(metrics)


def start_metrics_server(metrics: Metrics, port: int, addr: str = "127.0.0.1") -> None:
    """Expose ``metrics`` on a side HTTP port, for processes without a web app (outbox workers)."""
    start_http_server(port, addr=addr, registry=metrics.registry)
