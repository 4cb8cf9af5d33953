"""``/healthz`` and ``/livez`` on real databases, over HTTP (httpx on the ASGI app)."""

from __future__ import annotations

from ops_client import Client
from sqlalchemy import update
from starlette.applications import Starlette

from parcours.ops import Metrics, health_app, ops_routes
from parcours.store import Store, make_engine
from parcours.store.schema import outbox
from parcours.store.schema_version import head_revision


def client_for(store: Store) -> Client:
    return Client(Starlette(routes=ops_routes(store, Metrics(store))))


def test_ready_with_schema_and_outbox_figures(store: Store) -> None:
    store.update({"resourceType": "Patient", "id": "p1"})
    with client_for(store) as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["schema"] == head_revision()
    assert body["outbox"]["pending"] == 1
    assert body["outbox"]["dead_letters"] == 0
    assert body["outbox"]["oldest_age_seconds"] >= 0


def test_dead_letters_make_it_degraded_but_still_ready(store: Store) -> None:
    store.update({"resourceType": "Patient", "id": "p1"})
    with store.begin() as tx:
        tx.conn.execute(update(outbox).values(dead_at=1, attempts=8))
    with client_for(store) as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["outbox"]["dead_letters"] == 1


def test_old_pending_events_make_it_degraded(store: Store) -> None:
    store.update({"resourceType": "Patient", "id": "p1"})
    with store.begin() as tx:
        tx.conn.execute(update(outbox).values(created_at=1_000))
    with Client(health_app(store, lag_warning_seconds=60)) as client:
        body = client.get("/").json()
    assert body["status"] == "degraded"
    assert body["outbox"]["oldest_age_seconds"] > 60


def test_schema_behind_is_not_ready(database_url: str) -> None:
    engine = make_engine(database_url)  # no ensure_schema: an empty database
    try:
        with Client(health_app(Store(engine))) as client:
            response = client.get("/")
    finally:
        engine.dispose()
    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["database"], body["schema"]) == ("degraded", "ok", None)
    assert "parcours db upgrade" in body["problem"]


def test_unreachable_database_is_503() -> None:
    engine = make_engine("postgresql://postgres@127.0.0.1:9/none")  # the discard port
    try:
        with Client(health_app(Store(engine))) as client:
            response = client.get("/")
    finally:
        engine.dispose()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["database"].startswith("OperationalError")
    assert body["outbox"] is None


def test_platform_like_source_and_methods(store: Store) -> None:
    class Platform:
        def __init__(self, store: Store) -> None:
            self.store = store

    with Client(health_app(Platform(store))) as client:
        assert client.get("/").status_code == 200
        head = client.head("/")
        assert head.status_code == 200 and head.content == b""
        assert client.post("/").status_code == 405


def test_liveness_does_not_touch_the_database() -> None:
    engine = make_engine("postgresql://postgres@127.0.0.1:9/none")
    try:
        with Client(Starlette(routes=ops_routes(Store(engine), Metrics()))) as client:
            assert client.get("/livez").json() == {"status": "ok"}
            assert client.get("/healthz").status_code == 503
    finally:
        engine.dispose()
