"""Operations: health and readiness, Prometheus metrics, structured logs with request ids.

Every piece is pure ASGI or plain logging; the application assembly (``parcours.app``) mounts
them. Typical wiring::

    from parcours.ops import Metrics, configure_logging, ops_middleware, ops_routes

    configure_logging(settings)                      # first thing in every process
    metrics = Metrics(platform.store)                # one registry per application
    app = Starlette(
        routes=[*ops_routes(platform, metrics), Mount("/fhir", fhir_app), ...],
        middleware=ops_middleware(metrics),          # request id outermost, then metrics
    )
    dispatcher = Dispatcher(store, handlers, observers=[metrics])   # counts dispatches
    uvicorn.run(app, log_config=None, access_log=False)   # our access line replaces uvicorn's

Routes: ``GET /healthz`` (readiness: 200 or 503, JSON), ``GET /livez`` (liveness),
``GET /metrics`` (Prometheus text). An outbox worker without a web app exposes its counters
with ``start_metrics_server(metrics, port)``. A sub-application that routes by itself can name
the route template of a request for the metrics by setting ``scope["parcours.route"]``.
"""

from __future__ import annotations

from starlette.middleware import Middleware as _Middleware
from starlette.routing import BaseRoute as _BaseRoute
from starlette.routing import Route as _Route

from parcours.ops._context import current_request_id
from parcours.ops._health import HasStore, HealthReport, check_health, health_app, liveness_app
from parcours.ops._logging import LOG_FIELDS, JsonFormatter, configure_logging
from parcours.ops._metrics import (
    Metrics,
    MetricsMiddleware,
    metrics_app,
    route_template,
    start_metrics_server,
)
from parcours.ops._request_context import RequestContextMiddleware
from parcours.store.repository import Store as _Store

__all__ = [
    "LOG_FIELDS",
    "HasStore",
    "HealthReport",
    "JsonFormatter",
    "Metrics",
    "MetricsMiddleware",
    "RequestContextMiddleware",
    "check_health",
    "configure_logging",
    "current_request_id",
    "health_app",
    "liveness_app",
    "metrics_app",
    "ops_middleware",
    "ops_routes",
    "route_template",
    "start_metrics_server",
]


def ops_routes(source: _Store | HasStore, metrics: Metrics) -> list[_BaseRoute]:
    """``/healthz``, ``/livez`` and ``/metrics``, ready to put in a Starlette/FastAPI app."""
    return [
        _Route("/healthz", health_app(source), methods=["GET", "HEAD"]),
        _Route("/livez", liveness_app(), methods=["GET", "HEAD"]),
        _Route("/metrics", metrics_app(metrics), methods=["GET", "HEAD"]),
    ]


def ops_middleware(metrics: Metrics) -> list[_Middleware]:
    """The ops middleware in order: request id (and access line) outermost, then metrics, so
    the access line and the metrics see the same final status."""
    return [
        _Middleware(RequestContextMiddleware),
        _Middleware(MetricsMiddleware, metrics=metrics),
    ]


for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith(__name__ + "._"):
        _obj.__module__ = __name__
del _name, _obj
