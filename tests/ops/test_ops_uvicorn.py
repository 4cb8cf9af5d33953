"""The ops pieces in a real uvicorn server, over real TCP, on each database."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from parcours.ops import Metrics, ops_middleware, ops_routes
from parcours.store import Store, make_engine
from parcours.store.schema_version import ensure_schema


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def base_url(database_url: str) -> Iterator[str]:
    engine = make_engine(database_url)
    ensure_schema(engine)
    store = Store(engine)
    store.update({"resourceType": "Patient", "id": "p1"})
    metrics = Metrics(store)
    app = Starlette(routes=ops_routes(store, metrics), middleware=ops_middleware(metrics))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


def test_health_and_metrics_over_tcp(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        health = client.get("/healthz", headers={"X-Request-ID": "probe-1"})
        assert health.status_code == 200
        assert health.headers["x-request-id"] == "probe-1"
        assert health.json()["outbox"]["pending"] == 1
        assert client.get("/livez").status_code == 200
        scrape = client.get("/metrics")
    assert scrape.status_code == 200
    text = scrape.text
    assert "parcours_outbox_pending 1.0" in text
    assert 'parcours_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text
