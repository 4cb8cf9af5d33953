"""The one way the ops apps answer: complete, uncached responses written straight to ASGI."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.types import Send

__all__ = ["respond"]


async def respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    headers: Sequence[tuple[bytes, bytes]] = (),
    *,
    head: bool = False,
) -> None:
    """A complete, uncached response; for HEAD, the headers of the GET without its body."""
    start: dict[str, Any] = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", content_type.encode("latin-1")),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
            *headers,
        ],
    }
    await send(start)
    await send({"type": "http.response.body", "body": b"" if head else body})
