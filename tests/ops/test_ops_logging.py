"""Structured logs and the request-id middleware, over HTTP on the ASGI app."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from parcours.config import Settings
from parcours.ops import (
    Metrics,
    RequestContextMiddleware,
    configure_logging,
    current_request_id,
    ops_middleware,
)

app_log = logging.getLogger("parcours.test.app")


@contextmanager
def restored_logging() -> Iterator[None]:
    """configure_logging changes process-wide loggers: put them back after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    others = {n: logging.getLogger(n).level for n in ("httpx", "httpcore")}
    access_disabled = logging.getLogger("uvicorn.access").disabled
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, old in others.items():
            logging.getLogger(name).setLevel(old)
        logging.getLogger("uvicorn.access").disabled = access_disabled


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """Logging configured into a buffer."""
    stream = io.StringIO()
    with restored_logging():
        configure_logging(Settings(log_level="INFO", log_json=True), stream=stream)
        yield stream


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def hello(request: Request) -> PlainTextResponse:
    app_log.info("handling a request", extra={"body": "SECRET BODY", "status": 299})
    return PlainTextResponse(current_request_id() or "none")


async def boom(request: Request) -> PlainTextResponse:
    raise RuntimeError("kaboom")


def app() -> Starlette:
    return Starlette(
        routes=[Route("/hello/{name}", hello), Route("/boom", boom)],
        middleware=ops_middleware(Metrics()),
    )


def get(path: str, headers: dict[str, str | bytes] | None = None) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app(), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(path, headers=headers)

    return asyncio.run(go())


def test_incoming_sane_request_id_is_kept_everywhere(log_stream: io.StringIO) -> None:
    response = get(
        "/hello/x?identifier=urn:oid:1.2.250.1.213.1.4.8|1234567890123",
        headers={"X-Request-ID": "proxy-42.a:b_c"},
    )
    assert response.text == "proxy-42.a:b_c"
    assert response.headers["x-request-id"] == "proxy-42.a:b_c"
    records = lines(log_stream)
    handled = next(r for r in records if r["logger"] == "parcours.test.app")
    access = next(r for r in records if r["logger"] == "parcours.access")
    assert handled["request_id"] == access["request_id"] == "proxy-42.a:b_c"
    # Only the named fields: the "body" extra is dropped, a named one is kept.
    assert "body" not in handled and "SECRET" not in log_stream.getvalue()
    assert handled["status"] == 299
    assert set(access) >= {
        "ts",
        "level",
        "logger",
        "message",
        "request_id",
        "method",
        "path",
        "status",
        "duration_ms",
    }
    assert (access["method"], access["path"], access["status"]) == ("GET", "/hello/x", 200)
    assert access["ts"].endswith("Z") and access["level"] == "INFO"
    # The query string (which may carry an INS) is never logged.
    assert "1234567890123" not in log_stream.getvalue()


@pytest.mark.parametrize("incoming", ["", "has space", "x" * 129, "semi;colon", "é"])
def test_insane_request_id_is_replaced(log_stream: io.StringIO, incoming: str) -> None:
    response = get("/hello/x", headers={"X-Request-ID": incoming.encode()})
    generated = response.headers["x-request-id"]
    assert generated != incoming and len(generated) == 32
    assert response.text == generated


def test_generated_when_absent_and_unique(log_stream: io.StringIO) -> None:
    first, second = get("/hello/a"), get("/hello/b")
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    assert current_request_id() is None  # reset after each request


def test_a_crash_is_logged_as_500_with_the_request_id(log_stream: io.StringIO) -> None:
    response = get("/boom", headers={"X-Request-ID": "r1"})
    assert response.status_code == 500
    access = [r for r in lines(log_stream) if r["logger"] == "parcours.access"]
    assert [(r["status"], r["request_id"]) for r in access] == [(500, "r1")]


def test_exceptions_are_one_line_of_json(log_stream: io.StringIO) -> None:
    try:
        raise ValueError("bad")
    except ValueError:
        app_log.exception("it failed")
    [record] = lines(log_stream)
    assert record["level"] == "ERROR" and record["request_id"] is None
    assert "ValueError: bad" in record["exc"]


def test_text_format_for_developers() -> None:
    stream = io.StringIO()
    with restored_logging():
        configure_logging(Settings(log_level="WARNING", log_json=False), stream=stream)
        configure_logging(Settings(log_level="WARNING", log_json=False), stream=stream)
        app_log.info("hidden")
        app_log.warning("shown")
    assert stream.getvalue().count("shown") == 1  # idempotent: one handler
    assert "hidden" not in stream.getvalue()


def test_bad_header_name_is_refused_up_front() -> None:
    with pytest.raises(ValueError, match="header"):
        RequestContextMiddleware(app(), header="X Request")
