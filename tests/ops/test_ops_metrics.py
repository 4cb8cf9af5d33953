"""``/metrics`` and ``MetricsMiddleware``: route templates, outbox gauges at scrape time,
dispatch counters, one registry per app."""

from __future__ import annotations

from ops_client import Client
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from parcours.ops import Metrics, ops_middleware, ops_routes
from parcours.store import Store, Transaction, make_engine
from parcours.store.outbox import Dispatcher, OutboxEvent, RetryPolicy


async def patient(request: Request) -> PlainTextResponse:
    return PlainTextResponse(" ".join(request.path_params.values()))


async def boom(request: Request) -> PlainTextResponse:
    raise RuntimeError("kaboom")


async def self_routing(scope: Scope, receive: Receive, send: Send) -> None:
    """Like the FHIR glue: dispatches by itself and names its template in the scope."""
    scope["parcours.route"] = "/fhir/{type}/{id}"
    await PlainTextResponse("fhir")(scope, receive, send)


def build(store: Store | None, metrics: Metrics) -> Starlette:
    routes = [
        Route("/patients/{pid}", patient),
        Route("/boom", boom),
        Mount("/api", routes=[Route("/items/{iid}", patient)]),
        Mount("/fhir", app=self_routing),
        Mount("/static", app=PlainTextResponse("static")),
    ]
    if store is not None:
        routes += ops_routes(store, metrics)
    return Starlette(routes=routes, middleware=ops_middleware(metrics))


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_requests_are_counted_by_route_template(store: Store) -> None:
    metrics = Metrics(store)
    with Client(build(store, metrics)) as client:
        for pid in ("a", "b", "c"):
            assert client.get(f"/patients/{pid}").status_code == 200
        client.get("/api/items/42")
        client.get("/fhir/Patient/123")
        client.get("/static/logo.svg")
        assert client.get("/nothing/here/1234").status_code == 404
        assert client.get("/boom").status_code == 500
        assert client.post("/healthz").status_code == 405
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    got = samples(response.text)

    def count(method: str, route: str, status: str) -> float:
        key = (("method", method), ("route", route), ("status", status))
        return got.get(("parcours_http_requests_total", key), 0.0)

    assert count("GET", "/patients/{pid}", "200") == 3
    assert count("GET", "/api/items/{iid}", "200") == 1
    assert count("GET", "/fhir/{type}/{id}", "200") == 1
    assert count("GET", "/static/{path}", "200") == 1
    assert count("GET", "<unmatched>", "404") == 1
    assert count("GET", "/boom", "500") == 1
    assert count("POST", "/healthz", "405") == 1
    assert not any("/patients/a" in str(k) for k in got)
    bucket = (
        "parcours_http_request_duration_seconds_count",
        (("method", "GET"), ("route", "/patients/{pid}")),
    )
    assert got[bucket] == 3


def test_outbox_gauges_are_read_at_scrape_time(store: Store) -> None:
    metrics = Metrics(store)
    got = samples(metrics.exposition().decode())
    assert got[("parcours_outbox_pending", ())] == 0
    assert got[("parcours_database_up", ())] == 1

    class Failing:
        name = "failing"

        def handle(self, event: OutboxEvent, tx: Transaction) -> None:
            if event.res_id == "bad":
                raise ValueError("no")

    store.update({"resourceType": "Patient", "id": "bad"})
    store.update({"resourceType": "Patient", "id": "good"})
    store.update({"resourceType": "Patient", "id": "good", "active": True})
    got = samples(metrics.exposition().decode())
    assert got[("parcours_outbox_pending", ())] == 3
    assert got[("parcours_outbox_oldest_pending_age_seconds", ())] >= 0

    dispatcher = Dispatcher(
        store, [Failing()], retry=RetryPolicy(max_attempts=1), observers=[metrics]
    )
    assert dispatcher.drain() == 2
    got = samples(metrics.exposition().decode())
    assert got[("parcours_outbox_pending", ())] == 0
    assert got[("parcours_outbox_dead_letters", ())] == 1
    assert got[("parcours_outbox_dispatched_total", (("res_type", "Patient"),))] == 2
    key = ("parcours_outbox_failures_total", (("dead", "true"), ("handler", "failing")))
    assert got[key] == 1


def test_scrape_survives_an_unreachable_database() -> None:
    engine = make_engine("postgresql://postgres@127.0.0.1:9/none")
    try:
        got = samples(Metrics(Store(engine)).exposition().decode())
    finally:
        engine.dispose()
    assert got[("parcours_database_up", ())] == 0
    assert ("parcours_outbox_pending", ()) not in got


def test_each_app_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    with Client(build(None, first)) as client:
        client.get("/patients/x")
    with Client(build(None, second)) as client:
        client.get("/patients/y")
        client.get("/patients/z")
    key = (
        "parcours_http_requests_total",
        (("method", "GET"), ("route", "/patients/{pid}"), ("status", "200")),
    )
    assert samples(first.exposition().decode())[key] == 1
    assert samples(second.exposition().decode())[key] == 2
