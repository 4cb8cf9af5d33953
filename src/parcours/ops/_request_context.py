"""Request-id middleware (pure ASGI): one id per request, in the response and in every log line.

An incoming ``X-Request-ID`` is kept when it is sane (1-128 characters among letters, digits
and ``-_.:``), so a reverse proxy's id follows the request; otherwise a fresh one is generated.
The middleware also writes the access line (method, path without query string, status,
duration) on the ``parcours.access`` logger.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from parcours.ops._context import request_id_var

__all__ = ["RequestContextMiddleware"]

_SANE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

access_log = logging.getLogger("parcours.access")


class RequestContextMiddleware:
    """Sets the request id (contextvar + response header) and logs one access line."""

    def __init__(
        self, app: ASGIApp, *, header: str = "X-Request-ID", access_log: bool = True
    ) -> None:
        if not re.fullmatch(r"[A-Za-z0-9\-]+", header):
            raise ValueError(f"request id header {header!r} is not a valid header name")
        self.app = app
        self.header = header
        self._header_key = header.lower().encode("latin-1")
        self.access_log = access_log

    def _incoming(self, scope: Scope) -> str | None:
        for key, value in scope.get("headers", []):
            if key == self._header_key:
                candidate = value.decode("latin-1")
                return candidate if _SANE.fullmatch(candidate) else None
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = self._incoming(scope) or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[self.header] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.access_log:
                duration_ms = round((time.perf_counter() - started) * 1000, 2)
                access_log.info(
                    "%s %s %d %.2f ms",
                    scope["method"],
                    scope["path"],
                    status,
                    duration_ms,
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": duration_ms,
                    },
                )
            request_id_var.reset(token)
